"""The JSON API, for integrations: the same sign-in as the pages (a session cookie, a personal
API token as ``Authorization: Bearer`` (hub.accounts.tokens), or HTTP Basic credentials on every
request); 401 JSON when none is given. Read only.

- ``GET /api/stations``
- ``GET /api/events?station=&person=&kind=&day=YYYY-MM-DD&before=ROW_NO&limit=``
- ``GET /api/alerts?state=open|acknowledged|closed&station=&limit=``
- ``GET /api/ledger/keys?station=&day=YYYY-MM-DD``

Times are ISO 8601: event times with the station's offset, store times in UTC.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, jsonify, request
from werkzeug.exceptions import HTTPException

from hub.alerting import alerts as alert_store
from hub.web import data, query, scope
from hub.web.state import state
from hub.web.pages import event_filter_from, ledger_request

_LOG = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.errorhandler(HTTPException)
def _json_error(exc: HTTPException):
    return jsonify(error=exc.name.lower().replace(" ", "_"), message=exc.description), exc.code


def _iso(value: Any) -> Any:
    if isinstance(value, list):  # a station's peripherals, each with its ``since``
        return [{k: _iso(v) for k, v in item.items()} if isinstance(item, dict) else item for item in value]
    return value.isoformat() if isinstance(value, datetime) else value


@bp.get("/stations")
def stations():
    st = state()
    rows = scope.keep_sites(data.station_overview(st.engine, st.cfg), lambda item: item["site"])
    return jsonify(stations=[{k: _iso(v) for k, v in row.items()} for row in rows])


def _event_json(row: dict[str, Any]) -> dict[str, Any]:
    try:
        payload = json.loads(row["data"])
    except ValueError:
        payload = {}
    return {
        "row_no": row["row_no"], "event_id": row["event_id"], "site": row["site"],
        "station": row["station"], "seq": row["seq"], "kind": row["kind"], "at": row["at"],
        "badge": row["badge"], "person": row["person"], "data": payload,
        "received_at": row["received_at"], "time_flag": row.get("time_flag"), "has_snapshot": row["has_snapshot"],
        "snapshot_url": f"/snapshots/{row['event_id']}.jpg" if row["has_snapshot"] else None,
    }


@bp.get("/events")
def events():
    st = state()
    flt, before = event_filter_from(request.args)
    limit = query.integer(request.args.get("limit"), "limit", 100, 1, data.PAGE_MAX)
    sites = data.station_sites(st.engine, st.cfg)
    rows, next_before = data.list_events(st.engine, st.cfg, flt, before=before, limit=limit,
                                         zone=data.zone_for(st.cfg, sites, flt.station))
    return jsonify(events=[_event_json(r) for r in rows], next_before=next_before)


@bp.get("/alerts")
def alerts():
    wanted = query.choice(request.args.get("state"), "state", ("open", "acknowledged", "closed"))
    limit = query.integer(request.args.get("limit"), "limit", 200, 1, 1000)
    station = query.text(request.args.get("station"), "station")
    scope.require_station(station)  # another site's station: 404, as one that does not exist
    rows = alert_store.list_alerts(state().engine, state=wanted, station=station, limit=limit, sites=scope.sites())
    return jsonify(alerts=rows)


@bp.get("/ledger/keys")
def key_ledger():
    station, period, rows = ledger_request()
    # ``day`` is the first day (a one-day ledger's day); ``first``/``last`` the whole period.
    return jsonify(day=period.first.isoformat(), first=period.first.isoformat(), last=period.last.isoformat(),
                   station=station, rows=[r.as_json() for r in rows])
