"""What every ledger is built from (keys, shredding, printing, the close-out and the monthly
report): the stored events of a set of stations over some days in their sites' zones, staff
names from the published policies, times in a site's zone, and CSV and Excel exports with the
words of one language. No web framework here.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import Engine, select

from hub.catalog import N_, Msg, translate
from hub.config import HubConfig
from hub.stations.directory import display_name
from hub.ledgers.spreadsheet import csv_line, write_cell
from hub.store.schema import events, policies, stations
from hub.store.timestamps import utc_text

_LOG = logging.getLogger(__name__)


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


# --- the period a ledger covers: one day, a month or a range of days, asked the same way of
# every ledger (keys, shredding, printing) by the pages, the exports and the print view ---

PERIOD_KINDS = ("day", "month", "range")
# A range is at most this many days: a year of every station is what an auditor files.
MAX_RANGE_DAYS = 366


class PeriodError(ValueError):
    """A period a ledger cannot show: ``param`` names the argument, ``expected`` the code of
    what it wants (date, month, range_order, range_length)."""

    def __init__(self, param: str, expected: str):
        self.param = param
        self.expected = expected
        super().__init__(f"{param}: {expected}")


@dataclass(frozen=True)
class Period:
    """The days a ledger covers, ``first`` to ``last`` inclusive, and how they were asked for."""

    kind: str  # one of PERIOD_KINDS
    first: date
    last: date

    @property
    def label(self) -> str:
        """As people write it: ``2025-04-01``, ``2025-04`` or ``2025-04-01 – 2025-04-15``."""
        if self.kind == "month":
            return self.first.strftime("%Y-%m")
        if self.kind == "day":
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"

    @property
    def slug(self) -> str:
        """For a file name: ``2025-04-01``, ``2025-04`` or ``2025-04-01_2025-04-15``."""
        if self.kind == "range":
            return f"{self.first.isoformat()}_{self.last.isoformat()}"
        return self.label

    def args(self) -> dict[str, str]:
        """The query arguments that ask for this period again."""
        if self.kind == "month":
            return {"month": self.label}
        if self.kind == "day":
            return {"day": self.first.isoformat()}
        return {"from": self.first.isoformat(), "to": self.last.isoformat()}

    def days(self) -> list[date]:
        """Every day of the period, in order."""
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def month_period(month: str) -> Period:
    """The period of ``YYYY-MM``; PeriodError("month", "month") if it is not one."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise PeriodError("month", "month") from None
    if (first.year, first.month) == (9999, 12):
        return Period("month", first, date.max)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return Period("month", first, following - timedelta(days=1))


def _day(value: str, param: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(param, "date") from None


def parse_period(args: Mapping[str, str | None], today: date) -> Period:
    """The period a query asks for: ``from`` (and ``to``, default ``from``) a range, else
    ``month`` (YYYY-MM), else ``day`` (YYYY-MM-DD), else ``today``. A malformed value, a range
    ending before it starts or longer than MAX_RANGE_DAYS is a PeriodError naming the argument:
    never a silent default."""
    # Not stripped: a value of blanks was typed or forged, and is refused like any bad value.
    start, end = args.get("from") or "", args.get("to") or ""
    if start or end:
        if not start:
            raise PeriodError("from", "date")
        first = _day(start, "from")
        last = _day(end, "to") if end else first
        if last < first:
            raise PeriodError("to", "range_order")
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise PeriodError("to", "range_length")
        return Period("range", first, last)
    month = args.get("month") or ""
    if month:
        return month_period(month)
    day = args.get("day") or ""
    if day:
        return Period("day", _day(day, "day"), _day(day, "day"))
    return Period("day", today, today)


@dataclass
class StationEvents:
    """One station's events for a ledger, in the station's seq order, each with its ``data``
    parsed (``{}`` if it is not JSON)."""

    station: str
    name: str  # its name in the hub config, else its id
    site: str
    zone: tzinfo  # its site's
    events: list[dict[str, Any]]


def sites_and_zones(engine: Engine, cfg: HubConfig, wanted: Sequence[str]) -> tuple[dict[str, str], dict[str, tzinfo]]:
    """Each wanted station's site (as it reported it, else as listed) and its site's zone."""
    with engine.connect() as conn:
        sites = {r.station: r.site for r in conn.execute(
            select(stations.c.station, stations.c.site).where(stations.c.station.in_(wanted)))}
    for entry in cfg.stations or []:
        sites.setdefault(entry.id, entry.site)
    return sites, {s: cfg.site_zone(sites.get(s, "")) for s in wanted}


def event_window(zones: Iterable[tzinfo], first: date, last: date, before: timedelta, after: timedelta) -> tuple[str, str]:
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


EVENT_COLUMNS = (events.c.row_no, events.c.site, events.c.station, events.c.seq, events.c.event_id,
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
    sites, zones = sites_and_zones(engine, cfg, wanted)
    lo, hi = event_window(zones.values(), first, last, before, after)
    by_station: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        result = conn.execute(events_query(kinds, wanted, lo, hi))
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


def table_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """Any table as CSV: UTF-8 with a byte-order mark, so Excel shows Japanese correctly;
    times as ``YYYY-MM-DD HH:MM:SS``, days as ``YYYY-MM-DD``; text a spreadsheet would
    evaluate is written as text (hub.ledgers.spreadsheet). The other ledgers use it too."""
    return b"".join(table_csv_chunks(header, [rows]))


def table_csv_chunks(header: Sequence[str], groups: Iterable[Iterable[Sequence[Any]]]) -> Iterator[bytes]:
    """:func:`table_csv` a group of rows at a time (e.g. a station's), for a file sent while it
    is made: the same bytes joined."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(csv_line(header))
    yield buf.getvalue().encode("utf-8-sig")
    for rows in groups:
        buf.seek(0)
        buf.truncate()
        for row in rows:
            writer.writerow(csv_line(row))
        if buf.tell():
            yield buf.getvalue().encode("utf-8")


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


def events_query(kinds: Sequence[str], wanted: Sequence[str], lo: str, hi: str):
    """The events of ``kinds`` at the ``wanted`` stations stored from ``lo`` to before ``hi``."""
    return select(*EVENT_COLUMNS).where(
        events.c.kind.in_(kinds), events.c.at_utc >= lo, events.c.at_utc < hi, events.c.station.in_(wanted))
