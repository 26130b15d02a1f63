"""The registry's pages: people and their badges, the training catalogue, sessions and their
rosters, attendance import and export (CSV and Excel), who is untrained or about to expire
per station kind, the designations of each station, and the registry's change log.

Everyone signed in (admin, supervisor, auditor) may read these pages; only admins change
anything (403 otherwise). Every change goes through hub.registry with the signed-in user's
name as the actor, so it is logged with the row before and after, and on commit the hub
compiles and publishes the stations' policies at once: a badge revoked here is refused at
the stations within seconds, with the hub reachable, and from then on with it down too.

The registry refuses with a code and parameters (hub.registry.messages); :func:`explain`
words them in the reader's language through the page's catalogs.
"""
from __future__ import annotations

import json
import logging
import re
from datetime import date, datetime, timedelta
from typing import Any, Literal

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import format_date, get_locale
from flask_babel import gettext as _
from flask_babel import pgettext
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp
from flask_login import current_user
from sqlalchemy import select

from hub import registry
from hub.catalog import Msg
from hub.hours import site_holidays
from hub.procedures import service as procedures
from hub.nearmiss.messages import CATEGORIES as NEARMISS_CATEGORIES
from hub.nearmiss.messages import SEVERITIES as NEARMISS_SEVERITIES
from hub.nearmiss.messages import STATES as NEARMISS_STATES
from hub.nearmiss.model import FIELDS as NEARMISS_FIELDS
from hub.registry.common import STATION_KINDS
from hub.registry.common import day as day_value
from hub.registry.common import staff_no as staff_no_text
from hub.registry.messages import ERRORS, PROBLEMS
from hub.registry.people import is_active
from hub.registry.trainings import latest_attended, required_for, standing
from hub.store.schema import EMPLOYMENT_TYPES, events
from hub.timetext import time_text
from hub.web import i18n, query, reports, scope, uploads
from hub.web.state import state
from hub.web.auth import role_required

_LOG = logging.getLogger(__name__)

bp = Blueprint("registry", __name__, url_prefix="/registry")

ADMIN = "admin"
RECENT_USES = 30
LOG_LIMIT = 300
GAP_DAYS = 30  # "expiring": within this many days, unless the page asks otherwise
ROSTER_DAYS = 14  # a shredder's roster shown from today on
DAYS_OFF_SHOWN = 90  # a station's page lists its site's days off this many days ahead
_SPLIT_RE = re.compile(r"[\s,、，;]+")

# --- labels ---

