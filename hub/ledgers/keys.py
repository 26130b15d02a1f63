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
open longer than ``SPAN_AFTER`` are not found from the day they started. A ledger covers one
day or a period of days (hub.ledgers.base.Period); ``last`` marks each day's last use.

Besides, each row says whether it was after hours (the tap, or a forced opening, outside the
station's business hours: judged as the after_hours alert rule judges it), links the photo of
its opening (the door.opened or door.forced snapshot) and, for a use, the work it was for
(作業内容, hub.ledgers.key_work): recorded on the page, else sent by a purpose button
(``key.purpose``); at a site that keeps a list of work, a use without it is incomplete.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Engine, select

from hub.catalog import N_, Msg
from hub.config import HubConfig
from hub.ledgers import key_work
from hub.ledgers.base import (EVENT_COLUMNS, Labels, events_query, event_window, export_labels, local_time,
                              row_json, sites_and_zones, staff_names, table_csv, table_csv_chunks, table_xlsx)
from hub.stations.directory import display_name, stations_of_kind
from hub.stations.shredding_flags import after_hours
from hub.store.schema import events, snapshots
from kagiban import events as ev_kinds

_LOG = logging.getLogger(__name__)

ENTRY_KINDS = ("use", "not_opened", "forced")
# The events the ledger is built from (all looked up through the (kind, at_utc) index): those
# that make or mark its rows, read for every cabinet asked for, and those that only explain a
# row (the tap behind an expired unlock, the closing of a forced door), read for the cabinets
# that have such a row.
_KINDS_ROWS = (ev_kinds.KeyUsed.KIND, ev_kinds.UnlockExpired.KIND, ev_kinds.UnlockEnded.KIND,
               ev_kinds.DoorForced.KIND, ev_kinds.DoorHeldOpen.KIND, ev_kinds.KeyPurpose.KIND)
# The openings whose snapshot is a row's photo.
_KINDS_PHOTO = (ev_kinds.DoorOpened.KIND, ev_kinds.DoorForced.KIND)
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
    after_hours: bool = False  # the tap (or a forced opening) outside business hours
    photo: str | None = None  # the event id of the opening's snapshot, if one is stored
    work: key_work.WorkRecord | None = None  # what a use was for (作業内容)
    work_expected: bool = False  # its site keeps a list of work (sites.<site>.key_work)

    @property
    def incomplete(self) -> bool:
        """A key use whose work is not recorded yet (未記入), where the site records it."""
        return self.entry == "use" and self.work_expected and self.work is None

    def as_json(self) -> dict[str, Any]:
        """The row with ISO 8601 times, for the JSON API."""
        out = row_json(self)
        out["work"] = self.work.work if self.work else None
        out["incomplete"] = self.incomplete
        return out


def key_ledger(
    engine: Engine,
    cfg: HubConfig,
    day: date,
    last: date | None = None,
    *,
    station: str | None = None,
    names: Mapping[str, str] | None = None,
) -> list[LedgerRow]:
    """The ledger of the days ``day`` to ``last`` (default: that one day) for one cabinet (or
    every cabinet), by cabinet then time."""
    last = last or day
    if names is None:
        names = staff_names(engine)
    wanted = [station] if station else stations_of_kind(engine, cfg, "cabinet")
    if not wanted:
        return []
    sites, zones = sites_and_zones(engine, cfg, wanted)
    lo, hi = event_window(zones.values(), day, last, SPAN_BEFORE, SPAN_AFTER)
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
        # The openings that have a photo: (station, kind, stored time) -> its event id.
        photos = {(r.station, r.kind, r.at): r.event_id for r in conn.execute(
            select(events.c.station, events.c.kind, events.c.at, events.c.event_id)
            .join(snapshots, snapshots.c.event_id == events.c.event_id)
            .where(events.c.kind.in_(_KINDS_PHOTO), events.c.at_utc >= lo, events.c.at_utc < hi,
                   events.c.station.in_(wanted)))}
    out: list[LedgerRow] = []
    for st in wanted:
        evs = sorted(by_station[st], key=itemgetter(_SEQ))
        rows = _station_rows(evs, st, display_name(cfg, st), sites.get(st, ""), day, last, zones[st], names)
        _judge(cfg, rows, evs, photos, zones[st])
        out.extend(rows)
    recorded = key_work.recorded(engine, (r.event_id for r in out if r.entry == "use"))
    for entry in out:
        if entry.event_id in recorded:
            entry.work = recorded[entry.event_id]  # the page's recording wins over a button's
    return out


def _judge(cfg: HubConfig, rows: list[LedgerRow], evs: list[tuple], photos: Mapping[tuple, str], zone: tzinfo) -> None:
    """Fill in each row's after-hours flag, photo and the work a purpose button sent."""
    # A purpose button names its use by the use's unlock time and badge; the last press counts.
    pressed: dict[tuple[datetime | None, str | None], tuple] = {}
    for ev in evs:
        if ev[_KIND] == ev_kinds.KeyPurpose.KIND:
            said = _typed(ev, ev_kinds.KeyPurpose)
            if said.purpose:
                pressed[(local_time(said.unlocked_at, zone), ev[_BADGE])] = (said.purpose, ev)
    station = rows[0].station if rows else ""
    by_time = {(kind, local_time(at, zone)): eid for (st, kind, at), eid in photos.items() if st == station}
    for row in rows:
        row.after_hours = after_hours(cfg, row.station, row.site, row.unlocked_at or row.opened_at)
        row.work_expected = bool(cfg.site(row.site).key_work)
        kind = ev_kinds.DoorForced.KIND if row.entry == "forced" else ev_kinds.DoorOpened.KIND
        if row.opened_at is not None:
            row.photo = by_time.get((kind, row.opened_at))
        if row.entry == "use":
            found = pressed.get((row.unlocked_at, row.badge))
            if found is not None:
                purpose, ev = found
                row.work = key_work.WorkRecord(row.event_id, purpose, ev[_PERSON] or "", ev[_AT], "station")


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
    rows: list[tuple], station: str, label: str, site: str, first: date, last: date, zone: tzinfo,
    names: Mapping[str, str],
) -> list[LedgerRow]:
    """One cabinet's rows of the days ``first`` to ``last`` from its events in seq order."""
    closes = [r for r in rows if r[_KIND] == ev_kinds.DoorClosed.KIND]
    grants = [r for r in rows if r[_KIND] == ev_kinds.BadgeGranted.KIND]
    helds = [local_time(r[_AT], zone) for r in rows if r[_KIND] == ev_kinds.DoorHeldOpen.KIND]
    out: list[LedgerRow] = []

    def add(ev: tuple, entry: str, unlocked, opened, closed, duration, flagged) -> None:
        day = (unlocked or opened).date()
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
        return started is not None and first <= started.date() <= last

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
    last_of_day: dict[date, LedgerRow] = {}
    for row in out:
        if row.entry == "use":
            last_of_day[row.day] = row
    for row in last_of_day.values():
        row.last = True
    return out


