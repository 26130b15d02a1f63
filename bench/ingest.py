"""Ingest throughput: events per second the hub validates, stores durably (SQLite,
synchronous=FULL), hash-chains and acknowledges, fed by many simulated stations, against the
rate at which a plain paho subscriber receives the same QoS 1 messages from the same mosquitto.

    python bench/ingest.py [--stations 50 --events 60000 --repeat 3] [--quick]

Two ways of feeding, each measured for the hub and for the raw subscriber alike:

- live: the swarm (one process, one paho connection per station, each with a window of
  unacknowledged publishes) publishes while the consumer runs; the consumer shares the two
  cores with the publishers. Hub time: first publish to the last event acked.
- queued: the consumer has a persistent session and is away while the swarm publishes
  everything (mosquitto queues it); then it comes back and drains. Only the consumer and
  mosquitto work. Hub time: first ack to last ack (the first batch is left out of the count).

Passes alternate raw, hub, raw, hub, ..., raw, each on its own topic prefix and (hub) a fresh
store; the figures are medians, and the baseline is the raw subscriber's median in the same
run. Target: the hub at >= 50 % of the raw rate.

With ``--signing both`` (the default) each hub pass is run twice in a row: unsigned events,
then every station enrolled at the hub and each event signed with its key (the hub checks each
signature, kagiban.event_signing), so the cost of verification is measured in the same run.
"""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    HubProc,
    LoadMeter,
    children_cpu_s,
    Run,
    Swarm,
    base_parser,
    event_payload,
    machine_header,
    mib,
    proc_cpu_s,
    proc_mem,
    rawsub_result,
    start_rawsub,
    stored_count,
    table,
    verdict,
    verify_db,
    wait_until,
)
from kagiban import protocol  # noqa: E402

TARGET_RATIO = 0.5
STRETCH_RATIO = 0.8  # issue 17: ingest at 80 % of the raw subscriber


def payloads(stations: list[str], per_station: int, signers: dict | None = None) -> dict[str, list[bytes]]:
    """Each station's events; signed with its key if ``signers`` (station -> EventSigner)."""
    if signers is None:
        return {s: [event_payload(s, seq) for seq in range(1, per_station + 1)] for s in stations}
    return {s: [signers[s].sign_event(event_payload(s, seq)) for seq in range(1, per_station + 1)]
            for s in stations}


def make_signers(stations: list[str]) -> dict:
    """A fresh key per station, as ``kagiban device enroll`` makes on each unit."""
    from kagiban.ed25519 import PrivateKey

    from kagiban.event_signing import EventSigner

    return {s: EventSigner(PrivateKey.generate()) for s in stations}


def enroll(engine, signers: dict) -> None:
    """Register every station's public key at the hub (``kagiban hub station-key add``)."""
    from hub.stations.keys import add_key
    from kagiban.signing import public_key_b64

    for station, signer in signers.items():
        add_key(engine, station, public_key_b64(signer._key))


def flood(swarm: Swarm, todo: dict[str, list[bytes]]) -> dict[str, float]:
    """Install a driver that publishes every payload as fast as each station's window allows."""
    pos = {s: 0 for s in todo}
    marks: dict[str, float] = {}

    def driver(sw: Swarm, now: float) -> None:
        if "t0" not in marks:
            marks["t0"] = now
        busy = False
        for s, items in todo.items():
            i = pos[s]
            if i >= len(items):
                continue
            busy = True
            n = min(sw.room(s), len(items) - i, 50)
            for k in range(i, i + n):
                sw.publish(s, "event", items[k])
            pos[s] = i + n
        if not busy and "sent" not in marks:
            marks["sent"] = now

    swarm.driver = driver
    return marks


def publish_all(swarm: Swarm, todo: dict[str, list[bytes]], n: int, timeout: float) -> None:
    """Publish everything and wait until the broker has acknowledged (PUBACK) all of it."""
    flood(swarm, todo)
    wait_until(lambda: sum(swarm.pubacked.values()) >= n, timeout, interval=0.02, what=f"{n} PUBACKs")
    swarm.driver = None


