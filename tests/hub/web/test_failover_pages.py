"""The pages of a hub in a failover pair (PostgreSQL only: a failover hub refuses SQLite): the
standby redirects every page to the active hub, or says it is the standby; /healthz names this
hub, its role and the active hub; the active hub's status page shows which hub is active. A
standby whose code is older than the store redirects nobody: its pages and /healthz say why."""
from __future__ import annotations

import pytest
from sqlalchemy import insert

from hub.config import load
from hub.store.db import begin_write
from hub.store.migrate import StoreNewer
from hub.store.schema import hub_leases
from hub.web.app import create_app
from tests.support.web_app import login, write_config

FAILOVER = {"enabled": True, "hub_name": "hub-b", "web_url": "http://127.0.0.1:18081"}


@pytest.fixture
def cfg(tmp_path, store):
    if not store.is_postgres:
        pytest.skip("a failover hub runs on PostgreSQL only (SQLite is refused at start)")
    return load(write_config(tmp_path / "hub", failover=FAILOVER))


@pytest.fixture
def role():
    return {"role": "standby"}


@pytest.fixture
def app(engine, cfg, bus, alert_center, role):
    return create_app(engine, cfg, bus=bus, alerts=alert_center, stats=lambda: {"broker_connected": True, **role},
                      overrides={"TESTING": True})


def _lease(engine, epoch: int, hub: str, web_url: str | None) -> None:
    with begin_write(engine) as conn:
        conn.execute(insert(hub_leases).values(epoch=epoch, hub=hub, since="2026-12-06T01:00:00.000000Z",
                                               web_url=web_url))


def test_the_standby_says_so_when_no_hub_is_active(client):
    page = client.get("/")
    assert page.status_code == 503
    assert "このハブ（hub-b）は待機中で、稼働中のハブはまだありません。" in page.get_data(as_text=True)
    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.get_json()["hub"] == {"name": "hub-b", "role": "standby", "active": None, "active_since": None}


def test_the_standby_redirects_pages_to_the_active_hub(client, engine):
    _lease(engine, 1, "hub-a", "http://127.0.0.1:18080/")
    page = client.get("/events?station=cabinet-1")
    assert page.status_code == 307
    assert page.headers["Location"] == "http://127.0.0.1:18080/events?station=cabinet-1"
    # Signing in is a page too: it happens at the active hub.
    assert client.get("/login").headers["Location"] == "http://127.0.0.1:18080/login"
    assert client.get("/healthz").get_json()["hub"]["active"] == "hub-a"


def test_the_active_hubs_status_page_names_it_and_since_when(client, engine, users, role):
    _lease(engine, 1, "hub-a", None)
    _lease(engine, 2, "hub-b", FAILOVER["web_url"])
    role["role"] = "active"
    assert login(client, users["auditor"]).status_code == 302  # the auditor reads English
    html = client.get("/").get_data(as_text=True)
    assert "Active hub: hub-b, since 2026-12-06 10:00" in html
    assert "This page is served by hub-b." in html
    assert client.get("/healthz").get_json()["hub"] == {
        "name": "hub-b", "role": "active", "active": "hub-b", "active_since": "2026-12-06T01:00:00+00:00"}


def test_a_standby_older_than_the_store_says_why_instead_of_redirecting(client, engine, role):
    _lease(engine, 1, "hub-a", "http://127.0.0.1:18080/")
    role["blocked"] = StoreNewer("0099_from_a_newer_kagiban", "0024_lease_log")
    page = client.get("/events")
    assert page.status_code == 503
    assert ("このハブ（hub-b）は稼働を引き継げません。ストアのリビジョン 0099_from_a_newer_kagiban は、"
            "このハブの kagiban が知らないものです（このハブが知る最新は 0024_lease_log）。") in page.get_data(as_text=True)
    with client.session_transaction() as session:
        session["lang"] = "en"
    english = client.get("/").get_data(as_text=True)
    assert ("This hub (hub-b) cannot take over: the store is at revision 0099_from_a_newer_kagiban, which its "
            "kagiban does not know (its newest is 0024_lease_log). A newer kagiban migrated the store: "
            "upgrade kagiban on this machine.") in english
    assert client.get("/healthz").get_json()["hub"] == {
        "name": "hub-b", "role": "standby", "active": "hub-a", "active_since": "2026-12-06T01:00:00+00:00",
        "blocked": {"code": "store_newer", "store_revision": "0099_from_a_newer_kagiban",
                    "code_revision": "0024_lease_log"}}
