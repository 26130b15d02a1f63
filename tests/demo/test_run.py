"""`kagiban demo` starts broker, hub, print server and one simulated station of each kind, serves
its page, and stops everything it started after --duration. When its print server cannot start,
every station still runs, and the banner and the status page say which part failed and why. The
office's day, run fast, shows on the page (ledger, alerts, the refused part-timer) and then the
demo goes quiet."""
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
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from demo import office
from demo import run as demo
from tests.support import terminal_users
from tests.support.mosquitto import free_port, wait_for

# Events of the office's morning and afternoon, each kind of station's own among them.
EXPECTED = {"print.released", "shred.started", "badge.denied", "key.used", "door.opened"}


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


def still_running(procs: dict[int, str], grace_s: float = 5.0) -> dict[int, str]:
    """Those of ``procs`` that still run the same command (not reaped zombies, not reused pids)
    after ``grace_s``: a process ending on its parent's exit (multiprocessing's resource tracker
    reads its pipe's end) may take a moment after the demo has gone."""
    deadline = time.monotonic() + grace_s
    while True:
        table = _proc_table()
        left = {pid: cmd for pid, cmd in procs.items()
                if pid in table and table[pid][1] != "Z" and table[pid][2] == cmd}
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


def stored(db: Path, sql: str) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []  # not created yet
    finally:
        con.close()


@pytest.mark.e2e
@pytest.mark.timeout(300)  # a minute to start on a busy machine, its day's first half, --duration, the stop
def test_demo_runs_every_kind_of_station_serves_its_page_and_stops_cleanly():
    # Not tmp_path: as root, cupsd's filters run as "lp", who cannot pass through pytest's 0700
    # folder; a folder of our own under /tmp (the demo opens it to them) is what a user gets.
    data = Path(tempfile.mkdtemp(prefix="kagiban-demo-test-"))
    # The demo's terminal prints as this OS account (the holding queue wants a signed-in user).
    terminal_users.ensure(office.SHUJI_A.print_user)
    port = free_port()
    out = data / "demo.out"
    started: dict[int, str] = {}  # what the demo started, noted while it runs
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kagiban.cli", "--log-level", "WARNING", "demo", "--port", str(port),
             "--data", str(data), "--duration", "60", "--speed", "1000", "--admin-password", "demo-pass-1"],
            stdout=f, stderr=subprocess.STDOUT,
        )
    try:
        # The hub migrates and seeds its database first: slow on a busy machine.
        wait_for(lambda: get(f"http://127.0.0.1:{port}/healthz")[0] == 200, timeout=60, what="demo page")
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

        # The day starts LEAD_S after the configuration is written; the shredding is at 15:30.
        wait_for(seen, timeout=60, interval=0.5, what=f"events from {stations} including {sorted(wanted)}")
        kinds = {demo.KIND[s] for (s,) in stored(db, "SELECT DISTINCT station FROM events")}
        assert kinds == {"cabinet", "shredder", "printer", "door", "annunciator", "rollcall"}
        [(people,)] = stored(db, "SELECT data FROM events WHERE kind='shred.started' ORDER BY row_no LIMIT 1")
        assert f'"people":["{office.SHUJI_A.number}","{office.SHUJI_B.number}"]' in people
        [(released,)] = stored(db, "SELECT data FROM events WHERE kind='print.released' ORDER BY row_no LIMIT 1")
        assert f'"user":"{office.SHUJI_A.print_user}"' in released and '"count":1' in released
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
        assert proc.wait(timeout=90) == 0  # --duration 60
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


