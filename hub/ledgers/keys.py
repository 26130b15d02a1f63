"""The key-use ledger (鍵の使用簿): who took the keys from each cabinet on a day, when, for how
long, and who held them last; with CSV and Excel exports. No web framework here, so reports
and the command line can reuse it.

Rows come from stored events only (the hash-chained audit trail):

- ``use``: a ``key.used`` event (an authorised tap, then the door opened and closed);
- ``not_opened``: an ``unlock.expired`` event, matched to the ``badge.granted`` tap that
  unlocked the cabinet (the tap is recorded even though the door never opened); or an
  ``unlock.ended`` event: another person's tap took the unlock window over before the door
  opened, so the use that follows is the second person's (their ``key.used``), never the
  first's;
- ``forced``: a ``door.forced`` event, matched to the next ``door.closed`` of that cabinet.

A row belongs to the day (in its site's time zone) on which the cabinet was unlocked (or
forced open), so a use across midnight stays on the day the key was taken. Uses that stay
open longer than ``SPAN_AFTER`` are not found from the day they started.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Engine

from hub.catalog import N_, Msg
from hub.config import HubConfig
from hub.ledgers.base import (EVENT_COLUMNS, Labels, events_query, event_window, export_labels, local_time,
                              row_json, sites_and_zones, staff_names, table_csv, table_xlsx)
from hub.stations.directory import display_name, stations_of_kind
from kagiban import events as ev_kinds

_LOG = logging.getLogger(__name__)

ENTRY_KINDS = ("use", "not_opened", "forced")
# The events the ledger is built from (all looked up through the (kind, at_utc) index): those
# that make or mark its rows, read for every cabinet asked for, and those that only explain a
# row (the tap behind an expired unlock, the closing of a forced door), read for the cabinets
# that have such a row.
_KINDS_ROWS = (ev_kinds.KeyUsed.KIND, ev_kinds.UnlockExpired.KIND, ev_kinds.UnlockEnded.KIND,
               ev_kinds.DoorForced.KIND, ev_kinds.DoorHeldOpen.KIND)
_KINDS_EXPLAIN = (ev_kinds.BadgeGranted.KIND, ev_kinds.DoorClosed.KIND)
_KINDS = _KINDS_ROWS + _KINDS_EXPLAIN
# How far past the day's end to look for the end of a use that started that day.
SPAN_AFTER = timedelta(days=1)
# How far before the day's start to look for the tap behind an expired unlock.
SPAN_BEFORE = timedelta(hours=1)


@dataclass
class LedgerRow:
    """One line of the ledger; times are aware, in the site's time zone."""

    station: str
    station_name: str
    site: str
    day: date
    entry: str  # use, not_opened, forced
    person: str | None
    name: str | None
    badge: str | None
    unlocked_at: datetime | None
    opened_at: datetime | None
    closed_at: datetime | None
    duration_s: float | None  # how long the door was open
    flagged: bool  # allowed, but not the designated holder or stand-in
    held_open: bool  # the door stayed open past the station's limit
    last: bool  # the last key use of the day at this cabinet
    event_id: str
    row_no: int

    def as_json(self) -> dict[str, Any]:
        """The row with ISO 8601 times, for the JSON API."""
        return row_json(self)


def key_ledger(
    engine: Engine,
    cfg: HubConfig,
    day: date,
    *,
    station: str | None = None,
    names: Mapping[str, str] | None = None,
) -> list[LedgerRow]:
    """The ledger of ``day`` for one cabinet (or every cabinet), by cabinet then time."""
    if names is None:
        names = staff_names(engine)
    wanted = [station] if station else stations_of_kind(engine, cfg, "cabinet")
    if not wanted:
        return []
    sites, zones = sites_and_zones(engine, cfg, wanted)
    lo, hi = event_window(zones.values(), day, day, SPAN_BEFORE, SPAN_AFTER)
    # Not station_events(): that makes a dict of every row and parses every row's JSON. Here
    # each row stays a plain tuple (EVENT_COLUMNS; ``data`` is parsed where a row needs it),
    # and the taps and closings, two of every three rows, are read only for the cabinets that
    # need them: a tap only explains an expired unlock, a closing only ends a forced opening.
    by_station: dict[str, list[tuple]] = {st: [] for st in wanted}
    with engine.connect() as conn:
        for row in conn.execute(events_query(_KINDS_ROWS, wanted, lo, hi)).all():
            by_station[row[_STATION]].append(tuple(row))
        explain = sorted({ev[_STATION] for evs in by_station.values() for ev in evs
                          if ev[_KIND] in ("unlock.expired", "door.forced")})
        if explain:
            for row in conn.execute(events_query(_KINDS_EXPLAIN, explain, lo, hi)).all():
                by_station[row[_STATION]].append(tuple(row))
    out: list[LedgerRow] = []
    for st in wanted:
        evs = sorted(by_station[st], key=itemgetter(_SEQ))
        out.extend(_station_rows(evs, st, display_name(cfg, st), sites.get(st, ""), day, zones[st], names))
    return out


