"""Backlog drain: a station whose outbox holds 100,000 events (about a month offline for a busy
station) reconnects. Time to drain, every event stored once, in order.

    python bench/backlog.py [--events 100000] [--quick]

The outbox is filled beforehand in one transaction with valid protocol events (a cabinet's
key uses at office hours over the last month, with ``data.offline: true``), exactly as the
agent's own Outbox lays them out; then the real agent (``kagiban device``, its own process,
default send window 1000 and ack timeout 10 s) starts against a running hub. Drained: the
outbox is empty and the hub holds seqs 1..N of the station. Baseline in the same run: one plain
paho connection publishing the same payloads (window 1000) to a plain subscriber process.
Target: >= 2,000 events/s.
"""
from __future__ import annotations

import sqlite3
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uuid6  # noqa: E402

from bench.common import (  # noqa: E402
    HOLDER,
    JST,
    SITE,
    UNKNOWN,
    HubProc,
    LoadMeter,
    Run,
    Swarm,
    account,
    base_parser,
    machine_header,
    mib,
    outbox_state,
    proc_cpu_s,
    proc_mem,
    rawsub_result,
    spawn_agent,
    start_rawsub,
    stored_count,
    table,
    unit_data,
    verdict,
    verify_db,
    write_unit,
)
from kagiban import protocol  # noqa: E402

TARGET_RATE = 2000.0
STATION = "backlog-1"


def month_of_events(station: str, n: int, prefix: str = "") -> list[tuple[int, str, str, bytes]]:
    """(seq, id, kind, payload) for ``n`` events: key uses at office hours, oldest first."""
    out = []
    start = datetime.now(JST).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=30)
    uses = n // 4 + 1
    step = timedelta(seconds=max(1, int(30 * 8 * 3600 / 22 / max(1, uses / 30))))  # spread over office hours
    at = start
    seq = 0
    i = 0
    while seq < n:
        if at.hour >= 17 or at.weekday() >= 5:
            at = (at + timedelta(days=1)).replace(hour=9, minute=0)
            continue
        i += 1
        if i % 500 == 0:
            kinds = [("badge.denied", UNKNOWN, None, {"reason": "unknown", "decision": "deny"})]
        else:
            kinds = [
                ("badge.granted", HOLDER, "S001", {"reason": "allowed", "flagged": False, "unlock_s": 5.0,
                                                   "decision": "allow"}),
                ("door.opened", HOLDER, "S001", {"authorised": True, "flagged": False}),
                ("door.closed", HOLDER, "S001", {"authorised": True, "open_s": 41.2}),
                ("key.used", HOLDER, "S001", {"unlocked_at": at.isoformat(), "opened_at": at.isoformat(),
                                              "closed_at": (at + timedelta(seconds=41)).isoformat(),
                                              "duration_s": 41.2, "flagged": False}),
            ]
        for k, (kind, badge, person, data) in enumerate(kinds):
            if seq >= n:
                break
            seq += 1
            ev = protocol.Event(id=str(uuid6.uuid7()), seq=seq, site=SITE, station=station, kind=kind,
                                at=at + timedelta(seconds=k * 10), badge=badge, person=person,
                                data={**data, "policy_version": 1, "offline": True})
            out.append((seq, ev.id, kind, protocol.dumps(ev)))
        at += step
    return out


def fill_outbox(unit: Path, station: str, events: list[tuple[int, str, str, bytes]]) -> None:
    """Lay the events into the unit's outbox file the way device.outbox.Outbox does."""
    from device.outbox import Outbox

    path = unit_data(unit, station) / "outbox.sqlite"
    box = Outbox(path, site=SITE, station=station)  # its schema and its incarnation
    incarnation = box.incarnation
    box.close()
    # Every event names the outbox's incarnation, as Outbox.add writes them: the hub acks per
    # incarnation, and the agent deletes nothing on an ack for another one.
    events = [(seq, eid, kind, protocol.dumps(protocol.Event.model_validate_json(payload).model_copy(
        update={"incarnation": incarnation}))) for seq, eid, kind, payload in events]
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO events (seq, id, kind, payload) VALUES (?, ?, ?, ?)", events)
        con.execute("UPDATE meta SET value=? WHERE key='next_seq'", (events[-1][0] + 1,))
        con.execute("COMMIT")
    finally:
        con.close()


