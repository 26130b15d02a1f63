"""The demo as a deployment in miniature (issue 12): ``kagiban demo`` as a user runs it, then the
outside check's findings replayed. Its broker refuses an anonymous client and a guessed password
while every simulated unit gets in with the password generated for it at this start; no
password is written into a YAML file or a log; and what the demo created (databases, keys,
configuration, passwords, logs) is private: files 0600, folders 0700 (the print server's folder
excepted: its filters run as another user)."""
from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from demo import run as demo
from tests.support.mosquitto import free_port, wait_for

DURATION_S = 24


def _stations_stored(db: Path) -> set[str]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.OperationalError:
        return set()
    try:
        return {s for (s,) in con.execute("SELECT DISTINCT station FROM events")}
    except sqlite3.OperationalError:
        return set()  # not created yet
    finally:
        con.close()


def _connects(port: int, username: str | None, password: str | None) -> bool:
    """True if the broker accepts this client (MQTT v5, client id of its own)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, client_id="outsider-check")
    client.reconnect_delay_set(120, 120)
    if username is not None:
        client.username_pw_set(username, password)
    answer: list = []
    closed = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: answer.append(rc)
    client.on_disconnect = lambda c, u, f, rc, p: closed.set()
    try:
        client.connect("127.0.0.1", port, keepalive=10)
        client.loop_start()
        wait_for(lambda: answer or closed.is_set(), timeout=10, what="the broker's answer")
        return bool(answer) and not answer[0].is_failure
    finally:
        client.disconnect()
        client.loop_stop()


def _modes(data: Path) -> tuple[list[str], list[str]]:
    """(files others than the owner may read, folders others than the owner may enter), outside
    the print server's folder."""
    loose_files, loose_dirs = [], []
    for path in [data, *data.rglob("*")]:
        rel = path.relative_to(data)
        if rel.parts[:1] == ("cups",):
            continue
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            # As root, the folder itself lets the print filters' group pass (search, not list).
            allowed = 0o010 if path == data else 0
            if mode & 0o077 & ~allowed:
                loose_dirs.append(f"{rel} {oct(mode)}")
        elif stat.S_ISREG(st.st_mode) and mode & 0o077:
            loose_files.append(f"{rel} {oct(mode)}")
    return loose_files, loose_dirs


@pytest.mark.e2e
def test_demo_broker_refuses_outsiders_and_its_files_are_private(tmp_path):
    # Not tmp_path for the data: as root, cupsd's filters must pass through it (see test_demo).
    data = Path(tempfile.mkdtemp(prefix="kagiban-demo-sec-"))
    out = tmp_path / "demo.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kagiban.cli", "--log-level", "WARNING", "demo", "--port", str(free_port()),
             "--data", str(data), "--duration", str(DURATION_S), "--admin-password", "demo-pass-3"],
            stdout=f, stderr=subprocess.STDOUT,
        )
    try:
        printed = wait_for(lambda: "admin / demo-pass-3" in out.read_text() and out.read_text(), timeout=40,
                           interval=0.2, what="the demo's banner")
        port = int(re.search(r"broker\s+running\s+mosquitto on 127\.0\.0\.1:(\d+)", printed).group(1))

        # Every unit got in with its generated password: the hub stored events from each.
        wait_for(lambda: _stations_stored(data / "hub" / "kagiban.db") >= set(demo.NAMES), timeout=30,
                 interval=0.5, what="events from every simulated unit")
        # The outsider on the office network: no anonymous access, no guessing.
        assert not _connects(port, None, None), "the demo broker let an anonymous client in"
        assert not _connects(port, "kagiban-hub", "demo"), "the demo broker took a guessed password"
        assert not _connects(port, "cabinet-1", ""), "the demo broker took an empty password"
        assert proc.wait(timeout=DURATION_S + 30) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    try:
        credentials = sorted((data / "credentials").glob("*.password"))
        assert {p.stem for p in credentials} == {"kagiban-hub", *demo.NAMES}
        secrets = [p.read_text().strip() for p in credentials]
        assert all(len(s) >= 32 for s in secrets) and len(set(secrets)) == len(secrets)
        # The secrets are named by the YAML files, never written into them or any log.
        for path in [*data.glob("*.yaml"), *data.rglob("*.log")]:
            text = path.read_text(errors="replace")
            assert not any(s in text for s in secrets), f"a broker password in {path.relative_to(data)}"
        assert str(data / "credentials" / "cabinet-1.password") in (data / "cabinet-1.yaml").read_text()

        # Databases, keys, configuration, passwords and logs: the user's alone.
        for must in ("hub/kagiban.db", "hub/policy-signing.key", "cabinet-1.yaml", "hub.yaml",
                     "cabinet-1-data/station.key", "credentials/kagiban-hub.password", "mosquitto/passwd",
                     "logs/hub.log"):
            assert (data / must).exists(), must
        assert len(list(data.glob("*-data/outbox.sqlite"))) == len(demo.NAMES), "a unit database is missing"
        loose_files, loose_dirs = _modes(data)
        assert loose_files == [], loose_files
        assert loose_dirs == [], loose_dirs
    finally:
        shutil.rmtree(data, ignore_errors=True)
    assert "Traceback" not in out.read_text()
