"""Alert triage on the web: the open alerts panel of the status page (grouped, pinned,
filtered, refreshed live), acknowledging several alerts with one comment, stations in
maintenance, and the alert history (``/alerts``) with its CSV and Excel exports.

Filters are query parameters (severity, station, rule; the history also state and a date
range), so a filtered view can be bookmarked.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.alerting import alerts as alert_store
from hub.alerting import maintenance
from hub.alerting.alerts import ACK_MANY_MAX, SEVERITIES
from hub.ledgers.base import table_csv, table_xlsx
from hub.stations.directory import display_name
from hub.web import data, i18n, query, reports, scope, triage
from hub.web.auth import ACK_ROLES, role_required
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("alerts", __name__)

COMMENT_MAX = 500
ACKED_SHOWN = 10
EXPORT_COLUMNS = ("id", "raised_at", "severity", "station", "rule", "message", "state", "acked_by", "acked_at",
                  "ack_comment", "closed_at", "close_reason")


def alert_filter(args, *, history: bool = False) -> triage.AlertFilter:
    """The filter in a request's query string (400 naming the parameter if malformed)."""
    station = query.text(args.get("station"), "station")
    scope.require_station(station)  # another site's station: 404, as one that does not exist
    flt = triage.AlertFilter(
        severity=query.choice(args.get("severity"), "severity", SEVERITIES),
        station=station,
        rule=query.text(args.get("rule"), "rule"),
        sites=scope.sites(),
    )
    if not history:
        return flt
    return triage.AlertFilter(
        severity=flt.severity, station=flt.station, rule=flt.rule,
        state=query.choice(args.get("state"), "state", triage.HISTORY_STATES),
        since=query.day(args.get("since"), "since"), until=query.day(args.get("until"), "until"),
        sites=flt.sites,
    )


def _can_ack() -> bool:
    return state().alerts is not None and current_user.is_authenticated and current_user.role in ACK_ROLES


def panel_context(flt: triage.AlertFilter) -> dict[str, Any]:
    """What templates/_alerts_panel.html needs: the groups, counts for the title, the last
    acknowledged alerts, the filter choices."""
    st = state()
    groups = triage.open_groups(st.engine, flt)
    critical, open_count = triage.title_counts(groups)
    return {
        "groups": groups,
        "open_total": sum(g.count for g in groups),
        "critical_count": critical,
        "open_count": open_count,
        "title_count": _title_count(critical, open_count),
        "acked_alerts": alert_store.list_alerts(st.engine, state="acknowledged", limit=ACKED_SHOWN,
                                                sites=scope.sites()),
        "can_ack": _can_ack(),
        "ack_unavailable": st.alerts is None and current_user.role in ACK_ROLES,
        "flt": flt,
        "filter_args": flt.args(),
        "station_ids": scope.station_ids(data.station_sites(st.engine, st.cfg)),
        "rules": sorted(i18n.ALERT_RULES),
        "severities": SEVERITIES[::-1],
    }


def _title_count(critical: int, open_count: int) -> str:
    """The tab title's prefix: critical first, then every open alert ("" when none)."""
    if not open_count:
        return ""
    if critical:
        return _("(%(critical)d critical / %(open)d)", critical=critical, open=open_count)
    return _("(%(open)d)", open=open_count)


@bp.get("/status/alerts")
def panel():
    """The alerts panel alone: the status page fetches it again when an alert changes."""
    flt = alert_filter(request.args)
    return render_template("_alerts_panel.html", **panel_context(flt))


def _ids(values: list[str]) -> list[int]:
    """Alert ids from checkbox values ("12" or a group's "12,15,19"); malformed ones are a 400."""
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            if part.strip():
                number = query.integer(part, "ids", None, 1, 2**63 - 1)
                if number is not None:
                    out.append(number)
    return out


def _back() -> str:
    """Back to the page the form was on (a local path only)."""
    target = request.form.get("next") or ""
    return target if target.startswith("/") and not target.startswith("//") else url_for("pages.status")


