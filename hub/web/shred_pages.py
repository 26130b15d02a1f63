"""The shredding ledger page (シュレッダー管理簿): each shredder's sessions of a day or a month,
both people, times, why it stopped, the roster and after-hours flags and the snapshot taken
at the start; with CSV and Excel exports in the reader's language.

``/ledger/shredder?station=&day=YYYY-MM-DD``, ``?station=&month=YYYY-MM`` or
``?station=&from=YYYY-MM-DD&to=YYYY-MM-DD`` (hub.ledgers.base.parse_period); the exports are
``/ledger/shredder.csv`` and ``/ledger/shredder.xlsx`` and the printable A4 view
``/ledger/shredder/print`` with the same arguments.
"""
from __future__ import annotations

import logging

from flask import Blueprint, render_template, url_for
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.ledgers import shredding as shred_ledger
from hub.ledgers.base import Period
from hub.web import i18n, reports, scope
from hub.web.state import state
from hub.stations.directory import stations_of_kind

_LOG = logging.getLogger(__name__)

bp = Blueprint("shred", __name__)

# The export's words (hub.ledgers.shredding), on the page too.
HEADERS = i18n.lazy(shred_ledger.HEADERS)
ENDINGS = i18n.lazy(shred_ledger.ENDINGS)
TOTALS = i18n.lazy(shred_ledger.TOTALS)


REFUSALS = {
    "same_badge": _l("the same badge twice"),
    "same_person": _l("two badges of the same person"),
    "second_not_authorised": _l("the second badge was refused"),
    "window_expired": _l("nobody else tapped in time"),
    "bin_open": _l("the bin was open"),
}


def ending_label(value: str) -> str:
    found = ENDINGS.get(value)
    return str(found) if found is not None else value


def event_details(kind: str, payload: dict) -> str | None:
    """A short, translated summary of a shredder event for the events list; None for events
    of other kinds (hub.web.pages.event_details asks here first)."""
    if not kind.startswith("shred."):
        return None
    names = state().names()
    parts = []
    people = [p for p in payload.get("people") or [] if isinstance(p, str)]
    if people:
        parts.append(" + ".join(f"{names[p]} ({p})" if p in names else p for p in people))
    if kind == "shred.ended":
        if isinstance(payload.get("duration_s"), (int, float)):
            parts.append(_("ran for %(seconds)s s", seconds=format_decimal(round(float(payload["duration_s"]), 1))))
        parts.append(ending_label(str(payload.get("ended_by") or "")))
    elif kind == "shred.refused":
        reason = str(payload.get("reason") or "")
        parts.append(_("not started: %(reason)s", reason=str(REFUSALS.get(reason, reason))))
    return ", ".join(parts)


def _rows(station: str | None, period: Period) -> list[shred_ledger.ShredRow]:
    st = state()
    return scope.keep(shred_ledger.sessions(st.engine, st.cfg, period.first, period.last, station=station,
                                            names=st.names()))


@bp.get("/ledger/shredder")
def ledger():
    st = state()
    shredders = scope.station_ids(stations_of_kind(st.engine, st.cfg, "shredder"))
    # A page of rows at a time (hub.ledgers.paging), the totals counted for the whole period.
    paged = reports.paged_report(shred_ledger.sessions, "shred.ledger", shredders, shred_ledger.COUNTED)
    station, period, rows = paged.station, paged.period, paged.rows
    args = reports.link_args(station, **period.args())
    return render_template(
        "shred_ledger.html", title=_("Shredding ledger"), groups=reports.by_station(rows), station=station,
        period=period, shredders=shredders, paged=paged, total_label=lambda k: str(TOTALS.get(k, k)),
        ending_label=ending_label, flagged=sum(r.flagged for r in rows),
        csv_url=url_for("shred.ledger_csv", **args), xlsx_url=url_for("shred.ledger_xlsx", **args),
        print_url=url_for("shred.ledger_print", **args),
    )


def _export() -> shred_ledger.Export:
    labels = shred_ledger.labels(reports.lang())
    # Absolute links: the file is read outside the browser (the reader signs in to open them).
    return shred_ledger.Export(labels, lambda event_id: url_for("pages.snapshot", event_id=event_id,
                                                                _external=True))


def _request() -> tuple[str | None, Period, list[shred_ledger.ShredRow]]:
    station = reports.station_arg()
    period = reports.period_arg(station)
    return station, period, _rows(station, period)


@bp.get("/ledger/shredder.csv")
def ledger_csv():
    station, period, rows = _request()
    body = shred_ledger.to_csv(rows, _export())
    _LOG.info("%s exported the shredding ledger of %s (%s) as CSV", current_user.username,
              period.label, station or "all")
    return reports.download(body, "csv", "shredding-ledger", station, period.slug)


@bp.get("/ledger/shredder.xlsx")
def ledger_xlsx():
    station, period, rows = _request()
    export = _export()
    title = reports.export_title(export.labels.sheet, period.label, station)
    body = shred_ledger.to_xlsx(rows, export, title=title)
    _LOG.info("%s exported the shredding ledger of %s (%s) as Excel", current_user.username,
              period.label, station or "all")
    return reports.download(body, "xlsx", "shredding-ledger", station, period.slug)


@bp.get("/ledger/shredder/print")
def ledger_print():
    st = state()
    station, period, rows = _request()
    header, cells = shred_ledger.table(rows, _export())
    stations = [station] if station else scope.station_ids(stations_of_kind(st.engine, st.cfg, "shredder"))
    return reports.print_view(_("Shredding ledger"), period, station, stations, header, cells,
                              marked=[r.flagged for r in rows], columns=shred_ledger.COLUMNS)
