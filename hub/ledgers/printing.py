"""The print release log (印刷の受け取り記録): who released which print jobs at each printer on a
day, when, with titles and page counts; held jobs that expired unprinted; taps that released
nothing. CSV and Excel exports like the key ledger's. No web framework here.

Rows come from stored events only (the hash-chained audit trail), one row per job:

- ``released``: a job in a ``print.released`` event (the person who tapped, the job's title);
  its pages and final state come from the station's later ``print.printed`` event for that
  job id (CUPS counts pages while printing), if one arrived;
- ``expired``: a job in a ``print.expired`` event (cancelled unprinted; the owner is its
  print user name);
- ``failed``: a ``print.release_failed`` event (no row per job: nothing was released).

A row belongs to the day (in its site's zone) of its event.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Engine

from hub.config import HubConfig
from hub.catalog import N_, Msg, translate
from hub.ledgers.base import Labels, export_labels, local_time, row_json, staff_names, station_events, table_csv, table_xlsx
from hub.stations.directory import stations_of_kind
from kagiban import events as ev_kinds

_LOG = logging.getLogger(__name__)

ENTRY_KINDS = ("released", "expired", "failed")
_KINDS = (ev_kinds.PrintReleased.KIND, ev_kinds.PrintExpired.KIND, ev_kinds.PrintReleaseFailed.KIND,
          ev_kinds.PrintPrinted.KIND)
# How long after the day's end a released job's print.printed may arrive and still count.
SPAN_AFTER = timedelta(hours=6)


@dataclass
class PrintRow:
    """One line of the release log; ``at`` is aware, in the site's time zone."""

    station: str
    station_name: str
    site: str
    day: date
    entry: str  # released, expired, failed
    at: datetime
    person: str | None
    name: str | None
    user: str | None  # the print server's user name (the job owner)
    job_id: int | None
    title: str
    pages: int | None
    state: str | None  # completed, canceled, aborted (from print.printed), or None
    reason: str  # why a release failed
    event_id: str
    row_no: int

    def as_json(self) -> dict[str, Any]:
        """The row with ISO 8601 times."""
        return row_json(self)




def release_log(
    engine: Engine,
    cfg: HubConfig,
    day: date,
    last: date | None = None,
    *,
    station: str | None = None,
    names: Mapping[str, str] | None = None,
) -> list[PrintRow]:
    """The release log of the days ``day`` to ``last`` (default: that one day) for one printer
    (or every printer), by printer then time."""
    last = last or day
    if names is None:
        names = staff_names(engine)
    wanted = [station] if station else stations_of_kind(engine, cfg, "printer")
    out: list[PrintRow] = []
    for st in station_events(engine, cfg, wanted, _KINDS, day, last, after=SPAN_AFTER):
        out.extend(_station_rows(st.events, st.station, st.name, st.site, day, last, st.zone, names))
    return out


def _station_rows(rows: list[dict[str, Any]], station: str, label: str, site: str, first: date, last: date,
                  zone: tzinfo, names: Mapping[str, str]) -> list[PrintRow]:
    printed: dict[int, ev_kinds.PrintedJob] = {}
    # A job reported printed more than once: the report stored last counts.
    for ev in sorted(rows, key=lambda r: r["row_no"]):
        if ev["kind"] == ev_kinds.PrintPrinted.KIND:
            for done in ev_kinds.read_as(ev_kinds.PrintPrinted, ev["data"]).jobs:
                if done.id is not None:
                    printed[done.id] = done
    out: list[PrintRow] = []
    for ev in rows:
        at = local_time(ev["at"], zone)
        if at is None or not first <= at.date() <= last or ev["kind"] == ev_kinds.PrintPrinted.KIND:
            continue
        event = ev_kinds.read(ev["kind"], ev["data"])
        person = ev["person"]

        def row(entry: str, job: ev_kinds.PrintJob | None, who: str | None, user: str | None,
                reason: str = "") -> PrintRow:
            job = job or ev_kinds.PrintJob()
            done = printed.get(job.id) if job.id is not None and entry == "released" else None
            pages = done.pages if done else None
            return PrintRow(
                station=station, station_name=label, site=ev["site"] or site, day=at.date(), entry=entry, at=at,
                person=who, name=names.get(who) if who else None, user=user, job_id=job.id,
                title=job.title, pages=pages if pages is not None else job.pages,
                state=done.state if done else None, reason=reason,
                event_id=ev["event_id"], row_no=ev["row_no"],
            )

        if isinstance(event, ev_kinds.PrintReleased):
            for job in event.jobs:
                out.append(row("released", job, person, event.user))
        elif isinstance(event, ev_kinds.PrintExpired):
            for job in event.jobs:
                # The owner is known by print user name; by default that is the staff number.
                out.append(row("expired", job, job.user if job.user in names else None, job.user))
        elif isinstance(event, ev_kinds.PrintReleaseFailed):
            out.append(row("failed", None, person, event.user, event.reason))
    out.sort(key=lambda r: (r.at, r.row_no, r.job_id or 0))
    return out


