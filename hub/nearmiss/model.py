"""The near-miss case as the rest of the hub sees it: typed input (:class:`CaseInput`), the
stored case (:class:`Case`), and the refusal (:class:`NearMissError`, a code and parameters the
page translates). No database here.

Who sees the reporter's name: the supervisors (``admin``, ``supervisor``) always; everyone else
only when the reporter did not ask to stay anonymous. The trail (side log ``nearmiss``) always
holds it.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping

from hub.catalog import N_, CodedError, Msg, translate
from hub.nearmiss.messages import ERRORS
from hub.store.schema import NEARMISS_CATEGORIES, NEARMISS_SEVERITIES

_LOG = logging.getLogger(__name__)

SUPERVISING_ROLES = ("admin", "supervisor")  # review, share, turn alerts into cases, see names
READING_ROLES = ("admin", "supervisor", "auditor")  # every case, the analysis, exports
MAX_TEXT = 4000
MAX_PLACE = 128

# Field names as the refusals name them.
FIELDS: dict[str, Msg] = {
    "occurred_at": N_("When"),
    "place": N_("Where"),
    "category": N_("Category"),
    "what": N_("What happened"),
    "why": N_("Why it happened"),
    "severity": N_("How serious"),
    "countermeasure": N_("Countermeasure"),
}


class NearMissError(CodedError):
    """A near-miss step that cannot be done as asked (codes: hub.nearmiss.messages.ERRORS); a
    ``field`` parameter is a FIELDS key, worded in the reader's language."""

    ERRORS = ERRORS

    def word_params(self, lang: str) -> dict[str, Any]:
        params = dict(self.params)
        if params.get("field") in FIELDS:
            params["field"] = translate(lang, FIELDS[params["field"]])
        return params


@dataclass(frozen=True)
class CaseInput:
    """What a reporter writes (checked by :func:`hub.nearmiss.service.file_case`)."""

    occurred_at: datetime  # timezone-aware
    category: str
    what: str
    why: str
    severity: str
    station: str | None = None
    place: str = ""
    anonymous: bool = False

    def check(self) -> None:
        """NearMissError for the first thing wrong (station existence is the service's)."""
        if self.occurred_at.tzinfo is None:
            raise NearMissError("nearmiss.bad_time", {"value": self.occurred_at.isoformat()})
        if self.category not in NEARMISS_CATEGORIES:
            raise NearMissError("nearmiss.bad_choice", {"field": "category", "value": self.category})
        if self.severity not in NEARMISS_SEVERITIES:
            raise NearMissError("nearmiss.bad_choice", {"field": "severity", "value": self.severity})
        if not self.station and not self.place.strip():
            raise NearMissError("nearmiss.no_place")
        if len(self.place) > MAX_PLACE:
            raise NearMissError("nearmiss.too_long", {"field": "place", "n": MAX_PLACE})
        for name in ("what", "why"):
            text = getattr(self, name)
            if not text.strip():
                raise NearMissError("nearmiss.missing", {"field": name})
            if len(text) > MAX_TEXT:
                raise NearMissError("nearmiss.too_long", {"field": name, "n": MAX_TEXT})


@dataclass(frozen=True)
class Case:
    """A stored case (a ``nearmiss_cases`` row)."""

    id: int
    occurred_at: str  # UTC text (hub.store.timestamps)
    station: str | None
    place: str
    category: str
    what: str
    why: str
    severity: str
    anonymous: bool
    reporter: str
    filed_by: str
    filed_at: str
    source: str
    alert_id: int | None
    event_ids: tuple[str, ...]
    state: str
    countermeasure: str | None
    reviewed_by: str | None
    reviewed_at: str | None
    shared_by: str | None
    shared_at: str | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any] | RowMapping) -> Case:
        values = {k: row[k] for k in cls.__dataclass_fields__ if k != "event_ids"}
        try:
            ids = json.loads(row["event_ids"] or "[]")
        except ValueError:  # a hand-edited row must not break the page
            ids = []
        values["anonymous"] = bool(row["anonymous"])
        return cls(**values, event_ids=tuple(str(i) for i in ids if isinstance(i, str)))

    def reporter_for(self, role: str, username: str) -> str | None:
        """The reporter's name as ``role``/``username`` may see it; None: anonymous to them."""
        if not self.anonymous or role in SUPERVISING_ROLES or username == self.filed_by:
            return self.reporter
        return None

    def readable_by(self, role: str, username: str) -> bool:
        """Shared cases are for everyone; the others for their reporter and the readers."""
        return self.state == "shared" or role in READING_ROLES or username == self.filed_by
