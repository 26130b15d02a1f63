"""The pages: live status (with the server-sent-events stream), alert acknowledgement, the
events list with snapshots, and the key ledger with its CSV and Excel exports.

Rows that the live stream adds to an open page are rendered by the same Jinja macros as the
page itself (templates/_rows.html), in the reader's language, so the browser only inserts
HTML it is given and needs no copy of the texts.
"""
from __future__ import annotations

import json
import logging
import math
import queue
import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    flash,
    get_template_attribute,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import format_decimal, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import func, select

from hub.alerting import alerts as alert_store
from hub.alerting import maintenance
from hub.alerting.wording import alert_text, reason_name
from hub.ledgers import keys as ledger
from hub.nearmiss.model import SUPERVISING_ROLES
from hub.audit import store_size
from hub.store.schema import alerts as alerts_table
from hub.store.schema import checkpoints as checkpoints_table
from hub.web import alert_pages, data, formats, i18n, key_pages, ops, query, reports, scope, station_cards
from hub.web.annunciators import KIND as ANNUNCIATOR
from hub.web.annunciators import annunciators
from hub.web.key_pages import ledger_export, ledger_request
from hub.web.state import state
from hub.store.timestamps import now_utc
from hub.timetext import time_text
from hub.web.auth import ACK_ROLES, role_required
from hub.stations import offices
from hub.stations.directory import display_name, stations_of_kind
from hub.stations.state import DOOR_KINDS, lock_state, parse_time

_LOG = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)

KEEPALIVE_S = 15.0
POLL_S = 0.5  # how often a stream looks at the shutdown flag while idle
RECENT_EVENTS = 20
ACKED_SHOWN = 10
COMMENT_MAX = 500


# --- helpers for templates ---

def lang() -> str:
    return str(get_locale() or "ja")


def localtime(value: Any, site: str | None = None) -> str:
    """``value`` (a datetime or stored time text) in the site's zone (the hub's without a
    site), as every page, export and alert shows a time (hub.timetext)."""
    cfg = state().cfg
    fm = formats.current()
    if fm is None:  # no request (nor app) context
        return time_text(value, cfg.site_zone(site) if site else cfg.zone())
    # The key ledger shows three times a row: the site's zone is looked up once per request.
    zone = fm.zones.get(site)
    if zone is None:
        zone = fm.zones[site] = cfg.site_zone(site) if site else cfg.zone()
    return time_text(value, zone)


def seconds(value: Any) -> str:
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return ""
    number = round(float(value), 1) + 0.0  # + 0.0: -0.04 s reads "0 s", not "-0 s"
    fm = formats.current()
    if fm is None:
        return _("%(seconds)s s", seconds=format_decimal(number))
    return fm.text("%(seconds)s s") % {"seconds": fm.format_decimal(number)}


def label_of(table: dict[str, Any]):
    """A template helper: the label of a key of ``table`` in the page's language (looked up
    once per request and key: the key ledger asks for its entry label on every row)."""
    def label(key: str | None) -> str:
        fm = formats.current()
        return i18n.label(table, key) if fm is None else fm.label(table, key)
    return label


def policy_text(version: Any, site: str | None = None) -> str:
    """A policy version as a supervisor reads it: its issue time in the site's zone (the
    version is that instant in unix ms), else the plain number; "—" for none."""
    if version is None:
        return "—"
    issued = data.policy_issued_at(version)
    if issued is None:
        return _("Version %(version)s", version=version)
    return _("Issued %(time)s", time=localtime(issued, site))


def person_label(person: str | None) -> str:
    if not person:
        return ""
    name = state().names().get(person)
    return f"{name} ({person})" if name else person


def alert_message(alert: dict[str, Any]) -> str:
    """The alert's sentence in the page's language, from its stored params."""
    params = alert.get("params")
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError:
            params = None
    if isinstance(params, dict):
        try:
            return alert_text(alert["rule"], params, lang())
        except Exception:  # an odd params row must not break the page
            _LOG.debug("no text for alert %s", alert.get("id"), exc_info=True)
    return alert.get("message") or ""


