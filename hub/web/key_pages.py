"""The key ledger's rows as a request asks for them, its work recording (作業内容) and its
printable A4 view; the ledger page itself and its exports are in hub.web.pages.

``POST /ledger/keys/work`` records the work of one key use (hub.ledgers.key_work: the person
who used the key or a supervisor; audited, the event untouched) and goes back to the ledger;
``/ledger/keys/print`` takes the ledger's own arguments (station, day, month or from/to).
"""
from __future__ import annotations

import logging

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from hub.catalog import translate
from hub.config import HubConfig
from hub.ledgers import key_work
from hub.ledgers import keys as ledger
from hub.ledgers.base import Period
from hub.web import query, reports, scope
from hub.web.redirects import local_path
from hub.web.state import state
from hub.stations.directory import stations_of_kind

_LOG = logging.getLogger(__name__)

bp = Blueprint("keys", __name__)


def ledger_request() -> tuple[str | None, Period, list[ledger.LedgerRow]]:
    """The cabinet and period asked for, and the key ledger's rows for them."""
    return reports.period_report(ledger.key_ledger)


def ledger_export() -> ledger.Export:
    """The exports' words in the reader's language, the site's wording of the work, and
    absolute photo links (the file is read outside the browser; the reader signs in to open them)."""
    lang = reports.lang()
    return ledger.Export(ledger.labels(lang), ledger.work_labeller(state().cfg, lang),
                         lambda event_id: url_for("pages.snapshot", event_id=event_id, _external=True))


class WorkForm:
    """What the ledger page needs to show and offer the work of each row, in ``lang``."""

    def __init__(self, cfg: HubConfig, lang: str):
        self.cfg = cfg
        self.lang = lang
        self.label = ledger.work_labeller(cfg, lang)

    def choices(self, site: str) -> list[tuple[str, str]]:
        """The site's list as (code, wording)."""
        return [(w.code, w.label(self.lang)) for w in self.cfg.site(site).key_work]

    def can_record(self, row: ledger.LedgerRow) -> bool:
        """Whether the reader may pick the work of ``row`` here."""
        return (row.entry == "use" and bool(self.cfg.site(row.site).key_work)
                and key_work.may_record(current_user.role, current_user.username, row.person))


@bp.post("/ledger/keys/work")
def record_work():
    event_id = query.text(request.form.get("event_id"), "event_id") or ""
    work = query.text(request.form.get("work"), "work") or ""
    back = local_path(request.form.get("next")) or url_for("pages.key_ledger")
    scope.require_event(event_id)  # another site's key use: 404, as one that does not exist
    try:
        key_work.record(state().engine, state().cfg, event_id, work, username=current_user.username,
                        role=current_user.role)
    except key_work.WorkError as exc:
        _LOG.info("%s could not record work %r for key use %r: %s", current_user.username, work, event_id, exc.code)
        flash(translate(reports.lang(), key_work.ERRORS[exc.code], **exc.params), "error")
    else:
        flash(_("The work was recorded."), "ok")
    return redirect(back + (f"#use-{event_id}" if event_id else ""))


@bp.get("/ledger/keys/print")
def key_ledger_print():
    st = state()
    station, period, rows = ledger_request()
    header, cells = ledger.table(rows, ledger_export())
    stations = [station] if station else scope.station_ids(stations_of_kind(st.engine, st.cfg, "cabinet"))
    return reports.print_view(_("Key ledger"), period, station, stations, header, cells,
                              marked=[r.incomplete or r.flagged or r.after_hours for r in rows],
                              columns=ledger.COLUMNS)
