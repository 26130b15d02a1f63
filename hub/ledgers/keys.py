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

import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from operator import itemgetter
from typing import Any, TypeVar

from sqlalchemy import Engine, select

from hub.catalog import N_, Msg, translate
from hub.config import HubConfig
from hub.store.schema import events, policies, stations
from hub.ledgers.spreadsheet import csv_line, write_cell
from hub.store.timestamps import utc_text
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


def staff_names(engine: Engine) -> dict[str, str]:
    """Person id -> name, from the access policies the hub last published (the staff file)."""
    names: dict[str, str] = {}
    with engine.connect() as conn:
        for (payload,) in conn.execute(select(policies.c.payload)):
            try:
                obj = json.loads(payload)
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("policy"), dict):
                obj = obj["policy"]  # a signed envelope: the policy is inside
            badges = obj.get("badges") if isinstance(obj, dict) else None
            for entry in (badges or {}).values():
                if not isinstance(entry, dict):
                    continue
                if entry.get("person") and entry.get("name"):
                    names[entry["person"]] = entry["name"]
    return names


# --- what every ledger is built from (the print release log and the shredding ledger too) ---

def row_json(row: Any) -> dict[str, Any]:
    """A ledger row (a dataclass) as a dict with ISO 8601 times and days, for the JSON API."""
    out = asdict(row)
    for key, value in out.items():
        if isinstance(value, (datetime, date)):
            out[key] = value.isoformat()
    return out


def local_time(value: Any, zone: tzinfo) -> datetime | None:
    """A stored ISO 8601 time (or a typed event's datetime) in ``zone``; None if it is missing,
    malformed or has no offset."""
    if not value:
        return None
    try:
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(zone)
    except OverflowError:  # year 9999 ahead of UTC: no local day to put it in
        return None


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The first instant of ``day`` and of the next day in ``zone``."""
    start = datetime.combine(day, time(0), tzinfo=zone)
    if day == date.max:  # the last day there is: it ends with time itself
        return start, datetime.max.replace(tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
    return start, end


@dataclass
class StationEvents:
    """One station's events for a ledger, in the station's seq order, each with its ``data``
    parsed (``{}`` if it is not JSON)."""

    station: str
    name: str  # its name in the hub config, else its id
    site: str
    zone: tzinfo  # its site's
    events: list[dict[str, Any]]


def _sites_and_zones(engine: Engine, cfg: HubConfig, wanted: Sequence[str]) -> tuple[dict[str, str], dict[str, tzinfo]]:
    """Each wanted station's site (as it reported it, else as listed) and its site's zone."""
    with engine.connect() as conn:
        sites = {r.station: r.site for r in conn.execute(
            select(stations.c.station, stations.c.site).where(stations.c.station.in_(wanted)))}
    for entry in cfg.stations or []:
        sites.setdefault(entry.id, entry.site)
    return sites, {s: cfg.site_zone(sites.get(s, "")) for s in wanted}


def _window(zones: Iterable[tzinfo], first: date, last: date, before: timedelta, after: timedelta) -> tuple[str, str]:
    """The stored (UTC text) span of every zone's days ``first`` to ``last``, widened by
    ``before`` and ``after``: one query for all, each ledger then keeps or drops a row by its
    own site's day."""
    bounds = [(day_bounds(first, z)[0], day_bounds(last, z)[1]) for z in set(zones)]
    return utc_text(_shift(min(b[0] for b in bounds), -before)), utc_text(_shift(max(b[1] for b in bounds), after))


def _shift(when: datetime, delta: timedelta) -> datetime:
    """``when + delta``, stopping at the first or last instant a datetime holds."""
    try:
        return when + delta
    except OverflowError:
        return (datetime.min if delta < timedelta(0) else datetime.max).replace(tzinfo=when.tzinfo)


_EVENT_COLUMNS = (events.c.row_no, events.c.site, events.c.station, events.c.seq, events.c.event_id,
                  events.c.kind, events.c.at, events.c.badge, events.c.person, events.c.data)


def station_events(
    engine: Engine,
    cfg: HubConfig,
    wanted: Sequence[str],
    kinds: Sequence[str],
    first: date,
    last: date | None = None,
    *,
    before: timedelta = timedelta(0),
    after: timedelta = timedelta(0),
) -> list[StationEvents]:
    """The events of ``kinds`` at each of the ``wanted`` stations (in that order) from
    ``before`` ahead of day ``first`` to ``after`` past day ``last`` (default: ``first``),
    each day taken in the station's site's time zone."""
    if not wanted:
        return []
    last = last or first
    sites, zones = _sites_and_zones(engine, cfg, wanted)
    lo, hi = _window(zones.values(), first, last, before, after)
    by_station: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        result = conn.execute(_events_query(kinds, wanted, lo, hi))
        keys = list(result.keys())
        for values in result:
            row = dict(zip(keys, values))
            try:
                row["data"] = json.loads(row["data"])
            except ValueError:
                row["data"] = {}
            by_station.setdefault(row["station"], []).append(row)
    return [StationEvents(station=st, name=display_name(cfg, st), site=sites.get(st, ""), zone=zones[st],
                          events=sorted(by_station.get(st, []), key=lambda r: r["seq"]))
            for st in wanted]


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
    sites, zones = _sites_and_zones(engine, cfg, wanted)
    lo, hi = _window(zones.values(), day, day, SPAN_BEFORE, SPAN_AFTER)
    # Not station_events(): that makes a dict of every row and parses every row's JSON. Here
    # each row stays a plain tuple (_EVENT_COLUMNS; ``data`` is parsed where a row needs it),
    # and the taps and closings, two of every three rows, are read only for the cabinets that
    # need them: a tap only explains an expired unlock, a closing only ends a forced opening.
    by_station: dict[str, list[tuple]] = {st: [] for st in wanted}
    with engine.connect() as conn:
        for row in conn.execute(_events_query(_KINDS_ROWS, wanted, lo, hi)).all():
            by_station[row[_STATION]].append(tuple(row))
        explain = sorted({ev[_STATION] for evs in by_station.values() for ev in evs
                          if ev[_KIND] in ("unlock.expired", "door.forced")})
        if explain:
            for row in conn.execute(_events_query(_KINDS_EXPLAIN, explain, lo, hi)).all():
                by_station[row[_STATION]].append(tuple(row))
    out: list[LedgerRow] = []
    for st in wanted:
        evs = sorted(by_station[st], key=itemgetter(_SEQ))
        out.extend(_station_rows(evs, st, display_name(cfg, st), sites.get(st, ""), day, zones[st], names))
    return out