def _text(html: str) -> str:
    """What a reader sees of a page: its text without tags, scripts or runs of spaces."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# The whole day in a little over two minutes; then this long without a new event or alert.
DAY_SPEED, QUIET_S = 300.0, 20.0
# Routine reports that go on when nothing happens (the printer looking at its holding queue).
ROUTINE = "('print.queue')"


@pytest.mark.e2e
@pytest.mark.timeout(540)
def test_the_office_day_plays_once_shows_on_the_page_and_then_goes_quiet():
    from demo import day

    data = Path(tempfile.mkdtemp(prefix="kagiban-demo-test-"))
    terminal_users.ensure(office.SHUJI_A.print_user)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    out = data / "demo.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "kagiban.cli", "--log-level", "WARNING", "demo", "--port", str(port),
             "--data", str(data), "--speed", str(DAY_SPEED), "--admin-password", "demo-pass-3"],
            stdout=f, stderr=subprocess.STDOUT,
        )
    started: dict[int, str] = {}
    db = data / "hub" / "kagiban.db"
    try:
        printed = wait_for(lambda: "admin / demo-pass-3" in out.read_text() and out.read_text(), timeout=90,
                           what="banner printed")
        assert "07:55-19:35 in 2.3 min (--speed 300), then quiet" in printed
        started.update(descendants(proc.pid))
        # Every unit plays its part and says when its day is over (the after-hours use waits for
        # the archive's compressed hours to close: at most a minute past the day's end).
        budget = demo.LEAD_S + day.Clock(epoch=1.0, speed=DAY_SPEED).length_s() + 60 + 60

        def over() -> bool:
            return all("demo day: over" in (data / "logs" / f"{sid}.log").read_text(errors="replace")
                       for sid in demo.NAMES)

        wait_for(over, timeout=budget, interval=1.0, what="every unit's day over")
        # Quiet: no event besides routine reports, no alert, for QUIET_S (events still in flight
        # from the last episode have a few seconds to land first).
        time.sleep(3)
        events = f"SELECT count(*) FROM events WHERE kind NOT IN {ROUTINE}"
        before = stored(db, events), stored(db, "SELECT count(*) FROM alerts")
        time.sleep(QUIET_S)
        assert (stored(db, events), stored(db, "SELECT count(*) FROM alerts")) == before
        assert proc.poll() is None  # still serving its page

        client = signed_in(url, "demo-pass-3")
        status = _text(client.open(url, timeout=10).read().decode())
        # The forced archive cabinet, and the part-timer refused with the reason in Japanese.
        assert f"{demo.NAMES['cabinet-2']}で扉がこじ開けられました" in status
        assert re.search(rf"バッジ{office.PART_TIMER.badge}が拒否されました（理由: 研修未受講", status), status[-4000:]
        history = _text(client.open(url + "alerts", timeout=10).read().decode())
        archive = demo.NAMES["cabinet-2"]
        assert re.search(rf"{archive} 時間外の利用 {archive}で時間外", history), history[-3000:]
        # Those, and the trained part-timer's use of a cabinet she is not designated for, and
        # nothing else: a day, not a flood.
        assert sorted(r for (r,) in stored(db, "SELECT rule FROM alerts")) == [
            "after_hours", "denied", "flagged_use", "forced"]
        # The afternoon's training: her tap at the meeting room's unit checked her in, the
        # supervisor's close recorded it, and the office's cabinet let her in afterwards.
        [(answer,)] = stored(db, "SELECT json_extract(data, '$.answer') FROM events WHERE kind='rollcall.tap'")
        assert answer == "present"
        assert stored(db, "SELECT closed_by, status, staff_no FROM rollcall_sessions JOIN rollcall_people "
                          "ON rollcall_people.session_id = rollcall_sessions.id") == [
            ("admin", "present", office.PART_TIMER.number)]
        roll_call = _text(client.open(url + "rollcall/1", timeout=10).read().decode())
        assert office.PART_TIMER.name in roll_call, roll_call[-2000:]
        assert stored(db, "SELECT person FROM events WHERE kind='badge.granted' AND station='cabinet-1' "
                          f"AND person='{office.PART_TIMER.number}'") == [(office.PART_TIMER.number,)]
        # The key ledger: the holder's and the stand-in's uses at the office's cabinet, the forced
        # opening of the archive's with nobody identified.
        ledger = _text(client.open(url + "ledger/keys", timeout=10).read().decode())
        office_cabinet = ledger[ledger.index(demo.NAMES["cabinet-1"] + " cabinet-1"):
                                ledger.index(demo.NAMES["cabinet-2"] + " cabinet-2")]
        assert office_cabinet.count(f"鍵の使用 {office.KAKARICHO.name} {office.KAKARICHO.number}") == 2
        assert f"鍵の使用 {office.SHUNIN.name} {office.SHUNIN.number}" in office_cabinet
        assert "こじ開け 特定できず" in ledger
        # The events page names the refused part-timer.
        events_page = _text(client.open(url + "events", timeout=10).read().decode())
        assert f"バッジ拒否 {office.PART_TIMER.name} ({office.PART_TIMER.number})" in events_page
        [(shred,)] = stored(db, "SELECT data FROM events WHERE kind='shred.started'")
        assert f'"people":["{office.SHUJI_A.number}","{office.SHUJI_B.number}"]' in shred
        [(released,)] = stored(db, "SELECT data FROM events WHERE kind='print.released'")
        assert f'"user":"{office.SHUJI_A.print_user}"' in released
        started.update(descendants(proc.pid))
    finally:
        if proc.poll() is None:
            proc.terminate()  # as Ctrl-C
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        left = still_running(started)
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        text = out.read_text() if out.exists() else ""
        shutil.rmtree(data, ignore_errors=True)
    assert proc.returncode == 0 and "kagiban demo stopped." in text
    assert left == {}
    assert not re.search(r"Traceback", text), text[-3000:]