# --- exports ---

# The export columns; _cells gives a row's values in this order.
COLUMNS = ("station", "day", "entry", "person", "name", "unlocked_at", "opened_at", "closed_at",
           "duration_s", "work", "flagged", "after_hours", "held_open", "last", "photo", "event_id")
# The words of the exports (and of the page's columns), worded by hub.catalog.
HEADERS: dict[str, Msg] = {
    "station": N_("Cabinet"), "day": N_("Day"), "entry": N_("Entry"), "person": N_("Person ID"),
    "name": N_("Name"), "unlocked_at": N_("Unlocked at"), "opened_at": N_("Opened at"),
    "closed_at": N_("Closed at"), "duration_s": N_("Open for (s)"), "work": N_("Work done"),
    "flagged": N_("Flagged"), "after_hours": N_("After hours"), "held_open": N_("Held open"),
    "last": N_("Last user of the day"), "photo": N_("Photo"), "event_id": N_("Event ID"),
}
ENTRIES: dict[str, Msg] = {"use": N_("Key use"), "not_opened": N_("Unlocked, not opened"),
                           "forced": N_("Forced open"), "incomplete": N_("Not recorded")}
SHEET = N_("Key ledger")
# The events each entry comes from, one row each: what the pages count for a period's totals.
COUNTED: dict[str, tuple[str, ...]] = {
    "use": (ev_kinds.KeyUsed.KIND,),
    "not_opened": (ev_kinds.UnlockExpired.KIND, ev_kinds.UnlockEnded.KIND),
    "forced": (ev_kinds.DoorForced.KIND,),
}
def labels(lang: str) -> Labels:
    """The key ledger's export words in ``lang`` ("ja" or "en")."""
    return export_labels(HEADERS, ENTRIES, SHEET, lang)


