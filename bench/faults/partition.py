"""Network partition of one station: its link to the broker goes dead for a while (a pulled
cable: nothing is closed, bytes just stop), then comes back.

    python bench/faults/partition.py [--seconds 30] [--quick]

The agent runs in this process and reaches mosquitto through a loopback TCP proxy that this
script can cut (bench.common.PartitionProxy), so only this station is partitioned; the hub (its
own process) and the broker go on. A badge is tapped every 50 ms throughout, alternately one
the policy allows and one it refuses. Reported: decisions made during the partition (the lock
released or the refusal signalled), how long the agent took to notice, what it committed
meanwhile (and marked ``offline``), what the hub said (last will, offline/online alerts), and
after the link is back: everything stored once, in order.
"""
from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (  # noqa: E402
    HOLDER,
    UNKNOWN,
    HubProc,
    LoadMeter,
    PartitionProxy,
    Run,
    account,
    base_parser,
    count_decisions,
    db_query,
    machine_header,
    table,
    verify_db,
    wait_until,
    write_unit,
)

STATION = "cab-part"


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=600)
    p.add_argument("--seconds", type=float, default=30.0, help="how long the station is cut off")
    args = p.parse_args()
    if args.quick:
        args.seconds = min(args.seconds, 3.0)
    with Run("partition", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Fault: one station partitioned from the broker, then back", args)
        from device import unit_file
        from device.agent import Agent

        broker = run.broker()
        prefix = "pt" + uuid.uuid4().hex[:8]
        hub = HubProc(run, broker.port, prefix).start()
        proxy = PartitionProxy(broker.port)
        run.on_close(proxy.close)
        unit = write_unit(run, proxy.port, prefix, STATION, timings={"heartbeat_s": 2, "ack_timeout_s": 2})
        agent = Agent(unit_file.load(unit)).start()
        run.on_close(agent.stop)
        wait_until(lambda: agent.link.connected(), 20, what="agent connected")
        acts = count_decisions(agent)
        stop = threading.Event()
        taps = [0]

        def tapper():
            while not stop.wait(0.05):
                agent.reader.tap(HOLDER if taps[0] % 2 == 0 else UNKNOWN)
                taps[0] += 1

        threading.Thread(target=tapper, daemon=True).start()
        meter = LoadMeter()
        time.sleep(3.0 if not args.quick else 1.0)
        seq_before = agent.call(lambda a: a.outbox.next_seq()) - 1
        taps0, acts0 = taps[0], dict(acts)
        t_cut = time.monotonic()
        proxy.cut()
        noticed = None
        while time.monotonic() - t_cut < args.seconds:
            if noticed is None and not agent.call(lambda a: a.connected):
                noticed = time.monotonic() - t_cut
            time.sleep(0.05)
        taps_during = taps[0] - taps0
        acts_during = {k: acts[k] - acts0[k] for k in acts}
        seq_cut_end = agent.call(lambda a: a.outbox.next_seq()) - 1
        depth_at_heal = agent.call(lambda a: a.outbox.depth())
        t_heal = time.monotonic()
        proxy.heal()
        wait_until(lambda: agent.link.connected(), 60, what="agent reconnected")
        reconnect_s = time.monotonic() - t_heal
        time.sleep(1.0)
        stop.set()
        time.sleep(0.2)
        last = agent.call(lambda a: a.outbox.next_seq()) - 1
        wait_until(lambda: account(hub.db, STATION, last).distinct == last and agent.call(lambda a: a.outbox.depth()) == 0,
                   120, interval=0.2, what="everything stored after the partition")
        delivered_s = time.monotonic() - t_heal
        acc = account(hub.db, STATION, last)
        rows = db_query(hub.db, "SELECT seq, data FROM events WHERE station=? AND seq>? AND seq<=? ORDER BY seq",
                        STATION, seq_before, seq_cut_end)
        offline_marked = sum(1 for _, d in rows if json.loads(d).get("offline"))
        alerts = db_query(hub.db, "SELECT rule, count(*) FROM alerts WHERE station=? GROUP BY rule", STATION)
        log = db_query(hub.db, "SELECT state, count(*) FROM station_log WHERE station=? GROUP BY state", STATION)
        agent.stop()
        hub.stop()
        code, text = verify_db(hub.db)
        print()
        print(table(["during the partition", "value"], [
            ["cut off for", f"{args.seconds:.0f} s"],
            ["taps", taps_during],
            ["decisions: lock released (allowed badge)", acts_during["unlock"]],
            ["decisions: refusal signalled (unknown badge)", acts_during["denied"]],
            ["agent noticed the dead link after", f"{noticed:.1f} s" if noticed is not None else "not within the cut"],
            ["events committed to the outbox", seq_cut_end - seq_before],
            ["of them marked data.offline (decided while it knew it had no link)", offline_marked],
            ["waiting in the outbox when the link came back", depth_at_heal],
        ]))
        print()
        print(table(["after the partition", "value"], [
            ["reconnected after", f"{reconnect_s:.1f} s"],
            ["everything stored after", f"{delivered_s:.1f} s"],
            ["events generated / stored / duplicates / lost", f"{acc.generated} / {acc.stored} / {acc.duplicates} / {acc.lost_n}"],
            ["stored in seq order", "yes" if acc.in_order else "no"],
            ["hub: station_log states", ", ".join(f"{s} x{n}" for s, n in log) or "-"],
            ["hub: alerts for the station", ", ".join(f"{r} x{n}" for r, n in alerts) or "-"],
            ["kagiban verify", f"exit {code}: {text}"],
        ]))
        print(f"load during the run: {meter.stop()}")
        decided = acts_during["unlock"] + acts_during["denied"]
        good = acc.lost_n == 0 and acc.duplicates == 0 and acc.in_order and code == 0 and decided >= taps_during - 2
        print(f"decisions continued: {decided} of {taps_during} taps decided during the partition; "
              f"everything arrived after: {acc.lost_n == 0 and acc.duplicates == 0}")
        return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