EMPLOYMENTS: dict[str, Any] = {
    "regular": _l("Regular"),
    "shokutaku": _l("Shokutaku (contract)"),
    "part_time": _l("Part-time"),
}
# "Active": a badge that works (有効), a person still employed (在職): two words in Japanese.
BADGE_STATES: dict[str, Any] = {
    "active": _lp("badge", "Active"),
    "lost": _l("Lost"),
    "revoked": _l("Revoked"),
    "expired": _l("Expired"),
    "not_yet": _l("Not yet valid"),
}
DESIGNATION_ROLES: dict[str, Any] = {
    "holder": _l("Responsible holder"),
    "standin": _l("Stand-in"),
}
OTHERS: dict[str, Any] = {
    "flag": _l("Allow, flag and alert the supervisors"),
    "deny": _l("Refuse"),
}
GAP_STATES: dict[str, Any] = {
    "untrained": _l("Not taken"),
    "expired": _l("Expired"),
    "expiring": _l("Expires soon"),
    "trained": _l("Trained"),
    "training_expired": _l("Expired"),
    "valid": _l("Valid"),
    "earlier": _l("Earlier attendance"),
}
LOG_ENTITIES: dict[str, Any] = {
    "person": _l("Person"),
    "badge": _l("Badge"),
    "training": _l("Training"),
    "session": _l("Training session"),
    "attendance": _l("Attendance"),
    "designation": _l("Designation"),
    "station_settings": _l("Station settings"),
    "after_hours_user": _l("After-hours user"),
    "roster": _l("Shredder roster"),
    "api_token": _l("API token"),  # hub.accounts.tokens: made and revoked on the user's own page
    # hub.procedures: documents, their versions, confirmations, a training's required reading.
    "procedure": _l("Procedure or notice"),
    "procedure_version": _l("Procedure version"),
    "confirmation": _l("Read and confirmed"),
    "training_reading": _l("Training's required reading"),
    "nearmiss_case": _l("Near-miss case"),  # hub.nearmiss.io: cases imported from a file
    "rollcall": _l("Roll call"),  # hub.rollcall: opened and closed on /rollcall/
    "rollcall_checkin": _l("Roll-call outcome"),
}
LOG_ACTIONS: dict[str, Any] = {
    "add": _l("Added"),
    "update": _l("Changed"),
    "delete": _l("Deleted"),
    "revoke": _l("Revoked"),
    "lose": _l("Reported lost"),
    "reinstate": _l("Reinstated"),
    "open": _l("Opened"),
    "close": _l("Closed"),
    "present": _l("Present"),
    "late": _l("Late"),
    "absent": _l("Absent"),
    "unexpected": _l("Not expected"),
}
FIELDS: dict[str, Any] = {
    "staff_no": _l("Staff number"),
    "name": _l("Name"),
    "kana": _l("Reading (kana)"),
    "section": _l("Section"),
    "employment": _l("Employment"),
    "role": _l("Job role"),
    "active_from": _l("Active from"),
    "active_to": _l("Last active day"),
    "badge_id": _l("Badge ID"),
    "valid_from": _l("Valid from"),
    "valid_to": _l("Valid until"),
    "state": _l("State"),
    "state_changed_at": _l("State changed at"),
    "station_kinds": _l("Required for"),
    "valid_days": _l("Valid for (days)"),
    "training": _l("Training"),
    "held_on": _l("Held on"),
    "place": _l("Place"),
    "notes": _l("Notes"),
    "station": _l("Station"),
    "others": _l("Others"),
    "after_hours": _l("After hours"),
    "day": _l("Day"),
    "staff_nos": _l("Staff numbers"),
    "print_user": _l("User name at the print server"),
    "designation": _l("Designation"),
    # An imported near-miss case (hub.nearmiss.io): its fields as the near-miss pages name them.
    **{k: v for k, v in i18n.lazy(NEARMISS_FIELDS).items() if k != "place"},
    "anonymous": _l("Anonymous"),
    "reporter": _l("Reporter"),
    "file": _l("File"),
    "kind": _l("Kind"),
    "topic": _l("Topic"),
    "stations": _l("Units"),
    "starts_at": _l("Start"),
    "window_min": _l("Check-in window (minutes)"),
    "expected": _l("Who is expected"),
    "opened_at": _l("Opened"),
    "opened_by": _l("Opened by"),
    "closed_at": _l("Closed"),
    "closed_by": _l("Closed by"),
    "status": _l("Status"),
    "tapped_at": _l("Tapped at"),
    "event_id": _l("Event"),
    "counts": _l("Counts"),
    "procedure_version_id": _l("Procedure version"),
}
_HIDDEN_FIELDS = {"id", "person_id", "training_id", "session_id", "training_session_id"}

def explain(message: Msg | None, code: str, params: Any = None) -> str:
    """A registry refusal (its code's sentence in hub.registry.messages, and its parameters)
    in the reader's language, through the page's catalogs; the bare code if it has no sentence."""
    if message is None:
        return code
    values = dict(params or {})
    if message.context is not None:
        return pgettext(message.context, message.id, **values)
    return _(message.id, **values)


def _problem(p: registry.RowProblem) -> dict[str, Any]:
    """An import problem as the page lists it: line, column (as headed in the file) and why."""
    column = _("column %(n)s", n=p.column_no) if p.column_no is not None else p.column
    return {"line": p.line, "column": column, "reason": explain(PROBLEMS.get(p.code), p.code, p.params)}


