"""Hub failover: the active hub of a pair killed (kill -9) again and again while real agents tap.

    python bench/faults/failover.py [--times 20 --agents 3] [--quick]

(--quick: one kill, one agent, the killed hub not started again.)

Two ``kagiban hub`` processes share one PostgreSQL store (a private cluster started for the run,
tests/support/postgres.py) and one mosquitto; one holds the lease (hub.store.lease), the other is
the standby. Each round kills the active one at a random moment of its work, measures how long
until the standby says it is active (/healthz: "lease taken") and until it stores and acks a
probe event ("storing again"), then starts the killed hub again, as systemd would, and waits
until it is the standby. After the last round the agents stop tapping and drain. Reported:
events generated, stored, duplicated, lost (must be 0 and 0), the takeover times (p50, max),
the denied alerts against the denied taps (one each), and whether the hash chain is intact.
"""
from __future__ import annotations

import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (  # noqa: E402
    STAFF,
    LoadMeter,
    Run,
    machine_header,
    percentile,
    policy_key,
    probe_ack,
    stop_process,
    table,
)
from bench.faults.kit import TappingAgent, drain, kill_args  # noqa: E402
from tests.support.failover import HubPair, alert_counts, count_station, store_query, verify  # noqa: E402
from tests.support.postgres import PostgresCluster, Store  # noqa: E402
from hub.store.timestamps import utc_text  # noqa: E402

TAKEOVER_LIMIT_S = 10.0