@bp.post("/alerts/ack")
@role_required(*ACK_ROLES)
def acknowledge_many():
    st = state()
    back = _back()
    if st.alerts is None:
        flash(_("Alerts cannot be acknowledged: the alert service is not running."), "error")
        return redirect(back)
    ids = _ids(request.form.getlist("ids"))
    comment = (request.form.get("comment") or "").strip()
    if not ids:
        flash(_("Tick the alerts to acknowledge."), "error")
        return redirect(back)
    if len(ids) > ACK_MANY_MAX:
        flash(_("Too many alerts at once (at most %(n)d).", n=ACK_MANY_MAX), "error")
        return redirect(back)
    scope.require_alerts(ids)  # one of another site's alerts: 404, nothing acknowledged
    if not comment:
        flash(_("Write a comment: what was found, what was done."), "error")
        return redirect(back)
    if len(comment) > COMMENT_MAX:
        flash(_("The comment is too long (at most %(n)d characters).", n=COMMENT_MAX), "error")
        return redirect(back)
    done = st.alerts.acknowledge_many(ids, current_user.username, comment)
    _LOG.info("%s acknowledged %d alert(s) at once on the web page", current_user.username, len(done))
    if done:
        flash(_("%(n)d alert(s) acknowledged.", n=len(done)), "ok")
    else:
        flash(_("These alerts were already acknowledged, or do not exist."), "error")
    return redirect(back)


# --- maintenance ---

@bp.post("/maintenance")
@role_required(*ACK_ROLES)
def start_maintenance():
    st = state()
    station = query.text(request.form.get("station"), "station") or ""
    scope.require_station(station)
    if station not in data.station_sites(st.engine, st.cfg):
        flash(_("Unknown station."), "error")
        return redirect(url_for("pages.status"))
    hours = query.integer(request.form.get("hours"), "hours", 0, 0, 10_000) or 0
    try:
        window = maintenance.start(st.engine, station, hours, request.form.get("reason") or "",
                                   current_user.username)
    except maintenance.MaintenanceError as exc:
        flash(i18n.label(MAINTENANCE_ERRORS, exc.code), "error")
        return redirect(url_for("pages.status") + f"#station-{station}")
    flash(_("%(station)s is in maintenance until %(time)s: its alerts are recorded but nobody is notified.",
            station=display_name(st.cfg, station), time=_local(window.ends_at, station)), "ok")
    return redirect(url_for("pages.status"))


@bp.post("/maintenance/end")
@role_required(*ACK_ROLES)
def end_maintenance():
    st = state()
    station = query.text(request.form.get("station"), "station") or ""
    scope.require_station(station)
    try:
        ended = maintenance.end(st.engine, station, current_user.username, request.form.get("comment"))
    except maintenance.MaintenanceError as exc:
        flash(i18n.label(MAINTENANCE_ERRORS, exc.code), "error")
        return redirect(url_for("pages.status") + f"#station-{station}")
    if ended:
        flash(_("Maintenance of %(station)s ended.", station=display_name(st.cfg, station)), "ok")
    else:
        flash(_("This station is not in maintenance."), "error")
    return redirect(url_for("pages.status"))


def _helper(name: str):
    """A template helper of hub.web.pages (registered on the app, so no import of it here)."""
    env = current_app.jinja_env
    return env.filters.get(name) or env.globals[name]


def _local(text: str, station: str) -> str:
    entry = state().cfg.station(station)
    return _helper("localtime")(text, entry.site if entry else None)


MAINTENANCE_ERRORS: dict[str, Any] = {
    "maintenance_station": _l("Choose a station."),
    "maintenance_hours": _l("Give the length in whole hours, 1 to 168."),
    "maintenance_reason": _l("Write the reason (at most 200 characters)."),
    "maintenance_comment": _l("The comment is too long (at most 200 characters)."),
}


# --- history ---

