"""Scale: 500 simulated stations connected to one hub (status, heartbeats, a steady event rate):
the hub's CPU and memory, and whether alert latency holds.

    python bench/scale.py [--stations 500 --rate 100 --duration 60 --samples 200] [--quick]

Each simulated station is its own MQTT v5 connection (all driven by one thread of this process):
it publishes a retained ``online`` status when it connects, a heartbeat every ``--heartbeat``
seconds (staggered), and its share of ``--rate`` events/s in total (key uses: no alerts). The
hub (``kagiban hub``, its own process, web page on) also publishes a signed policy to every new
station. Alert latency is measured as in bench/alert_latency.py (real agent in this process,
door edges on a mock pin) first with no simulated stations (the baseline), then under the load.
"""
from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.alert_latency import measure, print_latency, start_stack  # noqa: E402
from bench.common import (  # noqa: E402
    LoadMeter,
    Run,
    Swarm,
    base_parser,
    event_payload,
    heartbeat_payload,
    machine_header,
    mib,
    proc_cpu_s,
    proc_mem,
    status_payload,
    stored_count,
    table,
    verdict,
    wait_until,
)


def drive(swarm: Swarm, rate: float, heartbeat_s: float) -> dict:
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
                sw.clients[s].publish(f"{sw.prefix}/ward-a/{s}/status", status_payload(s), qos=1, retain=True)
            state["status"] = True
        due = int((now - state["t0"]) * rate) - state["sent"]
        for _ in range(max(0, due)):
            s = stations[state["rr"] % n]
            state["rr"] += 1
            if sw.room(s) <= 0:
                continue
            sw.publish(s, "event", event_payload(s, sw.sent[s] + 1))
            state["sent"] += 1
        for s, t in state["next_hb"].items():
            if now >= t:
                sw.publish(s, "heartbeat", heartbeat_payload(s, sw.sent[s] + 1, uptime_s=now - state["t0"]), qos=0)
                state["hb"] += 1
                state["next_hb"][s] = t + heartbeat_s

    swarm.driver = driver
    return state


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
    p = base_parser(__doc__.splitlines()[0], max_seconds=1200)
    p.add_argument("--stations", type=int, default=500)
    p.add_argument("--rate", type=float, default=100.0, help="events/s from all simulated stations together")
    p.add_argument("--heartbeat", type=float, default=30.0, help="seconds between a station's heartbeats")
    p.add_argument("--duration", type=float, default=60.0, help="seconds of load (after connecting)")
    p.add_argument("--samples", type=int, default=200, help="alert latency samples, before and under load")
    p.add_argument("--pause", type=float, default=0.05)
    p.add_argument("--debounce-ms", type=int, default=0)
    args = p.parse_args()
    if args.quick:
        args.stations, args.duration, args.samples, args.rate = min(args.stations, 20), 3.0, 10, min(args.rate, 50)
    with Run("scale", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header(f"Scale: {args.stations} simulated stations on one hub", args)
        broker, prefix, hub, agent, watcher, stream, rt = start_stack(run, args, station="scale-agent")
        meter0 = LoadMeter()
        hub_cpu0, t0 = proc_cpu_s(hub.pid), time.monotonic()
        before = measure(agent, watcher, stream, rt, args.samples, args.pause)
        quiet_cpu = 100.0 * (proc_cpu_s(hub.pid) - hub_cpu0) / (time.monotonic() - t0)
        rss_before = proc_mem(hub.pid)["VmRSS"]
        load0 = meter0.stop()

        t_conn = time.monotonic()
        swarm = Swarm(broker.port, prefix, [f"sim-{i:04d}" for i in range(args.stations)]).start(timeout=120)
        run.on_close(swarm.stop)
        connect_s = time.monotonic() - t_conn
        sampler = Sampler(hub.pid)
        meter = LoadMeter()
        state = drive(swarm, args.rate, args.heartbeat)
        t_load = time.monotonic()
        time.sleep(min(10.0, args.duration / 3))
        under = measure(agent, watcher, stream, rt, args.samples, args.pause)
        left = args.duration - (time.monotonic() - t_load)
        if left > 0:
            time.sleep(left)
        swarm.driver = None
        load_s = time.monotonic() - t_load
        time.sleep(0.2)  # the swarm thread may be inside the driver's last turn
        sent = sum(swarm.sent.values())
        try:
            wait_until(lambda: swarm.acked_total >= sent, 60, what="every simulated event acked")
        except TimeoutError:
            pass
        sampler.stop()
        load = meter.stop()
        stored = stored_count(hub.db) - stored_count(hub.db, "scale-agent")
        online = 0
        from bench.common import db_query

        rows = db_query(hub.db, "SELECT count(*) FROM stations WHERE state='online' AND station LIKE 'sim-%'")
        online = rows[0][0] if rows else 0
        cpu = [c for _, c, _ in sampler.samples]
        rss = [r for _, _, r in sampler.samples]
        print()
        print(table(
            ["hub process", "CPU % of one core (mean)", "CPU % (max 1 s)", "RSS"],
            [
                ["agent only (before)", quiet_cpu, "-", mib(rss_before)],
                [f"{args.stations} stations connected, {sent / load_s:,.0f} events/s, heartbeats",
                 statistics.fmean(cpu) if cpu else float("nan"), max(cpu) if cpu else float("nan"),
                 f"{mib(rss[-1])} (max {mib(max(rss))})" if rss else "-"],
            ],
        ))
        print()
        print("alert latency, agent only (baseline):")
        _, mq0, web0 = print_latency(before)
        print()
        print(f"alert latency, {args.stations} stations connected:")
        _, mq1, web1 = print_latency(under)
        print()
        print(f"{args.stations} connections made in {connect_s:.1f} s; {online} shown online at the hub; "
              f"{sent:,} events sent, {swarm.acked_total:,} acked, {stored:,} stored; {state['hb']:,} heartbeats "
              f"in {load_s:.0f} s; swarm errors: {len(swarm.errors)}")
        print(f"load before the stations: {load0}")
        print(f"load under the stations: {load}")
        held = mq1["p99"] < 50.0 and web1["p99"] < 50.0
        print(f"alert latency held (p99 < 50 ms under load): {verdict(held)} (MQTT p99 {mq0['p99']:.1f} -> "
              f"{mq1['p99']:.1f} ms = {mq1['p99'] / mq0['p99']:.1f}x, web p99 {web0['p99']:.1f} -> {web1['p99']:.1f} ms)")
        ok = stored >= sent and not under["missing_mqtt"] and not under["missing_web"]
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
