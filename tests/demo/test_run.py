"""`kagiban demo` starts broker, hub, print server and one simulated station of each kind, serves
its page, and stops everything it started after --duration. When its print server cannot start,
every station still runs, and the banner and the status page say which part failed and why."""
import contextlib
import http.cookiejar
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from demo import run as demo
from tests.support import terminal_users
from tests.support.mosquitto import free_port, wait_for

# Events each kind of station shows within the first half minute, one of them its own kind's.
EXPECTED = {"print.released", "tray.uncollected", "shred.started", "door.intrusion", "key.used"}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status, r.read().decode()
    except OSError:
        return 0, ""


def _proc_table() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            cmdline = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # gone meanwhile
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        state, ppid = text.rsplit(")", 1)[1].split()[:2]
        table[int(stat.parent.name)] = (int(ppid), state, cmdline)
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every process below ``pid``: pid -> command line."""
    table = _proc_table()
    found, todo = {}, [pid]
    while todo:
        parent = todo.pop()
        for child, (ppid, _state, cmdline) in table.items():
            if ppid == parent and child not in found:
                found[child] = cmdline
                todo.append(child)
    return found


def still_running(procs: dict[int, str]) -> dict[int, str]:
    """Those of ``procs`` that still run the same command (not reaped zombies, not reused pids)."""
    table = _proc_table()
    return {pid: cmd for pid, cmd in procs.items()
            if pid in table and table[pid][1] != "Z" and table[pid][2] == cmd}


def stored(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        con.close()


@pytest.mark.e2e
def test_demo_runs_every_kind_of_station_serves_its_page_and_stops_cleanly():
    # Not tmp_path: as root, cupsd's filters run as "lp", who cannot pass through pytest's 0700
    # folder; a folder of our own under /tmp (the demo opens it to them) is what a user gets.
    data = Path(tempfile.mkdtemp(prefix="kagiban-demo-test-"))
    # The demo's terminals print as these OS accounts (the holding queue wants a signed-in user).
    for print_user in ("staff001", "staff002"):
        terminal_users.ensure(print_user)
    port = free_port()
    out = data / "demo.out"
    started: dict[int, str] = {}  # what the demo started, noted while it runs
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kagiban.cli", "--log-level", "WARNING", "demo", "--port", str(port),
             "--data", str(data), "--duration", "32", "--admin-password", "demo-pass-1"],
            stdout=f, stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=20, what="demo page")
        printed = wait_for(lambda: "admin / demo-pass-1" in out.read_text() and out.read_text(), timeout=10,
                           what="login printed")
        assert f"http://127.0.0.1:{port}/" in printed
        # Every part, running, with its log file; the printer included (CI installs cups).
        stations = list(demo.NAMES)
        for part in ("broker", "hub", "print server", *stations):
            assert re.search(rf"(?m)^\s+{part}\s+running\s+\S", printed), f"{part} not running in the banner"
        assert f"Logs:     {data / 'logs'}/" in printed
        for sid in stations:
            assert f"[log: logs/{sid}.log]" in printed

        # The simulated stations' events reach the hub's store: every kind, each its own story.
        db = data / "hub" / "kagiban.db"
        wanted = EXPECTED

        def seen():
            started.update(descendants(proc.pid))
            rows = stored(db, "SELECT DISTINCT station, kind FROM events")
            return {s for s, _k in rows} >= set(stations) and {k for _s, k in rows} >= wanted

        wait_for(seen, timeout=30, interval=0.5, what=f"events from {stations} including {sorted(wanted)}")
        kinds = {demo.KIND[s] for (s,) in stored(db, "SELECT DISTINCT station FROM events")}
        assert kinds == {"cabinet", "shredder", "printer", "door", "annunciator"}
        [(people,)] = stored(db, "SELECT data FROM events WHERE kind='shred.started' ORDER BY row_no LIMIT 1")
        assert '"people":["S001","S002"]' in people
        [(released,)] = stored(db, "SELECT data FROM events WHERE kind='print.released' ORDER BY row_no LIMIT 1")
        assert '"user":"staff001"' in released and '"count":2' in released
        # Each part writes its log in the demo's folder, where the banner says.
        for sid in stations:
            assert (data / "logs" / f"{sid}.log").stat().st_size > 0, sid
        # The hub's alerts go to its log file; the terminal keeps the banner readable.
        assert "hub.alerting.alerts" in (data / "logs" / "hub.log").read_text()
        assert "hub.alerting.alerts" not in out.read_text()

        # What it started, to check it is gone afterwards: broker, print server, seven units.
        started.update(descendants(proc.pid))
        commands = list(descendants(proc.pid).values())
        assert sum("mosquitto" in c for c in commands) == 1, commands
        assert sum(" device " in c or ("demo.run" in c and " unit " in c) for c in commands) == len(stations), commands
        assert sum("cupsd" in c for c in commands) == 1, commands
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            # As Ctrl-C would: the demo stops what it started; only then the hard way.
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        left = still_running(started)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # a failed run must not leave a broker or cupsd behind
        text = out.read_text() if out.exists() else ""
        shutil.rmtree(data, ignore_errors=True)
    assert "kagiban demo stopped." in text
    # Nothing it started is left running: no process, and the web port is free again.
    assert left == {}
    assert get(f"http://127.0.0.1:{port}/healthz")[0] == 0
    assert not re.search(r"Traceback", text), text[-3000:]


# The demo as `kagiban demo` runs it, but cupsd is not found (the seam: localcups looks tools
# up through _tool), as on a machine without the cups package.
WITHOUT_CUPSD = """
import sys
from demo import cups as localcups
found = localcups._tool
localcups._tool = lambda name: None if name == "cupsd" else found(name)
from kagiban.cli import main
sys.exit(main(sys.argv[1:]))
"""


def signed_in(url: str, password: str) -> urllib.request.OpenerDirector:
    """A browser-like client signed in through the form (CSRF token and session cookie)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    page = opener.open(url + "login", timeout=5).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"username": "admin", "password": password, "csrf_token": token}).encode()
    opener.open(url + "login", data=body, timeout=5)
    return opener


