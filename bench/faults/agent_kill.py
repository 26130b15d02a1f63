"""Agent killed (kill -9) at random moments, like a power cut, again and again, while it taps.

    python bench/faults/agent_kill.py [--times 100] [--quick]

The agent (``kagiban device``, a tap every 30 ms from a scenario) runs for a random while each
time (0.2 to 3 s: some kills land while it starts, some while it commits, sends or deletes
acknowledged events) and is killed with SIGKILL, then started again at once. A running hub
stores and acks all along. After the last kill it starts without the scenario and drains.
Reported: events generated (every seq its outbox allocated), stored, duplicated, lost (0 and 0).

kill -9 ends the process but not the machine: what the kernel had been handed is still written.
The outbox commits with SQLite WAL and synchronous=FULL (an fsync per commit), which is what
makes a committed event survive a real power cut as well.
"""
from __future__ import annotations

import random
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import HubProc, LoadMeter, Run, base_parser, machine_header  # noqa: E402
from bench.faults.kit import TappingAgent, drain, ok, report  # noqa: E402


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=1200)
    p.add_argument("--times", type=int, default=100)
    p.add_argument("--seed", type=int, default=6)
    args = p.parse_args()
    if args.quick:
        args.times = min(args.times, 3)
    rnd = random.Random(args.seed)
    with Run("agent-kill", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Fault: the agent killed with -9 at random moments (power cuts)", args)
        broker = run.broker()
        prefix = "ak" + uuid.uuid4().hex[:8]
        hub = HubProc(run, broker.port, prefix).start()
        agent = TappingAgent(run, broker.port, prefix, "cab-1", every=0.03)
        meter = LoadMeter()
        lived = []
        for i in range(args.times):
            agent.start()
            life = rnd.uniform(0.2, 3.0) if not args.quick else rnd.uniform(0.8, 1.5)
            time.sleep(life)
            agent.kill9()
            lived.append(life)
            if (i + 1) % 10 == 0 or args.quick:
                print(f"kill {i + 1}: after {life:.1f} s; generated so far {agent.generated()}, "
                      f"outbox holds {agent.depth()}", flush=True)
        drain_s = drain([agent], hub)
        print()
        print(f"did: started the agent and killed it with -9 {args.times} times (alive {min(lived):.1f}-"
              f"{max(lived):.1f} s each, {sum(lived):.0f} s in all), then drained in {drain_s:.1f} s")
        accs, code = report([agent], hub, "agent kills")
        print(f"(each start records a station.started event; {agent.starts} starts)")
        print(f"load during the run: {meter.stop()}")
        return 0 if ok(accs, code) else 1


if __name__ == "__main__":
    sys.exit(main())