def event_details(ev: dict[str, Any]) -> str:
    """A short, translated summary of an event's data."""
    raw = ev.get("data")
    try:
        payload = json.loads(raw) if isinstance(raw, str) else (raw or {})
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):  # a stored row that is not an object shows no details
        payload = {}
    from hub.web.shred_pages import event_details as shredder_details  # shredder events say their own

    shredding = shredder_details(ev.get("kind") or "", payload) if isinstance(payload, dict) else None
    if shredding is not None:
        return shredding
    parts = []
    if isinstance(payload.get("duration_s"), (int, float)):
        parts.append(_("open for %(time)s", time=seconds(payload["duration_s"])))
    elif isinstance(payload.get("open_s"), (int, float)):
        parts.append(_("open for %(time)s", time=seconds(payload["open_s"])))
    if payload.get("flagged"):
        parts.append(_("flagged: not the designated holder"))
    if ev.get("kind") == "snapshot.failed" and payload.get("error"):
        parts.append(_("photo of: %(kind)s, %(error)s", kind=i18n.label(i18n.EVENT_KINDS, payload.get("for_kind")),
                       error=i18n.label(i18n.PERIPHERAL_ERRORS, payload["error"])))
    if ev.get("kind") in ("badge.denied", "policy.rejected") and isinstance(payload.get("reason"), str) \
            and payload["reason"]:
        reason = payload["reason"]
        parts.append(_("unknown badge") if reason == "unknown" else
                     _("reason: %(reason)s", reason=reason_name(reason, lang())))
    return ", ".join(parts)


def register_template_helpers(app: Flask) -> None:
    """Filters and globals; globals (not context processors) so macros rendered for the live
    stream see them too."""
    app.jinja_env.filters.update(localtime=localtime, seconds=seconds)
    app.jinja_env.globals.update(
        station_name=lambda s: display_name(state().cfg, s),
        person_label=person_label,
        kind_label=label_of(i18n.EVENT_KINDS),
        rule_label=label_of(i18n.ALERT_RULES),
        severity_label=label_of(i18n.SEVERITIES),
        station_state_label=label_of(i18n.STATION_STATES),
        office_state_label=label_of(i18n.OFFICE_STATES),
        policy_state_label=label_of(i18n.POLICY_STATES),
        door_label=label_of(i18n.DOOR_STATES),
        lock_label=label_of(station_cards.LOCK_STATES),
        clock_label=label_of(station_cards.CLOCK_LABELS),
        policy_text=policy_text,
        station_kind_label=label_of(i18n.STATION_KINDS),
        signal_label=label_of(i18n.SIGNAL_STATES),
        peripheral_label=label_of(i18n.PERIPHERALS),
        peripheral_state_label=label_of(i18n.PERIPHERAL_STATES),
        peripheral_error_label=label_of(i18n.PERIPHERAL_ERRORS),
        alert_state_label=label_of(i18n.ALERT_STATES),
        decision_label=label_of(i18n.DECISIONS),
        reason_label=lambda code: reason_name(code, lang()) if code else "",
        entry_label=label_of(i18n.LEDGER_ENTRIES),
        role_label=label_of(i18n.ROLES),
        ledger_header=label_of(i18n.LEDGER_HEADERS),
        alert_message=alert_message,
        event_details=event_details,
        current_lang=lang,
        languages=i18n.LANGUAGES,
    )


def _can_ack() -> bool:
    return state().alerts is not None and current_user.is_authenticated and current_user.role in ACK_ROLES


def _list_alerts(**kwargs) -> list[dict[str, Any]]:
    return alert_store.list_alerts(state().engine, **kwargs)


# --- status ---

@bp.get("/")
def status():
    st = state()
    panel = alert_pages.panel_context(alert_pages.alert_filter(request.args))
    recent, _next = data.list_events(st.engine, st.cfg, data.EventFilter(sites=scope.sites()), limit=RECENT_EVENTS)
    with st.engine.connect() as conn:
        last_alert = conn.execute(select(func.max(alerts_table.c.id))).scalar() or 0
    in_maintenance = {s: w for s, w in maintenance.active(st.engine).items() if scope.station_visible(s)}
    stations = scope.keep_sites(data.station_overview(st.engine, st.cfg), lambda item: item["site"])
    for item in stations:
        item["maintenance"] = item["station"] in in_maintenance
    return render_template(
        "status.html",
        title=" ".join(t for t in (panel["title_count"], _("Status")) if t),
        stations=stations,
        in_maintenance=in_maintenance,
        **panel,
        recent=recent,
        last_row=recent[0]["row_no"] if recent else data.latest_row_no(st.engine),
        last_alert=last_alert,
        notices=st.cfg.notices,
        notice_part=label_of(i18n.NOTICE_PARTS),
        store=_store_box(),
        annunciators=_annunciators(),
        offices=scope.keep_sites(_offices(), lambda office: office["site"]),
        stale_after_s=st.cfg.rules.site_stale_after_s,
        failover=_failover_box(),
    )