@pytest.mark.e2e
def test_without_a_print_server_every_station_runs_and_the_banner_and_page_say_why():
    data = Path(tempfile.mkdtemp(prefix="kagiban-demo-test-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    out = data / "demo.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-c", WITHOUT_CUPSD, "--log-level", "WARNING", "demo", "--port", str(port),
             "--data", str(data), "--duration", "25", "--admin-password", "demo-pass-2"],
            stdout=f, stderr=subprocess.STDOUT,
        )
    started: dict[int, str] = {}
    try:
        printed = wait_for(lambda: "admin / demo-pass-2" in out.read_text() and out.read_text(), timeout=30,
                           what="banner printed")
        assert re.search(r"(?m)^\s+print server\s+FAILED\s+cupsd is not installed \(Debian packages cups", printed)
        assert re.search(r"(?m)^\s+printer-1\s+degraded\s+.*no print server", printed)
        for sid in demo.NAMES:
            assert re.search(rf"(?m)^\s+{sid}\s+(running|degraded)\s+\S", printed), f"{sid} not in the banner"

        # The printer still runs and reports, with every other kind of station.
        db = data / "hub" / "kagiban.db"
        wait_for(lambda: {s for (s,) in stored(db, "SELECT DISTINCT station FROM events")} >= set(demo.NAMES),
                 timeout=30, interval=0.5, what="events from every station, printer-1 included")
        started.update(descendants(proc.pid))
        assert not any("cupsd" in c for c in started.values())

        # The status page says it too: which part, why, and which station runs without it.
        page = signed_in(url, "demo-pass-2").open(url, timeout=5).read().decode()
        box = page[page.index('id="notices"'):]
        box = box[:box.index("</section>")]
        assert "印刷サーバー (cupsd)を起動できませんでした。" in box
        assert "cupsd is not installed (Debian packages cups" in box
        assert demo.NAMES["printer-1"] in box
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for pid in still_running(started):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        text = out.read_text() if out.exists() else ""
        shutil.rmtree(data, ignore_errors=True)
    assert "kagiban demo stopped." in text
    assert not re.search(r"Traceback", text), text[-3000:]