# --- exports ---

COLUMNS = ("station", "day", "entry", "at", "person", "name", "user", "job_id", "title", "pages",
           "state", "reason", "event_id")
HEADERS: dict[str, Msg] = {
    "station": N_("Printer"), "day": N_("Day"), "entry": N_("Entry"), "at": N_("Time"),
    "person": N_("Person ID"), "name": N_("Name"), "user": N_("Print user"), "job_id": N_("Job"),
    "title": N_("Title"), "pages": N_("Pages"), "state": N_("Result"), "reason": N_("Reason"),
    "event_id": N_("Event ID"),
}
ENTRIES: dict[str, Msg] = {"released": N_("Released"), "expired": N_("Expired unprinted"),
                           "failed": N_("Nothing released")}
SHEET = N_("Print release log")
# The events the rows come from, as the page counts them for a period's totals: per event, not
# per job (a release of three jobs is one release and three rows).
COUNTED: dict[str, tuple[str, ...]] = {
    "released": (ev_kinds.PrintReleased.KIND,), "expired": (ev_kinds.PrintExpired.KIND,),
    "failed": (ev_kinds.PrintReleaseFailed.KIND,),
}
TOTALS: dict[str, Msg] = {"released": N_("Releases (one tap, one or more jobs)"),
                          "expired": N_("Expiry notices (one or more jobs)"),
                          "failed": N_("Taps that released nothing")}
# Job results and reasons a release failed, as the page and the exports say them.
WORDS: dict[str, Msg] = {
    "completed": N_("Printed"),
    "canceled": N_("Cancelled"),
    "aborted": N_("Failed to print"),
    "no_jobs": N_("No held jobs"),
    "cups_down": N_("Print server unreachable"),
    "cups_refused": N_("Print server refused"),
    "no_print_user": N_("No print user name"),
}
LABELS_EN = export_labels(HEADERS, ENTRIES, SHEET)


def labels(lang: str) -> Labels:
    """The release log's export words in ``lang`` ("ja" or "en")."""
    return export_labels(HEADERS, ENTRIES, SHEET, lang)


def words(lang: str) -> dict[str, str]:
    """Job results and release failures in ``lang`` ("ja" or "en")."""
    return {k: translate(lang, m) for k, m in WORDS.items()}


def _cells(row: PrintRow, labels: Labels, words: Mapping[str, str]) -> list[Any]:
    values = {
        "station": row.station_name if row.station_name == row.station else f"{row.station_name} ({row.station})",
        "day": row.day, "entry": labels.entries.get(row.entry, row.entry), "at": row.at.replace(tzinfo=None),
        "person": row.person or "", "name": row.name or "", "user": row.user or "",
        "job_id": row.job_id, "title": row.title, "pages": row.pages,
        "state": words.get(row.state or "", row.state or ""), "reason": words.get(row.reason, row.reason),
        "event_id": row.event_id,
    }
    return [values[c] for c in COLUMNS]


def table(rows: Sequence[PrintRow], labels: Labels = LABELS_EN,
          words: Mapping[str, str] | None = None) -> tuple[list[str], list[list[Any]]]:
    """The header and each row's cells, as the exports and the print view show them."""
    return [labels.headers[c] for c in COLUMNS], [_cells(row, labels, words or {}) for row in rows]


def to_csv(rows: Sequence[PrintRow], labels: Labels = LABELS_EN, words: Mapping[str, str] | None = None) -> bytes:
    """The log as CSV: UTF-8 with a byte-order mark, so Excel shows Japanese correctly."""
    return table_csv([labels.headers[c] for c in COLUMNS], (_cells(row, labels, words or {}) for row in rows))


def to_xlsx(rows: Sequence[PrintRow], labels: Labels = LABELS_EN, words: Mapping[str, str] | None = None,
            *, title: str = "") -> bytes:
    """The log as an Excel workbook: bold frozen header, real (site-local) date-times."""
    return table_xlsx([labels.headers[c] for c in COLUMNS],
                      ((_cells(row, labels, words or {}), False) for row in rows), sheet=labels.sheet, title=title)
