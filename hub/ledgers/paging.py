"""A ledger's period one page of rows at a time (keys, shredding, printing): the month and
range views of every station are tens of thousands of rows, too many to build and show at once.

A page is found by keyset on the ledger's own order (station, then day, then the ledger's order
within the day), never by an offset into the whole period: a ``Mark`` names the row a page
starts at (its station, its day, its event's row number and which of that event's rows it is),
and a page builds only the days it needs, from the mark's day on, with the ledger's own function
(``build(engine, cfg, first, last, station=..., names=...)``), so its cost is that of its own
rows and at most a day's more. The previous page is found the same way backwards. Events are
never changed or removed, so a mark keeps naming the same row.

The whole period's totals come from one counting query over the stored events
(``event_counts``): cheap, but counted by the time each event was stored, so a use that began
before midnight on the period's first or last edge counts on the day it ended (the rows place it
on the day it began).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from hub.config import HubConfig
from hub.ledgers.base import Period, event_window, sites_and_zones
from hub.store.schema import events

_LOG = logging.getLogger(__name__)

# Rows on a page: a screen an auditor can scan; rendered in a few milliseconds.
PAGE_ROWS = 200
# The most days built in one call while looking for a page's rows (a quiet station's month
# is one call; a busy one's page a few days).
MAX_SPAN_DAYS = 64


class MarkError(ValueError):
    """A page mark that is not one this module wrote (``expected``: the code of what it wants)."""

    expected = "page_mark"


@dataclass(frozen=True)
class Mark:
    """The row a page starts at: ``nth`` (from 0) of the rows event ``row_no`` makes at
    ``station`` on ``day`` (a print release makes a row per job)."""

    day: date
    row_no: int
    nth: int
    station: str

    def text(self) -> str:
        """For the URL: ``DAY:ROW_NO:NTH:STATION`` (the station last: it may hold any character)."""
        return f"{self.day.isoformat()}:{self.row_no}:{self.nth}:{self.station}"

    @classmethod
    def parse(cls, text: str) -> Mark:
        """The mark ``text()`` wrote; MarkError for anything else."""
        parts = text.split(":", 3)
        if len(parts) != 4 or not parts[3]:
            raise MarkError(text)
        day, row_no, nth, station = parts
        if not (row_no.isascii() and row_no.isdigit() and nth.isascii() and nth.isdigit()) \
                or len(row_no) > 19 or len(nth) > 6:
            raise MarkError(text)
        try:
            return cls(date.fromisoformat(day), int(row_no), int(nth), station)
        except ValueError:
            raise MarkError(text) from None


@dataclass
class Page:
    """One page of a ledger's period: its ``rows`` in the ledger's order and the marks of the
    previous and next pages (None: there is none, except that the first page has no mark, so a
    ``previous`` of None with ``has_previous`` means the previous page is the first)."""

    rows: list[Any]
    start: Mark | None
    previous: Mark | None
    next: Mark | None
    has_previous: bool

    @property
    def whole(self) -> bool:
        """The page holds the whole period."""
        return not self.has_previous and self.next is None


Build = Callable[..., list[Any]]


def _marked(rows: Sequence[Any]) -> list[tuple[Mark, Any]]:
    """Each row with its mark (rows of one station, in the ledger's order)."""
    out: list[tuple[Mark, Any]] = []
    seen: dict[tuple[date, int], int] = {}
    for row in rows:
        key = (row.day, row.row_no)
        nth = seen.get(key, 0)
        seen[key] = nth + 1
        out.append((Mark(row.day, row.row_no, nth, row.station), row))
    return out


def _days(build: Build, engine: Engine, cfg: HubConfig, station: str, first: date, last: date,
          names: Mapping[str, str]) -> list[tuple[Mark, Any]]:
    return _marked(build(engine, cfg, first, last, station=station, names=names))


def page(build: Build, engine: Engine, cfg: HubConfig, stations: Sequence[str], period: Period,
         start: Mark | None, *, names: Mapping[str, str], size: int = PAGE_ROWS,
         back: Mark | None = None, back_first: bool = False) -> Page:
    """The page of ``period`` starting at ``start`` (None: the first page) over ``stations``
    in the ledger's order. A mark of a station not listed, or outside the period, starts at
    the first page. ``back`` (or ``back_first``: the first page) is the previous page's mark
    when the reader came by a next link, which knows it: the rows before are then not built
    again; without it they are (a previous link, a saved address)."""
    stations = list(stations)
    if start is not None and (start.station not in stations or not period.first <= start.day <= period.last):
        start = None
    rows = _forward(build, engine, cfg, stations, period, start, names, size + 1)
    following = rows[size][0] if len(rows) > size else None
    if start is not None and (back is not None or back_first):
        return Page([r for _, r in rows[:size]], start, back, following, True)
    before = _backward(build, engine, cfg, stations, period, start, names, size) if start is not None else []
    previous = before[-size][0] if len(before) > size else None
    # Exactly ``size`` rows before: the previous page is the first one (it has no mark).
    return Page([r for _, r in rows[:size]], start, previous, following, bool(before))


def _forward(build: Build, engine: Engine, cfg: HubConfig, stations: list[str], period: Period,
             start: Mark | None, names: Mapping[str, str], want: int) -> list[tuple[Mark, Any]]:
    """At least ``want`` rows from ``start`` on (fewer at the period's end)."""
    out: list[tuple[Mark, Any]] = []
    index = stations.index(start.station) if start else 0
    day = start.day if start else period.first
    span = 1
    while index < len(stations) and len(out) < want:
        station = stations[index]
        last = _plus(day, span - 1, period.last)
        found = _days(build, engine, cfg, station, day, last, names)
        built = len(found)
        if start is not None and start.station == station and day == start.day:
            found = found[_position(found, start):]
        out.extend(found)
        got_days = (last - day).days + 1
        if last >= period.last:
            index, day, span = index + 1, period.first, 1
        else:
            day = last + timedelta(days=1)
            span = _next_span(want - len(out), built, got_days)
    return out


def _backward(build: Build, engine: Engine, cfg: HubConfig, stations: list[str], period: Period,
              start: Mark, names: Mapping[str, str], want: int) -> list[tuple[Mark, Any]]:
    """At least ``want + 1`` rows before ``start`` (fewer at the period's beginning), in order."""
    out: list[tuple[Mark, Any]] = []
    index = stations.index(start.station)
    day = start.day
    span = 1
    while index >= 0 and len(out) <= want:
        station = stations[index]
        first = _plus(day, -(span - 1), period.first)
        found = _days(build, engine, cfg, station, first, day, names)
        built = len(found)
        if station == start.station and day == start.day:
            found = found[:_position(found, start)]
        out[:0] = found
        got_days = (day - first).days + 1
        if first <= period.first:
            index, day, span = index - 1, period.last, 1
        else:
            day = first - timedelta(days=1)
            span = _next_span(want + 1 - len(out), built, got_days)
    return out


def _plus(day: date, days: int, bound: date) -> date:
    """``day`` moved by ``days``, not past ``bound`` (the period's last day ahead, its first
    behind), nor past the first or last day a date holds."""
    try:
        moved = day + timedelta(days=days)
    except OverflowError:
        return bound
    return min(moved, bound) if days >= 0 else max(moved, bound)


def _position(found: list[tuple[Mark, Any]], start: Mark) -> int:
    """Where ``start`` is among rows built from its day on (the ledger's order within a day is
    its own: by time, not by row number). A mark no row has (never written here) starts at its
    day: rows shown twice rather than rows lost."""
    for n, (mark, _) in enumerate(found):
        if mark == start:
            return n
    return next((n for n, (mark, _) in enumerate(found) if mark.day >= start.day), len(found))


def _next_span(missing: int, found: int, days: int) -> int:
    """How many days to build next: enough for the rows still missing at the rate just seen."""
    if found == 0:
        return min(days * 2, MAX_SPAN_DAYS)
    per_day = found / days
    return max(1, min(int(missing / per_day) + 1, MAX_SPAN_DAYS))


def event_counts(engine: Engine, cfg: HubConfig, stations: Sequence[str], kinds: Sequence[str],
                 period: Period) -> dict[str, int]:
    """How many events of each of ``kinds`` the ``stations`` stored in ``period`` (its days in
    the stations' sites' zones; one indexed count, not the rows)."""
    out = {kind: 0 for kind in kinds}
    if not stations:
        return out
    _, zones = sites_and_zones(engine, cfg, list(stations))
    spans: dict[tuple[str, str], list[str]] = {}
    for station, zone in zones.items():
        spans.setdefault(event_window([zone], period.first, period.last, timedelta(0), timedelta(0)), []).append(station)
    with engine.connect() as conn:
        for (lo, hi), members in spans.items():
            for kind, n in conn.execute(
                    select(events.c.kind, func.count()).where(
                        events.c.kind.in_(kinds), events.c.at_utc >= lo, events.c.at_utc < hi,
                        events.c.station.in_(members)).group_by(events.c.kind)):
                out[kind] += n
    return out
