"""The print release log page (印刷の受け取り記録) with its CSV and Excel exports, and the state
of each printer's print server (from its last cups.down / cups.up event).

The rows come from hub.ledgers.printing; this module only picks the day and printer from the query
string and labels everything in the reader's language.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from hub.ledgers.base import Labels, Period
from hub.ledgers import printing as print_log
from hub.store.schema import events
from hub.web import i18n, reports, scope
from hub.web.state import state
from hub.stations.directory import stations_of_kind

_LOG = logging.getLogger(__name__)

bp = Blueprint("printing", __name__)

# The export's words (hub.ledgers.printing), on the page too.
HEADERS: dict[str, Any] = i18n.lazy(print_log.HEADERS)
ENTRIES: dict[str, Any] = i18n.lazy(print_log.ENTRIES)
WORDS: dict[str, Any] = i18n.lazy(print_log.WORDS)
TOTALS: dict[str, Any] = i18n.lazy(print_log.TOTALS)


def _request() -> tuple[str | None, Period, list[print_log.PrintRow]]:
    return reports.period_report(print_log.release_log)


def _labels() -> Labels:
    return print_log.labels(reports.lang())


def _words() -> dict[str, str]:
    return print_log.words(reports.lang())


def cups_states(stations: list[str]) -> dict[str, dict[str, Any]]:
    """Each printer's print-server state from its latest cups.down / cups.up event."""
    out: dict[str, dict[str, Any]] = {}
    if not stations:
        return out
    with state().engine.connect() as conn:
        for station in stations:
            row = conn.execute(
                select(events.c.kind, events.c.at).where(
                    events.c.station == station, events.c.kind.in_(("cups.down", "cups.up")))
                .order_by(events.c.row_no.desc()).limit(1)).first()
            if row is not None:
                out[station] = {"down": row.kind == "cups.down", "at": row.at}
    return out


@bp.get("/ledger/prints")
def release_log_page():
    st = state()
    printers = scope.station_ids(stations_of_kind(st.engine, st.cfg, "printer"))
    # A page of rows at a time (hub.ledgers.paging), the totals counted for the whole period.
    paged = reports.paged_report(print_log.release_log, "printing.release_log_page", printers, print_log.COUNTED)
    station, period, rows = paged.station, paged.period, paged.rows
    args = reports.link_args(station, **period.args())
    return render_template(
        "print_log.html", title=_("Print release log"), groups=reports.by_station(rows), station=station,
        period=period, printers=printers, paged=paged, total_label=lambda k: str(TOTALS.get(k, k)), headers={k: str(v) for k, v in HEADERS.items()},
        entries={k: str(v) for k, v in ENTRIES.items()}, words=_words(),
        cups=cups_states([station] if station else printers),
        csv_url=url_for("printing.release_log_csv", **args),
        xlsx_url=url_for("printing.release_log_xlsx", **args),
        print_url=url_for("printing.release_log_print", **args),
    )


@bp.get("/ledger/prints.csv")
def release_log_csv():
    station, period, rows = _request()
    body = print_log.to_csv(rows, _labels(), _words())
    _LOG.info("%s exported the print release log of %s (%s) as CSV", current_user.username, period.label,
              station or "all")
    return reports.download(body, "csv", "print-log", station, period.slug)


@bp.get("/ledger/prints.xlsx")
def release_log_xlsx():
    station, period, rows = _request()
    labels = _labels()
    title = reports.export_title(labels.sheet, period.label, station)
    body = print_log.to_xlsx(rows, labels, _words(), title=title)
    _LOG.info("%s exported the print release log of %s (%s) as Excel", current_user.username, period.label,
              station or "all")
    return reports.download(body, "xlsx", "print-log", station, period.slug)


@bp.get("/ledger/prints/print")
def release_log_print():
    st = state()
    station, period, rows = _request()
    header, cells = print_log.table(rows, _labels(), _words())
    stations = [station] if station else scope.station_ids(stations_of_kind(st.engine, st.cfg, "printer"))
    return reports.print_view(_("Print release log"), period, station, stations, header, cells,
                              marked=[r.entry != "released" for r in rows], columns=print_log.COLUMNS)