def _annunciators() -> list[Any]:
    """The annunciators of the reader's sites (hub.web.annunciators)."""
    st = state()
    return scope.keep_sites(annunciators(st.engine, st.cfg), lambda a: a.site)


def _offices() -> list[dict[str, Any]]:
    """Each office (site) heard or listed, fresh or stale; none with fewer than two sites (one
    office has no uplink to lose: its stations' own states say it all)."""
    st = state()
    sites = offices.site_freshness(st.engine, st.cfg, now_utc())
    if len(sites) < 2:
        return []
    return [{"site": s.site, "name": st.cfg.site(s.site).name or s.site, "state": s.state,
             "stations": s.stations, "last_heard": s.last_heard, "silent_s": s.silent_s} for s in sites]


def _failover_box() -> dict[str, Any] | None:
    """In a failover pair: this hub's name and role, the active hub and since when."""
    st = state()
    if not st.cfg.failover.enabled:
        return None
    active = ops.active_hub()
    return {"this": st.cfg.failover.hub_name, "role": ops.role(),
            "active": active.hub if active is not None else None,
            "since": localtime(active.since) if active is not None else None}


def _store_box() -> dict[str, Any]:
    """The store's size now, its growth per day over the last 7 days and the last checkpoint."""
    st = state()
    with st.engine.connect() as conn:
        last = conn.execute(select(func.max(checkpoints_table.c.at))).scalar()
    return {
        "now": store_size.human(store_size.measure(st.engine)),
        "growth": [{"day": g.day, "text": ("+" if g.grown and g.grown > 0 else "") + store_size.human(g.grown)}
                   for g in store_size.growth(st.engine, st.cfg.zone())],
        "keep_days": st.cfg.snapshots.keep_days,
        "last_checkpoint": localtime(last) if last else None,
    }


@bp.post("/alerts/<int:alert_id>/ack")
@role_required(*ACK_ROLES)
def acknowledge(alert_id: int):
    st = state()
    if st.alerts is None:
        flash(_("Alerts cannot be acknowledged: the alert service is not running."), "error")
        return redirect(url_for("pages.status"))
    scope.require_alerts([alert_id])  # another site's alert: 404, as one that does not exist
    comment = (request.form.get("comment") or "").strip()
    if not comment:
        flash(_("Write a comment: what was found, what was done."), "error")
        return redirect(url_for("pages.status") + f"#alert-{alert_id}")
    if len(comment) > COMMENT_MAX:
        flash(_("The comment is too long (at most %(n)d characters).", n=COMMENT_MAX), "error")
        return redirect(url_for("pages.status") + f"#alert-{alert_id}")
    if st.alerts.acknowledge(alert_id, current_user.username, comment):
        _LOG.info("alert %d acknowledged by %s on the web page", alert_id, current_user.username)
        flash(_("Alert acknowledged."), "ok")
    else:
        flash(_("This alert was already acknowledged, or does not exist."), "error")
    return redirect(url_for("pages.status"))


# --- the live stream ---