def _label(table: dict[str, Any], key: Any) -> str:
    return i18n.label(table, key) if isinstance(key, str) or key is None else str(key)


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "is_admin": current_user.is_authenticated and current_user.role == ADMIN,
        "employment_label": lambda k: _label(EMPLOYMENTS, k),
        "badge_state_label": lambda k: _label(BADGE_STATES, k),
        "designation_label": lambda k: _label(DESIGNATION_ROLES, k),
        "others_label": lambda k: _label(OTHERS, k),
        "gap_label": lambda k: _label(GAP_STATES, k),
        "entity_label": lambda k: _label(LOG_ENTITIES, k),
        "action_label": lambda k: _label(LOG_ACTIONS, k),
        "field_label": lambda k: _label(FIELDS, k),
        "kinds_text": lambda kinds: "、".join(i18n.label(i18n.STATION_KINDS, k) for k in kinds) or "—",
        "employments": EMPLOYMENT_TYPES,
        "station_kinds": STATION_KINDS,
        "day_text": lambda d: d.isoformat() if isinstance(d, (date, datetime)) else (d or ""),
    }


uploads.exempt(bp, "import_page")  # the file is larger than the form limit: checked in the view


# --- helpers ---

def _engine():
    return state().engine


def _today() -> date:
    return datetime.now(state().cfg.zone()).date()


def _actor() -> str:
    return current_user.username


def _form(name: str) -> str:
    return (request.form.get(name) or "").strip()


def _failed(exc: registry.RegistryError) -> None:
    reason = explain(ERRORS.get(exc.code), exc.code, exc.params)
    flash(_("Not saved: %(reason)s", reason=reason), "error")


def _done(changed: bool, message: str) -> None:
    flash(message if changed else _("Nothing changed."), "ok")


def _numbers(text: str) -> list[str]:
    """Staff numbers written one per line, or separated by spaces or commas."""
    return [n for n in _SPLIT_RE.split(text or "") if n]


def _person_or_404(staff_no: str) -> dict[str, Any]:
    try:
        return registry.get_person(_engine(), staff_no)
    except registry.RegistryError:
        abort(404)


def _badge_state(badge: dict[str, Any], today: date) -> str:
    """What a badge is today: its stored state, or expired / not yet valid by its dates."""
    if badge["state"] != "active":
        return badge["state"]
    if badge["valid_to"] is not None and badge["valid_to"] < today:
        return "expired"
    if badge["valid_from"] is not None and badge["valid_from"] > today:
        return "not_yet"
    return "active"


def _stations() -> dict[str, tuple[str, str | None]]:
    """Station -> (site, kind), of the reader's sites (hub.web.scope): another site's station
    answers 404 on its designations page."""
    return {station: (site, kind) for station, (site, kind) in registry.stations_to_compile(_engine(), state().cfg).items()
            if scope.site_visible(site)}


def _people_choices() -> list[dict[str, Any]]:
    """People active today or starting later, for the staff number fields' suggestions."""
    today = _today()
    return [p for p in registry.list_people(_engine())
            if p["active_to"] is None or p["active_to"] >= today]


# --- people ---

@bp.get("/")
def index():
    return redirect(url_for("registry.people"))


@bp.get("/people")
def people():
    query = (request.args.get("q") or "").strip()
    engine = _engine()
    found = registry.search_people(engine, query) if query else registry.list_people(engine)
    today = _today()
    for person in found:
        person["active"] = is_active(person, today)
    return render_template("registry/people.html", title=_("People"), people=found, query=query)


_PERSON_FORM = ("name", "kana", "section", "employment", "role", "active_from", "active_to", "print_user")


def _person_values() -> dict[str, Any]:
    values: dict[str, Any] = {k: _form(k) for k in _PERSON_FORM}
    for key in ("active_from", "active_to"):
        values[key] = values[key] or None
    if values["employment"] not in EMPLOYMENT_TYPES:
        values["employment"] = "regular"
    return values


