"""The procedures as the rest of the hub sees them: the typed document, version, confirmation
and "to confirm" row, and the refusal (:class:`ProcedureError`, a code and parameters the page
translates). No database here."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from hub.catalog import CodedError
from hub.procedures.messages import ERRORS

MAX_NAME = 128
MAX_BYTES = 20 * 1024 * 1024  # a scanned PDF of a long 規程 fits; anything larger is a mistake
MARKDOWN = "text/markdown"
PDF = "application/pdf"
EDITING_ROLES = ("admin",)  # upload documents and versions, set who they apply to
SUPERVISING_ROLES = ("admin", "supervisor")  # record confirmations, read the to-confirm list


class ProcedureError(CodedError):
    """A procedures step that cannot be done as asked (codes: hub.procedures.messages.ERRORS)."""

    ERRORS = ERRORS


def json_list(text: str | None) -> list[str]:
    """A stored JSON list of names; anything else (a damaged value) reads as empty."""
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(frozen=True)
class Audience:
    """Who a document applies to: people matching every non-empty list (empty: anyone)."""

    sections: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    employments: tuple[str, ...] = ()

    def covers(self, person: Any) -> bool:
        """Whether a ``people`` row (or an object with section, role, employment) is included."""
        return ((not self.sections or person.section in self.sections)
                and (not self.roles or person.role in self.roles)
                and (not self.employments or person.employment in self.employments))


@dataclass(frozen=True)
class Document:
    """A document and its current (highest) version number; 0: nothing uploaded yet."""

    id: int
    name: str
    kind: str
    audience: Audience
    station_kinds: tuple[str, ...]
    current: int
    current_version_id: int | None
    current_sha256: str | None


@dataclass(frozen=True)
class Version:
    """One uploaded version (without its bytes)."""

    id: int
    document_id: int
    document: str
    number: int
    filename: str
    content_type: str
    size: int
    sha256: str
    note: str
    uploaded_by: str
    uploaded_at: str


@dataclass(frozen=True)
class Confirmation:
    """One person's read-and-confirm of one version."""

    version_id: int
    number: int
    staff_no: str
    name: str
    confirmed_at: str
    via: str
    recorded_by: str
    session_id: int | None


@dataclass(frozen=True)
class Pending:
    """Someone the document applies to who has not confirmed its current version."""

    document: str
    number: int
    version_id: int
    since: str  # when that version was uploaded
    staff_no: str
    name: str
    kana: str
    section: str
    employment: str
    last_confirmed: int | None  # the highest version they did confirm, if any
    active_from: date | None = None