LABELS_EN = export_labels(HEADERS, ENTRIES, SHEET)


@dataclass(frozen=True)
class Export:
    """How exported rows say the work (``work_label(row)``: the site's wording in the reader's
    language) and link photos (``photo_url(event_id)``)."""

    labels: Labels = LABELS_EN
    work_label: Callable[[LedgerRow], str] | None = None
    photo_url: Callable[[str], str] | None = None


def work_labeller(cfg: HubConfig, lang: str) -> Callable[[LedgerRow], str]:
    """A use's work in the site's wording in ``lang``; a code not (or no longer) on the list as
    it was recorded."""
    def label(row: LedgerRow) -> str:
        if row.work is None:
            return ""
        listed = cfg.site(row.site).work(row.work.work)
        return listed.label(lang) if listed is not None else row.work.work
    return label


def _cells(row: LedgerRow, ex: Export) -> list[Any]:
    """A row's values in COLUMNS order; times as naive local datetimes (Excel has no zones)."""
    labels = ex.labels
    yes = labels.yes
    unlocked, opened, closed = row.unlocked_at, row.opened_at, row.closed_at
    if row.incomplete:
        work = labels.entries["incomplete"]
    elif row.work is not None:
        work = ex.work_label(row) if ex.work_label else row.work.work
    else:
        work = ""
    photo = ""
    if row.photo:
        photo = ex.photo_url(row.photo) if ex.photo_url else row.photo
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
        work,
        yes if row.flagged else "",
        yes if row.after_hours else "",
        yes if row.held_open else "",
        yes if row.last else "",
        photo,
        row.event_id,
    ]


def _export(given: Export | Labels) -> Export:
    # Callers from before the photo and work columns pass the labels alone.
    return given if isinstance(given, Export) else Export(given)


def table(rows: Sequence[LedgerRow], export: Export | Labels = LABELS_EN) -> tuple[list[str], list[list[Any]]]:
    """The header and each row's cells, as the exports and the print view show them."""
    ex = _export(export)
    return [ex.labels.headers[c] for c in COLUMNS], [_cells(row, ex) for row in rows]


def to_csv(rows: Sequence[LedgerRow], export: Export | Labels = LABELS_EN) -> bytes:
    """The ledger as CSV (see :func:`table_csv`)."""
    ex = _export(export)
    return table_csv([ex.labels.headers[c] for c in COLUMNS], (_cells(row, ex) for row in rows))


def csv_chunks(groups: Iterable[Sequence[LedgerRow]], export: Export | Labels = LABELS_EN) -> Iterator[bytes]:
    """:func:`to_csv` of ``groups`` of rows (a cabinet's each), a group at a time."""
    ex = _export(export)
    return table_csv_chunks([ex.labels.headers[c] for c in COLUMNS],
                            ((_cells(row, ex) for row in rows) for rows in groups))


def to_xlsx(rows: Sequence[LedgerRow], export: Export | Labels = LABELS_EN, *, title: str = "") -> bytes:
    """The ledger as an Excel workbook (site-local times), the last user of each day in bold."""
    ex = _export(export)
    return table_xlsx([ex.labels.headers[c] for c in COLUMNS], ((_cells(row, ex), row.last) for row in rows),
                      sheet=ex.labels.sheet, title=title)
