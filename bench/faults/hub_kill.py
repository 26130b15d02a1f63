"""Hub killed (kill -9) and restarted, again and again, while real agents tap badges.

    python bench/faults/hub_kill.py [--times 20 --agents 3] [--quick]

Each kill lands at a random moment: between batches, in the middle of a transaction, between a
commit and its acks. The broker keeps the hub's persistent session meanwhile; the stations'
outboxes keep everything unacknowledged and resend it. After the last restart the agents stop
tapping and drain. Reported: events generated, stored, duplicated in the store, lost (must be
0 and 0), and whether the hash chain is intact.
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
    with Run("hub-kill", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Fault: the hub killed with -9 and restarted under load", args)
        broker, hub, agents, meter = under_load(run, "hk", args.agents, args.quick)
        for i in range(args.times):
            # Up for a random while after it is ready again: the kill lands anywhere in its work.
            up = rnd.uniform(0.1, 2.5) if not args.quick else 0.3
            time.sleep(up)
            hub.kill9()
            down = rnd.uniform(0.0, 1.0) if not args.quick else 0.2
            time.sleep(down)
            hub.start(wait=False)
            ready = hub.wait_ready()
            print(f"kill {i + 1}: after {up:.1f} s of work; restarted {down:.1f} s later, ready in {ready:.1f} s; "
                  f"outboxes hold {sum(a.depth() for a in agents)} events", flush=True)
        drain_s = drain(agents, hub)
        print()
        print(f"did: killed the hub with -9 {args.times} times at random moments and restarted it; {args.agents} "
              f"agents tapped throughout; drained in {drain_s:.1f} s after the last restart")
        accs, code = report(agents, hub, "hub kills")
        print(f"load during the run: {meter.stop()}")
        return 0 if ok(accs, code) else 1


if __name__ == "__main__":
    sys.exit(main())
