"""For operators: ``/healthz`` (no sign-in; says only whether the store and the broker
connection work) and ``/metrics`` (Prometheus text, behind the normal sign-in: a session, a
personal API token (``Authorization: Bearer``, hub.accounts.tokens; how Prometheus should scrape, with
an auditor account's token file) or HTTP Basic (an argon2 check on every scrape).

``/metrics`` is not opened to loopback without a password on purpose: behind a reverse proxy
on the same machine every request would come from 127.0.0.1.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from hub.web.metrics import CONTENT_TYPE, render
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)


@bp.get("/healthz")
def healthz():
    st = state()
    try:
        with st.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        db_ok = True
    except Exception:
        _LOG.exception("health check: the store does not answer")
        db_ok = False
    broker = False
    if st.stats is not None:
        try:
            broker = bool(st.stats().get("broker_connected", False))
        except Exception:
            _LOG.exception("health check: reading the hub's state failed")
    body = {"status": "ok" if db_ok else "error", "db": db_ok, "broker": broker}
    # The broker may be down for a while (stations keep their events); the store may not.
    return jsonify(body), (200 if db_ok else 503)


@bp.get("/metrics")
def metrics():
    return Response(render(state().registry), content_type=CONTENT_TYPE)
