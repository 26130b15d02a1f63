"""The near-miss (ヒヤリハット) pages: file a case (also from an alert or an event), read the
shared ones, review and share (supervisors), the analysis with its charts, import and export.

Roles: everyone signed in may file and read the shared cases and their own; ``staff`` may do
nothing else anywhere (:func:`confine_staff`, run before every request, refuses every other
page with 403). Supervisors and admins review, share, turn alerts and events into cases, import,
and see an anonymous reporter's name; auditors read every case, the analysis and the exports.
"""
from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any, Literal

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import pgettext
from flask_login import current_user

from hub.catalog import Msg
from hub.ledgers.monthly_charts import bar_chart
from hub.nearmiss import digest
from hub.nearmiss import io as nearmiss_io
from hub.nearmiss import service
from hub.nearmiss.messages import ANONYMOUS, CATEGORIES, ERRORS, PROBLEMS, SEVERITIES, STATES
from hub.nearmiss.model import FIELDS, READING_ROLES, SUPERVISING_ROLES, Case, CaseInput, NearMissError
from hub.stations.directory import display_name
from hub.store.schema import NEARMISS_CATEGORIES, NEARMISS_SEVERITIES, NEARMISS_STATES
from hub.web import data, i18n, query, reports, scope, uploads
from hub.web.auth import role_required
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("nearmiss", __name__, url_prefix="/nearmiss")

STAFF = "staff"
# All a staff user may reach: these pages, signing out, the language switch, static files.
STAFF_ENDPOINTS = {"nearmiss.index", "nearmiss.new", "nearmiss.case", "auth.login", "auth.logout",
                   "auth.language", "static", "ops.healthz"}
ANALYSIS_MONTHS = 12

CATEGORY_LABELS: dict[str, Any] = i18n.lazy(CATEGORIES)
SEVERITY_LABELS: dict[str, Any] = i18n.lazy(SEVERITIES)
STATE_LABELS: dict[str, Any] = i18n.lazy(STATES)


def confine_staff():
    """Before every request: a ``staff`` user gets 403 anywhere but the near-miss pages."""
    if current_user.is_authenticated and current_user.role == STAFF and request.endpoint not in STAFF_ENDPOINTS:
        _LOG.info("staff user %s refused %s", current_user.username, request.path)
        abort(403)
    return None


def _say(message: Msg | None, code: str, params: dict[str, Any]) -> str:
    if message is None:
        return code
    if message.context is not None:
        return pgettext(message.context, message.id, **params)
    return _(message.id, **params)


def explain(exc: NearMissError) -> str:
    """A refusal in the reader's language."""
    params = dict(exc.params)
    if params.get("field") in FIELDS:
        params["field"] = _say(FIELDS[params["field"]], params["field"], {})
    if "state" in params and params["state"] in STATES:
        params["state"] = str(STATE_LABELS[params["state"]])
    return _say(ERRORS.get(exc.code), exc.code, params)


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {
        "category_label": lambda k: i18n.label(CATEGORY_LABELS, k),
        "nm_severity_label": lambda k: i18n.label(SEVERITY_LABELS, k),
        "nm_state_label": lambda k: i18n.label(STATE_LABELS, k),
        "is_staff": current_user.is_authenticated and current_user.role == STAFF,
    }


def _role() -> str:
    return current_user.role


def _supervising() -> bool:
    return _role() in SUPERVISING_ROLES


def _reporter(case: Case) -> str:
    name = case.reporter_for(_role(), current_user.username)
    return name if name is not None else _say(ANONYMOUS, "anonymous", {})


def _place(case: Case) -> str:
    return display_name(state().cfg, case.station) if case.station else case.place


def _stations() -> list[str]:
    """The stations a case may name: those of the reader's sites (hub.web.scope)."""
    st = state()
    return scope.station_ids(sorted(data.station_sites(st.engine, st.cfg)))


def _in_scope(case: Case) -> bool:
    """A case at a station of the reader's sites, or at no station (a place names no site)."""
    return case.station is None or scope.station_visible(case.station)