@bp.route("/people/new", methods=["GET", "POST"])
@role_required(ADMIN)
def person_new():
    values: dict[str, Any] = {"staff_no": "", "employment": "regular"}
    if request.method == "POST":
        fields = _person_values()
        values = {"staff_no": _form("staff_no"), **fields}
        try:
            number = staff_no_text(values["staff_no"])  # as stored: full-width digits made plain
            name = fields.pop("name")
            registry.add_person(_engine(), _actor(), number, name, **fields)
        except registry.RegistryError as exc:
            _failed(exc)
            return render_template("registry/person_form.html", title=_("Add a person"), person=values,
                                   new=True), 400
        _LOG.info("%s added person %s on the web page", _actor(), number)
        flash(_("Person added. Give them a badge below."), "ok")
        return redirect(url_for("registry.person", staff_no=number))
    return render_template("registry/person_form.html", title=_("Add a person"), person=values, new=True)


@bp.route("/people/<staff_no>/edit", methods=["GET", "POST"])
@role_required(ADMIN)
def person_edit(staff_no: str):
    person = _person_or_404(staff_no)
    if request.method == "POST":
        values = _person_values()
        try:
            changed = registry.update_person(_engine(), _actor(), person["staff_no"], **values)
        except registry.RegistryError as exc:
            _failed(exc)
            return render_template("registry/person_form.html", title=_("Edit person"),
                                   person={**person, **values}, new=False), 400
        _done(changed, _("Saved."))
        return redirect(url_for("registry.person", staff_no=person["staff_no"]))
    return render_template("registry/person_form.html", title=_("Edit person"), person=person, new=False)


@bp.get("/people/<staff_no>")
def person(staff_no: str):
    engine = _engine()
    person = _person_or_404(staff_no)
    today = _today()
    for badge in person["badges"]:
        badge["shown_state"] = _badge_state(badge, today)
    record = registry.person_record(engine, person["staff_no"])
    newest: set[str] = set()
    for row in record:
        if row["training"] in newest:
            row["status"] = "earlier"
            continue
        newest.add(row["training"])
        ends = row["expires_on"]
        row["status"] = ("expired" if ends is not None and ends <= today
                         else "expiring" if ends is not None and ends <= today + timedelta(days=GAP_DAYS)
                         else "valid")
    return render_template(
        "registry/person.html", title=person["name"], person=person, today=today,
        active=is_active(person, today), record=record,
        standings=_standings(person["id"], today), places=_places(person["staff_no"], today),
        uses=_recent_uses(person["staff_no"]),
        decisions=_decisions(person["badges"]),
    )


def _decisions(badges: list[dict[str, Any]]) -> dict[str, list[registry.StationDecision]] | None:
    """Each badge's decision at every station, by the policies compiled now; None (the page says
    so) when the stored registry cannot be compiled: the rest of the page still shows."""
    try:
        return {b["badge_id"]: registry.badge_decisions(_engine(), state().cfg, b["badge_id"]) for b in badges}
    except Exception:
        _LOG.exception("the stations' decisions for badges %s could not be worked out",
                       [b["badge_id"] for b in badges])
        return None


def _standings(person_id: int, today: date) -> list[dict[str, Any]]:
    """Per station kind that requires training: trained (until when), untrained or expired."""
    engine = _engine()
    catalogue = registry.list_trainings(engine)
    with engine.connect() as conn:
        latest = latest_attended(conn, today)
    out = []
    for kind in STATION_KINDS:
        required = required_for(catalogue, kind)
        if not required:
            continue
        status, until, _details = standing(required, latest, person_id, today)
        out.append({"kind": kind, "status": status, "until": until,
                    "trainings": [t["name"] for t in required]})
    return out


def _places(staff_no: str, today: date) -> list[dict[str, Any]]:
    """Where the person is designated, on an after-hours list, or on today's shredder roster."""
    engine = _engine()
    out = []
    for station, (_site, kind) in _stations().items():
        held = registry.station_designations(engine, station)
        if held["holder"] and held["holder"]["staff_no"] == staff_no:
            out.append({"station": station, "kind": kind, "what": _("Responsible holder")})
        if any(p["staff_no"] == staff_no for p in held["stand_ins"]):
            out.append({"station": station, "kind": kind, "what": _("Stand-in")})
        if any(p["staff_no"] == staff_no for p in registry.after_hours_list(engine, station)):
            out.append({"station": station, "kind": kind, "what": _("May use it after hours")})
        if kind == "shredder" and any(p["staff_no"] == staff_no for p in registry.roster(engine, station, today)):
            out.append({"station": station, "kind": kind, "what": _("On today's shredder roster")})
    return out


