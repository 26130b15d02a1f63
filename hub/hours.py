"""Business hours and days off for the hub's rules: is a moment inside a station's working time?

The rule itself lives in kagiban.hours, shared with the stations (which apply a policy's
hours to each tap), so both sides judge a moment the same way. In short: local time in the
site's zone (daylight saving included); a window whose ``end`` is earlier than its ``start``
runs past midnight and its part after midnight belongs to the day it started
(Fri 22:00-Sat 06:00 counts if Friday is a business day); ``start == end`` is 24 hours from
``start``; every moment on a holiday is after hours, and a holiday also cancels the window
that starts on it.

A site's days off (:func:`site_holidays`) are the national holidays of its
``holiday_calendar`` (substitute holidays included; the ``holidays`` library follows each
year's changes) and its own closed days from the YAML (``sites.<id>.holidays``). Resolved per
site and year, kept with the config they came from (HubConfig._holiday_cache).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.config import ClosedDays, HoursSection, HubConfig
from kagiban.hours import in_hours

_LOG = logging.getLogger(__name__)

# Resolved (site, year, language) entries kept per config; past this many, the cache starts
# afresh (a replayed outbox of old years must not grow it without bound).
_CACHE_MAX = 256


@dataclass(frozen=True)
class DayOff:
    """A day the site is closed: ``national`` is the calendar's name for it ("" when it is
    not a national holiday), ``closed`` says the office's own list has it, ``label`` its
    label there ("" when unlabeled or not listed)."""

    day: date
    national: str = ""
    closed: bool = False
    label: str = ""


def is_business_time(
    when: datetime, hours: HoursSection, holidays: Iterable[date], tz: ZoneInfo
) -> bool:
    """True if ``when`` (timezone-aware; ValueError if naive) falls in a window of ``hours`` in ``tz``."""
    return in_hours(when, hours, holidays, tz)


def _month_day(text: str, year: int) -> date:
    return date(year, int(text[:2]), int(text[3:]))


def own_days(entry: ClosedDays, year: int) -> list[date]:
    """The days of ``year`` one of the office's own entries closes (a range over the new year
    gives its days in both years it touches)."""
    if entry.on is not None:
        if isinstance(entry.on, date):
            return [entry.on] if entry.on.year == year else []
        return [_month_day(entry.on, year)]
    spans: list[tuple[date, date]] = []
    if isinstance(entry.first, date) and isinstance(entry.last, date):
        spans.append((entry.first, entry.last))
    else:
        assert isinstance(entry.first, str) and isinstance(entry.last, str)
        for start_year in (year - 1, year):
            start = _month_day(entry.first, start_year)
            end = _month_day(entry.last, start_year if entry.last >= entry.first else start_year + 1)
            spans.append((start, end))
    out: list[date] = []
    for start, end in spans:
        # A range is at most 366 days (config), so this is bounded.
        first, last = max(start, date(year, 1, 1)), min(end, date(year, 12, 31))
        out.extend(first + timedelta(days=n) for n in range((last - first).days + 1))
    return out


def _calendar_language(calendar: object, language: str | None) -> str | None:
    """The calendar's own language closest to ``language`` ("ja", "en"), else its default
    (asked for by name: given none, the library would follow the process's LANG)."""
    default = getattr(calendar, "default_language", None)
    supported = getattr(calendar, "supported_languages", ()) or ()
    if not language:
        return default
    if language in supported:
        return language
    return next((s for s in supported if s.split("_")[0] == language.split("_")[0]), default)


def _national(code: str, year: int, language: str | None) -> dict[date, str]:
    import holidays as holiday_calendars  # the hub only: the stations get resolved dates

    country, _sep, subdiv = code.partition("-")
    cls = holiday_calendars.country_holidays(country, subdiv=subdiv or None, years=[])
    found = holiday_calendars.country_holidays(
        country, subdiv=subdiv or None, years=year, language=_calendar_language(cls, language))
    return {d: str(name) for d, name in found.items() if d.year == year}


def _year(cfg: HubConfig, site: str, year: int, language: str | None) -> dict[date, DayOff]:
    key = (site, year, language)
    cache = cfg._holiday_cache
    found = cache.get(key)
    if found is not None:
        return found
    section = cfg.site(site)
    national = _national(section.holiday_calendar, year, language) if section.holiday_calendar else {}
    labels: dict[date, list[str]] = {}
    for entry in section.holidays:
        for d in own_days(entry, year):
            got = labels.setdefault(d, [])
            if entry.label and entry.label not in got:
                got.append(entry.label)
    found = {d: DayOff(day=d, national=national.get(d, ""), closed=d in labels,
                       label=" / ".join(labels.get(d, ())))
             for d in sorted(set(national) | set(labels))}
    if len(cache) >= _CACHE_MAX:
        cache.clear()
    cache[key] = found
    _LOG.debug("site %s, %d: %d day(s) off (%d national)", site, year, len(found), len(national))
    return found


def site_holidays(
    cfg: HubConfig, site: str, first: date, last: date, *, language: str | None = None
) -> dict[date, DayOff]:
    """The days off of ``site`` from ``first`` to ``last`` (both included), in date order.

    ``language`` ("ja", "en") picks the language of the calendar's names where it has it;
    None, or one it lacks: the calendar's own (Japan's: Japanese).
    """
    out: dict[date, DayOff] = {}
    for year in range(first.year, last.year + 1):
        for d, off in _year(cfg, site, year, language).items():
            if first <= d <= last:
                out[d] = off
    return out


def days_off_around(cfg: HubConfig, site: str, when: datetime) -> set[date]:
    """The site's days off among the local date of ``when`` and the day before: all that
    :func:`is_business_time` looks at (a window past midnight started the day before)."""
    day = when.astimezone(cfg.site_zone(site)).date()
    return set(site_holidays(cfg, site, day - timedelta(days=1), day))