@bp.get("/events/stream")
def stream():
    st = state()
    after = query.integer(request.args.get("after"), "after", None, 0, 2**63 - 1)
    alerts_after = query.integer(request.args.get("alerts_after"), "alerts_after", None, 0, 2**63 - 1)
    if not st.open_stream():
        # Each stream holds a server thread; refusing keeps the pages themselves reachable.
        return Response("retry: 10000\n\n", status=503, mimetype="text/event-stream")
    can_ack = _can_ack()
    # Read once, in the request: the generator runs after it, where g is gone.
    sites = scope.sites()
    visible = scope.stations()
    macros = {name: get_template_attribute("_rows.html", name)
              for name in ("event_row", "alert_row", "peripherals_cell", "clock_cell", "lock_pill")}
    macros["annunciator_block"] = get_template_attribute("_annunciators.html", "annunciator_block")
    macros["offices_block"] = get_template_attribute("_offices.html", "offices_block")

    def message(kind: str, payload: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"

    # waitress tells whether the browser went away (with channel_request_lookahead > 0).
    gone = request.environ.get("waitress.client_disconnected") or (lambda: False)

    def gen():
        q = st.bus.subscribe()
        try:
            yield "retry: 2000\n\n"
            # What happened between rendering the page and subscribing: sent first, the page
            # ignores rows it already shows.
            if after is not None:
                for ev in data.events_after(st.engine, after, sites=sites):
                    yield message("event", _live_event(ev, macros))
            if alerts_after is not None:
                with st.engine.connect() as conn:
                    conds = [alerts_table.c.id > alerts_after]
                    if sites is not None:
                        conds.append(alerts_table.c.site.in_(sorted(sites)))
                    ids = conn.execute(select(alerts_table.c.id).where(*conds)
                                       .order_by(alerts_table.c.id).limit(200)).scalars().all()
                for alert_id in ids:
                    payload = _live_alert(alert_id, macros, can_ack, sites)
                    if payload:
                        yield message("alert", payload)
            # An office may have changed between drawing the page and subscribing (or while a
            # lost stream reconnected): the table as it is now, once.
            offices_now = _offices_html(macros, sites)
            if offices_now is not None:
                yield message(offices.LIVE_KIND, {"offices_html": offices_now})
            idle_since = time.monotonic()
            while not st.shutdown.is_set() and not gone():
                try:
                    item = q.get(timeout=POLL_S)
                except queue.Empty:
                    if time.monotonic() - idle_since >= KEEPALIVE_S:
                        # A comment line: keeps proxies from closing the stream and makes a
                        # vanished browser show up as a failed write, which ends this loop.
                        yield ": keepalive\n\n"
                        idle_since = time.monotonic()
                    continue
                if item is None:  # the bus dropped us (too slow): the page reloads
                    yield message("reload", {})
                    return
                kind, text = item
                try:
                    msg = json.loads(text)
                    if not _in_scope(kind, msg, sites, visible):
                        continue
                    payload = _live(kind, msg, macros, can_ack, sites)
                except Exception:
                    _LOG.exception("cannot show a live %s message", kind)
                    continue
                if payload is not None:
                    yield message(kind, payload)
                    idle_since = time.monotonic()
        finally:
            st.bus.unsubscribe(q)

    response = Response(stream_with_context(gen()), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    # On close, not in gen's finally: a stream closed before its first chunk never runs gen.
    response.call_on_close(st.close_stream)
    return response


def _in_scope(kind: str, msg: dict[str, Any], sites: frozenset[str] | None,
              visible: frozenset[str] | None) -> bool:
    """Whether a bus message is of the reader's sites: by its site where it names one, else by
    its station (an alert's acknowledgement is checked by the alert's own row in _live_alert)."""
    if sites is None:
        return True
    if kind == offices.LIVE_KIND:  # several sites at once: any of the reader's
        return bool(offices.OfficesChanged.sites_in(msg) & sites)
    if isinstance(msg, dict) and msg.get("site") is not None:
        return msg.get("site") in sites
    station = msg.get("station") if isinstance(msg, dict) else None
    if station is not None:
        return visible is not None and station in visible
    return kind in ("alert", "alert_ack")  # no site nor station: only an alert, checked by its row


def _live(kind: str, msg: dict[str, Any], macros, can_ack: bool,
          sites: frozenset[str] | None = None) -> dict[str, Any] | None:
    """What the page needs of one bus message, labelled in the reader's language; None to skip."""
    if kind == "event":
        return _live_event({**msg, "has_snapshot": False}, macros)
    if kind == "station":
        return {"station": msg["station"], "state": msg["state"],
                "state_label": i18n.label(i18n.STATION_STATES, msg["state"]),
                "since_text": localtime(msg.get("at"), msg.get("site"))}
    if kind == "heartbeat":
        door = msg.get("door") or "unknown"
        lock = lock_state(msg.get("kind"), msg)
        site = msg.get("site")
        # Compared with the latest published at each heartbeat: the card turns stale, or back.
        policy = data.station_policy(state().engine, msg["station"], msg.get("policy_version"))
        return {"station": msg["station"], "door": door, "door_label": i18n.label(i18n.DOOR_STATES, door),
                "lock": lock, "lock_html": str(macros["lock_pill"](lock)) if lock else None,
                "policy_version": msg.get("policy_version"), "policy_text": policy_text(msg.get("policy_version"), site),
                "policy_state": policy["policy_state"],
                "policy_state_label": i18n.label(i18n.POLICY_STATES, policy["policy_state"]),
                "policy_latest_text": _("Latest: %(version)s", version=policy_text(policy["policy_latest"], site)),
                "state": "online",
                "state_label": i18n.label(i18n.STATION_STATES, "online"),
                "heartbeat_text": localtime(msg.get("at"), msg.get("site")),
                "peripherals_html": str(macros["peripherals_cell"](data.peripherals_of(msg), msg.get("site"))),
                # Measured against now: the bus hands a heartbeat over right after its commit.
                "clock_html": str(macros["clock_cell"](data.clock_of(state().cfg, _offset(msg.get("at")), msg))),
                "outbox_depth": msg.get("outbox_depth"),
                # An annunciator's lamp is in its heartbeat: its block is drawn again.
                **({"annunciators_html": _annunciators_html(macros, sites)} if msg.get("kind") == ANNUNCIATOR else {})}
    if kind == "site_alarm":
        # A site's open critical alerts changed (hub.alerting.alarm): what its annunciators are told.
        return {"site": msg.get("site"), "count": msg.get("count"),
                "annunciators_html": _annunciators_html(macros, sites)}
    if kind == offices.LIVE_KIND:
        # An office went stale or was heard again (hub.stations.offices.OfficeWatch): the table
        # and its warning drawn again from the store, of the reader's sites only.
        html = _offices_html(macros, sites)
        return None if html is None else {"offices_html": html}
    if kind in ("alert", "alert_ack"):
        alert_id = msg.get("id") or msg.get("alert_id")
        return _live_alert(int(alert_id), macros, can_ack, sites) if alert_id else None
    return None  # other kinds (added later) are not shown on this page


def _annunciators_html(macros, sites: frozenset[str] | None) -> str:
    """The status page's annunciator block as it is now, of ``sites`` (None: every site;
    empty without annunciators)."""
    st = state()
    found = annunciators(st.engine, st.cfg)
    return str(macros["annunciator_block"](found if sites is None else [a for a in found if a.site in sites]))


def _offices_html(macros, sites: frozenset[str] | None) -> str | None:
    """The status page's Offices block as it is now, of ``sites`` (None: every site); None when
    the hub has fewer than two offices (the page shows no table)."""
    found = _offices()
    if not found:
        return None
    mine = found if sites is None else [o for o in found if o["site"] in sites]
    return str(macros["offices_block"](mine, state().cfg.rules.site_stale_after_s))


def _offset(at: Any) -> float | None:
    """A heartbeat's time minus now, in seconds (None if it has none)."""
    when = parse_time(at)
    return None if when is None else (when - now_utc()).total_seconds()


def _live_event(ev: dict[str, Any], macros) -> dict[str, Any]:
    door = DOOR_KINDS.get(ev["kind"])
    # A tap's unlock lasts seconds: the card follows the events, not only the heartbeats.
    lock = data.lock_now(state().engine, state().cfg, ev["station"], ev["kind"])
    return {
        "lock": lock, "lock_html": str(macros["lock_pill"](lock)) if lock else None,
        "row_no": ev["row_no"], "station": ev["station"], "kind": ev["kind"],
        "html": str(macros["event_row"](ev, False)),
        "kind_label": i18n.label(i18n.EVENT_KINDS, ev["kind"]),
        "at_text": localtime(ev.get("at"), ev.get("site")),
        "person": person_label(ev.get("person")),
        "door": door, "door_label": i18n.label(i18n.DOOR_STATES, door) if door else None,
    }


def _live_alert(alert_id: int, macros, can_ack: bool, sites: frozenset[str] | None = None) -> dict[str, Any] | None:
    engine = state().engine
    alert = alert_store.get_alert(engine, alert_id)
    if alert is None or (sites is not None and alert["site"] not in sites):
        return None
    return {"id": alert_id, "state": alert["state"], "severity": alert["severity"],
            "html": str(macros["alert_row"](alert, can_ack)), "open_count": alert_store.count_open(engine, sites)}


# --- events ---

def event_filter_from(args) -> tuple[data.EventFilter, int | None]:
    """The filter and cursor in a request's query string (400 if malformed)."""
    # query.text refuses control characters: a NUL is a query PostgreSQL cannot even run.
    station = query.text(args.get("station"), "station")
    scope.require_station(station)  # another site's station: 404, as one that does not exist
    flt = data.EventFilter(
        station=station,
        person=query.text(args.get("person"), "person"),
        kind=query.text(args.get("kind"), "kind"),
        day=reports.parse_day(args.get("day")),
        sites=scope.sites(),
    )
    # What a row number column holds.
    before_no = query.integer(args.get("before"), "before", None, 0, 2**63 - 1) or None
    return flt, before_no


@bp.get("/events")
def events_page():
    st = state()
    flt, before = event_filter_from(request.args)
    sites = data.station_sites(st.engine, st.cfg)
    rows, next_before = data.list_events(st.engine, st.cfg, flt, before=before, limit=50,
                                         zone=data.zone_for(st.cfg, sites, flt.station))
    query: dict[str, Any] = {k: v for k, v in (("station", flt.station), ("person", flt.person), ("kind", flt.kind),
                               ("day", flt.day.isoformat() if flt.day else None)) if v}
    return render_template(
        "events.html", title=_("Events"), rows=rows, flt=flt, stations=scope.station_ids(sites),
        # Turning an event into a near-miss case is the supervisors' (hub.web.nearmiss_pages).
        can_make_case=current_user.role in SUPERVISING_ROLES,
        kinds=sorted(set(data.event_kinds(st.engine)) | set(i18n.EVENT_KINDS)),
        next_url=url_for("pages.events_page", before=next_before, **query) if next_before else None,
        first_url=url_for("pages.events_page", **query) if before else None,
    )


@bp.get("/snapshots/<event_id>.jpg")
def snapshot(event_id: str):
    found = data.snapshot_image(state().engine, event_id)
    if found is None or not scope.site_visible(found[2]):
        abort(404)
    image, content_type, _site = found
    response = Response(image, mimetype=content_type)
    # Only this browser may keep it; it never changes once stored.
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


# --- key ledger (its rows, exports, work recording and printable view: hub.web.key_pages) ---

@bp.get("/ledger/keys")
def key_ledger():
    st = state()
    cabinets = scope.station_ids(stations_of_kind(st.engine, st.cfg, "cabinet"))
    # A page of rows at a time (hub.ledgers.paging): a month of every cabinet is ~20,000 rows.
    paged = reports.paged_report(ledger.key_ledger, "pages.key_ledger", cabinets, ledger.COUNTED)
    station, period, rows = paged.station, paged.period, paged.rows
    args = reports.link_args(station, **period.args())
    return render_template(
        "ledger.html", title=_("Key ledger"), groups=reports.by_station(rows), station=station, period=period,
        paged=paged, cabinets=cabinets, columns=ledger.COLUMNS,
        csv_url=url_for("pages.key_ledger_csv", **args), xlsx_url=url_for("pages.key_ledger_xlsx", **args),
        print_url=url_for("keys.key_ledger_print", **args), work=key_pages.WorkForm(st.cfg, reports.lang()),
        incomplete=sum(r.incomplete for r in rows), after_hours=sum(r.after_hours for r in rows),
    )


@bp.get("/ledger/keys.csv")
def key_ledger_csv():
    st = state()
    station = reports.station_arg()
    period = reports.period_arg(station)
    names = st.names()

    def groups():
        # The whole period, a cabinet at a time: sent while it is made (a month of every
        # cabinet is ~20,000 rows), never held whole.
        for cabinet in [station] if station else scope.station_ids(stations_of_kind(st.engine, st.cfg, "cabinet")):
            yield ledger.key_ledger(st.engine, st.cfg, period.first, period.last, station=cabinet, names=names)

    _LOG.info("%s exported the key ledger of %s (%s) as CSV", current_user.username, period.label, station or "all")
    return reports.download(stream_with_context(ledger.csv_chunks(groups(), ledger_export())), "csv", "key-ledger",
                            station, period.slug)


@bp.get("/ledger/keys.xlsx")
def key_ledger_xlsx():
    station, period, rows = ledger_request()
    export = ledger_export()
    title = reports.export_title(export.labels.sheet, period.label, station)
    body = ledger.to_xlsx(rows, export, title=title)
    _LOG.info("%s exported the key ledger of %s (%s) as Excel", current_user.username, period.label,
              station or "all")
    return reports.download(body, "xlsx", "key-ledger", station, period.slug)
