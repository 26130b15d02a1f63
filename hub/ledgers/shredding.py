"""The shredding ledger (シュレッダー管理簿): every session of each two-person shredder on a day
or in a month, both people, when it ran, how long and why it stopped, whether the pair was on
that day's roster and whether it ran after hours; with CSV and Excel exports. No web framework
here, so reports, the close-out and the alert rules can reuse it.

Rows come from stored events only (the hash-chained audit trail): a ``shred.started`` event
and the next ``shred.ended`` of the same shredder (in its seq order) make one session. A
session still without its end is ``running`` (or not yet delivered); one cut short by the unit
restarting (a ``station.started`` before any ``shred.ended``: the unit switches its power off
when it starts) is ``station_restarted``, with its end unknown.

Flags are the hub's judgement, not the station's: ``not_on_roster`` when neither person is on
the shredder's roster (hub.registry) for the day the session started, ``after_hours`` when its
start or end falls outside the station's business hours (hub.hours). A session belongs to the
day (in its site's time zone) on which it started.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from hub.config import HubConfig
from hub.catalog import N_, Msg
from hub.ledgers.base import Labels, export_labels, month_period, local_time, row_json, staff_names, station_events, table_csv, table_xlsx
from hub.store.schema import people, snapshots
from hub.stations.directory import stations_of_kind
from hub.stations.shredding_flags import after_hours, rostered
from kagiban import events as ev_kinds

_LOG = logging.getLogger(__name__)

# How far past the period's end to look for the end of a session that started in it.
SPAN_AFTER = timedelta(days=1)
_KINDS = (ev_kinds.ShredStarted.KIND, ev_kinds.ShredEnded.KIND, ev_kinds.StationStarted.KIND)


@dataclass
class ShredRow:
    """One session; times are aware, in the site's time zone."""

    station: str
    station_name: str
    site: str
    day: date
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    ended_by: str  # one of ENDINGS
    people: list[str | None]
    names: list[str | None]
    badges: list[str | None]
    on_roster: list[bool]
    not_on_roster: bool  # neither person was on the day's roster
    after_hours: bool  # started or ended outside business hours
    event_id: str  # of shred.started (its snapshot has the same id)
    row_no: int
    has_snapshot: bool = False
    ended_event_id: str | None = None

    @property
    def flagged(self) -> bool:
        """Something a supervisor should look at."""
        return self.not_on_roster or self.after_hours

    def as_json(self) -> dict[str, Any]:
        """The row with ISO 8601 times, for the JSON API."""
        return {**row_json(self), "flagged": self.flagged}


def month_days(month: str) -> tuple[date, date]:
    """The first and last day of ``YYYY-MM``; ValueError if it is not one (hub.ledgers.base)."""
    period = month_period(month)
    return period.first, period.last


def registry_names(engine: Engine) -> dict[str, str]:
    """Staff number -> name from the registry (people with no badge in any policy too)."""
    with engine.connect() as conn:
        return {r.staff_no: r.name for r in conn.execute(select(people.c.staff_no, people.c.name))}


def sessions(
    engine: Engine,
    cfg: HubConfig,
    first: date,
    last: date | None = None,
    *,
    station: str | None = None,
    site: str | None = None,
    names: Mapping[str, str] | None = None,
) -> list[ShredRow]:
    """Sessions that started from day ``first`` to ``last`` (inclusive; default: that one day)
    at one shredder (or every shredder, optionally of one ``site``), by shredder then time."""
    last = last or first
    wanted = [station] if station else stations_of_kind(engine, cfg, "shredder", site)
    if not wanted:
        return []
    all_names = {**staff_names(engine), **registry_names(engine), **(names or {})}
    out: list[ShredRow] = []
    for st in station_events(engine, cfg, wanted, _KINDS, first, last, after=SPAN_AFTER):
        roster = rostered(engine, st.station, first, last)
        out.extend(_station_rows(cfg, st.events, st.station, st.name, st.site, first, last, st.zone,
                                 all_names, roster))
    with_snap: set[str] = set()
    if out:
        with engine.connect() as conn:
            with_snap = set(conn.execute(select(snapshots.c.event_id).where(
                snapshots.c.event_id.in_([r.event_id for r in out]))).scalars())
    for row in out:
        row.has_snapshot = row.event_id in with_snap
    return out