def _recent_uses(staff_no: str) -> list[dict[str, Any]]:
    """The person's latest events at every station, newest first (the (person, at_utc) index)."""
    with _engine().connect() as conn:
        rows = conn.execute(
            select(events.c.row_no, events.c.site, events.c.station, events.c.seq, events.c.event_id,
                   events.c.kind, events.c.at, events.c.badge, events.c.person, events.c.data)
            .where(events.c.person == staff_no)
            .order_by(events.c.at_utc.desc(), events.c.row_no.desc()).limit(RECENT_USES)).mappings()
        return [dict(r) for r in rows]


# --- badges ---

@bp.post("/people/<staff_no>/badges")
@role_required(ADMIN)
def badge_add(staff_no: str):
    person = _person_or_404(staff_no)
    try:
        bid = registry.add_badge(_engine(), _actor(), person["staff_no"], _form("badge_id"),
                                 valid_from=_form("valid_from") or None, valid_to=_form("valid_to") or None)
    except registry.RegistryError as exc:
        _failed(exc)
    else:
        _LOG.info("%s gave badge %s to %s on the web page", _actor(), bid, person["staff_no"])
        flash(_("Badge %(badge)s added. What each station decides for it, by the policy being published "
                "now, is shown under the badges.", badge=bid), "ok")
    return redirect(url_for("registry.person", staff_no=person["staff_no"]) + "#badges")


_BADGE_ACTIONS = {
    "revoke": (registry.revoke_badge,
               _l("Badge %(badge)s revoked: every station refuses it from the policy being published now.")),
    "lost": (registry.mark_badge_lost,
             _l("Badge %(badge)s reported lost: every station refuses it from the policy being published now.")),
    "reinstate": (registry.reinstate_badge, _l("Badge %(badge)s reinstated.")),
}


@bp.post("/badges/<badge>/<action>")
@role_required(ADMIN)
def badge_state(badge: str, action: str):
    if action not in _BADGE_ACTIONS:
        abort(404)
    try:
        found = registry.find_badge(_engine(), badge)
    except registry.RegistryError:
        abort(404)
    fn, message = _BADGE_ACTIONS[action]
    try:
        changed = fn(_engine(), _actor(), found["badge_id"])
    except registry.RegistryError as exc:
        _failed(exc)
    else:
        _LOG.info("%s: badge %s %s on the web page", _actor(), found["badge_id"], action)
        _done(changed, str(message) % {"badge": found["badge_id"]})
    return redirect(url_for("registry.person", staff_no=found["staff_no"]) + "#badges")


# --- trainings ---

def _valid_days(text: str) -> int | None | str:
    """The form's "valid for (days)": empty is never expires; text that is no number stays
    text, for the registry to refuse with its message."""
    if not text:
        return None
    return int(text) if text.isdigit() else text


@bp.get("/trainings")
def trainings():
    return render_template("registry/trainings.html", title=_("Trainings"),
                           trainings=registry.list_trainings(_engine()),
                           readings=procedures.training_readings(_engine()))


@bp.post("/trainings")
@role_required(ADMIN)
def training_add():
    kinds = request.form.getlist("station_kinds")
    try:
        registry.add_training(_engine(), _actor(), _form("name"), kinds, _valid_days(_form("valid_days")))
    except registry.RegistryError as exc:
        _failed(exc)
    else:
        flash(_("Training added."), "ok")
    return redirect(url_for("registry.trainings"))


@bp.post("/trainings/<int:training_id>")
@role_required(ADMIN)
def training_edit(training_id: int):
    found = next((t for t in registry.list_trainings(_engine()) if t["id"] == training_id), None)
    if found is None:
        abort(404)
    try:
        changed = registry.update_training(_engine(), _actor(), found["name"],
                                           station_kinds=request.form.getlist("station_kinds"),
                                           valid_days=_valid_days(_form("valid_days")))
    except registry.RegistryError as exc:
        _failed(exc)
    else:
        _done(changed, _("Saved: the stations get policies compiled with it now."))
    return redirect(url_for("registry.trainings"))


