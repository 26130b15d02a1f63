"""Numbers and labels for pages that show hundreds of them (the ledgers, the events list), in
the page's language: the same text as flask_babel's ``format_decimal`` and ``gettext``, without
their cost per cell.

flask_babel looks up the app, the request's locale and Babel's locale data again on every call.
Here that work is done once:

- per locale (module-wide: it is Babel's locale data, which does not change): each number's
  text (a bounded table: a ledger shows the same durations again);
- per request (:func:`current`, kept on ``flask.g`` for the request's locale object): each
  translated message and label, each site's zone.

Times are not formatted here: every time reads the same in either language (hub.timetext).
tests/hub/web/test_formats.py compares every result with flask_babel's.
"""
from __future__ import annotations

import decimal
from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from babel import Locale, numbers
from flask import g
from flask_babel import get_locale, get_translations

from hub.web import i18n

# How many numbers' texts each locale keeps (a few hundred kilobytes at most).
NUMBERS_KEPT = 20_000

_numbers: dict[str, dict[str, str]] = {}


class PageFormats:
    """The current request's formatting, for one locale: see the module's docstring."""

    def __init__(self, locale: Locale):
        self.locale = locale
        self.zones: dict[str | None, tzinfo] = {}  # each site's, for hub.web.pages.localtime
        self._numbers = _numbers.setdefault(str(locale), {})
        self._texts: dict[str, str] = {}
        self._labels: dict[tuple[int, str | None], str] = {}

    def format_decimal(self, number: float) -> str:
        """``flask_babel.format_decimal(number)`` for a float."""
        # Keyed by the float's text, which is what Babel reads (so -0.0 and 0.0 stay apart).
        key = repr(number)
        found = self._numbers.get(key)
        if found is None:
            try:
                found = numbers.format_decimal(number, locale=self.locale)
            except decimal.InvalidOperation:  # beyond what Babel's decimal context holds
                return key
            if len(self._numbers) >= NUMBERS_KEPT:
                self._numbers.clear()
            self._numbers[key] = found
        return found

    def text(self, message: str) -> str:
        """``flask_babel.gettext(message)`` (without variables: the caller applies ``%``)."""
        found = self._texts.get(message)
        if found is None:
            found = self._texts[message] = get_translations().ugettext(message)
        return found

    def label(self, table: Mapping[str, Any], key: str | None) -> str:
        """``i18n.label(table, key)`` (a lazy translation made text), once per table and key."""
        cache_key = (id(table), key)
        found = self._labels.get(cache_key)
        if found is None:
            found = self._labels[cache_key] = i18n.label(table, key)  # type: ignore[arg-type]
        return found


def current() -> PageFormats | None:
    """The formatting of the current request's locale; None outside a request or app context
    (then callers use flask_babel's functions as they are)."""
    # Pages call this per cell: the context's ``g`` is looked up once through its proxy, and
    # the locale flask_babel keeps for the request (``g._flask_babel.babel_locale``) is read
    # directly; get_locale() (several proxy look-ups) only when that is not what it holds.
    try:
        real_g = g._get_current_object()
    except RuntimeError:  # no app context
        return None
    found = getattr(real_g, "_kagiban_formats", None)
    if found is not None and getattr(getattr(real_g, "_flask_babel", None), "babel_locale", None) is found.locale:
        return found
    locale = get_locale()
    if locale is None:
        return None
    # flask_babel.force_locale and refresh put another Locale object in place: start afresh.
    if found is None or found.locale is not locale:
        found = PageFormats(locale)
        real_g._kagiban_formats = found
    return found
