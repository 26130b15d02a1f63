"""For operators: ``/healthz`` (no sign-in; says only whether the store and the broker
connection work and, in a failover pair, which hub this is, its role and which hub is active) and ``/metrics`` (Prometheus text, behind the normal sign-in: a session, a
personal API token (``Authorization: Bearer``, hub.accounts.tokens; how Prometheus should scrape, with
an auditor account's token file) or HTTP Basic (an argon2 check on every scrape).

In a failover pair the standby serves no page: :func:`standby_gate` redirects every request but
``/healthz`` and static files to the active hub's ``failover.web_url`` (the address it recorded
with its lease), or answers 503 saying it is the standby when that is not known. Redirecting
rather than serving read-only pages keeps a single place where people sign in, acknowledge and
edit: the standby writes nothing (its writes are fenced, hub.store.lease). A standby that cannot
take over (its code is older than the store: hub.store.migrate.StoreNewer) redirects nobody: every
page says why, naming both revisions, and so does /healthz (``hub.blocked``), because the pair
has no failover until it is upgraded.

``/metrics`` is not opened to loopback without a password on purpose: behind a reverse proxy
on the same machine every request would come from 127.0.0.1.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, redirect, request
from werkzeug.exceptions import ServiceUnavailable
from sqlalchemy import text

from hub.store.lease import LeaseHolder, holder
from hub.store.migrate import StoreNewer
from hub.web.metrics import CONTENT_TYPE, render
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("ops", __name__)


class StandbyHub(ServiceUnavailable):
    """A page asked of the standby hub while no active hub's address is known."""

    def __init__(self, name: str | None, active: str | None, blocked: StoreNewer | None = None):
        super().__init__(f"hub {name} is the standby")
        self.hub, self.active, self.blocked = name, active, blocked


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
    body: dict = {"status": "ok" if db_ok else "error", "db": db_ok, "broker": broker}
    if st.cfg.failover.enabled:
        body["hub"] = _hub_role(db_ok)
    # The broker may be down for a while (stations keep their events); the store may not.
    return jsonify(body), (200 if db_ok else 503)


@bp.get("/metrics")
def metrics():
    return Response(render(state().registry), content_type=CONTENT_TYPE)


def _figures() -> dict:
    st = state()
    if st.stats is None:
        return {}
    try:
        return dict(st.stats())
    except Exception:
        _LOG.exception("reading the hub's role failed")
        return {}


def _pair() -> tuple[str | None, StoreNewer | None]:
    """This hub's role in its failover pair ("active" or "standby"; None for a single hub) and
    why it does not take over, if so: one read of the hub's figures."""
    if not state().cfg.failover.enabled:
        return None, None
    figures = _figures()
    problem = figures.get("blocked")
    return str(figures.get("role", "standby")), problem if isinstance(problem, StoreNewer) else None


def role() -> str | None:
    """"active" or "standby" for a hub of a failover pair, None for a single hub."""
    return _pair()[0]


def active_hub() -> LeaseHolder | None:
    """The hub that holds the lease, as the store says (None if none ever did or unreadable)."""
    try:
        return holder(state().engine)
    except Exception:  # a page must not fail because the lease cannot be read
        _LOG.exception("reading the active hub failed")
        return None


def _hub_role(db_ok: bool) -> dict:
    st = state()
    active = active_hub() if db_ok else None
    hub_role, problem = _pair()
    body: dict[str, object] = {"name": st.cfg.failover.hub_name, "role": hub_role,
                               "active": active.hub if active is not None else None,
                               "active_since": active.since.isoformat() if active is not None else None}
    if problem is not None:
        body["blocked"] = problem.as_json()
    return body


def standby_gate():
    """Before every request: a standby sends people to the active hub (see the docstring)."""
    if request.endpoint in ("ops.healthz", "static"):
        return None
    hub_role, problem = _pair()
    if hub_role != "standby":
        return None
    active = active_hub()
    if problem is None and active is not None and active.web_url and active.hub != state().cfg.failover.hub_name:
        return redirect(active.web_url.rstrip("/") + request.full_path.rstrip("?"), code=307)
    raise StandbyHub(state().cfg.failover.hub_name, active.hub if active is not None else None, problem)
