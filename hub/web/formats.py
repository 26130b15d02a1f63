"""Times, numbers and labels for pages that show hundreds of them (the ledgers, the events list),
in the page's language: the same text as flask_babel's ``format_datetime`` (``rebase=False``),
``format_decimal`` and ``gettext``, without their cost per cell.

flask_babel looks up the app, the request's locale, the format and Babel's locale data again on
every call, and Babel parses and applies its patterns field by field: tens of microseconds a
time, three times a row on the key ledger. Here that work is done once:

- per locale and format (module-wide: it is Babel's locale data, which does not change): the
  date-time format split the way Babel's ``format_datetime`` splits it (the locale's joiner,
  its date pattern, its time pattern). A time pattern made only of hour, minute, second and
  am/pm fields is compiled to tables that Babel itself filled (24 hours, 60 minutes, 60
  seconds); any other pattern (time zones, fractions of a second) is applied by Babel as before.
  Each number's text is kept too (a bounded table: a ledger shows the same durations again).
- per request (:func:`current`, kept on ``flask.g`` for the request's locale object): each
  day-and-hour's text with the minutes and seconds left to fill in, each translated message
  and label, each site's zone.

tests/hub/web/test_formats.py compares every result with flask_babel's: every hour, minute
and second, both languages, every named format.
"""
from __future__ import annotations

import decimal
from collections.abc import Mapping
from datetime import date, datetime, time, tzinfo
from typing import Any, Literal

from babel import Locale, dates, numbers
from flask import g
from flask_babel import get_babel, get_locale, get_translations

from hub.web import i18n

NamedFormat = Literal["short", "medium", "long", "full"]
NAMED: tuple[NamedFormat, ...] = ("short", "medium", "long", "full")
# Time fields whose text depends on one attribute of the time only, and that attribute's range.
_TABLE_FIELDS = {"H": ("hour", 24), "h": ("hour", 24), "K": ("hour", 24), "k": ("hour", 24),
                 "a": ("hour", 24), "m": ("minute", 60), "s": ("second", 60)}
_SAMPLE = {"hour": lambda n: time(n, 0, 0), "minute": lambda n: time(0, n, 0), "second": lambda n: time(0, 0, n)}
# How many numbers' texts each locale keeps (a few hundred kilobytes at most).
NUMBERS_KEPT = 20_000