class CpuAccount:
    """Where the CPU went during a pass: this process (the 50 stations' paho clients), the broker
    and the consumer (the raw subscriber, or the hub with its signature check workers), in CPU
    seconds, beside the wall time (two cores: 2 x wall is all there was)."""

    def __init__(self, broker_pid: int):
        self.broker_pid = broker_pid
        self.t0, self.own0, self.broker0 = time.monotonic(), time.process_time(), proc_cpu_s(broker_pid)

    def took(self, consumer_s: float) -> dict[str, float]:
        return {"wall_s": time.monotonic() - self.t0, "stations_s": time.process_time() - self.own0,
                "broker_s": proc_cpu_s(self.broker_pid) - self.broker0, "consumer_s": consumer_s}


def raw_pass(run: Run, port: int, stations: list[str], per_station: int, timeout: float, queued: bool,
             broker_pid: int) -> dict:
    prefix = "raw" + uuid.uuid4().hex[:8]
    todo = payloads(stations, per_station)
    n = len(stations) * per_station
    sub = start_rawsub(run, port, protocol.subscription(prefix, "event"), n, timeout, queued=queued)
    swarm = Swarm(port, prefix, stations).start()
    try:
        if queued:
            publish_all(swarm, todo, n, timeout)
            account = CpuAccount(broker_pid)
            sub.stdin.write(b"go\n")  # type: ignore[union-attr]
            sub.stdin.flush()  # type: ignore[union-attr]
            got = rawsub_result(sub, timeout + 10)
            took = got["last"] - got["first"] if got["last"] else float("nan")
            counted = got["n"] - 1
        else:
            account = CpuAccount(broker_pid)
            marks = flood(swarm, todo)
            got = rawsub_result(sub, timeout + 10)
            took = got["last"] - marks["t0"] if got["last"] else float("nan")
            counted = got["n"]
        cpu = account.took(consumer_s=got["cpu_s"])
    finally:
        swarm.stop()
    return {"n": got["n"], "expected": n, "seconds": took, "rate": counted / took if took else 0.0, "cpu": cpu}


def hub_ingest(args) -> dict | None:
    """The hub's ``ingest:`` settings given on the command line, if any."""
    given = {"batch_max": args.batch_max, "batch_wait_ms": args.batch_wait_ms}
    return {k: v for k, v in given.items() if v is not None} or None


def hub_pass(run: Run, port: int, stations: list[str], per_station: int, timeout: float, queued: bool,
             ingest: dict | None, profile: str | None = None, signed: bool = False, *, broker_pid: int) -> dict:
    prefix = "hub" + uuid.uuid4().hex[:8]
    hub = HubProc(run, port, prefix, ingest=ingest, name=f"hub-{prefix}")
    signers = make_signers(stations) if signed else None
    if signers:
        hub.with_store(lambda engine: enroll(engine, signers))
    hub.start()
    todo = payloads(stations, per_station, signers)
    n = len(stations) * per_station
    swarm = Swarm(port, prefix, stations).start()
    if queued:
        hub.stop()  # a clean stop: its session (and subscriptions) stay at the broker
        publish_all(swarm, todo, n, timeout)
        hub.start(wait=False)
    # The hub's CPU with its signature check workers' (child processes, started with it).
    cpu0 = proc_cpu_s(hub.pid) + children_cpu_s(hub.pid)
    account = CpuAccount(broker_pid)
    spy = None
    if profile:
        # py-spy (pip install py-spy) samples the hub process: collapsed stacks, GIL holder only.
        spy_exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")  # a venv's, unactivated
        spy = run.spawn([spy_exe, "record", "--pid", str(hub.pid), "--format", "raw", "--rate", "250",
                         "--output", profile, "--threads", "--gil"], run.path("py-spy.log"))
        time.sleep(1.0)
    try:
        marks = {} if queued else flood(swarm, todo)
        wait_until(lambda: swarm.acked_total >= n, timeout, interval=0.02, what=f"{n} events acked")
        t_end = swarm.ack_times[-1][0]
        cpu1 = proc_cpu_s(hub.pid) + children_cpu_s(hub.pid)
        cpu = account.took(consumer_s=cpu1 - cpu0)
        mem = proc_mem(hub.pid)
    finally:
        swarm.stop()
        if spy is not None:
            spy.send_signal(2)
            spy.wait(30)
    if queued:
        t_first, first_n = swarm.ack_times[0]
        took, counted = t_end - t_first, n - first_n
    else:
        took, counted = t_end - marks["t0"], n
    hub.stop()
    stored = stored_count(hub.db)
    t0 = time.monotonic()
    code, text = verify_db(hub.db)
    verify_s = time.monotonic() - t0
    return {
        "n": n, "seconds": took, "rate": counted / took, "cpu_s": cpu1 - cpu0, "cpu": cpu, "rss": mem.get("VmRSS", 0),
        "hwm": mem.get("VmHWM", 0), "stored": stored, "verify": (code, text, verify_s), "errors": swarm.errors[:5],
    }