def raw_baseline(run: Run, port: int, events: list[tuple[int, str, str, bytes]], timeout: float) -> dict:
    """One plain paho connection, window 1000, to a plain subscriber process."""
    prefix = "raw" + uuid.uuid4().hex[:8]
    n = len(events)
    sub = start_rawsub(run, port, protocol.subscription(prefix, "event"), n, timeout)
    swarm = Swarm(port, prefix, [STATION], window=1000).start()
    pos = [0]
    t0 = [0.0]

    def driver(sw: Swarm, now: float) -> None:
        if not t0[0]:
            t0[0] = now
        room = min(sw.room(STATION), n - pos[0])
        for k in range(pos[0], pos[0] + room):
            sw.publish(STATION, "event", events[k][3])
        pos[0] += room

    swarm.driver = driver
    try:
        got = rawsub_result(sub, timeout + 10)
    finally:
        swarm.stop()
    took = got["last"] - t0[0]
    return {"n": got["n"], "seconds": took, "rate": got["n"] / took}


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=900)
    p.add_argument("--events", type=int, default=100_000)
    args = p.parse_args()
    if args.quick:
        args.events = min(args.events, 3_000)
    n = args.events
    timeout = max(60.0, n / 300.0)
    with Run("backlog", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Backlog drain: a real agent reconnects with a full outbox", args)
        broker = run.broker()
        t = time.monotonic()
        events = month_of_events(STATION, n)
        print(f"# made {n:,} events in {time.monotonic() - t:.1f} s "
              f"({sum(len(e[3]) for e in events) / n:.0f} bytes each on average)")
        meter = LoadMeter()
        raw = raw_baseline(run, broker.port, events, timeout)
        prefix = "bl" + uuid.uuid4().hex[:8]
        hub = HubProc(run, broker.port, prefix).start()
        unit = write_unit(run, broker.port, prefix, STATION,
                          timings={"heartbeat_s": 30, "ack_timeout_s": 10, "debounce_ms": 50})
        fill_outbox(unit, STATION, events)
        depth0, last0 = outbox_state(unit, STATION)
        hub_cpu0 = proc_cpu_s(hub.pid)
        t_spawn = time.monotonic()
        agent = spawn_agent(run, unit)
        t_first = None
        samples = []
        deadline = t_spawn + timeout
        while time.monotonic() < deadline:
            stored = stored_count(hub.db, STATION)
            depth, last = outbox_state(unit, STATION)
            now = time.monotonic()
            samples.append((now, stored, depth))
            if stored and t_first is None:
                t_first = now
            if depth == 0 and stored >= last and last >= n:
                break
            if agent.poll() is not None:
                raise RuntimeError(f"the agent exited with {agent.returncode}")
            time.sleep(0.1)
        t_done = time.monotonic()
        agent_cpu = proc_cpu_s(agent.pid)
        agent_mem = proc_mem(agent.pid)
        hub_cpu = proc_cpu_s(hub.pid) - hub_cpu0
        load = meter.stop()
        depth, last = outbox_state(unit, STATION)
        acc = account(hub.db, STATION, last)
        from bench.common import stop_process

        stop_process(agent)
        hub.stop()
        code, text = verify_db(hub.db)
        total_s = t_done - t_spawn
        drain_s = t_done - (t_first or t_spawn)
        rate = n / drain_s
        mid = [(t, s) for t, s, _ in samples if n * 0.1 <= s <= n * 0.9]
        steady = (mid[-1][1] - mid[0][1]) / (mid[-1][0] - mid[0][0]) if len(mid) > 2 and mid[-1][0] > mid[0][0] else float("nan")
        print()
        print(table(
            ["what", "events", "seconds", "events/s", "vs. raw"],
            [
                ["raw: one paho connection -> plain subscriber (baseline)", raw["n"], raw["seconds"], raw["rate"], "-"],
                ["agent start -> outbox empty, all stored", n, total_s, n / total_s, f"{n / total_s / raw['rate']:.0%}"],
                ["first event stored -> outbox empty (drain)", n, drain_s, rate, f"{rate / raw['rate']:.0%}"],
                ["drain, steady (10-90 % stored)", int(n * 0.8), "-", steady, f"{steady / raw['rate']:.0%}"],
            ],
        ))
        print()
        print(f"outbox before: {depth0:,} events (seqs 1..{last0:,}); after: {depth} waiting, last seq {last:,} "
              f"(the agent adds its own station.started)")
        print(f"hub store: {acc.stored:,} rows for {STATION}, {acc.distinct:,} distinct seqs, duplicates "
              f"{acc.duplicates}, lost {acc.lost_n}, in seq order: {acc.in_order}")
        print(f"kagiban verify: exit {code}: {text}")
        print(f"agent process: {agent_cpu:.1f} CPU s, RSS {mib(agent_mem.get('VmRSS', 0))} (peak "
              f"{mib(agent_mem.get('VmHWM', 0))}); hub process: {hub_cpu:.1f} CPU s during the drain")
        print(f"load during the run: {load}")
        print(f"target: >= {TARGET_RATE:,.0f} events/s: {verdict(rate >= TARGET_RATE)} ({rate:,.0f} events/s)")
        ok = acc.lost_n == 0 and acc.duplicates == 0 and acc.in_order and code == 0 and depth == 0
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