class DateTimeText:
    """One locale's date-time format (a named one or a pattern) for aware datetimes: the text
    of Babel's ``format_datetime(value, format, locale=locale)``."""

    def __init__(self, locale: Locale, format: str):
        self.locale = locale
        self.format = format
        self.pattern: dates.DateTimePattern | None = None
        # The compiled form of a named format: per hour, the whole text but the day, with %s
        # for the minute and second fields (None when the time pattern has other fields).
        self.hour_templates: list[str] | None = None
        self.rest: tuple[tuple[list[str], str], ...] = ()
        if format not in NAMED:
            self.pattern = dates.parse_pattern(format)
            return
        # Babel annotates a DateTimePattern, but this one is the "{1} {0}" text (a str).
        self.joiner = dates.get_datetime_format(format, locale=locale).replace("'", "")  # type: ignore[attr-defined]
        self.date_pattern = dates.get_date_format(format, locale=locale)
        self.time_pattern = dates.get_time_format(format, locale=locale)
        self._compile_time()

    def _compile_time(self) -> None:
        pieces: list[tuple[str, Any]] = []  # ("text", str) | ("hour", table) | ("rest", (table, attr))
        for kind, value in dates.tokenize_pattern(self.time_pattern.pattern):
            if kind == "chars":
                pieces.append(("text", value))
                continue
            assert isinstance(value, tuple)  # a field: (letter, count)
            char, num = value
            if char not in _TABLE_FIELDS:
                return  # zones, fractions, flexible day periods: Babel applies the pattern
            attr, size = _TABLE_FIELDS[char]
            field = dates.parse_pattern(char * num)
            table = [field.apply(_SAMPLE[attr](n), self.locale) for n in range(size)]
            pieces.append(("hour", table) if attr == "hour" else ("rest", (table, attr)))
        texts = [p[1] for p in pieces if p[0] == "text"] + [t for p in pieces if p[0] == "hour" for t in p[1]]
        texts += [t for p in pieces if p[0] == "rest" for t in p[1][0]]
        # Babel fills "{0}" (the time) first, then "{1}" (the day): a brace in a time text
        # would be filled again, so such a locale keeps Babel's own steps.
        if self.joiner.count("{0}") != 1 or any("{" in t or "}" in t for t in texts):
            return
        templates = []
        for hour in range(24):
            parts = []
            for kind, value in pieces:
                if kind == "text":
                    parts.append(value.replace("%", "%%"))
                elif kind == "hour":
                    parts.append(value[hour].replace("%", "%%"))
                else:
                    parts.append("%s")
            templates.append("".join(parts))
        self.hour_templates = templates
        self.rest = tuple(p[1] for p in pieces if p[0] == "rest")

    def date_text(self, day: date) -> str:
        return self.date_pattern.apply(day, self.locale)

    def time_text(self, value: datetime) -> str:
        """Babel's format_time: the wall time with its zone, and its day for zone names."""
        return self.time_pattern.apply(value.timetz(), self.locale, reference_date=value.date())

    def day_hour_template(self, value: datetime) -> str:
        """The text of ``value``'s day and hour with %s for its minute and second fields."""
        assert self.hour_templates is not None
        day = self.date_text(value.date()).replace("%", "%%")
        return self.joiner.replace("%", "%%").replace("{0}", self.hour_templates[value.hour]).replace("{1}", day)

    def __call__(self, value: datetime, templates: dict[int, str] | None = None) -> str:
        if self.pattern is not None:
            return self.pattern.apply(value, self.locale)
        if self.hour_templates is None:
            return self.joiner.replace("{0}", self.time_text(value)).replace("{1}", self.date_text(value.date()))
        key = value.toordinal() * 24 + value.hour
        template = templates.get(key) if templates is not None else None
        if template is None:
            template = self.day_hour_template(value)
            if templates is not None:
                templates[key] = template
        return template % tuple(table[getattr(value, attr)] for table, attr in self.rest)


_compiled: dict[tuple[str, str], DateTimeText] = {}
_numbers: dict[str, dict[str, str]] = {}


def datetime_text(locale: Locale, format: str) -> DateTimeText:
    """The compiled format for ``locale`` (module-wide: it holds only Babel's locale data)."""
    key = (str(locale), format)
    found = _compiled.get(key)
    if found is None:
        found = _compiled[key] = DateTimeText(locale, format)
    return found


class PageFormats:
    """The current request's formatting, for one locale: see the module's docstring."""

    def __init__(self, locale: Locale):
        self.locale = locale
        self.zones: dict[str | None, tzinfo] = {}  # each site's, for hub.web.pages.localtime
        self._formats: dict[str | None, tuple[DateTimeText, dict[int, str]]] = {}
        self._numbers = _numbers.setdefault(str(locale), {})
        self._texts: dict[str, str] = {}
        self._labels: dict[tuple[int, str | None], str] = {}
        self._date_formats = get_babel().instance.date_formats

    def format_datetime(self, value: datetime, format: str | None = "medium") -> str:
        """``flask_babel.format_datetime(value, format, rebase=False)`` for an aware ``value``."""
        found = self._formats.get(format)
        if found is None:
            # flask_babel's own resolution: the app's Babel(date_formats=...) may name a pattern.
            resolved = format if format is not None else self._date_formats["datetime"]
            if resolved in NAMED:
                resolved = self._date_formats[f"datetime.{resolved}"] or resolved
            found = self._formats[format] = (datetime_text(self.locale, resolved), {})
        compiled, templates = found
        return compiled(value, templates)

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
