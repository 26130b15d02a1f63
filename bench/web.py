"""Web page server time with 1,000,000 events stored: the status page and a day's key ledger.

    python bench/web.py [--events 1000000 --stations 20 --days 365] [--quick]
    python bench/web.py --keep ...; python bench/web.py --store /tmp/kagiban-bench-web-XXXX

The store is built directly (no MQTT): a year of key-cabinet events (tap, door opened, door
closed, key used; now and then a refused badge or a forced door) for 20 cabinets, at office
hours, hash-chained with hub.store.chain's own functions and bulk-inserted; ``kagiban verify`` then
checks the chain, and its time is reported too. ``--store`` measures again over the store a
``--keep`` run left (no build, no new alerts). The pages are requested through Flask's test
client by a signed-in supervisor (the whole request inside the server: routing, session,
queries, templates), each several times after a warm-up; the first (cold) request is shown
apart, and the median CPU time of the request's thread beside the wall times (the machine is
shared), and Python's full garbage collections that fell in a page's timed requests (each costs
the request it falls in tens of milliseconds; the one start-up leaves due is made before the
pages are timed). Baseline in the same run: /healthz of the same app (the framework's own
cost). Target: under 100 ms server time each.

The ledger's day is the last full day: its next day (read for the uses that end after
midnight) holds only the events of the morning the store ends on. A day a week earlier, whose
next day is full, is measured too.
"""
from __future__ import annotations

import gc
import json
import random
import re
import sqlite3
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Self

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uuid6  # noqa: E402
import yaml  # noqa: E402

from bench.common import (  # noqa: E402
    HOLDER,
    JST,
    SITE,
    STAFF,
    STANDIN,
    UNKNOWN,
    LoadMeter,
    Run,
    base_parser,
    dist_ms,
    machine_header,
    table,
    verdict,
    verify_db,
)

TARGET_MS = 100.0
PASSWORD = "bench password 01"
_CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def write_config(folder: Path, stations: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "staff.yaml").write_text(yaml.safe_dump(STAFF))
    body = {
        "broker": {"host": "127.0.0.1", "port": 1883, "prefix": "kagiban"},
        "data_dir": "data",
        "staff_file": "staff.yaml",
        "time_zone": "Asia/Tokyo",
        "stations": [{"id": s, "site": SITE, "kind": "cabinet", "name": f"Cabinet {s[-2:]}"} for s in stations],
        "web": {"port": 0},
    }
    path = folder / "hub.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


