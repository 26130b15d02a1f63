"""Business hours and holidays: is a moment inside a working-time window?

One implementation for both sides: the station applies a policy's hours to each tap, and the
hub's alert rules (hub.hours) judge after-hours use with the same function.

Judged in the given time zone, so a Tokyo office and one in a zone with daylight saving both
get their wall-clock hours. A window whose ``end`` is earlier than its ``start`` runs past
midnight, and the part after midnight belongs to the window of the day it started
(Fri 22:00-Sat 06:00 is business time if Friday is a business day). ``start == end`` is a
window of a whole 24 hours from ``start``.

Holidays: every moment whose local date is a holiday is outside hours, and a holiday also
cancels the window that starts on it (including that window's part after midnight).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Protocol

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class HoursLike(Protocol):
    """Anything with weekday names and a start and end time (``time`` or "HH:MM")."""

    # Read-only, so a model with narrower types (Literal weekdays, "HH:MM" strings) fits.
    @property
    def days(self) -> Sequence[str]: ...
    @property
    def start(self) -> time | str: ...
    @property
    def end(self) -> time | str: ...


def clock(value: time | str) -> time:
    """A naive time of day from a ``time`` or an "HH:MM" string."""
    if isinstance(value, time):
        return value.replace(tzinfo=None)
    hh, mm = value.split(":")
    return time(int(hh), int(mm))


def _window_starts_on(day: date, days: Sequence[str], holidays: set[date]) -> bool:
    """Whether a business window begins on ``day`` (a listed weekday and not a holiday)."""
    return WEEKDAYS[day.weekday()] in days and day not in holidays


def in_hours(now: datetime, hours: HoursLike, holidays: Iterable[date], tz: tzinfo) -> bool:
    """True if ``now`` (timezone-aware) falls in a business window of ``hours`` in ``tz``."""
    if now.tzinfo is None:
        raise ValueError("naive datetime: business hours need an instant with an offset")
    local = now.astimezone(tz)
    day = local.date()
    # Wall-clock time of day; comparing naive times is what "08:30 local" means, DST or not.
    at = local.time().replace(tzinfo=None)
    off_days = set(holidays)
    if day in off_days:
        return False
    start, end = clock(hours.start), clock(hours.end)
    if start < end:
        return _window_starts_on(day, hours.days, off_days) and start <= at < end
    # Past midnight (or 24 h when start == end): the late part is today's window, the early
    # part the tail of yesterday's.
    if at >= start:
        return _window_starts_on(day, hours.days, off_days)
    if at < end or start == end:
        return _window_starts_on(day - timedelta(days=1), hours.days, off_days)
    return False