def main() -> int:
    args = kill_args(__doc__)
    if args.quick:
        args.times = 1  # two hub starts and one takeover: the suite's run stays within its time
    rnd = random.Random(args.seed)
    with Run("failover", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Fault: the active hub of a failover pair killed with -9 under load", args)
        # The server runs as the postgres user: its folder under /tmp, not in the run's (mode 700).
        pg_folder = Path(tempfile.mkdtemp(prefix="kagiban-bench-pg-"))
        cluster = PostgresCluster(pg_folder).start()
        run.on_close(lambda: shutil.rmtree(pg_folder, ignore_errors=True))
        run.on_close(cluster.stop)
        url = Store("postgresql", cluster).url(run.dir / "store")
        broker = run.broker()
        prefix = "fo" + uuid.uuid4().hex[:8]
        pair = HubPair(run.dir / "pair", broker.port, prefix, url, run.spawn, STAFF, policy_key(run))
        pair.start("hub-a")
        pair.wait_role("hub-a", "active", 90)
        pair.start("hub-b")
        pair.wait_role("hub-b", "standby", 90)
        agents = [TappingAgent(run, broker.port, prefix, f"cab-{i + 1}") for i in range(args.agents)]
        for a in agents:
            a.start()
        meter = LoadMeter()
        time.sleep(1.0 if args.quick else 3.0)
        lease_s: list[float] = []
        storing_s: list[float] = []
        first_s: list[float] = []
        for i in range(args.times):
            active = pair.active()
            if active is None:
                raise RuntimeError("no hub says it is active")
            standby = pair.other(active)
            # Up for a random while: the kill lands anywhere in its work (a batch, a commit, acks).
            up = rnd.uniform(0.5, 3.0) if not args.quick else 0.5
            time.sleep(up)
            proc = pair.hubs[active].proc
            assert proc is not None
            t0, killed_at = time.monotonic(), datetime.now(timezone.utc)
            proc.kill()
            proc.wait(10)
            probe_ack(broker.port, prefix, timeout=60)
            storing_s.append(time.monotonic() - t0)
            pair.wait_role(standby, "active", 60)
            # When the standby took the lease, as it recorded it (one machine, one clock).
            since = store_query(url, "SELECT since FROM hub_leases ORDER BY epoch DESC LIMIT 1")[0][0]
            lease_s.append((datetime.fromisoformat(since) - killed_at).total_seconds())
            # The first message the new active stored (received_at: its receipt, before the
            # commit): the probe above may wait behind the stations' resent backlog.
            first = store_query(url, "SELECT min(received_at) FROM events WHERE received_at > :t",
                                t=utc_text(killed_at))[0][0]
            first_s.append((datetime.fromisoformat(first) - killed_at).total_seconds())
            # The killed hub comes back (systemd's Restart=) and waits as the standby.
            back = ""
            if not args.quick:
                pair.start(active)
                pair.wait_role(active, "standby", 90)
                back = f"; {active} back as standby"
            print(f"kill {i + 1}: {active} killed after {up:.1f} s; {standby} took the lease in {lease_s[-1]:.1f} s, "
                  f"stored again after {storing_s[-1]:.1f} s{back}; outboxes hold "
                  f"{sum(a.depth() for a in agents)} events", flush=True)
        load = meter.stop()
        drain_s = drain(agents, None, holds_all=lambda a: not count_station(url, a.station, a.generated()).lost)
        print()
        print(f"did: killed the active hub with -9 {args.times} times at random moments; {args.agents} agents "
              f"tapped throughout (one allowed and one unknown badge every 0.05 s each); drained in {drain_s:.1f} s")
        counts = [count_station(url, a.station, a.generated()) for a in agents]
        rows = [[c.station, c.generated, c.stored, c.duplicated, len(c.lost)] for c in counts]
        total = [sum(c.generated for c in counts), sum(c.stored for c in counts),
                 sum(c.duplicated for c in counts), sum(len(c.lost) for c in counts)]
        rows.append(["all", *total])
        print(table(["station", "events generated", "stored", "duplicated", "lost"], rows))
        print(table(["takeover after kill -9", "p50 s", "max s", "limit s"], [
            ["lease taken (its hub_leases row)", percentile(lease_s, 50), max(lease_s), TAKEOVER_LIMIT_S],
            ["first event stored by the new active", percentile(first_s, 50), max(first_s), TAKEOVER_LIMIT_S],
            ["storing again (a probe event acked)", percentile(storing_s, 50), max(storing_s), TAKEOVER_LIMIT_S]]))
        _wait_alerts(url)
        denied, alerted, twice = alert_counts(url)
        print(f"denied taps stored {denied}, denied alerts {alerted}, alerts raised twice for one event {twice}")
        code, text = verify(url)
        print(f"kagiban verify: exit {code}: {text}")
        print(f"failover: generated {total[0]:,}, stored {total[1]:,}, duplicated {total[2]}, lost {total[3]}; "
              f"takeover p50 {percentile(storing_s, 50):.1f} s, max {max(storing_s):.1f} s")
        print(f"load during the kills: {load}")
        for name in pair.hubs:
            hub_proc = pair.hubs[name].proc
            if hub_proc is not None:
                stop_process(hub_proc, timeout=60)  # before the store goes: a clean stop
        met = max(storing_s) < TAKEOVER_LIMIT_S
        print(f"target: storing again < {TAKEOVER_LIMIT_S:.0f} s after the kill: {'met' if met else 'NOT met'} "
              f"(max {max(storing_s):.1f} s; a figure of this machine's load, see 'load during the kills')")
        # Like the other fault scripts, the exit code is about what was lost, not about times.
        ok = code == 0 and total[2] == 0 and total[3] == 0 and alerted == denied and twice == 0
        return 0 if ok else 1


def _wait_alerts(url: str, timeout: float = 600.0, still_s: float = 30.0) -> None:
    """The rules run after each commit (and a new active first raises what its predecessor had
    not yet): wait until every denied tap has its alert, or the count stops growing."""
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        denied, alerted, _ = alert_counts(url)
        if alerted >= denied:
            return
        if alerted != last:
            last, last_change = alerted, time.monotonic()
        elif time.monotonic() - last_change > still_s:
            return
        time.sleep(1.0)


if __name__ == "__main__":
    sys.exit(main())