def build_store(cfg_path: Path, n: int, stations: list[str], days: int) -> tuple[Path, date, float]:
    """Migrate a fresh store and bulk-insert ``n`` hash-chained events; (db, busiest day, seconds)."""
    from hub.store import migrate
    from hub.store.chain import CONTENT_COLUMNS, canonical_json, row_hash
    from hub.config import load
    from hub.store.db import make_engine
    from hub.registry.policy import compile_policies, load_staff, store_policies
    from hub.store.schema import GENESIS_HASH
    from hub.store.timestamps import utc_text
    from hub.accounts.users import add_user

    cfg = load(cfg_path)
    engine = make_engine(cfg.db_url())
    migrate.upgrade(engine)
    store_policies(engine, compile_policies(load_staff(cfg.staff_path()), cfg.known_stations()))
    add_user(engine, "bench-sup", PASSWORD, "supervisor", display_name="bench")
    engine.dispose()
    db = cfg.data_path() / "kagiban.db"

    t0 = time.monotonic()
    rnd = random.Random(6)
    per_day = n / days / len(stations)  # events per cabinet per day
    today = datetime.now(JST).date()
    first = today - timedelta(days=days - 1)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")  # building the fixture, not measuring it
    cols = ("row_no", "site", "station", "seq", "event_id", "kind", "at", "at_utc", "badge", "person", "data",
            "received_at", "prev_hash", "hash")
    sql = f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    prev, row_no = GENESIS_HASH, 0
    seqs = {s: 0 for s in stations}
    batch: list[tuple] = []
    con.execute("BEGIN")

    def add(station: str, kind: str, at: datetime, badge, person, data: dict) -> None:
        nonlocal prev, row_no
        row_no += 1
        seqs[station] += 1
        row = {"site": SITE, "station": station, "seq": seqs[station], "event_id": str(uuid6.uuid7()),
               "kind": kind, "at": at.isoformat(), "badge": badge, "person": person,
               "data": data, "received_at": utc_text(at + timedelta(milliseconds=40))}
        digest = row_hash(prev, {c: row[c] for c in CONTENT_COLUMNS})
        batch.append((row_no, SITE, station, row["seq"], row["event_id"], kind, row["at"], utc_text(at), badge,
                      person, canonical_json(data), row["received_at"], prev, digest))
        prev = digest
        if len(batch) >= 20_000:
            con.executemany(sql, batch)
            batch.clear()

    day = first
    while row_no < n:
        for hour_slot in range(int(per_day // 4) + 1):
            if row_no >= n:
                break
            # One use per cabinet per slot, across the office day (08:30-17:15 JST), cabinets interleaved.
            minute = 8 * 60 + 30 + int((hour_slot + rnd.random()) * (525 / max(1.0, per_day / 4)))
            base = datetime(day.year, day.month, day.day, min(23, minute // 60), minute % 60, rnd.randrange(60),
                            tzinfo=JST)
            for station in stations:
                if row_no >= n:
                    break
                r = rnd.random()
                at = base + timedelta(seconds=rnd.randrange(30))
                if r < 0.01:
                    add(station, "badge.denied", at, UNKNOWN, None, {"reason": "unknown", "decision": "deny",
                                                                      "policy_version": 3})
                    continue
                if r < 0.012:
                    add(station, "door.forced", at, None, None, {"policy_version": 3})
                    add(station, "door.closed", at + timedelta(seconds=20), None, None,
                        {"authorised": False, "open_s": 20.0, "policy_version": 3})
                    continue
                badge, person, flagged = (HOLDER, "S001", False) if r < 0.8 else (STANDIN, "S002", True)
                open_s = round(20 + rnd.random() * 100, 3)
                opened, closed = at + timedelta(seconds=3), at + timedelta(seconds=3 + open_s)
                add(station, "badge.granted", at, badge, person,
                    {"reason": "allowed", "flagged": flagged, "unlock_s": 5.0, "decision": "allow", "policy_version": 3})
                add(station, "door.opened", opened, badge, person, {"authorised": True, "flagged": flagged, "policy_version": 3})
                add(station, "door.closed", closed, badge, person, {"authorised": True, "open_s": open_s, "policy_version": 3})
                add(station, "key.used", closed, badge, person,
                    {"unlocked_at": at.isoformat(), "opened_at": opened.isoformat(), "closed_at": closed.isoformat(),
                     "duration_s": open_s, "flagged": flagged, "policy_version": 3})
        day += timedelta(days=1)
        if day > today:
            day = first  # more events than days hold: wrap (seqs keep growing)
    if batch:
        con.executemany(sql, batch)
    con.execute("UPDATE chain_head SET row_no=?, hash=? WHERE id=1", (row_no, prev))
    now = datetime.now(JST)
    for station in stations:
        hb = {"v": 1, "site": SITE, "station": station, "kind": "cabinet", "at": now.isoformat(), "uptime_s": 86400.0,
              "next_seq": seqs[station] + 1, "outbox_depth": 0, "outbox_capacity": 200000, "policy_version": 3,
              "door": "closed", "locked": True}
        con.execute("INSERT OR REPLACE INTO stations (station, site, kind, state, state_since, last_seen, "
                    "last_heartbeat, policy_version) VALUES (?, ?, 'cabinet', 'online', ?, ?, ?, 3)",
                    (station, SITE, utc_text(now), utc_text(now), json.dumps(hb)))
    con.execute("COMMIT")
    con.close()
    return db, ledger_day(db), time.monotonic() - t0


def ledger_day(db: Path) -> date:
    """The ledger's day: the last full day that has events (the generator may stop before today)."""
    con = sqlite3.connect(db)
    last_at = con.execute("SELECT max(at) FROM events").fetchone()[0]
    con.close()
    last_day = datetime.fromisoformat(last_at).astimezone(JST).date()
    return min(last_day - timedelta(days=1), datetime.now(JST).date() - timedelta(days=1))


def add_alerts(cfg_path: Path, stations: list[str], count: int) -> None:
    from hub.alerting.alerts import AlertCenter
    from hub.config import load
    from hub.store.db import make_engine

    cfg = load(cfg_path)
    engine = make_engine(cfg.db_url())
    center = AlertCenter(engine, cfg)
    for i in range(count):
        st = stations[i % len(stations)]
        center.raise_alert(site=SITE, station=st, rule="denied", severity="warning", message="bench",
                           params={"site": SITE, "station": st, "badge": UNKNOWN, "reason": "unknown",
                                   "at": datetime.now(JST).isoformat(), "zone": "Asia/Tokyo"})
    engine.dispose()


class FullCollections:
    """Python's full (generation 2) garbage collections while it is on: how many, how long.
    Each walks every object of the process (tens of milliseconds here), so the request it
    falls in is that much slower: the slowest of a page's requests is often one of these."""

    def __init__(self) -> None:
        self.count, self.seconds, self._t0 = 0, 0.0, 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._t0

    def __enter__(self) -> Self:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc) -> None:
        gc.callbacks.remove(self._callback)


def timed(client, path: str, repeat: int) -> tuple[float, list[float], list[float], int, int, FullCollections]:
    """(cold seconds, warm seconds list, warm CPU seconds list, status, body bytes, full GCs)."""
    t0 = time.perf_counter()
    r = client.get(path)
    cold = time.perf_counter() - t0
    status, size = r.status_code, len(r.data)
    client.get(path)
    warm, cpu = [], []
    with FullCollections() as full:
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.thread_time()
            r = client.get(path)
            # The test client serves the request in this thread: its CPU time is the request's.
            cpu.append(time.thread_time() - c0)
            warm.append(time.perf_counter() - t0)
            status = max(status, r.status_code)
    return cold, warm, cpu, status, size, full


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=1800)
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--stations", type=int, default=20)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    p.add_argument("--store", type=Path, help="the folder of a --keep run: measure over its store again")
    args = p.parse_args()
    if args.quick:
        args.events, args.days, args.repeat = min(args.events, 20_000), min(args.days, 30), min(args.repeat, 5)
    with Run("web", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Web page server time with a large store (Flask test client, signed-in supervisor)", args)
        if args.store:
            cfg_path = args.store / "hub" / "hub.yaml"
            stations = [entry["id"] for entry in yaml.safe_load(cfg_path.read_text())["stations"]]
            db = args.store / "hub" / "data" / "kagiban.db"
            if not db.exists():
                p.error(f"--store: no store at {db}")
            day = ledger_day(db)
            how = f"reused from {args.store}"
        else:
            stations = [f"cab-{i:02d}" for i in range(1, args.stations + 1)]
            cfg_path = write_config(run.dir / "hub", stations)
            db, day, build_s = build_store(cfg_path, args.events, stations, args.days)
            add_alerts(cfg_path, stations, 30)
            how = f"built in {build_s:.0f} s"
        size_mb = db.stat().st_size / 1024 / 1024
        rows = sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone()[0]
        print(f"# {rows:,} events ({size_mb:,.0f} MiB) {how}; ledger day {day}")
        week_before = day - timedelta(days=7)
        meter = LoadMeter()
        t0 = time.monotonic()
        vcode, vtext = verify_db(db)
        verify_s = time.monotonic() - t0

        from hub.config import load
        from hub.store.db import make_engine
        from hub.live import LiveBus
        from hub.web.app import create_app

        cfg = load(cfg_path)
        engine = make_engine(cfg.db_url())
        app = create_app(engine, cfg, bus=LiveBus(), stats=lambda: {"ingested": 0}, overrides={"TESTING": True})
        client = app.test_client()
        token = _CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
        r = client.post("/login", data={"username": "bench-sup", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 302, r.status_code
        # Start-up (imports, the app, the store's build in this process) leaves tens of thousands
        # of objects that every full garbage collection would scan again. The hub freezes what
        # its start-up made (hub/service.py, gc.freeze()); so does this process, after collecting
        # the store build's garbage. The collections the pages' own requests cause still fall in
        # them (the full GCs column).
        gc.collect()
        gc.freeze()
        pages = [
            ("/healthz (baseline)", "/healthz"),
            ("status page /", "/"),
            (f"key ledger, all {len(stations)} cabinets, {day}", f"/ledger/keys?day={day}"),
            (f"key ledger, one cabinet, {day}", f"/ledger/keys?station={stations[0]}&day={day}"),
            (f"key ledger CSV export, all cabinets, {day}", f"/ledger/keys.csv?day={day}"),
            (f"key ledger, all {len(stations)} cabinets, {week_before} (full next day)",
             f"/ledger/keys?day={week_before}"),
            (f"key ledger CSV export, all cabinets, {week_before}", f"/ledger/keys.csv?day={week_before}"),
            ("events page (newest 50)", "/events"),
            (f"events page, one cabinet, {day}", f"/events?station={stations[0]}&day={day}"),
        ]
        results = []
        for label, path in pages:
            cold, warm, cpu, status, size, full = timed(client, path, args.repeat)
            results.append((label, cold, dist_ms(warm), status, size, dist_ms(cpu), full))
        engine.dispose()
        load_text = meter.stop()
        base = results[0][2]["p50"]
        print()
        print(table(
            ["page", "HTTP", "bytes", "cold ms", "p50 ms", "p95 ms", "max ms", "CPU p50 ms", "full GCs (ms)",
             "p50 vs /healthz"],
            [[label, status, size, cold * 1000, d["p50"], d["p95"], d["max"], c["p50"],
              f"{full.count} ({full.seconds * 1000:.0f})" if full.count else "0", f"{d['p50'] / base:.0f}x"]
             for label, cold, d, status, size, c, full in results],
        ))
        print(f"({args.repeat} timed requests per page after a warm-up; p95 is the nearest rank: of 20, the "
              f"slowest. Full GCs: Python's full garbage collections during a page's timed requests.)")
        print()
        print(f"kagiban verify over {rows:,} rows: {verify_s:.1f} s, exit {vcode}: {vtext}")
        print(f"load during the measurement: {load_text}")
        bad = [r for r in results if r[3] != 200]
        status_p95, ledger_p95 = results[1][2]["p95"], results[2][2]["p95"]
        ok = status_p95 < TARGET_MS and ledger_p95 < TARGET_MS
        print(f"target: status page and a day's key ledger < {TARGET_MS:.0f} ms: {verdict(ok)} "
              f"(p95 {status_p95:.1f} ms and {ledger_p95:.1f} ms)")
        return 1 if bad or vcode != 0 else 0


if __name__ == "__main__":
    sys.exit(main())