def _cases(**kwargs: Any) -> list[Case]:
    return [c for c in service.list_cases(state().engine, **kwargs) if _in_scope(c)]


# --- list ---

@bp.get("/")
def index():
    wanted = query.choice(request.args.get("state"), "state", NEARMISS_STATES)
    if _role() in READING_ROLES:
        cases = _cases(state=wanted)
        mine: list[Case] = []
    else:
        cases = _cases(state="shared")
        mine = [c for c in _cases(filed_by=current_user.username) if c.state != "shared"]
    return render_template("nearmiss/index.html", title=_("Near-misses"), cases=cases, mine=mine, wanted=wanted,
                           states=NEARMISS_STATES, reporter=_reporter, place=_place,
                           readers=_role() in READING_ROLES, supervising=_supervising(),
                           digest=_digest_box() if _supervising() else None)


# --- the monthly digest, sent by hand ---

DIGESTS_SHOWN = 12


def _digest_box() -> dict[str, Any]:
    """The digest form: the month before by default, whether anything can be sent at all and
    the months already sent (newest first)."""
    st = state()
    today = datetime.now(st.cfg.zone()).date()
    sent = sorted(digest.sent_months(st.engine).items(), reverse=True)[:DIGESTS_SHOWN]
    return {"month": digest.previous_month(today), "max": today.strftime("%Y-%m"),
            "can_send": bool(st.digest_sinks), "sent": sent}


@bp.post("/digest")
@role_required(*SUPERVISING_ROLES)
def send_digest():
    """Send a chosen month's digest of shared cases now, recorded as the scheduled one is; a
    month sent already goes again only when asked (``again``)."""
    st = state()
    month = (request.form.get("month") or "").strip()
    back = redirect(url_for("nearmiss.index") + "#digest")
    if not st.digest_sinks:
        flash(_("No supervisor notification target is set up in the hub file: the digest cannot be sent."), "error")
        return back
    try:
        sent = digest.send(st.engine, st.cfg, month, st.digest_sinks, by=current_user.username,
                           force=bool(request.form.get("again")))
    except NearMissError as exc:
        if exc.code == "nearmiss.digest_sent":
            flash(_("Not sent: the digest of %(month)s was sent already. Tick “Send again” to send it once more.",
                    month=month), "error")
        else:
            flash(_("Not sent: %(reason)s", reason=explain(exc)), "error")
        return back
    if sent.refused:
        # What a sink said is its own prose (Apprise's): it is in the hub's log, not on the page.
        flash(_("The digest of %(month)s (%(n)d case(s)) is recorded, but %(k)d notification target(s) did not "
                "accept it (see the hub's log).", month=month, n=len(sent.case_ids), k=len(sent.refused)), "error")
    elif sent.again:
        flash(_("The digest of %(month)s was sent again with %(n)d case(s).", month=month, n=len(sent.case_ids)),
              "ok")
    else:
        flash(_("The digest of %(month)s was sent with %(n)d case(s).", month=month, n=len(sent.case_ids)), "ok")
    return back


# --- filing ---

def _draft() -> service.Draft | None:
    """The alert or event the new case starts from (supervisors only), or None."""
    alert_id = query.integer(request.values.get("alert"), "alert", None, 1, 2**63 - 1)
    event_id = query.text(request.values.get("event"), "event")
    if alert_id is None and event_id is None:
        return None
    if not _supervising():
        abort(403)
    st = state()
    # Another site's alert or event: 404, as one that does not exist.
    if alert_id is not None:
        scope.require_alerts([alert_id])
    else:
        scope.require_event(event_id)
    try:
        if alert_id is not None:
            return service.alert_draft(st.engine, st.cfg, alert_id)
        return service.event_draft(st.engine, st.cfg, event_id or "")
    except NearMissError:
        abort(404)


def _local_input(value: datetime) -> str:
    return value.astimezone(state().cfg.zone()).strftime("%Y-%m-%dT%H:%M")


