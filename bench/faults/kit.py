"""What the fault scripts share: real agents (``kagiban device`` processes tapping badges from a
scenario), draining them after the faults, and the accounting of generated against stored."""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import (  # noqa: E402
    HOLDER,
    UNKNOWN,
    Accounting,
    HubProc,
    LoadMeter,
    Run,
    account,
    base_parser,
    kill9,
    outbox_state,
    scenario,
    spawn_agent,
    stop_process,
    table,
    verify_db,
    wait_until,
    write_unit,
)


class TappingAgent:
    """A real agent process whose stand-in reader is tapped every ``every`` seconds (a badge that
    is allowed, then one that is not: each tap is one event, plus what the door logic adds)."""

    def __init__(self, run: Run, port: int, prefix: str, station: str, every: float = 0.05,
                 timings: dict | None = None, capacity: int | None = None):
        self.run = run
        self.station = station
        self.unit = write_unit(run, port, prefix, station, timings=timings, capacity=capacity)
        self.scenario = scenario(run, f"taps-{station}", [{"tap": HOLDER}, {"wait": every}, {"tap": UNKNOWN},
                                                           {"wait": every}], repeat=0)
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def start(self, tapping: bool = True) -> None:
        self.proc = spawn_agent(self.run, self.unit, scenario=self.scenario if tapping else None)
        self.starts += 1

    def kill9(self) -> None:
        if self.proc is not None:
            kill9(self.proc)
            self.kills += 1

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def generated(self) -> int:
        """The last seq the outbox allocated: every event this station ever committed."""
        return outbox_state(self.unit, self.station)[1]

    def depth(self) -> int:
        return outbox_state(self.unit, self.station)[0]


def drain(agents: list[TappingAgent], hub: HubProc | None, timeout: float = 180.0,
          holds_all: Callable[[TappingAgent], bool] | None = None) -> float:
    """Stop tapping (clean stop), start each agent without a scenario, wait until every outbox is
    empty and the store holds every seq (``holds_all``, else ``hub``'s SQLite file read); seconds
    it took."""
    t0 = time.monotonic()
    for a in agents:
        a.stop()
    for a in agents:
        a.start(tapping=False)

    def stored(a: TappingAgent) -> bool:
        assert hub is not None, "drain: a hub's SQLite file or holds_all"
        n = a.generated()
        acc = account(hub.db, a.station, n)
        return not acc.lost_n and acc.distinct == n

    check = holds_all or stored

    def done() -> bool:
        return all(a.depth() == 0 and check(a) for a in agents)

    wait_until(done, timeout, interval=0.5, what="every outbox drained and every event stored")
    return time.monotonic() - t0


def report(agents: list[TappingAgent], hub: HubProc, what: str) -> tuple[list[Accounting], int]:
    """Print the per-station accounting and the chain check; (accountings, verify exit code)."""
    accs = [account(hub.db, a.station, a.generated()) for a in agents]
    rows = [[acc.station, acc.generated, acc.stored, acc.duplicates, acc.lost_n, "yes" if acc.in_order else "no"]
            for acc in accs]
    total = [sum(x.generated for x in accs), sum(x.stored for x in accs), sum(x.duplicates for x in accs),
             sum(x.lost_n for x in accs)]
    rows.append(["all", *total, "-"])
    print(table(["station", "events generated", "stored", "duplicates in store", "lost", "stored in seq order"], rows))
    code, text = verify_db(hub.db)
    print(f"kagiban verify: exit {code}: {text}")
    lost = [x for x in accs if x.lost_n]
    if lost:
        print(f"LOST: {[(x.station, x.lost[:20]) for x in lost]}")
    print(f"{what}: generated {total[0]:,}, stored {total[1]:,}, duplicated {total[2]}, lost {total[3]}")
    return accs, code


def ok(accs: list[Accounting], code: int) -> bool:
    return code == 0 and all(a.lost_n == 0 and a.duplicates == 0 for a in accs)


def kill_args(doc: str) -> argparse.Namespace:
    """The arguments of the kill-and-restart faults (--quick: two kills, one agent)."""
    p = base_parser(doc.splitlines()[0], max_seconds=1200)
    p.add_argument("--times", type=int, default=20)
    p.add_argument("--agents", type=int, default=3)
    p.add_argument("--seed", type=int, default=6)
    args = p.parse_args()
    if args.quick:
        args.times, args.agents = min(args.times, 2), min(args.agents, 1)
    return args


def under_load(run: Run, tag: str, agents: int, quick: bool):
    """A broker, a hub process and ``agents`` tapping agents, running for a moment already;
    returns (broker, hub, agents, load meter)."""
    broker = run.broker()
    prefix = tag + uuid.uuid4().hex[:8]
    hub = HubProc(run, broker.port, prefix).start()
    tapping = [TappingAgent(run, broker.port, prefix, f"cab-{i + 1}") for i in range(agents)]
    for a in tapping:
        a.start()
    meter = LoadMeter()
    time.sleep(1.0 if quick else 3.0)
    return broker, hub, tapping, meter