@bp.get("/alerts")
def history():
    st = state()
    flt = alert_filter(request.args, history=True)
    # What an alert id column holds (INTEGER: PostgreSQL refuses a larger number in the query).
    before = query.integer(request.args.get("before"), "before", None, 1, 2**31 - 1)
    rows, next_before = triage.history(st.engine, flt, st.cfg.zone(), before=before)
    since, until = triage.period_bounds(flt, st.cfg.zone())
    args = flt.args()
    return render_template(
        "alerts.html", title=_("Alert history"), rows=rows, flt=flt,
        station_ids=scope.station_ids(data.station_sites(st.engine, st.cfg)), rules=sorted(i18n.ALERT_RULES),
        severities=SEVERITIES[::-1], states=triage.HISTORY_STATES,
        next_url=url_for("alerts.history", before=next_before, **args) if next_before else None,
        first_url=url_for("alerts.history", **args) if before else None,
        csv_url=url_for("alerts.history_csv", **args), xlsx_url=url_for("alerts.history_xlsx", **args),
        close_reason_label=lambda code: i18n.label(CLOSE_REASONS, code),
        # The maintenance periods of the same station and dates (the log keeps each start and end).
        periods=scope.keep(maintenance.periods(st.engine, station=flt.station, since=since, until=until)),
        period_site=lambda station: _site_of(station),
    )


def _site_of(station: str) -> str | None:
    """The station's site in the hub config (its times are shown in that site's zone)."""
    entry = state().cfg.station(station)
    return entry.site if entry is not None else None


def _export() -> tuple[list[str], list[list[Any]], str]:
    st = state()
    flt = alert_filter(request.args, history=True)
    alert_message, localtime = _helper("alert_message"), _helper("localtime")
    rows = triage.export_rows(st.engine, flt, st.cfg.zone())
    header = [str(i18n.label(EXPORT_HEADERS, c)) for c in EXPORT_COLUMNS]
    body = []
    for a in rows:
        body.append([a["id"], localtime(a["raised_at"], a["site"]), i18n.label(i18n.SEVERITIES, a["severity"]),
                     display_name(st.cfg, a["station"]), i18n.label(i18n.ALERT_RULES, a["rule"]), alert_message(a),
                     i18n.label(i18n.ALERT_STATES, a["state"]), a["acked_by"] or "",
                     localtime(a["acked_at"], a["site"]) if a["acked_at"] else "", a["ack_comment"] or "",
                     localtime(a.get("closed_at"), a["site"]) if a.get("closed_at") else "",
                     i18n.label(CLOSE_REASONS, a.get("close_reason")) if a.get("close_reason") else ""])
    period = "_".join(d.isoformat() for d in (flt.since, flt.until) if d) or "all"
    _LOG.info("%s exported %d alerts (%s)", current_user.username, len(body), flt.args() or "all")
    return header, body, period


@bp.get("/alerts.csv")
def history_csv():
    header, body, period = _export()
    return reports.download(table_csv(header, body), "csv", "alerts", request.args.get("station"), period)


@bp.get("/alerts.xlsx")
def history_xlsx():
    header, body, period = _export()
    sheet = _("Alert history")
    xlsx = table_xlsx(header, ((row, False) for row in body), sheet=sheet, title=f"{sheet} {period}")
    return reports.download(xlsx, "xlsx", "alerts", request.args.get("station"), period)


EXPORT_HEADERS: dict[str, Any] = {
    "id": _l("No."),
    "raised_at": _l("Raised"),
    "severity": _l("Severity"),
    "station": _l("Station"),
    "rule": _l("Alert"),
    "message": _l("Details"),
    "state": _l("State"),
    "acked_by": _l("Acknowledged by"),
    "acked_at": _l("Acknowledged at"),
    "ack_comment": _l("Comment"),
    "closed_at": _l("Closed at"),
    "close_reason": _l("Closed because"),
}

CLOSE_REASONS: dict[str, Any] = {
    "back_online": _l("Station back online"),
}
