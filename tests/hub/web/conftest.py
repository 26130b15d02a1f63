"""Fixtures for the web tests: the Flask app from its factory over a fresh store (SQLite, then PostgreSQL) per
test (the Flask tutorial pattern), real users with argon2 hashes, and events stored through
a real Ingest so the hash chain is real."""
from __future__ import annotations

import shutil

import pytest

from hub.store import migrate
from hub.alerting.alerts import AlertCenter
from hub.config import load
from hub.store.db import make_engine
from hub.live import LiveBus
from hub.registry.policy import compile_policies, load_staff, store_policies
from hub.accounts.users import add_user
from hub.web.app import create_app
from hub.web.server import WebServer
from tests.support.web_app import CHROMIUM, CHROMIUM_ARGS, PASSWORD, login, write_config


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub"))


@pytest.fixture
def engine(cfg):
    eng = make_engine(cfg.db_url())
    migrate.upgrade(eng)
    # The staff policies, as the hub stores them at start (names for the ledger come from here).
    store_policies(eng, compile_policies(load_staff(cfg.staff_path()), cfg.known_stations()))
    yield eng
    eng.dispose()


@pytest.fixture
def bus():
    return LiveBus()


@pytest.fixture
def alert_center(engine, cfg, bus):
    return AlertCenter(engine, cfg, bus=bus)


@pytest.fixture
def stats():
    figures = {"ingested": 7, "quarantined": 2, "duplicates": 1, "snapshots": 3, "backlog": 0,
               "broker_connected": True}
    return figures


@pytest.fixture
def app(engine, cfg, bus, alert_center, stats):
    return create_app(engine, cfg, bus=bus, alerts=alert_center, stats=lambda: stats,
                      overrides={"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def users(engine):
    """One user per role; all share PASSWORD."""
    add_user(engine, "sup-01", PASSWORD, "supervisor", display_name="Supervisor 01")
    add_user(engine, "aud-01", PASSWORD, "auditor", display_name="Auditor 01", language="en")
    add_user(engine, "adm-01", PASSWORD, "admin", display_name="Admin 01")
    return {"supervisor": "sup-01", "auditor": "aud-01", "admin": "adm-01"}


@pytest.fixture
def as_supervisor(client, users):
    assert login(client, users["supervisor"]).status_code == 302
    return client


@pytest.fixture
def as_auditor(client, users):
    assert login(client, users["auditor"]).status_code == 302
    return client


@pytest.fixture
def browser():
    """Debian's chromium driven by Playwright; the test command installs it, so its absence
    is a failure, not a skip."""
    from playwright.sync_api import sync_playwright

    if not shutil.which(CHROMIUM):
        pytest.fail("Debian chromium is not installed (scripts/install-deps --test installs it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def server(app):
    """The app served by a real waitress server on a free loopback port."""
    srv = WebServer(app, "127.0.0.1", 0).start()
    yield srv
    srv.stop()
