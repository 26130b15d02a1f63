"""Outbox full: what a station does when its outbox reaches its capacity, and when its disk is
full, while badges are tapped.

    python bench/faults/outbox_full.py [--capacity 50 --taps 120] [--quick]

1. Capacity reached: the hub is down, so nothing is acknowledged, and the outbox (capacity
   ``--capacity``) fills past its nominal size while badges are tapped. Then the hub starts.
   Watched: every tap decided and committed (nothing refused), what the agent logged, what its
   heartbeat said on the broker, the hub's ``outbox_filling`` alert, everything stored after.
2. Disk full: the outbox file may not grow (SQLite ``max_page_count`` set to its current size,
   which makes SQLite answer "database or disk is full" exactly as a full disk does). Watched:
   the decisions, what was committed, what the agent logged and said, what the hub learned;
   then the room comes back.
The agent runs in this process; the hub is its own process.
"""
from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (  # noqa: E402
    HOLDER,
    UNKNOWN,
    HubProc,
    Run,
    account,
    base_parser,
    count_decisions,
    db_query,
    machine_header,
    plain_client,
    table,
    wait_until,
    write_unit,
)
from kagiban import protocol  # noqa: E402

STATION = "cab-full"


class Records(logging.Handler):
    """Every WARNING or worse the agent logs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, since: int = 0) -> list[str]:
        out: dict[str, int] = {}
        for r in self.records[since:]:
            text = f"{r.levelname} {r.name}: {r.getMessage()}".splitlines()[0][:140]
            if r.exc_info and r.exc_info[1] is not None:
                text += f" ({type(r.exc_info[1]).__name__}: {r.exc_info[1]})"
            out[text] = out.get(text, 0) + 1
        return [f"{t} (x{n})" if n > 1 else t for t, n in out.items()]


class Heartbeats:
    """The station's heartbeats as anyone on the broker sees them."""

    def __init__(self, port: int, prefix: str):
        self.last: dict | None = None
        self.alerts: list[dict] = []
        c = plain_client(f"hb-{uuid.uuid4().hex[:8]}")
        c.on_connect = lambda cl, *_: cl.subscribe([(protocol.topic(prefix, "ward-a", STATION, "heartbeat"), 0),
                                                    (protocol.subscription(prefix, "alert"), 1)])
        c.on_message = self._on
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.c = c

    def _on(self, _c, _u, msg) -> None:
        body = json.loads(msg.payload)
        if msg.topic.endswith("/heartbeat"):
            self.last = body
        else:
            self.alerts.append(body)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def tap(agent, n: int, acts: dict, pause: float = 0.02) -> None:
    for i in range(n):
        agent.reader.tap(HOLDER if i % 2 == 0 else UNKNOWN)
        time.sleep(pause)
    agent.call(lambda a: None)  # the loop has handled them


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=600)
    p.add_argument("--capacity", type=int, default=50)
    p.add_argument("--taps", type=int, default=120)
    args = p.parse_args()
    if args.quick:
        args.capacity, args.taps = min(args.capacity, 20), min(args.taps, 40)
    with Run("outbox-full", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Fault: the station's outbox full (capacity reached; disk full)", args)
        from device import unit_file
        from device.agent import Agent

        records = Records()
        logging.getLogger("device").addHandler(records)
        broker = run.broker()
        prefix = "of" + uuid.uuid4().hex[:8]
        hub = HubProc(run, broker.port, prefix)
        watch = Heartbeats(broker.port, prefix)
        run.on_close(watch.close)
        unit = write_unit(run, broker.port, prefix, STATION, capacity=args.capacity,
                          timings={"heartbeat_s": 1, "ack_timeout_s": 2})
        agent = Agent(unit_file.load(unit)).start()
        run.on_close(agent.stop)
        acts = count_decisions(agent)
        wait_until(lambda: agent.link.connected(), 20, what="agent connected")

        # --- 1. capacity reached, hub down ---
        tap(agent, args.taps, acts)
        time.sleep(1.5)
        depth1 = agent.call(lambda a: a.outbox.depth())
        hb1 = watch.last
        logged1 = records.lines()
        acts1 = dict(acts)
        t_hub = time.monotonic()
        hub.start()
        wait_until(lambda: agent.call(lambda a: a.outbox.depth()) == 0, 60, what="outbox drained")
        drained_s = time.monotonic() - t_hub
        time.sleep(1.0)
        alerts1 = db_query(hub.db, "SELECT rule, message FROM alerts WHERE station=? ORDER BY id", STATION)
        last1 = agent.call(lambda a: a.outbox.next_seq()) - 1
        acc1 = account(hub.db, STATION, last1)

        # --- 2. disk full ---
        n_logged = len(records.records)
        acts_before = dict(acts)

        def freeze(a) -> int:
            """No room left: the file may not grow, and its free pages and free bytes are taken."""
            import sqlite3

            db = a.outbox._db
            db.execute("CREATE TABLE IF NOT EXISTS bench_fill (x BLOB)")
            db.execute("VACUUM")  # no free bytes left inside the outbox's own pages either
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count = {pages}")
            for size in (4000, 1000, 200, 50, 10, 1):
                while True:
                    try:
                        db.execute("INSERT INTO bench_fill VALUES (randomblob(?))", (size,))
                    except sqlite3.OperationalError:
                        break
            return pages

        def unfreeze(a) -> None:
            a.outbox._db.execute("PRAGMA max_page_count = 1073741823")
            a.outbox._db.execute("DROP TABLE bench_fill")

        hub.stop()  # nothing is acknowledged, so nothing leaves the outbox to make room
        agent.call(freeze)
        seq0 = agent.call(lambda a: a.outbox.next_seq()) - 1
        stored0 = db_query(hub.db, "SELECT count(*) FROM events WHERE station=?", STATION)[0][0]
        full_taps = max(40, args.taps // 2)  # more than the few that fit in the free bytes of a page
        tap(agent, full_taps, acts)
        time.sleep(2.5)
        seq1 = agent.call(lambda a: a.outbox.next_seq()) - 1
        stored1 = db_query(hub.db, "SELECT count(*) FROM events WHERE station=?", STATION)[0][0]
        hb2 = watch.last
        logged2 = records.lines(n_logged)
        acts2 = {k: acts[k] - acts_before[k] for k in acts}
        agent.call(unfreeze)
        hub.start()
        tap(agent, 4, acts)
        last2 = agent.call(lambda a: a.outbox.next_seq()) - 1
        wait_until(lambda: account(hub.db, STATION, last2).distinct == last2, 30, what="events after the room came back")
        acc2 = account(hub.db, STATION, last2)
        # The rules run after the events are committed: give them a moment to raise the alert
        # the storage.failed event calls for (it is missing from the report if they never do).
        try:
            wait_until(lambda: db_query(hub.db, "SELECT 1 FROM alerts WHERE station=? AND rule='storage_failed'",
                                        STATION), 15, what="the storage_failed alert")
        except TimeoutError:
            pass
        alerts_all = db_query(hub.db, "SELECT rule, count(*) FROM alerts WHERE station=? GROUP BY rule", STATION)

        print()
        print(f"## 1. capacity {args.capacity} reached with the hub down ({args.taps} taps)")
        print(table(["what", "observed"], [
            ["taps decided (lock released / refusal signalled)", f"{acts1['unlock']} / {acts1['denied']} of {args.taps}"],
            ["events in the outbox (nominal capacity)", f"{depth1} ({args.capacity})"],
            ["refused or dropped by the station", 0 if depth1 >= args.taps else args.taps - depth1],
            ["agent log (WARNING and worse)", "; ".join(logged1) or "-"],
            ["heartbeat on the broker", f"outbox_depth {hb1['outbox_depth']} of outbox_capacity {hb1['outbox_capacity']}"
             if hb1 else "-"],
            ["hub started: outbox drained after", f"{drained_s:.1f} s"],
            ["hub: outbox_filling alert", "; ".join(m for r, m in alerts1 if r == "outbox_filling") or "NONE"],
            ["stored / duplicates / lost", f"{acc1.stored} / {acc1.duplicates} / {acc1.lost_n} (seqs 1..{last1})"],
        ]))
        print()
        print(f"## 2. disk full, hub down ({full_taps} taps while the outbox file may not grow)")
        print(table(["what", "observed"], [
            ["taps decided (lock released / refusal signalled)", f"{acts2['unlock']} / {acts2['denied']} of {full_taps}"],
            ["events committed meanwhile (seq before -> after)", f"{seq1 - seq0} ({seq0} -> {seq1})"],
            ["events the hub received meanwhile (the hub was down)", stored1 - stored0],
            ["agent log (WARNING and worse)", "; ".join(logged2) or "-"],
            ["heartbeat on the broker", json.dumps({k: hb2[k] for k in ("outbox_depth", "next_seq")}) if hb2 else "-"],
            ["after the room came back: stored / duplicates / lost", f"{acc2.stored} / {acc2.duplicates} / {acc2.lost_n} "
             f"(seqs 1..{last2}; no seq was skipped)"],
            ["hub alerts for the station, all told", ", ".join(f"{r} x{n}" for r, n in alerts_all) or "-"],
        ]))
        held_back = full_taps - (seq1 - seq0)
        raised = any(r == "storage_failed" for r, _ in alerts_all)
        print()
        print(f"capacity: nothing refused, {'an outbox_filling alert was raised' if any(r == 'outbox_filling' for r, _ in alerts1) else 'NO outbox_filling alert'}; "
              f"disk full: {held_back} tap(s) kept in memory while the disk was full, recorded once it "
              f"had room; {'a storage_failed alert was raised' if raised else 'NO storage_failed alert'}")
        hub.stop()
        filling = any(r == "outbox_filling" for r, _ in alerts1)
        ok = acc1.lost_n == 0 and acc1.duplicates == 0 and acc2.lost_n == 0 and filling and raised
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