def writer_pass(run: Run, stations: list[str], per_station: int, signed: bool = False) -> dict:
    """The hub's ingest writer alone, in this process: the same payloads handed to
    hub.ingest.writer.Ingest.submit (as paho's thread does), then timed until all are stored and acked."""
    from hub.store import migrate
    from hub.store.db import make_engine
    from hub.ingest.writer import Ingest
    from hub.live import LiveBus

    db = run.path(f"writer-{uuid.uuid4().hex[:6]}", "kagiban.db")
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    signers = make_signers(stations) if signed else None
    if signers:
        enroll(engine, signers)
    todo = payloads(stations, per_station, signers)
    msgs = [(protocol.topic("kagiban", "ward-a", s, "event"), items[i]) for i in range(per_station)
            for s, items in todo.items()]
    acked = [0]
    bus = LiveBus()

    def on_acks(acks) -> None:
        for _site, _station, ack in acks:
            acked[0] += sum(hi - lo + 1 for lo, hi in ack.seqs)

    def after(c) -> None:  # what the hub's after-commit hook does for the live page
        for row in c.events:
            bus.publish("event", {k: row[k] for k in ("row_no", "site", "station", "seq", "event_id", "kind", "at")})

    ing = Ingest(engine, prefix="kagiban", on_acks=on_acks, on_committed=after)
    ing.warm_up()  # the signature check workers, started as the hub starts them (not timed)
    for t, payload in msgs:
        ing.submit(t, payload)
    t0, c0, k0 = time.perf_counter(), time.process_time(), children_cpu_s(os.getpid())
    ing.start()
    wait_until(lambda: acked[0] >= len(msgs), 600, interval=0.01, what=f"{len(msgs)} events acked")
    took = time.perf_counter() - t0
    # With the signature check workers' CPU (child processes of this one).
    cpu = time.process_time() - c0 + children_cpu_s(os.getpid()) - k0
    ing.stop(600)
    engine.dispose()
    return {"n": len(msgs), "seconds": took, "rate": len(msgs) / took, "cpu_us": 1e6 * cpu / len(msgs),
            "acked": acked[0], "batches": ing.batches}


