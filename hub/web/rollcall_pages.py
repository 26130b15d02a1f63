"""The roll-call pages: the sessions, opening one (supervisors and admins), a session's live
roster (present, late, not expected, absent; the page reloads itself while the session is
open), closing it, and its roster as CSV or Excel.

Roles: supervisors and admins open and close; auditors read every session and export; staff
never get here (hub.web.nearmiss_pages.confine_staff).
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Literal

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import pgettext
from flask_login import current_user

from hub.procedures import service as procedures
from hub.registry.trainings import list_trainings
from hub.rollcall import io as rollcall_io
from hub.rollcall import service
from hub.rollcall.messages import ERRORS, KINDS, STATUSES
from hub.rollcall.service import RollcallError, SessionInput
from hub.store.schema import EMPLOYMENT_TYPES, ROLLCALL_KINDS
from hub.web import i18n, reports, scope
from hub.web.auth import role_required
from hub.web.registry_pages import EMPLOYMENTS
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("rollcall", __name__, url_prefix="/rollcall")

RUNNING_ROLES = ("admin", "supervisor")  # open and close sessions
READING_ROLES = ("admin", "supervisor", "auditor")  # read rosters, export
REFRESH_S = 5  # an open session's page reloads itself this often (taps arrive through ingest)
FORM_FIELDS = ("kind", "topic", "training", "starts_at", "window_min", "section", "employment", "staff_numbers",
               "procedure_version_id")

KIND_LABELS: dict[str, Any] = i18n.lazy(KINDS)
STATUS_LABELS: dict[str, Any] = i18n.lazy(STATUSES)


def explain(exc: RollcallError) -> str:
    """A refusal in the reader's language."""
    message = ERRORS.get(exc.code)
    if message is None:
        return exc.code
    if message.context is not None:
        return pgettext(message.context, message.id, **exc.params)
    return _(message.id, **exc.params)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "rollcall_kind_label": lambda k: i18n.label(KIND_LABELS, k),
        "rollcall_status_label": lambda k: i18n.label(STATUS_LABELS, k),
        "rollcall_employment_label": lambda k: i18n.label(EMPLOYMENTS, k),
    }


def _lang() -> Literal["ja", "en"]:
    return "en" if str(get_locale() or "ja") == "en" else "ja"


@bp.get("/")
@role_required(*READING_ROLES)
def index():
    sessions = [s for s in service.list_sessions(state().engine) if _in_scope(s)]
    return render_template("rollcall/index.html", title=_("Roll calls"), sessions=sessions,
                           running=current_user.role in RUNNING_ROLES)


def _in_scope(s: service.Session) -> bool:
    """A session held at (at least one) station of the reader's sites (hub.web.scope)."""
    return not scope.limited() or any(scope.station_visible(station) for station in s.stations)


def _values() -> dict[str, Any]:
    if request.method == "POST":
        values: dict[str, Any] = {k: request.form.get(k, "") for k in FORM_FIELDS}
        values["stations"] = request.form.getlist("stations")
        return values
    start = datetime.now(state().cfg.zone()).replace(second=0, microsecond=0)
    return {"kind": "training", "topic": "", "training": "", "starts_at": start.strftime("%Y-%m-%dT%H:%M"),
            "window_min": "10", "section": "", "employment": "", "staff_numbers": "",
            "procedure_version_id": "", "stations": []}


@bp.route("/new", methods=["GET", "POST"])
@role_required(*RUNNING_ROLES)
def new():
    st = state()
    values = _values()
    error = None
    if request.method == "POST":
        for station in values["stations"]:
            scope.require_station(station or None)  # another site's unit: 404
        try:
            inp = SessionInput(
                kind=values["kind"], topic=values["topic"], training=values["training"] or None,
                starts_at=values["starts_at"], window_min=values["window_min"], stations=tuple(values["stations"]),
                section=values["section"], employment=values["employment"],
                staff_numbers=service.staff_numbers(values["staff_numbers"]),
                procedure_version_id=values["procedure_version_id"] or None)
            rollcall_id = service.open_session(st.engine, st.cfg, current_user.username, inp)
        except RollcallError as exc:
            error = explain(exc)
        else:
            flash(_("Roll call %(id)s is open: taps at its units now check people in.", id=rollcall_id), "ok")
            return redirect(url_for("rollcall.session", rollcall_id=rollcall_id))
    return render_template(
        "rollcall/new.html", title=_("Open a roll call"), values=values, error=error, kinds=ROLLCALL_KINDS,
        trainings=[t["name"] for t in list_trainings(st.engine)], units={s: kind for s, kind in service.checkin_stations(st.engine, st.cfg).items() if scope.station_visible(s)},
        sections=service.sections(st.engine), employments=EMPLOYMENT_TYPES,
        # A reading: the current version of each procedure that has one.
        readings=[(d.current_version_id, d.name, d.current) for d in procedures.list_documents(st.engine)
                  if d.current_version_id is not None]), (400 if error else 200)


def _roster(rollcall_id: int) -> service.Roster:
    try:
        found = service.roster(state().engine, rollcall_id)
    except RollcallError:
        abort(404)
    if not _in_scope(found.session):
        abort(404)  # another site's roll call, answered as one that does not exist
    return found


@bp.get("/<int:rollcall_id>")
@role_required(*READING_ROLES)
def session(rollcall_id: int):
    roster = _roster(rollcall_id)
    reading = None
    if roster.session.procedure_version_id is not None:
        with state().engine.connect() as conn:
            reading = procedures.find_version(conn, roster.session.procedure_version_id)
    return render_template("rollcall/session.html", title=_("Roll call %(id)s", id=rollcall_id), roster=roster,
                           reading=reading,
                           s=roster.session, running=current_user.role in RUNNING_ROLES,
                           refresh_s=REFRESH_S if roster.session.is_open else None)


@bp.post("/<int:rollcall_id>/close")
@role_required(*RUNNING_ROLES)
def close(rollcall_id: int):
    st = state()
    _roster(rollcall_id)  # another site's roll call: 404 before anything is written
    try:
        closed = service.close_session(st.engine, st.cfg, current_user.username, rollcall_id)
    except RollcallError as exc:
        if exc.code == "rollcall.not_found":
            abort(404)
        flash(_("Not closed: %(reason)s", reason=explain(exc)), "error")
    else:
        flash(_("Roll call %(id)s closed: %(present)s present, %(late)s late. The stations' policies are being "
                "published again.", id=rollcall_id, present=len(closed.present), late=len(closed.late)), "ok")
    return redirect(url_for("rollcall.session", rollcall_id=rollcall_id))


def _export(rollcall_id: int, fmt: Literal["csv", "xlsx"]) -> Response:
    st = state()
    roster = _roster(rollcall_id)
    body = rollcall_io.export_roster(roster, fmt, st.cfg.zone(), _lang())
    _LOG.info("%s exported roll call %d as %s", current_user.username, rollcall_id, fmt)
    name = f"rollcall_{rollcall_id}.{fmt}"
    return reports.attachment(body, name)


@bp.get("/<int:rollcall_id>/roster.csv")
@role_required(*READING_ROLES)
def export_csv(rollcall_id: int):
    return _export(rollcall_id, "csv")


@bp.get("/<int:rollcall_id>/roster.xlsx")
@role_required(*READING_ROLES)
def export_xlsx(rollcall_id: int):
    return _export(rollcall_id, "xlsx")