def _form_values(draft: service.Draft | None) -> dict[str, Any]:
    if request.method == "POST":
        return {k: request.form.get(k, "") for k in ("occurred_at", "station", "place", "category", "what", "why",
                                                     "severity")} | {"anonymous": bool(request.form.get("anonymous"))}
    if draft is not None:
        return {"occurred_at": _local_input(draft.occurred_at), "station": draft.station, "place": "",
                "category": draft.category, "what": draft.what, "why": "", "severity": "", "anonymous": False}
    now = datetime.now(state().cfg.zone())
    return {"occurred_at": now.strftime("%Y-%m-%dT%H:%M"), "station": "", "place": "", "category": "",
            "what": "", "why": "", "severity": "", "anonymous": False}


def _parse_when(text: str) -> datetime:
    try:
        naive = datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M")
    except ValueError:
        raise NearMissError("nearmiss.bad_time", {"value": repr(text.strip()[:40])}) from None
    return naive.replace(tzinfo=state().cfg.zone())


@bp.route("/new", methods=["GET", "POST"])
def new():
    st = state()
    draft = _draft()
    values = _form_values(draft)
    error = None
    if request.method == "POST":
        scope.require_station(values["station"] or None)
        try:
            case = CaseInput(occurred_at=_parse_when(values["occurred_at"]), category=values["category"],
                             what=values["what"], why=values["why"], severity=values["severity"],
                             station=values["station"] or None, place=values["place"],
                             anonymous=values["anonymous"])
            case_id = service.file_case(st.engine, st.cfg, case, current_user.username,
                                        alert_id=draft.alert_id if draft else None,
                                        event_id=draft.event_ids[0] if draft and draft.alert_id is None else None)
        except NearMissError as exc:
            error = explain(exc)
        else:
            flash(_("Near-miss %(id)s filed. Thank you: a supervisor will review it.", id=case_id), "ok")
            return redirect(url_for("nearmiss.case", case_id=case_id))
    return render_template("nearmiss/new.html", title=_("File a near-miss"), values=values, error=error,
                           draft=draft, stations=_stations(), categories=NEARMISS_CATEGORIES,
                           severities=NEARMISS_SEVERITIES), (400 if error else 200)


# --- one case ---

def _readable(case_id: int) -> Case:
    try:
        case = service.get_case(state().engine, case_id)
    except NearMissError:
        abort(404)
    if not case.readable_by(_role(), current_user.username) or not _in_scope(case):
        abort(404)  # not 403: whether an unshared case (or another site's) exists is not the reader's business
    return case


def _case_page(found: Case, countermeasure: str | None = None, status: int = 200):
    evidence = service.evidence(state().engine, found) if _role() in READING_ROLES else []
    return render_template("nearmiss/case.html", title=_("Near-miss %(id)s", id=found.id), case=found,
                           reporter=_reporter(found), place=_place(found), evidence=evidence,
                           supervising=_supervising(), readers=_role() in READING_ROLES,
                           countermeasure=countermeasure if countermeasure is not None else found.countermeasure or ""
                           ), status


@bp.get("/<int:case_id>")
def case(case_id: int):
    return _case_page(_readable(case_id))


@bp.post("/<int:case_id>/review")
@role_required(*SUPERVISING_ROLES)
def review(case_id: int):
    text = request.form.get("countermeasure") or ""
    _readable(case_id)  # another site's case: 404 before anything is written
    try:
        service.review(state().engine, case_id, text, current_user.username)
    except NearMissError as exc:
        # Shown again with what was written: nothing typed is lost.
        flash(_("Not saved: %(reason)s", reason=explain(exc)), "error")
        return _case_page(_readable(case_id), text, 400)
    flash(_("Countermeasure saved: the case is reviewed. Share it when it is ready."), "ok")
    return redirect(url_for("nearmiss.case", case_id=case_id))


@bp.post("/<int:case_id>/share")
@role_required(*SUPERVISING_ROLES)
def share(case_id: int):
    _readable(case_id)  # another site's case: 404 before anything is written
    try:
        service.share(state().engine, case_id, current_user.username)
    except NearMissError as exc:
        flash(_("Not shared: %(reason)s", reason=explain(exc)), "error")
    else:
        flash(_("Shared with all staff; it goes out in this month's digest."), "ok")
    return redirect(url_for("nearmiss.case", case_id=case_id))


