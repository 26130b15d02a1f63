"""Broker killed (kill -9) and restarted, again and again, while real agents tap badges.

    python bench/faults/broker_kill.py [--times 20 --agents 3] [--quick]

mosquitto here keeps nothing on disk (persistence off), so each kill loses every message it
held, the hub's persistent session and its queue included: the worst case. The agents (real
``kagiban device`` processes, a tap every 50 ms each) go on deciding and committing to their
outboxes; the hub (its own process) reconnects. After the last restart the agents stop
tapping and drain. Reported: events generated (every seq an outbox allocated), stored,
duplicated in the store, lost. Lost must be 0, duplicates 0.
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import Run, machine_header  # noqa: E402
from bench.faults.kit import drain, kill_args, ok, report, under_load  # noqa: E402


def main() -> int:
    args = kill_args(__doc__)
    rnd = random.Random(args.seed)
    with Run("broker-kill", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Fault: mosquitto killed with -9 and restarted under load", args)
        broker, hub, agents, meter = under_load(run, "bk", args.agents, args.quick)
        down_total = 0.0
        for i in range(args.times):
            broker.kill()
            down = rnd.uniform(0.2, 2.0) if not args.quick else 0.3
            time.sleep(down)
            down_total += down
            broker.start()
            up = rnd.uniform(0.5, 3.0) if not args.quick else 0.5
            time.sleep(up)
            print(f"kill {i + 1}: broker down {down:.1f} s, then up {up:.1f} s; outboxes hold "
                  f"{sum(a.depth() for a in agents)} events; hub alive: {hub.alive()}", flush=True)
        drain_s = drain(agents, hub)
        print()
        print(f"did: killed mosquitto with -9 {args.times} times (down {down_total:.0f} s in all), restarted it on the "
              f"same port each time; {args.agents} agents tapped throughout; drained in {drain_s:.1f} s after the last")
        accs, code = report(agents, hub, "broker kills")
        print(f"hub process: alive throughout: {hub.alive()}; load during the run: {meter.stop()}")
        return 0 if ok(accs, code) and hub.alive() else 1


if __name__ == "__main__":
    sys.exit(main())
