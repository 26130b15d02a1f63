"""Scale: thousands of simulated stations across many sites on one hub (status, heartbeats, a
steady event rate, then a burst): the hub's CPU and memory, its ingest rate against a plain
subscriber, and whether alert latency holds; on SQLite or on PostgreSQL.

    python bench/scale.py [--stations 5000 --sites 50 --rate 500 --duration 60 --burst 30000 --samples 200]
                          [--store sqlite | --store postgresql [--database-url URL]] [--quick]

Each simulated station is its own MQTT v5 connection (all driven by one thread of this process),
at one of ``--sites`` offices (the hub's file names them all): it publishes a retained
``online`` status when it connects, a heartbeat every ``--heartbeat`` seconds (staggered), and
its share of ``--rate`` events/s in total (key uses: no alerts). The hub (``kagiban hub``, its
own process, web page on) also publishes a signed policy to every new station. Alert latency is
measured as in bench/alert_latency.py (real agent in this process, door edges on a mock pin,
beside the raw MQTT round trip through a paho echo process) first with no simulated stations
(the baseline), then under the load. Then ``--burst`` events go out as fast as the stations'
windows let them while a plain paho subscriber (its own process) counts the same events: the
hub's ingest rate (stored, chained, acked) against the broker's delivery, same run, same time.

``--store postgresql`` puts the hub's store in PostgreSQL: a private cluster started for the run
as the test session starts one (tests/support/postgres.py: initdb into a temporary folder, its
own socket, a loopback port) but with PostgreSQL's durable defaults (fsync and synchronous
commit on), or the empty database of ``--database-url``. Its processes' CPU is shown beside the
hub's.
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kagiban import protocol  # noqa: E402
from bench.alert_latency import measure, print_latency, start_stack  # noqa: E402
from bench.common import (  # noqa: E402
    SITE,
    LoadMeter,
    PgServer,
    Run,
    Swarm,
    base_parser,
    event_payload,
    heartbeat_payload,
    machine_header,
    mib,
    proc_cpu_s,
    proc_mem,
    rawsub_result,
    start_rawsub,
    status_payload,
    table,
    verdict,
    wait_until,
)


# Bytes of WAL PostgreSQL has written so far (the hub's store: its replication and archive volume).
WAL_SQL = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint"


def drive(swarm: Swarm, rate: float, heartbeat_s: float) -> dict:
    """The steady load: each station's retained ``online`` status once, heartbeats every
    ``heartbeat_s`` (staggered), ``rate`` events/s in total round robin."""
    stations = swarm.stations
    n = len(stations)
    state = {"t0": 0.0, "sent": 0, "hb": 0, "rr": 0, "next_hb": {}, "status": False}

    def driver(sw: Swarm, now: float) -> None:
        if not state["t0"]:
            state["t0"] = now
            for i, s in enumerate(stations):
                state["next_hb"][s] = now + heartbeat_s * i / n
        if not state["status"]:
            for s in stations:
                site = sw.site_of.get(s, SITE)
                sw.clients[s].publish(f"{sw.prefix}/{site}/{s}/status", status_payload(s, site=site), qos=1,
                                      retain=True)
            state["status"] = True
        due = int((now - state["t0"]) * rate) - state["sent"]
        for _ in range(max(0, due)):
            s = stations[state["rr"] % n]
            state["rr"] += 1
            if sw.room(s) <= 0:
                continue
            sw.publish(s, "event", event_payload(s, sw.sent[s] + 1, site=sw.site_of.get(s, SITE)))
            state["sent"] += 1
        for s, t in state["next_hb"].items():
            if now >= t:
                sw.publish(s, "heartbeat", heartbeat_payload(
                    s, sw.sent[s] + 1, uptime_s=now - state["t0"], site=sw.site_of.get(s, SITE),
                    policy_version=sw.policy_version.get(s, 1)), qos=0)
                state["hb"] += 1
                state["next_hb"][s] = t + heartbeat_s

    swarm.driver = driver
    return state


def burst(swarm: Swarm, count: int) -> dict:
    """``count`` events as fast as the stations' windows let them go (round robin; no
    heartbeats meanwhile): the hub's ingest rate with every station connected."""
    stations = swarm.stations
    state = {"t0": 0.0, "sent": 0, "rr": 0}

    def driver(sw: Swarm, now: float) -> None:
        if not state["t0"]:
            state["t0"] = now
        # A bounded turn: the selector is served between turns (acks, pubacks).
        for _ in range(min(2000, count - state["sent"])):
            s = stations[state["rr"] % len(stations)]
            state["rr"] += 1
            if sw.room(s) <= 0:
                continue
            sw.publish(s, "event", event_payload(s, sw.sent[s] + 1, site=sw.site_of.get(s, SITE)))
            state["sent"] += 1

    swarm.driver = driver
    return state


def site_names(n: int) -> list[str]:
    """``n`` offices: the agent's own (ward-a) and office-02 ... office-NN."""
    return [SITE] + [f"office-{i:02d}" for i in range(2, n + 1)]


