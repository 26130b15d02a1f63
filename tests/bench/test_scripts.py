"""Each script in bench/ and bench/faults/ runs with --quick (a few seconds, small counts), exits
0, prints its figures and the load it saw, and leaves no process or run folder behind. The full
runs are made by hand (docs/performance.md, docs/reliability.md); the targets are not checked
here, only that the scripts keep working and that the fault scripts lose nothing."""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.bench

# (script, lines its output must contain; a tuple: one of them)
SCRIPTS = [
    ("bench/ingest.py", ["## live", "## queued", "raw paho subscriber #1", "stored all 2,000 events exactly once",
                         "hub #1 signed: stored, chained, acked", "medians (signed)",
                         "kagiban verify, pass 1 signed: exit 0", "CPU us per event (live, medians)",
                         "hub signed: at 80% of raw"]),
    ("bench/ingest.py --mode writer", ["Ingest writer alone", "CPU us per event"]),
    ("bench/alert_latency.py", ["raw MQTT round trip", "door edge -> alert on the MQTT alert topic",
                                "door edge -> alert on the web live stream"]),
    ("bench/alert_path.py", ["submit -> alert published, one transaction",
                             "write transactions committed from submit to publish: median 1"]),
    ("bench/backlog.py", ["duplicates 0, lost 0, in seq order: True", "chain intact"]),
    ("bench/footprint.py", ["plain paho client, connected (baseline)", "allowed badge -> lock relay released",
                            "signed (Ed25519, the station's key)", "signing adds < 10 % to the station's CPU per event",
                            "the libraries the agent needs, used once, no kagiban code (floor)",
                            "| agent as it is (baseline) |", "target: ready < 0.5 s:",
                            # the quarter-core run where a cgroup can be made, else the reason
                            ("| agent held to 0.25 of one core", "quarter-core run: not made")]),
    ("bench/web.py", ["status page /", "key ledger, all 20 cabinets", "chain intact"]),
    ("bench/web.py --store-kind postgresql", ["copied into PostgreSQL with COPY", "status page /",
                                              "key ledger, all 20 cabinets", "chain intact"]),
    ("bench/scale.py", ["20 stations connected (4 sites)", "alert latency, agent only (baseline)",
                        "20 shown online at the hub across 4 sites", "hub: stored, chained, acked (sqlite)"]),
    ("bench/scale.py --store postgresql", ["20 stations connected (4 sites)", "store: postgresql (PostgreSQL",
                                           "fsync=on, synchronous_commit=on", "hub: stored, chained, acked (postgresql)",
                                           "swarm errors: 0"]),
    ("bench/faults/broker_kill.py", ["broker kills: generated", "duplicated 0, lost 0", "chain intact"]),
    ("bench/faults/hub_kill.py", ["hub kills: generated", "duplicated 0, lost 0", "chain intact"]),
    ("bench/faults/failover.py", ["failover: generated", "duplicated 0, lost 0", "chain intact",
                                  "| storing again (a probe event acked) |", "alerts raised twice for one event 0"]),
    ("bench/faults/agent_kill.py", ["agent kills: generated", "duplicated 0, lost 0", "chain intact"]),
    ("bench/faults/partition.py", ["decisions continued", "everything arrived after: True"]),
    ("bench/faults/outbox_full.py", ["## 1. capacity", "## 2. disk full", "an outbox_filling alert was raised",
                                     "a storage_failed alert was raised"]),
    ("bench/faults/fuzz.py", ["hub crashes: 0; every good event stored: True; quarantine as expected: True"]),
    ("bench/faults/tamper.py", ["11 of 11 tamperings found by kagiban verify"]),
]


def _run_folders() -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), "kagiban-bench-*")))


def _bench_processes() -> set[str]:
    return set(subprocess.run(["pgrep", "-f", "kagiban-bench-"], capture_output=True, text=True).stdout.split())


def _children() -> set[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    return {int(x) for x in out.stdout.split()}


@pytest.mark.parametrize("script,expect", SCRIPTS, ids=[s.split()[0].rsplit("/", 1)[-1][:-3] + "".join(
    "-" + a.lstrip("-") for a in s.split()[1:]) for s, _ in SCRIPTS])
def test_quick_run(script, expect):
    # What was there before (a benchmark run by hand on the same machine) is not this run's.
    before, running = _run_folders(), _bench_processes()
    proc = subprocess.run([sys.executable, *script.split(), "--quick", "--max-seconds", "100"], cwd=ROOT,
                          capture_output=True, text=True, timeout=115)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "# load before start:" in out and "# machine:" in out
    for line in expect:
        either = line if isinstance(line, tuple) else (line,)
        assert any(one in out for one in either), f"{line!r} not in:\n{out[-4000:]}"
    # Clean-up: no run folder left, no child process of ours (mosquitto, hub, agents) left.
    assert _run_folders() - before == set()
    leftovers = _bench_processes() - running
    assert not leftovers, f"processes left: {sorted(leftovers)}"
    # The quarter-core run's cgroup (bench/footprint.py) is removed with its run.
    assert not glob.glob("/sys/fs/cgroup/kagiban-bench-*") + glob.glob("/sys/fs/cgroup/*/kagiban-bench-*")