# The key ledger's events are plain tuples of EVENT_COLUMNS, not objects: Python's garbage
# collector stops following a tuple of texts and numbers after its first pass, and a day of
# every cabinet is thousands of them (fewer full collections, each tens of milliseconds).
_ROW_NO, _SITE, _STATION, _SEQ, _EVENT_ID, _KIND, _AT, _BADGE, _PERSON, _DATA = range(len(EVENT_COLUMNS))


Typed = TypeVar("Typed", bound=ev_kinds.EventData)


def _typed(ev: tuple, model: type[Typed]) -> Typed:
    """An event's ``data`` read as ``model`` (kagiban.events; empty if it is not JSON)."""
    try:
        data = json.loads(ev[_DATA])
    except ValueError:
        data = {}
    return ev_kinds.read_as(model, data)


def _station_rows(
    rows: list[tuple], station: str, label: str, site: str, day: date, zone: tzinfo, names: Mapping[str, str],
) -> list[LedgerRow]:
    """One cabinet's rows of ``day`` from its events in seq order."""
    closes = [r for r in rows if r[_KIND] == ev_kinds.DoorClosed.KIND]
    grants = [r for r in rows if r[_KIND] == ev_kinds.BadgeGranted.KIND]
    helds = [local_time(r[_AT], zone) for r in rows if r[_KIND] == ev_kinds.DoorHeldOpen.KIND]
    out: list[LedgerRow] = []

    def add(ev: tuple, entry: str, unlocked, opened, closed, duration, flagged) -> None:
        held = any(h is not None and opened is not None and opened <= h and (closed is None or h <= closed)
                   for h in helds)
        person = ev[_PERSON]
        out.append(LedgerRow(
            station=station, station_name=label, site=ev[_SITE] or site, day=day, entry=entry,
            person=person, name=names.get(person) if person else None, badge=ev[_BADGE],
            unlocked_at=unlocked, opened_at=opened, closed_at=closed,
            duration_s=float(duration) if duration is not None else None,
            flagged=flagged, held_open=held, last=False,
            event_id=ev[_EVENT_ID], row_no=ev[_ROW_NO],
        ))

    def on_day(started: datetime | None) -> bool:
        # A row belongs to the day its use started; the rest of the rows only explain it.
        return started is not None and started.date() == day

    for ev in rows:
        kind = ev[_KIND]
        if kind == ev_kinds.KeyUsed.KIND:
            used = _typed(ev, ev_kinds.KeyUsed)
            unlocked, opened = local_time(used.unlocked_at, zone), local_time(used.opened_at, zone)
            if on_day(unlocked or opened):
                add(ev, "use", unlocked, opened, local_time(used.closed_at, zone) or local_time(ev[_AT], zone),
                    used.duration_s, used.flagged)
        elif kind == ev_kinds.UnlockEnded.KIND:
            # Taken over by another person's tap: this person unlocked and did not open.
            ended = _typed(ev, ev_kinds.UnlockEnded)
            unlocked = local_time(ended.unlocked_at, zone) or local_time(ev[_AT], zone)
            if on_day(unlocked):
                add(ev, "not_opened", unlocked, None, None, None, ended.flagged)
        elif kind == ev_kinds.UnlockExpired.KIND:
            # The tap behind it: the latest grant of the same badge before the expiry.
            tap = next((g for g in reversed(grants) if g[_SEQ] < ev[_SEQ] and g[_BADGE] == ev[_BADGE]), None)
            expired = local_time(ev[_AT], zone)
            lapsed = _typed(ev, ev_kinds.UnlockExpired)
            said = local_time(lapsed.unlocked_at, zone)  # stations since unlock.ended say it
            if said is not None:
                unlocked = said
            elif tap is not None:
                unlocked = local_time(tap[_AT], zone)
            else:
                unlock_s = lapsed.unlock_s
                unlocked = expired - timedelta(seconds=unlock_s) if expired and unlock_s is not None else expired
            if on_day(unlocked):
                add(ev, "not_opened", unlocked, None, None, None, _typed(tap, ev_kinds.BadgeGranted).flagged if tap is not None else False)
        elif kind == ev_kinds.DoorForced.KIND:
            opened = local_time(ev[_AT], zone)
            if on_day(opened):
                close = next((c for c in closes if c[_SEQ] > ev[_SEQ]), None)
                add(ev, "forced", None, opened, local_time(close[_AT], zone) if close else None,
                    _typed(close, ev_kinds.DoorClosed).open_s if close else None, False)
    out.sort(key=lambda r: (r.unlocked_at or r.opened_at, r.row_no))
    uses = [r for r in out if r.entry == "use"]
    if uses:
        uses[-1].last = True
    return out


