"""Fixtures for the web tests: the Flask app from its factory over a fresh SQLite store per
test (the Flask tutorial pattern), real users with argon2 hashes, and events stored through
a real Ingest so the hash chain is real."""
from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub.store import migrate
from hub.alerting.alerts import AlertCenter
from hub.config import load
from hub.store.db import make_engine
from hub.ingest.writer import Ingest
from hub.live import LiveBus
from hub.registry.policy import compile_policies, load_staff, store_policies
from hub.accounts.users import add_user
from hub.web.app import create_app
from tests.hub.helpers import encode

PREFIX = "kagiban"
PASSWORD = "correct horse 01"
HOLDER = "0123456789ABCDEF"
STANDIN = "1111222233334444"
STAFF = {
    "people": [
        {"id": "S001", "name": "Staff 001", "badges": [HOLDER], "stations": ["*"], "decision": "allow"},
        {"id": "S002", "name": "Staff 002", "badges": [STANDIN], "stations": ["*"], "decision": "allow_flag"},
    ]
}
STATIONS = [
    {"id": "cabinet-1", "site": "ward-a", "kind": "cabinet", "name": "Cabinet 1"},
    {"id": "cabinet-2", "site": "ward-a", "kind": "cabinet"},
]
_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def write_config(folder: Path, **sections: Any) -> Path:
    """A hub file for app-level tests: its own data folder and staff file, no broker needed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "staff.yaml").write_text(yaml.safe_dump(STAFF, allow_unicode=True))
    body: dict[str, Any] = {
        "broker": {"host": "127.0.0.1", "port": 1883, "prefix": PREFIX},
        "data_dir": "data",
        "staff_file": "staff.yaml",
        "time_zone": "Asia/Tokyo",
        "stations": STATIONS,
        "web": {"port": 0},
    }
    body.update(sections)
    path = folder / "hub.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    return path


@pytest.fixture
def cfg(tmp_path):
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


def csrf_from(html: str) -> str:
    found = _CSRF_RE.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client, username: str, password: str = PASSWORD):
    """Sign in through the form, as a browser does (CSRF token from the sign-in page)."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


@pytest.fixture
def as_supervisor(client, users):
    assert login(client, users["supervisor"]).status_code == 302
    return client


@pytest.fixture
def as_auditor(client, users):
    assert login(client, users["auditor"]).status_code == 302
    return client


def store(engine, payloads: list[tuple[str, dict]], *, snapshots: list[dict] | None = None) -> Ingest:
    """Store events (channel, payload) through a real Ingest; returns it after it stopped."""
    ing = Ingest(engine, prefix=PREFIX).start()
    for channel, body in payloads:
        ing.submit(f"{PREFIX}/{body['site']}/{body['station']}/{channel}", encode(body))
    for body in snapshots or []:
        ing.submit(f"{PREFIX}/{body['site']}/{body['station']}/snapshot", encode(body))
    ing.stop()
    return ing


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


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