def cpu_account(mode: str, raws: list[dict], hubs: list[dict], kinds: list[bool], variants: list[bool],
                base: float, n: int) -> str:
    """Where the two cores went, per event (medians of the passes), and what that leaves the hub:
    at ``TARGET_RATIO`` of the raw rate the whole machine has cores / (ratio x raw rate) of CPU
    per event, of which the stations and the broker take their share first."""
    cores = os.cpu_count() or 1

    def per_event(passes: list[dict], key: str) -> float:
        return statistics.median(1e6 * p["cpu"][key] / n for p in passes)

    def busy(passes: list[dict]) -> float:
        return statistics.median(sum(v for k, v in p["cpu"].items() if k != "wall_s") / (cores * p["cpu"]["wall_s"])
                                 for p in passes)

    groups = [("raw paho subscriber", raws)] + [
        (f"hub {_label(signed)}", [h for h, s in zip(hubs, kinds) if s == signed]) for signed in variants]
    rows = [[name, f"{per_event(ps, 'stations_s'):.0f}", f"{per_event(ps, 'broker_s'):.0f}",
             f"{per_event(ps, 'consumer_s'):.0f}", f"{busy(ps):.0%}"] for name, ps in groups]
    lines = [table([f"CPU us per event ({mode}, medians)", "stations (this process)", "broker", "consumer",
                    f"share of the {cores} cores (these three)"], rows)]
    for name, ps in groups[1:]:
        others = per_event(ps, "stations_s") + per_event(ps, "broker_s")
        for ratio in (TARGET_RATIO, STRETCH_RATIO):
            room = 1e6 * cores / (ratio * base)
            lines.append(f"{name}: at {ratio:.0%} of raw ({ratio * base:,.0f} events/s) the machine has {room:.0f} "
                         f"CPU us per event; the stations and the broker took {others:.0f} here, leaving the hub "
                         f"{room - others:.0f} us (it spent {per_event(ps, 'consumer_s'):.0f})")
    return "\n".join(lines)