# --- exports ---

# The export columns; _cells gives a row's values in this order.
COLUMNS = ("station", "day", "entry", "person", "name", "unlocked_at", "opened_at", "closed_at",
           "duration_s", "flagged", "held_open", "last", "event_id")
# The words of the exports (and of the page's columns), worded by hub.catalog.
HEADERS: dict[str, Msg] = {
    "station": N_("Cabinet"), "day": N_("Day"), "entry": N_("Entry"), "person": N_("Person ID"),
    "name": N_("Name"), "unlocked_at": N_("Unlocked at"), "opened_at": N_("Opened at"),
    "closed_at": N_("Closed at"), "duration_s": N_("Open for (s)"), "flagged": N_("Flagged"),
    "held_open": N_("Held open"), "last": N_("Last user of the day"), "event_id": N_("Event ID"),
}
ENTRIES: dict[str, Msg] = {"use": N_("Key use"), "not_opened": N_("Unlocked, not opened"),
                           "forced": N_("Forced open")}
SHEET = N_("Key ledger")
def labels(lang: str) -> Labels:
    """The key ledger's export words in ``lang`` ("ja" or "en")."""
    return export_labels(HEADERS, ENTRIES, SHEET, lang)


LABELS_EN = export_labels(HEADERS, ENTRIES, SHEET)


def _cells(row: LedgerRow, labels: Labels) -> list[Any]:
    """A row's values in COLUMNS order; times as naive local datetimes (Excel has no zones)."""
    yes = labels.yes
    unlocked, opened, closed = row.unlocked_at, row.opened_at, row.closed_at
    # Written out in COLUMNS order (no dict per row: an export of every cabinet is hundreds of
    # rows); tests/hub/web/test_ledger.py reads the exports by header.
    return [
        row.station_name if row.station_name == row.station else f"{row.station_name} ({row.station})",
        row.day,
        labels.entries.get(row.entry, row.entry),
        row.person or "",
        row.name or "",
        unlocked.replace(tzinfo=None) if unlocked is not None else None,
        opened.replace(tzinfo=None) if opened is not None else None,
        closed.replace(tzinfo=None) if closed is not None else None,
        row.duration_s,
        yes if row.flagged else "",
        yes if row.held_open else "",
        yes if row.last else "",
        row.event_id,
    ]


def to_csv(rows: Sequence[LedgerRow], labels: Labels = LABELS_EN) -> bytes:
    """The ledger as CSV (see :func:`table_csv`)."""
    return table_csv([labels.headers[c] for c in COLUMNS], (_cells(row, labels) for row in rows))


def to_xlsx(rows: Sequence[LedgerRow], labels: Labels = LABELS_EN, *, title: str = "") -> bytes:
    """The ledger as an Excel workbook (site-local times), the last user of each day in bold."""
    return table_xlsx([labels.headers[c] for c in COLUMNS], ((_cells(row, labels), row.last) for row in rows),
                      sheet=labels.sheet, title=title)