# --- sessions ---

@bp.get("/sessions")
def sessions():
    training = (request.args.get("training") or "").strip() or None
    engine = _engine()
    return render_template("registry/sessions.html", title=_("Training sessions"),
                           sessions=registry.list_sessions(engine, training=training), training=training,
                           trainings=registry.list_trainings(engine), today=_today())


@bp.post("/sessions")
@role_required(ADMIN)
def session_add():
    try:
        new_id = registry.add_session(_engine(), _actor(), _form("training"), _form("held_on"),
                                      place=_form("place"), notes=_form("notes"))
    except registry.RegistryError as exc:
        _failed(exc)
        return redirect(url_for("registry.sessions"))
    flash(_("Session added. Record who attended."), "ok")
    return redirect(url_for("registry.session", session_id=new_id))


@bp.get("/sessions/<int:session_id>")
def session(session_id: int):
    try:
        roster = registry.session_roster(_engine(), session_id)
    except registry.RegistryError:
        abort(404)
    return render_template("registry/session.html", title=_("Training session"), s=roster,
                           people=_people_choices())


@bp.post("/sessions/<int:session_id>/attendance")
@role_required(ADMIN)
def attendance_add(session_id: int):
    numbers = _numbers(request.form.get("staff_nos", ""))
    if not numbers:
        flash(_("Write the staff numbers of those who attended."), "error")
    else:
        try:
            added = registry.record_attendance(_engine(), _actor(), session_id, numbers)
        except registry.RegistryError as exc:
            _failed(exc)
        else:
            flash(_("%(n)d attendance(s) recorded (%(m)d already on record).", n=added, m=len(set(numbers)) - added),
                  "ok")
    return redirect(url_for("registry.session", session_id=session_id))


@bp.post("/sessions/<int:session_id>/attendance/<staff_no>/remove")
@role_required(ADMIN)
def attendance_remove(session_id: int, staff_no: str):
    try:
        changed = registry.remove_attendance(_engine(), _actor(), session_id, staff_no)
    except registry.RegistryError as exc:
        _failed(exc)
    else:
        _done(changed, _("Attendance removed."))
    return redirect(url_for("registry.session", session_id=session_id))


@bp.post("/sessions/<int:session_id>/delete")
@role_required(ADMIN)
def session_delete(session_id: int):
    try:
        gone = registry.delete_session(_engine(), _actor(), session_id)
    except registry.RegistryError as exc:
        _failed(exc)
        return redirect(url_for("registry.session", session_id=session_id))
    flash(_("Session deleted with its %(n)d attendance(s).", n=gone), "ok")
    return redirect(url_for("registry.sessions"))


# --- import and export ---

@bp.route("/import", methods=["GET", "POST"])
def import_page():
    if request.method == "GET":
        return render_template("registry/import.html", title=_("Import attendance"), problems=None,
                               report=None, filename=None)
    if current_user.role != ADMIN:
        abort(403)
    upload = uploads.received()
    if upload is None:
        return redirect(url_for("registry.import_page"))
    try:
        report = registry.import_attendance(_engine(), _actor(), upload.data, filename=upload.filename,
                                            today=_today())
    except registry.ImportRejected as exc:
        _LOG.info("%s: attendance import of %s refused with %d problem(s)", _actor(), upload.filename,
                  len(exc.problems))
        problems = [_problem(p) for p in exc.problems]
        return render_template("registry/import.html", title=_("Import attendance"), problems=problems,
                               report=None, filename=upload.filename), 400
    except registry.RegistryError as exc:
        _failed(exc)
        return redirect(url_for("registry.import_page"))
    return render_template("registry/import.html", title=_("Import attendance"), problems=None,
                           report=report, filename=upload.filename)


