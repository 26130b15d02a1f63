"""Checks and look-ups the registry's modules share: staff numbers, badge ids, dates,
station ids, and finding a person by staff number inside a transaction."""
from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Any, Literal, overload

from sqlalchemy import Connection, select

from hub.registry.log import NotFound, RegistryError
from hub.store.schema import people
from kagiban.badge_id import BadgeIdError, normalise_badge_id
from kagiban.protocol import ID_PATTERN

STAFF_NO_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
STATION_KINDS = ("cabinet", "shredder", "printer", "door")

_STAFF_NO_RE = re.compile(STAFF_NO_PATTERN)
_STATION_RE = re.compile(ID_PATTERN)


def nfkc(value: str) -> str:
    """``value`` with full-width letters and digits made plain and the ends stripped."""
    return unicodedata.normalize("NFKC", value).strip()


def fold(value: str) -> str:
    """For matching names: NFKC, case-folded, no spaces, hiragana as katakana."""
    value = unicodedata.normalize("NFKC", value or "").casefold()
    value = "".join(ch for ch in value if not ch.isspace())
    return "".join(chr(ord(ch) + 0x60) if "\u3041" <= ch <= "\u3096" else ch for ch in value)


def staff_no(value: Any) -> str:
    """A staff number (職員番号) as stored: NFKC, stripped, checked against STAFF_NO_PATTERN."""
    if not isinstance(value, str):
        raise RegistryError("staff_no.not_text", {"kind": type(value).__name__})
    text = nfkc(value)
    if not _STAFF_NO_RE.match(text):
        raise RegistryError("staff_no.invalid", {"value": repr(value)})
    return text


def badge_id(value: Any) -> str:
    """A badge id as the reader reports it (kagiban.badge_id); a RegistryError carrying the
    normaliser's code and parameters if no card can have it."""
    try:
        return normalise_badge_id(value)
    except BadgeIdError as exc:
        raise RegistryError(exc.code, exc.params) from exc


def station_id(value: Any) -> str:
    """A station id, usable in a topic."""
    if not isinstance(value, str) or not _STATION_RE.match(value):
        raise RegistryError("station.invalid", {"value": repr(value), "pattern": ID_PATTERN})
    return value


@overload
def day(value: Any, what: str, *, optional: Literal[False]) -> date: ...
@overload
def day(value: Any, what: str, *, optional: bool = True) -> date | None: ...
def day(value: Any, what: str, *, optional: bool = True) -> date | None:
    """A calendar date from a ``date`` or a ``YYYY-MM-DD`` string; None if optional and empty."""
    if value is None or value == "":
        if optional:
            return None
        raise RegistryError("date.missing", {"what": what})
    if isinstance(value, datetime):
        raise RegistryError("date.has_time", {"what": what})
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise RegistryError("date.invalid", {"what": what, "value": repr(value)})


def text(value: Any, what: str, max_len: int, *, required: bool = False) -> str:
    """Free text, stripped and bounded."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RegistryError("text.not_text", {"what": what})
    value = value.strip()
    if required and not value:
        raise RegistryError("text.empty", {"what": what})
    if len(value) > max_len:
        raise RegistryError("text.too_long", {"what": what, "n": max_len})
    return value


def person_row(conn: Connection, number: str) -> Any:
    """The ``people`` row of a staff number; NotFound if there is none."""
    number = staff_no(number)
    row = conn.execute(select(people).where(people.c.staff_no == number)).first()
    if row is None:
        raise NotFound("person.not_found", {"number": number})
    return row


def row_dict(row: Any) -> dict[str, Any]:
    """A result row as a plain dict."""
    return dict(row._mapping)
