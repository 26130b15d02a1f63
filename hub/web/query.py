"""Query-string values the pages read, parsed one way: a value a page cannot use is a
``BadQuery`` (400), answered with the site's own page naming the parameter and what it wants
(hub.web.app), or JSON under the API prefixes. Never a 500, never a silent default.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import overload

from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest

_LOG = logging.getLogger(__name__)

# What a parameter wants, by code: English for the API's message, translated for the page.
EXPECTED = {
    "date": ("a date as YYYY-MM-DD", _l("a date as YYYY-MM-DD")),
    "month": ("a month as YYYY-MM", _l("a month as YYYY-MM")),
    "integer": ("a whole number", _l("a whole number")),
    "choice": ("one of the values the page offers", _l("one of the values the page offers")),
    "text": ("text without control characters", _l("text without control characters")),
    "range_order": ("a last day on or after the first day", _l("a last day on or after the first day")),
    "range_length": ("a range of at most 366 days", _l("a range of at most 366 days")),
    "page_mark": ("a page mark as the ledger's own page links write it",
                  _l("a page mark as the ledger's own page links write it")),
}


class BadQuery(BadRequest):
    """A query value a page cannot use: ``param`` (its name) and the code of what it expects."""

    def __init__(self, name: str, expected: str):
        self.param = name
        self.expected = expected
        super().__init__(description=f"{name} must be {EXPECTED[expected][0]}")

    def expected_text(self) -> str:
        return str(EXPECTED[self.expected][1])


def day(value: str | None, name: str = "day") -> date | None:
    """A ``YYYY-MM-DD`` value; None if empty."""
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadQuery(name, "date") from None


@overload
def integer(value: str | None, name: str, default: int, lo: int, hi: int) -> int: ...
@overload
def integer(value: str | None, name: str, default: None, lo: int, hi: int) -> int | None: ...
def integer(value: str | None, name: str, default: int | None, lo: int, hi: int) -> int | None:
    """A whole number, held within [lo, hi]; ``default`` if empty."""
    if value is None or value == "":
        return default
    text = value.strip()
    # int() also takes "1_000" and other digits than 0-9: only plain decimal digits here.
    if not text.lstrip("-").isascii() or not text.lstrip("-").isdigit() or len(text) > 40:
        raise BadQuery(name, "integer")
    return max(lo, min(int(text), hi))


def text(value: str | None, name: str) -> str | None:
    """Free text (a station, a site, a search), stripped; None if empty. Control characters
    are refused: they end up in file names, spreadsheet titles and log lines."""
    value = (value or "").strip()
    if not value:
        return None
    if any(ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0 for ch in value):
        raise BadQuery(name, "text")
    return value


def choice(value: str | None, name: str, allowed) -> str | None:
    """One of ``allowed``; None if empty."""
    if not value:
        return None
    if value not in allowed:
        raise BadQuery(name, "choice")
    return value