# --- analysis ---

def _month(value: str | None, name: str) -> date | None:
    """A ``YYYY-MM`` query value as its first day; None if empty."""
    if not value:
        return None
    try:
        if len(value) == 7 and value[4] == "-":
            return date.fromisoformat(value + "-01")
    except ValueError:
        pass
    raise query.BadQuery(name, "date")


@bp.get("/analysis")
@role_required(*READING_ROLES)
def analysis():
    st = state()
    today = datetime.now(st.cfg.zone()).date()
    until = _month(request.args.get("until"), "until") or today.replace(day=1)
    default_since = date(until.year - 1 + (until.month == 12), until.month % 12 + 1, 1)
    since = _month(request.args.get("since"), "since") or default_since
    if since > until:
        since, until = until, since
    result = service.analysis(st.engine, st.cfg.zone(), since, until, stations=scope.stations())
    charts = {
        "category": bar_chart(tuple(str(CATEGORY_LABELS[k]) for k, _n in result.by_category),
                              tuple(n for _k, n in result.by_category), _("Cases by category"), width=7.0),
        "month": bar_chart(tuple(m[2:] for m, _n in result.by_month), tuple(n for _m, n in result.by_month),
                           _("Cases by month"), width=7.0, color="#cc6b00"),
    }
    known = set(_stations())
    places = [(display_name(st.cfg, p) if p in known else p, n) for p, n in result.by_place]
    return render_template("nearmiss/analysis.html", title=_("Near-miss analysis"), result=result,
                           charts=charts, places=places, since=since.strftime("%Y-%m"),
                           until=until.strftime("%Y-%m"))


# --- import and export ---

uploads.exempt(bp, "import_page")  # the file is larger than the form limit: checked in the view


def _problem(p: nearmiss_io.ImportProblem) -> dict[str, Any]:
    return {"line": p.line, "column": p.column, "reason": _say(PROBLEMS.get(p.code), p.code, dict(p.params))}


@bp.route("/import", methods=["GET", "POST"])
@role_required(*SUPERVISING_ROLES)
def import_page():
    if request.method == "GET":
        return render_template("nearmiss/import.html", title=_("Import near-misses"), problems=None, report=None,
                               filename=None)
    upload = uploads.received()
    if upload is None:
        return redirect(url_for("nearmiss.import_page"))
    st = state()
    try:
        report = nearmiss_io.import_cases(st.engine, st.cfg, current_user.username, upload.data,
                                          filename=upload.filename)
    except nearmiss_io.ImportRejected as exc:
        _LOG.info("%s: near-miss import of %s refused with %d problem(s)", current_user.username, upload.filename,
                  len(exc.problems))
        return render_template("nearmiss/import.html", title=_("Import near-misses"),
                               problems=[_problem(p) for p in exc.problems], report=None,
                               filename=upload.filename), 400
    return render_template("nearmiss/import.html", title=_("Import near-misses"), problems=None, report=report,
                           filename=upload.filename)


def _export(fmt: Literal["csv", "xlsx"]) -> Response:
    st = state()
    lang: Literal["ja", "en"] = "en" if str(get_locale() or "ja") == "en" else "ja"
    cases = [c for c in _cases() if c.readable_by(_role(), current_user.username)]
    body = nearmiss_io.export_cases(st.engine, st.cfg, fmt, role=_role(), username=current_user.username, lang=lang,
                                    cases=cases)
    _LOG.info("%s exported the near-miss cases as %s", current_user.username, fmt)
    name = f"nearmiss_{datetime.now(st.cfg.zone()).date().isoformat()}.{fmt}"
    return reports.attachment(body, name)


@bp.get("/cases.csv")
@role_required(*READING_ROLES)
def export_csv():
    return _export("csv")


@bp.get("/cases.xlsx")
@role_required(*READING_ROLES)
def export_xlsx():
    return _export("xlsx")