def _export(fmt: Literal["csv", "xlsx"]) -> Response:
    args = request.args
    since = query.day(args.get("since"), "since")
    until = query.day(args.get("until"), "until")
    training = (args.get("training") or "").strip() or None
    lang: Literal["ja", "en"] = "en" if str(get_locale() or "ja") == "en" else "ja"
    body = registry.export_attendance(_engine(), fmt, training=training, since=since, until=until, lang=lang)
    _LOG.info("%s exported attendance (%s) as %s", current_user.username, training or "all trainings", fmt)
    name = f"attendance_{since.isoformat() if since else 'all'}_{(until or _today()).isoformat()}.{fmt}"
    return reports.attachment(body, name)


@bp.get("/attendance.csv")
def export_csv():
    return _export("csv")


@bp.get("/attendance.xlsx")
def export_xlsx():
    return _export("xlsx")


# --- training gaps ---

@bp.get("/gaps")
def gaps():
    within = query.integer(request.args.get("within"), "within", GAP_DAYS, 0, 366)
    wanted = query.choice(request.args.get("kind"), "kind", STATION_KINDS)
    engine = _engine()
    today = _today()
    catalogue = registry.list_trainings(engine)
    sections = []
    for kind in (wanted,) if wanted else STATION_KINDS:
        required = required_for(catalogue, kind)
        sections.append({"kind": kind, "required": [t["name"] for t in required],
                         "rows": registry.training_gaps(engine, kind, today, within_days=within) if required else []})
    return render_template("registry/gaps.html", title=_("Untrained or expiring"), sections=sections,
                           within=within, kind=wanted, today=today)


# --- designations ---

@bp.get("/designations")
def designations():
    engine = _engine()
    today = _today()
    rows = []
    for station, (site, kind) in _stations().items():
        rows.append({"station": station, "site": site, "kind": kind,
                     **registry.station_designations(engine, station),
                     "settings": registry.get_station_settings(engine, station),
                     "after_hours": registry.after_hours_list(engine, station),
                     "roster": registry.roster(engine, station, today) if kind == "shredder" else []})
    return render_template("registry/designations.html", title=_("Designations"), rows=rows)


def _station_or_404(station: str) -> tuple[str, str | None]:
    found = _stations().get(station)
    if found is None:
        abort(404)
    return found


@bp.get("/designations/<station>")
def station(station: str):
    site, kind = _station_or_404(station)
    engine = _engine()
    today = _today()
    roster = {}
    if kind == "shredder":
        table = registry.roster_table(engine, station, today, today + timedelta(days=ROSTER_DAYS - 1))
        roster = {today + timedelta(days=n): table.get(today + timedelta(days=n), []) for n in range(ROSTER_DAYS)}
    names = {p["staff_no"]: p["name"] for p in registry.list_people(engine)}
    lang = "en" if str(get_locale() or "ja") == "en" else "ja"
    days_off = [(off, format_date(d, "EEE"))
                for d, off in site_holidays(state().cfg, site, today, today + timedelta(days=DAYS_OFF_SHOWN),
                                            language=lang).items()]
    return render_template(
        "registry/station.html", title=_("Designations"), station=station, site=site, kind=kind,
        held=registry.station_designations(engine, station),
        settings=registry.get_station_settings(engine, station),
        after_hours=registry.after_hours_list(engine, station), roster=roster, names=names,
        people=_people_choices(), today=today, days_off=days_off, days_off_shown=DAYS_OFF_SHOWN,
        holiday_calendar=state().cfg.site(site).holiday_calendar,
    )