def _station_rows(
    cfg: HubConfig, rows: list[dict[str, Any]], station: str, label: str, site: str, first: date, last: date,
    zone, names: Mapping[str, str], roster: Mapping[date, set[str]],
) -> list[ShredRow]:
    out: list[ShredRow] = []
    open_: dict[str, Any] | None = None

    def close(ev: dict[str, Any], ended: dict[str, Any] | None, why: str) -> None:
        start = ev_kinds.read_as(ev_kinds.ShredStarted, ev["data"])
        started = local_time(ev["at"], zone)
        if started is None or not first <= started.date() <= last:
            return
        site_id = ev["site"] or site
        end = ev_kinds.read_as(ev_kinds.ShredEnded, ended["data"]) if ended else ev_kinds.ShredEnded()
        ended_at = local_time(end.ended_at or ended["at"], zone) if ended else None
        duration = end.duration_s
        people_ids = list(start.people or end.people)
        badges = list(start.badges or end.badges)
        on_day = roster.get(started.date(), set())
        on = [p is not None and p in on_day for p in people_ids]
        out.append(ShredRow(
            station=station, station_name=label, site=site_id, day=started.date(),
            started_at=started, ended_at=ended_at,
            duration_s=float(duration) if duration is not None else None,
            ended_by=end.ended_by if ended else why,
            people=people_ids, names=[names.get(p) if p else None for p in people_ids], badges=badges,
            on_roster=on, not_on_roster=not any(on),
            after_hours=after_hours(cfg, station, site_id, started, ended_at),
            event_id=ev["event_id"], row_no=ev["row_no"],
            ended_event_id=ended["event_id"] if ended else None,
        ))

    for ev in rows:
        kind = ev["kind"]
        if kind == ev_kinds.ShredStarted.KIND:
            if open_ is not None:
                # Two starts with no end between: the first one's end never arrived.
                close(open_, None, "running")
            open_ = ev
        elif kind == ev_kinds.ShredEnded.KIND and open_ is not None:
            close(open_, ev, "")
            open_ = None
        elif kind == ev_kinds.StationStarted.KIND and open_ is not None:
            # The unit restarted mid-session; it starts with the power off.
            close(open_, None, "station_restarted")
            open_ = None
    if open_ is not None:
        close(open_, None, "running")
    out.sort(key=lambda r: (r.started_at, r.row_no))
    return out


# --- exports ---

COLUMNS = ("station", "day", "started_at", "ended_at", "duration_s", "ended_by", "person_1", "name_1",
           "person_2", "name_2", "not_on_roster", "after_hours", "snapshot", "event_id")
HEADERS: dict[str, Msg] = {
    "station": N_("Shredder"), "day": N_("Day"), "started_at": N_("Started at"), "ended_at": N_("Ended at"),
    "duration_s": N_("Ran for (s)"), "ended_by": N_("Ended by"), "person_1": N_("Person ID (1)"),
    "name_1": N_("Name (1)"), "person_2": N_("Person ID (2)"), "name_2": N_("Name (2)"),
    "not_on_roster": N_("Neither on the roster"), "after_hours": N_("After hours"),
    "snapshot": N_("Snapshot"), "event_id": N_("Event ID"),
}
ENDINGS: dict[str, Msg] = {
    "tap": N_("Badge tap"), "stop_button": N_("Stop button"), "max_length": N_("Maximum length reached"),
    "bin_opened": N_("Bin opened"), "station_restarted": N_("Unit restarted"), "running": N_("Not ended"),
}
SHEET = N_("Shredding ledger")
# The events each row comes from (one session per start): what the page counts for a period's totals.
COUNTED: dict[str, tuple[str, ...]] = {"session": (ev_kinds.ShredStarted.KIND,)}
TOTALS: dict[str, Msg] = {"session": N_("Sessions")}
LABELS_EN = export_labels(HEADERS, ENDINGS, SHEET)


def labels(lang: str) -> Labels:
    """The shredding ledger's export words in ``lang`` ("ja" or "en")."""
    return export_labels(HEADERS, ENDINGS, SHEET, lang)


@dataclass(frozen=True)
class Export:
    """How exported rows show snapshots: ``snapshot_url(event_id)`` gives the link."""

    labels: Labels = LABELS_EN
    snapshot_url: Callable[[str], str] | None = None


def _cells(row: ShredRow, ex: Export) -> list[Any]:
    """A row's values in COLUMNS order; times as naive local datetimes (Excel has no zones)."""
    def local(value: datetime | None):
        return value.replace(tzinfo=None) if value is not None else None

    labels = ex.labels
    person = (row.people + [None, None])[:2]
    name = (row.names + [None, None])[:2]
    snap = ""
    if row.has_snapshot:
        snap = ex.snapshot_url(row.event_id) if ex.snapshot_url else row.event_id
    values = {
        "station": row.station_name if row.station_name == row.station else f"{row.station_name} ({row.station})",
        "day": row.day, "started_at": local(row.started_at), "ended_at": local(row.ended_at),
        "duration_s": row.duration_s, "ended_by": labels.entries.get(row.ended_by, row.ended_by),
        "person_1": person[0] or "", "name_1": name[0] or "", "person_2": person[1] or "", "name_2": name[1] or "",
        "not_on_roster": labels.yes if row.not_on_roster else "",
        "after_hours": labels.yes if row.after_hours else "",
        "snapshot": snap, "event_id": row.event_id,
    }
    return [values[c] for c in COLUMNS]


def table(rows: Sequence[ShredRow], export: Export = Export()) -> tuple[list[str], list[list[Any]]]:
    """The header and each row's cells, as the exports and the print view show them."""
    return [export.labels.headers[c] for c in COLUMNS], [_cells(r, export) for r in rows]


def to_csv(rows: Sequence[ShredRow], export: Export = Export()) -> bytes:
    """The shredding ledger as CSV (UTF-8 with a byte-order mark)."""
    return table_csv([export.labels.headers[c] for c in COLUMNS], (_cells(r, export) for r in rows))


def to_xlsx(rows: Sequence[ShredRow], export: Export = Export(), *, title: str = "") -> bytes:
    """The shredding ledger as an Excel workbook; flagged sessions are highlighted."""
    return table_xlsx([export.labels.headers[c] for c in COLUMNS],
                      ((_cells(r, export), r.flagged) for r in rows), sheet=export.labels.sheet, title=title)