def _events_query(kinds: Sequence[str], wanted: Sequence[str], lo: str, hi: str):
    """The events of ``kinds`` at the ``wanted`` stations stored from ``lo`` to before ``hi``."""
    return select(*_EVENT_COLUMNS).where(
        events.c.kind.in_(kinds), events.c.at_utc >= lo, events.c.at_utc < hi, events.c.station.in_(wanted))


# The key ledger's events are plain tuples of _EVENT_COLUMNS, not objects: Python's garbage
# collector stops following a tuple of texts and numbers after its first pass, and a day of
# every cabinet is thousands of them (fewer full collections, each tens of milliseconds).
_ROW_NO, _SITE, _STATION, _SEQ, _EVENT_ID, _KIND, _AT, _BADGE, _PERSON, _DATA = range(len(_EVENT_COLUMNS))


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
YES = N_("yes")


@dataclass(frozen=True)
class Labels:
    """The words an export uses, in one language (see :func:`export_labels`)."""

    headers: Mapping[str, str]
    entries: Mapping[str, str]
    yes: str = "yes"
    sheet: str = "Key ledger"


def export_labels(headers: Mapping[str, Msg], entries: Mapping[str, Msg], sheet: Msg,
                  lang: str | None = None) -> Labels:
    """An export's words in ``lang`` ("ja" or "en"); None: the English source texts."""
    def say(msg: Msg) -> str:
        return msg.id if lang is None else translate(lang, msg)
    return Labels({k: say(m) for k, m in headers.items()}, {k: say(m) for k, m in entries.items()},
                  yes=say(YES), sheet=say(sheet))


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


def table_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Any table as CSV: UTF-8 with a byte-order mark, so Excel shows Japanese correctly;
    times as ``YYYY-MM-DD HH:MM:SS``, days as ``YYYY-MM-DD``; text a spreadsheet would
    evaluate is written as text (hub.ledgers.spreadsheet). The other ledgers use it too."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(csv_line(header))
    for row in rows:
        writer.writerow(csv_line(row))
    return buf.getvalue().encode("utf-8-sig")


def to_csv(rows: Sequence[LedgerRow], labels: Labels = LABELS_EN) -> bytes:
    """The ledger as CSV (see :func:`table_csv`)."""
    return table_csv([labels.headers[c] for c in COLUMNS], (_cells(row, labels) for row in rows))


def table_xlsx(
    header: Sequence[str],
    rows: Iterable[tuple[Sequence[Any], bool]],
    *,
    sheet: str,
    title: str = "",
) -> bytes:
    """Any table as an Excel workbook: a bold, frozen header row, real date-time cells, widths
    that fit, text always as text (hub.ledgers.spreadsheet); ``rows`` are (cells, highlighted) and
    highlighted rows are bold on yellow."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    assert ws is not None  # a new workbook has its one sheet
    # Sheet titles: at most 31 characters, none of []:*?/\ .
    ws.title = "".join(ch for ch in sheet if ch not in "[]:*?/\\")[:31] or "Sheet1"
    first = 1
    if title:
        write_cell(ws, title, 1, 1).font = Font(bold=True, size=12)
        first = 3
    header = [str(h) for h in header]  # lazy translations become plain text
    for col, text in enumerate(header, start=1):
        cell = write_cell(ws, text, first, col)
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDE6F0")
    widths = [len(h) * (2 if not h.isascii() else 1) + 2 for h in header]
    highlight = PatternFill("solid", fgColor="FFF2CC")
    for n, (cells, marked) in enumerate(rows, start=first + 1):
        for col, value in enumerate(cells, start=1):
            cell = write_cell(ws, value, n, col)
            if isinstance(value, datetime):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
                width = 20
            elif isinstance(value, date):
                cell.number_format = "yyyy-mm-dd"
                width = 12
            else:
                text = "" if value is None else str(value)
                width = sum(2 if not ch.isascii() else 1 for ch in text) + 2
            widths[col - 1] = max(widths[col - 1], width)
            if marked:
                cell.font = Font(bold=True)
                cell.fill = highlight
    for col, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(col)].width = min(width, 60)
    ws.freeze_panes = ws.cell(row=first + 1, column=1).coordinate
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def to_xlsx(rows: Sequence[LedgerRow], labels: Labels = LABELS_EN, *, title: str = "") -> bytes:
    """The ledger as an Excel workbook (site-local times), the last user of each day in bold."""
    return table_xlsx([labels.headers[c] for c in COLUMNS], ((_cells(row, labels), row.last) for row in rows),
                      sheet=labels.sheet, title=title)