@bp.post("/designations/<station>")
@role_required(ADMIN)
def station_change(station: str):
    site, kind = _station_or_404(station)
    engine, actor = _engine(), _actor()
    op = request.form.get("op", "")
    number = _form("staff_no")
    try:
        if op == "holder":
            changed = registry.set_holder(engine, actor, station, number)
        elif op == "standin":
            changed = registry.add_stand_in(engine, actor, station, number)
        elif op == "remove":
            changed = registry.remove_designation(engine, actor, station, number)
        elif op == "settings":
            changed = registry.set_station_settings(engine, actor, station, others=_form("others") or None,
                                                    after_hours=_form("after_hours") or None)
        elif op == "after_hours_add":
            changed = registry.add_after_hours_user(engine, actor, station, number)
        elif op == "after_hours_remove":
            changed = registry.remove_after_hours_user(engine, actor, station, number)
        elif op == "roster" and kind == "shredder":
            changed = registry.set_roster(engine, actor, station, _form("day"), _numbers(_form("staff_nos")))
        elif op == "rotation" and kind == "shredder":
            teams = [_numbers(line) for line in request.form.get("teams", "").splitlines() if _numbers(line)]
            first = day_value(_form("first"), "first", optional=False)
            last = day_value(_form("last"), "last", optional=False)
            # fill_rotation refuses more than a year; resolve the days off only for what it takes.
            off = site_holidays(state().cfg, site, first, last) if (last - first).days <= 366 else {}
            changed = bool(registry.fill_rotation(engine, actor, station, first, last, teams, skip=off))
        else:
            abort(400, description="unknown change")
    except registry.RegistryError as exc:
        _failed(exc)
    else:
        _done(changed, _("Saved: the station gets its new policy now."))
    return redirect(url_for("registry.station", station=station))


# --- change log ---

# Logged codes shown as words: (entity, field) -> labels; "role" of a designation is the
# designation (holder, stand-in), of a person their job title (free text, shown as it is).
_VALUE_LABELS: dict[tuple[str, str], dict[str, Any]] = {
    ("person", "employment"): EMPLOYMENTS,
    ("badge", "state"): BADGE_STATES,
    ("designation", "role"): DESIGNATION_ROLES,
    ("station_settings", "others"): OTHERS,
    ("station_settings", "after_hours"): OTHERS,
    ("nearmiss_case", "category"): i18n.lazy(NEARMISS_CATEGORIES),
    ("nearmiss_case", "severity"): i18n.lazy(NEARMISS_SEVERITIES),
    ("nearmiss_case", "state"): i18n.lazy(NEARMISS_STATES),
}


def _shown(entity: str, field: str, value: Any) -> Any:
    labels = _VALUE_LABELS.get((entity, field))
    if labels is not None and isinstance(value, str):
        return i18n.label(labels, value)
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if (entity, field) == ("training", "station_kinds") and isinstance(value, list):
        return [i18n.label(i18n.STATION_KINDS, k) for k in value]
    return value


def _changes(entry: registry.LogEntry) -> list[tuple[str, Any, Any]]:
    """(field, before, after) of a log row: the changed fields of an update, every field of
    an addition or a deletion; codes in words."""
    before, after = entry.before or {}, entry.after or {}
    keys = [k for k in dict.fromkeys([*before, *after]) if k not in _HIDDEN_FIELDS]
    if entry.before is not None and entry.after is not None:
        keys = [k for k in keys if before.get(k) != after.get(k)]
    field = lambda k: "designation" if (entry.entity, k) == ("designation", "role") else k  # noqa: E731
    return [(field(k), _shown(entry.entity, k, before.get(k)), _shown(entry.entity, k, after.get(k)))
            for k in keys]


@bp.get("/log")
def change_log():
    args = request.args
    entity = (args.get("entity") or "").strip() or None
    key = (args.get("key") or "").strip() or None
    actor = (args.get("actor") or "").strip() or None
    entries = registry.history(_engine(), entity=entity, key=key, actor=actor, limit=LOG_LIMIT)
    rows = [{"entry": e, "changes": _changes(e)} for e in entries]
    return render_template("registry/log.html", title=_("Change log"), rows=rows, entity=entity, key=key,
                           actor=actor, entities=LOG_ENTITIES, limit=LOG_LIMIT)


def show_value(value: Any) -> str:
    """A logged value as text: lists joined, None as a dash, a stored time in the hub's zone."""
    if value is None:
        return "—"
    if isinstance(value, str) and "T" in value:
        shown = time_text(value, state().cfg.zone())  # stored as UTC text (a badge's state_changed_at)
        if shown:
            return shown
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "—"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


bp.add_app_template_filter(show_value, "show_value")
