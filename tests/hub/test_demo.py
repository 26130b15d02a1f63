"""`kagiban demo` starts broker, hub and simulated cabinets, serves its page, and stops
everything it started after --duration."""
import re
import subprocess
import sys
import urllib.request

import pytest

from tests.support.mosquitto import free_port, wait_for


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read().decode()
    except OSError:
        return 0, ""


@pytest.mark.e2e
def test_demo_runs_serves_its_page_and_stops_cleanly(tmp_path):
    port = free_port()
    out = tmp_path / "demo.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kagiban.cli", "--log-level", "WARNING", "demo", "--port", str(port),
             "--data", str(tmp_path / "demo"), "--duration", "25", "--admin-password", "demo-pass-1"],
            stdout=f, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=30, what="demo page")
        printed = wait_for(lambda: "admin / demo-pass-1" in out.read_text() and out.read_text(), timeout=10,
                           what="login printed")
        assert f"http://127.0.0.1:{port}/" in printed
        # The simulated cabinets' events reach the hub's store.
        db = tmp_path / "demo" / "hub" / "kagiban.db"
        import sqlite3

        def stations_with_events():
            con = sqlite3.connect(db)
            try:
                return {r[0] for r in con.execute("SELECT DISTINCT station FROM events")}
            except sqlite3.OperationalError:
                return set()
            finally:
                con.close()

        wait_for(lambda: stations_with_events() >= {"cabinet-1", "cabinet-2", "cabinet-3"}, timeout=20,
                 what="events from all three cabinets")
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = out.read_text()
    assert "kagiban demo stopped." in text
    # Nothing it started is left running: the broker port and the web port are free again.
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 0
    assert not re.search(r"Traceback", text), text[-3000:]
