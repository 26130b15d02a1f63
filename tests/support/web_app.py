"""Helpers for the tests of the hub's web page and API: a hub file for app-level tests (no
broker), the shared users' password, signing in through the form as a browser does, storing
events through a real Ingest, Debian's chromium for Playwright, and a server-sent-events client
for the live stream."""
from __future__ import annotations

import base64
import http.client
import json
import re
import time
from pathlib import Path
from typing import Any

import yaml

from hub.ingest.writer import Ingest
from tests.hub.helpers import encode
from tests.support.postgres import database_section

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
        # The running test's store (PostgreSQL when parametrized so; SQLite's default file else).
        **database_section(folder),
    }
    body.update(sections)
    path = folder / "hub.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    return path


def csrf_from(html: str) -> str:
    """The CSRF token of the form on ``html`` (fails the test if there is none)."""
    found = _CSRF_RE.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


def login(client, username: str, password: str = PASSWORD):
    """Sign in through the form, as a browser does (CSRF token from the sign-in page)."""
    token = csrf_from(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


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


# Browser tests: every wait for the page is bounded; a sign-in checks an argon2 hash, slower than
# a page on a busy machine.
BROWSER_WAIT_MS = 5_000
SIGN_IN_MS = 20_000


def browser_signed_in(browser, base: str, user: str, **context_options: Any):
    """A new Chromium context (Japanese, Tokyo, 1366 px wide, every wait bounded) with ``user``
    signed in on the login page at ``base``; (context, page)."""
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", viewport={"width": 1366, "height": 900},
                                  **context_options)
    context.set_default_timeout(BROWSER_WAIT_MS)
    page = context.new_page()
    page.goto(f"{base}login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation(timeout=SIGN_IN_MS):
        page.click("button.primary", no_wait_after=True)
    return context, page


class Stream:
    """A server-sent-events client on a raw HTTP connection, with bounded waits."""

    def __init__(self, port: int, user: str, path: str = "/events/stream"):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        self.conn.request("GET", path, headers={"Authorization": f"Basic {token}", "Accept": "text/event-stream"})
        self.response = self.conn.getresponse()
        self.lines: list[str] = []

    def next_message(self, timeout: float = 5.0) -> tuple[str, str]:
        """The next (event name, data) or ("comment", text), within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        name, data = "message", []
        while time.monotonic() < deadline:
            try:
                line = self.response.fp.readline().decode("utf-8").rstrip("\n")
            except TimeoutError:
                continue
            if line.startswith(":"):
                return "comment", line[1:].strip()
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "" and data:
                return name, "\n".join(data)
        raise TimeoutError(f"no message within {timeout}s")

    def wait_for(self, name: str, timeout: float = 5.0) -> dict:
        """The data of the next message named ``name``, skipping others, within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            kind, payload = self.next_message(max(0.05, deadline - time.monotonic()))
            if kind == name:
                return json.loads(payload)

    def close(self) -> None:
        # The response holds its own reference to the socket: both must go for it to close.
        self.response.close()
        self.conn.close()
