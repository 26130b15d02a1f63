"""One station agent in a process of its own, timed from the process's start: how long until it
decides, and how long each badge tap takes to decide. Run by bench/footprint.py (as a plain
child, and held to a quarter of one core); prints one JSON line.

    python bench/station_probe.py UNIT_FILE --spawned WALL_TIME --taps N --pause S --allow UID --deny UID

Ready: from ``--spawned`` (the wall time just before the parent started this process, so the
interpreter's own start counts) to the agent's loop answering after :meth:`Agent.start`: from
there a tap is decided from the cached policy (the hub's link comes up on its own thread and
is not needed to decide). Only what ``kagiban device`` loads is imported before that point.

Decisions: each tap goes through the stand-in reader into the agent's loop and is timed to the
call that unlocks (allowed badge) or signals the refusal (unknown badge); the waiting thread
blocks on an event, so the measuring costs the limited CPU nothing while it waits.
"""
from __future__ import annotations

import sys
import time

T_IMPORT = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402

from device import unit_file  # noqa: E402
from device.agent import Agent  # noqa: E402


def rss_peak() -> int:
    """This process's peak resident memory (VmHWM), in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("unit")
    p.add_argument("--spawned", type=float, required=True, help="wall time (time.time()) of the spawn")
    p.add_argument("--taps", type=int, default=100)
    p.add_argument("--pause", type=float, default=0.02)
    p.add_argument("--allow", required=True, help="a badge the cached policy allows")
    p.add_argument("--deny", required=True, help="a badge the cached policy does not know")
    p.add_argument("--max-seconds", type=float, default=300.0)
    args = p.parse_args()
    deadline = time.monotonic() + args.max_seconds

    agent = Agent(unit_file.load(args.unit)).start()
    agent.call(lambda a: None)  # the loop runs: the next tap is decided
    ready_s = time.time() - args.spawned
    imports_s = T_IMPORT - args.spawned

    decided = threading.Event()
    outputs = agent.outputs
    assert outputs is not None and agent.reader is not None, "the unit needs outputs and a reader"
    real_unlock, real_denied = outputs.unlock, outputs.denied

    def unlock() -> None:
        decided.set()
        real_unlock()

    def denied() -> None:
        decided.set()
        real_denied()

    outputs.unlock, outputs.denied = unlock, denied  # type: ignore[method-assign]
    allow: list[float] = []
    deny: list[float] = []
    try:
        for i in range(args.taps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args.max_seconds:.0f} s passed after {i} taps")
            badge = args.allow if i % 2 == 0 else args.deny
            decided.clear()
            t0 = time.monotonic()
            agent.reader.tap(badge)
            if not decided.wait(10.0):
                raise TimeoutError(f"tap {i} ({badge}) not decided within 10 s")
            (allow if badge == args.allow else deny).append(time.monotonic() - t0)
            time.sleep(args.pause)
    finally:
        agent.stop()
    print(json.dumps({"ready_s": ready_s, "python_start_s": imports_s, "allow": allow, "deny": deny,
                      "peak_rss": rss_peak()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