def _label(signed: bool) -> str:
    return "signed" if signed else "unsigned"


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=1500)
    p.add_argument("--stations", type=int, default=50)
    p.add_argument("--events", type=int, default=60_000, help="events in each pass (spread over the stations)")
    p.add_argument("--repeat", type=int, default=3, help="hub passes per mode (raw passes: one more)")
    p.add_argument("--mode", choices=["live", "queued", "both", "writer"], default="both",
                   help="writer: the hub's ingest writer alone, in this process (no MQTT; a component figure)")
    p.add_argument("--batch-max", type=int, default=None, help="the hub's ingest.batch_max (default: the hub's)")
    p.add_argument("--batch-wait-ms", type=int, default=None,
                   help="the hub's ingest.batch_wait_ms (default: the hub's)")
    p.add_argument("--profile", metavar="FILE", help="sample the hub with py-spy during its first pass")
    p.add_argument("--signing", choices=["off", "on", "both"], default="both",
                   help="stations sign their events (the hub verifies them); both: each hub pass twice, "
                   "unsigned then signed")
    args = p.parse_args()
    variants = {"off": [False], "on": [True], "both": [False, True]}[args.signing]
    if args.quick:
        args.stations, args.events, args.repeat = min(args.stations, 5), min(args.events, 2_000), 1
    per_station = max(1, args.events // args.stations)
    stations = [f"sim-{i:03d}" for i in range(args.stations)]
    n = per_station * args.stations
    timeout = max(60.0, n / 200.0)
    modes = ["live", "queued"] if args.mode == "both" else [args.mode]
    failures = []
    if args.mode == "writer":
        with Run("ingest-writer", keep=args.keep, max_seconds=args.max_seconds) as run:
            machine_header("Ingest writer alone (hub.ingest.writer.Ingest in this process, no MQTT)", args)
            res = [(signed, writer_pass(run, stations, per_station, signed))
                   for _ in range(args.repeat) for signed in variants]
            print()
            print(table(["pass", "events", "seconds", "events/s", "CPU us per event", "batches"],
                        [[f"#{i // len(variants) + 1} {_label(signed)}", r["n"], r["seconds"], r["rate"],
                          r["cpu_us"], r["batches"]] for i, (signed, r) in enumerate(res)]))
            for signed in variants:
                mine = [r for s, r in res if s == signed]
                print(f"median ({_label(signed)}): {statistics.median(r['rate'] for r in mine):,.0f} events/s, "
                      f"{statistics.median(r['cpu_us'] for r in mine):.1f} CPU us per event "
                      f"(stored, chained, committed with fsync, acks built; CPU with the signature check workers')")
            return 0 if all(r["acked"] == r["n"] for _, r in res) else 1
    with Run("ingest", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Ingest throughput: hub vs. raw paho subscriber (QoS 1, same mosquitto, same run)", args)
        broker = run.broker()
        assert broker.proc is not None
        broker_pid = broker.proc.pid
        meter = LoadMeter()
        summary = []
        for mode in modes:
            queued = mode == "queued"
            raws, hubs, kinds = [], [], []
            for i in range(args.repeat):
                raws.append(raw_pass(run, broker.port, stations, per_station, timeout, queued, broker_pid))
                for signed in variants:
                    profile = args.profile if i == 0 and mode == modes[0] and signed == variants[-1] else None
                    hubs.append(hub_pass(run, broker.port, stations, per_station, timeout, queued, hub_ingest(args),
                                         profile, signed=signed, broker_pid=broker_pid))
                    kinds.append(signed)
            raws.append(raw_pass(run, broker.port, stations, per_station, timeout, queued, broker_pid))
            base = statistics.median(r["rate"] for r in raws)
            print()
            print(f"## {mode}: {args.stations} stations, {per_station} events each ({n:,} per pass)")
            rows = []
            for i, r in enumerate(raws):
                rows.append([f"raw paho subscriber #{i + 1}", r["n"], r["seconds"], r["rate"], "-"])
                for j in range(len(variants)):
                    k = i * len(variants) + j
                    if k < len(hubs):
                        h = hubs[k]
                        rows.append([f"hub #{i + 1} {_label(kinds[k])}: stored, chained, acked", h["n"],
                                     h["seconds"], h["rate"], f"{h['rate'] / base:.0%}"])
            print(table(["pass", "events", "seconds", "events/s", "vs. raw median"], rows))
            for signed in variants:
                mine = [h for h, s in zip(hubs, kinds) if s == signed]
                hub_rate = statistics.median(h["rate"] for h in mine)
                cpu = statistics.median(1000 * h["cpu_s"] / h["n"] for h in mine)
                print(f"medians ({_label(signed)}): raw {base:,.0f} events/s, hub {hub_rate:,.0f} events/s = "
                      f"{hub_rate / base:.0%} of raw; hub CPU {cpu:.3f} ms per event; hub RSS at the end "
                      f"{mib(max(h['rss'] for h in mine))} (peak {mib(max(h['hwm'] for h in mine))})")
                summary.append((f"{mode}, {_label(signed)}", base, hub_rate))
            print(cpu_account(mode, raws, hubs, kinds, variants, base, n))
            for h in hubs:
                code, text, verify_s = h["verify"]
                if h["stored"] != h["n"] or code != 0:
                    failures.append(f"{mode}: stored {h['stored']} of {h['n']}; verify exit {code}: {text}")
                if h["errors"]:
                    print(f"swarm errors: {h['errors']}")
            if failures:
                print(f"FAILURES: {failures}")
            else:
                print(f"each hub pass stored all {n:,} events exactly once; kagiban verify exit 0 after every pass")
                for signed in variants:  # the first pass of each kind in full (signed: every signature checked)
                    code, text, verify_s = next(h for h, s in zip(hubs, kinds) if s == signed)["verify"]
                    print(f"kagiban verify, pass 1 {_label(signed)}: exit {code} in {verify_s:.1f} s: {text}")
            short = [r for r in raws if r["n"] != r["expected"]]
            if short:
                print(f"WARNING: a raw subscriber received fewer than {n:,}: {[r['n'] for r in short]}")
        print()
        print(f"load during the run: {meter.stop()}")
        for mode, base, hub_rate in summary:
            ratio = hub_rate / base
            print(f"target ({mode}): hub >= {TARGET_RATIO:.0%} of raw: {verdict(ratio >= TARGET_RATIO)} "
                  f"({hub_rate:,.0f} vs {base:,.0f} events/s, {ratio:.0%})")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