class Sampler:
    """CPU (% of one core) and RSS of a process, once a second."""

    def __init__(self, pid: int):
        self.pid = pid
        self.samples: list[tuple[float, float, int]] = []
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        last_t, last_c = time.monotonic(), proc_cpu_s(self.pid)
        while not self._stop.wait(1.0):
            try:
                t, c, rss = time.monotonic(), proc_cpu_s(self.pid), proc_mem(self.pid)["VmRSS"]
            except OSError:
                return
            self.samples.append((t, 100.0 * (c - last_c) / (t - last_t), rss))
            last_t, last_c = t, c

    def stop(self) -> None:
        self._stop.set()


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=1800)
    p.add_argument("--stations", type=int, default=5000)
    p.add_argument("--sites", type=int, default=50, help="offices the stations are spread over (the hub's file names them)")
    p.add_argument("--rate", type=float, default=500.0, help="events/s from all simulated stations together")
    p.add_argument("--heartbeat", type=float, default=30.0, help="seconds between a station's heartbeats")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of steady load (after connecting)")
    p.add_argument("--burst", type=int, default=30_000,
                   help="events sent as fast as they go after the steady load (ingest rate vs the raw subscriber)")
    p.add_argument("--samples", type=int, default=200, help="alert latency samples, before and under load")
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--debounce-ms", type=int, default=0)
    p.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                   help="the hub's store: its SQLite file, or PostgreSQL (a private cluster unless --database-url)")
    p.add_argument("--database-url", help="with --store postgresql: an empty database to use instead of a private cluster")
    args = p.parse_args()
    if args.database_url and args.store != "postgresql":
        p.error("--database-url is for --store postgresql")
    if args.burst < 1:
        p.error("--burst: at least 1 event (the ingest rate is measured on it)")
    if args.quick:
        args.stations, args.sites, args.duration, args.samples = min(args.stations, 20), min(args.sites, 4), 3.0, 10
        args.rate, args.burst = min(args.rate, 50), min(args.burst, 500)
    with Run("scale", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header(f"Scale: {args.stations} simulated stations across {args.sites} sites on one hub", args)
        pg = PgServer(run, args.database_url) if args.store == "postgresql" else None
        database_url = pg.new_database() if pg is not None else None
        print(f"# store: {args.store}" + (f" ({pg.describe()})" if pg is not None else " (the hub's file, WAL, synchronous=FULL)"))
        sites = site_names(args.sites)
        broker, prefix, hub, agent, watcher, stream, rt = start_stack(
            run, args, station="scale-agent", database_url=database_url, sites=sites)
        pg_cpu = pg.cpu_s if pg is not None else (lambda: 0.0)
        meter0 = LoadMeter()
        hub_cpu0, db_cpu0, t0 = proc_cpu_s(hub.pid), pg_cpu(), time.monotonic()
        before = measure(agent, watcher, stream, rt, args.samples, args.pause)
        quiet_s = time.monotonic() - t0
        quiet_cpu = 100.0 * (proc_cpu_s(hub.pid) - hub_cpu0) / quiet_s
        quiet_db = 100.0 * (pg_cpu() - db_cpu0) / quiet_s
        rss_before = proc_mem(hub.pid)["VmRSS"]
        load0 = meter0.stop()

        stations = [f"sim-{i:04d}" for i in range(args.stations)]
        site_of = {s: sites[i % len(sites)] for i, s in enumerate(stations)}
        t_conn = time.monotonic()
        swarm = Swarm(broker.port, prefix, stations, sites=site_of).start(timeout=300)
        run.on_close(swarm.stop)
        connect_s = time.monotonic() - t_conn
        sampler = Sampler(hub.pid)
        meter = LoadMeter()
        state = drive(swarm, args.rate, args.heartbeat)
        t_load, db_cpu1 = time.monotonic(), pg_cpu()
        wal_s0 = hub.scalar(WAL_SQL) if pg is not None else 0
        time.sleep(min(10.0, args.duration / 3))
        under = measure(agent, watcher, stream, rt, args.samples, args.pause)
        left = args.duration - (time.monotonic() - t_load)
        if left > 0:
            time.sleep(left)
        swarm.driver = None
        load_s = time.monotonic() - t_load
        steady_db = 100.0 * (pg_cpu() - db_cpu1) / load_s
        wal_steady = (hub.scalar(WAL_SQL) - wal_s0) / load_s if pg is not None else 0
        steady_samples = len(sampler.samples)
        time.sleep(0.2)  # the swarm thread may be inside the driver's last turn
        sent = sum(swarm.sent.values())
        try:
            wait_until(lambda: swarm.acked_total >= sent, 120, what="every simulated event acked")
        except TimeoutError:
            pass
        load = meter.stop()
        online = hub.scalar("SELECT count(*) FROM stations WHERE state='online' AND station LIKE 'sim-%'")
        sites_seen = hub.scalar("SELECT count(DISTINCT site) FROM stations WHERE station LIKE 'sim-%'")

        # Ingest with every station connected: the hub against a plain paho subscriber of the
        # same events, both counting the same burst at the same time.
        acked0 = swarm.acked_total
        wal0 = hub.scalar(WAL_SQL) if pg is not None else 0
        raw = start_rawsub(run, broker.port, protocol.subscription(prefix, "event"), args.burst, timeout=300)
        meter_b = LoadMeter()
        hub_cpu_b, db_cpu_b = proc_cpu_s(hub.pid), pg_cpu()
        b = burst(swarm, args.burst)
        try:
            wait_until(lambda: swarm.acked_total >= acked0 + args.burst, 300, interval=0.02,
                       what=f"the burst of {args.burst:,} events acked")
        except TimeoutError:
            pass
        swarm.driver = None
        t_hub = swarm.acked_by(acked0 + args.burst)
        raw_got = rawsub_result(raw, timeout=320)
        burst_s = (t_hub or time.monotonic()) - b["t0"]
        hub_rate = (swarm.acked_total - acked0) / burst_s
        raw_s = (raw_got["last"] - b["t0"]) if raw_got["last"] else float("nan")
        raw_rate = raw_got["n"] / raw_s if raw_got["last"] else float("nan")
        burst_hub_cpu = 100.0 * (proc_cpu_s(hub.pid) - hub_cpu_b) / burst_s
        burst_db_cpu = 100.0 * (pg_cpu() - db_cpu_b) / burst_s
        wal_per_event = (hub.scalar(WAL_SQL) - wal0) / max(1, swarm.acked_total - acked0) if pg is not None else 0
        load_b = meter_b.stop()
        sampler.stop()
        peak = proc_mem(hub.pid)["VmHWM"]
        stored = hub.scalar("SELECT count(*) FROM events WHERE station LIKE 'sim-%'")
        raised = hub.scalar("SELECT count(*) FROM alerts WHERE station LIKE 'sim-%'")
        policies = len(swarm.policy_version)
        sent_all = sum(swarm.sent.values())
        cpu = [c for _, c, _ in sampler.samples[:steady_samples]]
        rss = [r for _, _, r in sampler.samples]
        print()
        cols = ["hub process", "CPU % of one core (mean)", "CPU % (max 1 s)", "RSS"]
        if pg is not None:
            cols.append("PostgreSQL CPU % of one core (mean)")
        rows = [["agent only (before)", quiet_cpu, "-", mib(rss_before)] + ([quiet_db] if pg else []),
                [f"{args.stations} stations connected ({args.sites} sites), {state['sent'] / load_s:,.0f} events/s, "
                 f"heartbeats every {args.heartbeat:.0f} s",
                 statistics.fmean(cpu) if cpu else float("nan"), max(cpu) if cpu else float("nan"),
                 f"{mib(rss[steady_samples - 1])}" if steady_samples else "-"] + ([steady_db] if pg else []),
                [f"burst of {args.burst:,} events, all stations connected", burst_hub_cpu, "-",
                 f"{mib(rss[-1])}" if rss else "-"] + ([burst_db_cpu] if pg else [])]
        print(table(cols, rows))
        print(f"hub peak RSS (VmHWM) over the run: {mib(peak)}")
        print()
        print("alert latency, agent only (baseline):")
        _, mq0, web0 = print_latency(before)
        print()
        print(f"alert latency, {args.stations} stations connected:")
        raw1, mq1, web1 = print_latency(under)
        print()
        print(table(["ingest, all stations connected", "events", "seconds", "events/s", "vs raw subscriber"], [
            ["raw paho subscriber (same events, same time)", raw_got["n"], raw_s, raw_rate, "1.00x"],
            [f"hub: stored, chained, acked ({args.store})", swarm.acked_total - acked0, burst_s, hub_rate,
             f"{hub_rate / raw_rate:.2f}x" if raw_rate == raw_rate and raw_rate else "-"],
        ]))
        if pg is not None:
            print(f"PostgreSQL WAL written: {wal_steady / 1024:,.0f} KiB/s under the steady load (events, heartbeats, "
                  f"statuses, policies); {wal_per_event:,.0f} bytes per event during the burst")
        print(f"load during the burst: {load_b}")
        print()
        print(f"{args.stations} connections made in {connect_s:.1f} s; {online} shown online at the hub across "
              f"{sites_seen} sites; {sent_all:,} events sent, {swarm.acked_total:,} acked, {stored:,} stored; "
              f"{state['hb']:,} heartbeats in {load_s:.0f} s; {policies:,} policies received; {raised:,} alerts "
              f"raised for the simulated stations; swarm errors: {len(swarm.errors)}")
        print(f"load before the stations: {load0}")
        print(f"load under the stations: {load}")
        held = mq1["p99"] < 50.0 and web1["p99"] < 50.0
        print(f"alert latency held (p99 < 50 ms under load): {verdict(held)} (MQTT p99 {mq0['p99']:.1f} -> "
              f"{mq1['p99']:.1f} ms = {mq1['p99'] / mq0['p99']:.1f}x, {mq1['p99'] / raw1['p99']:.1f}x the raw round "
              f"trip; web p99 {web0['p99']:.1f} -> {web1['p99']:.1f} ms)")
        ok = stored >= sent_all and not under["missing_mqtt"] and not under["missing_web"]
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
