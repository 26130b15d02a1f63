"""Alert latency: from a door edge on a mock pin in a real agent to the alert arriving on the
MQTT alert topic and on the web page's live stream, under a background load of simulated
stations, against the raw MQTT round trip measured in the same run.

    python bench/alert_latency.py [--events 1000 --background 200] [--quick]

The agent runs in this process (gpiozero mock pins, stand-in reader and camera, outbox on
disk); the hub is its own process (``kagiban hub``, web page on loopback); the simulated
stations of the background are a process of their own, as they are other machines on a site
(``--background-here``: in this process, as before 2026-12-06, where their 20 connections'
thread shares the interpreter with the agent and the watchers). Each sample: drive
the door pin open with no badge (``door.forced``: a critical alert), wait for that alert on
MQTT and on /events/stream, close the door. The raw round trip, sampled between the door
edges: this process publishes QoS 1, a plain paho process republishes it, this process
receives it (station -> broker -> a consumer process -> broker -> watcher, like the alert's
path without the agent's and the hub's work). The agent's debounce is 0 ms here (mock pins do
not bounce); a real reed switch's debounce (``timings.debounce_ms``, 50 by default) is added
to every figure as it is. Target: p99 under 50 ms.
"""
from __future__ import annotations

import multiprocessing
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    HubProc,
    LiveStream,
    LoadMeter,
    Run,
    Swarm,
    base_parser,
    dist_ms,
    event_payload,
    heartbeat_payload,
    machine_header,
    plain_client,
    start_echo,
    table,
    verdict,
    wait_until,
    write_unit,
)
from kagiban import protocol  # noqa: E402

TARGET_P99_MS = 50.0


def background(swarm: Swarm, rate: float, heartbeat_s: float = 30.0) -> dict[str, int]:
    """Drive ``swarm`` at ``rate`` events/s in total (kind key.used: no alert), heartbeats too."""
    stations = swarm.stations
    state = {"t0": 0.0, "sent": 0, "next_hb": 0.0, "rr": 0}

    def driver(sw: Swarm, now: float) -> None:
        if not state["t0"]:
            state["t0"] = now
        due = int((now - state["t0"]) * rate) - state["sent"]
        for _ in range(max(0, due)):
            s = stations[state["rr"] % len(stations)]
            state["rr"] += 1
            if sw.room(s) <= 0:
                continue
            sw.publish(s, "event", event_payload(s, sw.sent[s] + 1))
            state["sent"] += 1
        if now >= state["next_hb"]:
            for s in stations:
                sw.publish(s, "heartbeat", heartbeat_payload(s, sw.sent[s] + 1, uptime_s=now - state["t0"]), qos=0)
            state["next_hb"] = now + heartbeat_s

    swarm.driver = driver
    return state


def _background_child(port: int, prefix: str, stations: list[str], rate: float, stop, out) -> None:
    """The simulated stations in a process of their own: ready, then their figures at ``stop``."""
    swarm = Swarm(port, prefix, stations).start()
    state = background(swarm, rate)
    out.send({"ready": True})
    stop.wait()
    elapsed = time.monotonic() - state["t0"] if state["t0"] else 0.0
    swarm.stop()
    out.send({"sent": state["sent"], "acked": swarm.acked_total, "elapsed": elapsed})


class BackgroundProcess:
    """``background`` driven in a child process (spawned: paho's threads are not forked)."""

    def __init__(self, port: int, prefix: str, stations: list[str], rate: float, timeout: float = 60.0):
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._recv, send = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=_background_child, name="background",
                                args=(port, prefix, stations, rate, self._stop, send), daemon=True)
        self.proc.start()
        if not self._recv.poll(timeout):
            self.proc.kill()
            raise TimeoutError(f"the background stations were not connected within {timeout:.0f} s")
        self._recv.recv()
        self.figures: dict[str, float] = {}

    def stop(self) -> dict[str, float]:
        """Stop the stations; what they sent and had acked, and for how long (once)."""
        if not self.figures and self.proc.is_alive():
            self._stop.set()
            if self._recv.poll(30):
                self.figures = self._recv.recv()
            self.proc.join(10)
            if self.proc.is_alive():
                self.proc.kill()
        return self.figures


class AlertWatcher:
    """A plain MQTT subscriber to every alert of a prefix (this process)."""

    def __init__(self, port: int, prefix: str):
        self.alerts: list[tuple[float, dict]] = []
        self.cond = threading.Condition()
        ready = threading.Event()
        self.c = plain_client(f"alerts-{uuid.uuid4().hex[:8]}")
        self.c.on_connect = lambda cl, *_: cl.subscribe(protocol.subscription(prefix, "alert"), qos=1)
        self.c.on_subscribe = lambda *_: ready.set()
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        ready.wait(10)

    def _on(self, _c, _u, msg) -> None:
        import json

        now = time.monotonic()
        with self.cond:
            self.alerts.append((now, json.loads(msg.payload)))
            self.cond.notify_all()

    def wait(self, pred, timeout: float) -> tuple[float, dict] | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for item in self.alerts:
                    if pred(item[1]):
                        return item
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


class RoundTrip:
    """Raw QoS 1 round trip through a plain paho echo process."""

    def __init__(self, run: Run, port: int):
        tag = uuid.uuid4().hex[:8]
        self.ping, self.pong = f"rt{tag}/ping", f"rt{tag}/pong"
        self.echo = start_echo(run, port, self.ping, self.pong)
        self.got: dict[int, float] = {}
        self.cond = threading.Condition()
        ready = threading.Event()
        self.c = plain_client(f"rt-{tag}")
        self.c.on_connect = lambda cl, *_: cl.subscribe(self.pong, qos=1)
        self.c.on_subscribe = lambda *_: ready.set()
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        ready.wait(10)
        self.n = 0

    def _on(self, _c, _u, msg) -> None:
        now = time.monotonic()
        with self.cond:
            self.got[int(msg.payload)] = now
            self.cond.notify_all()

    def sample(self, timeout: float = 5.0) -> float | None:
        self.n += 1
        i = self.n
        t0 = time.monotonic()
        self.c.publish(self.ping, str(i).encode(), qos=1)
        deadline = t0 + timeout
        with self.cond:
            while i not in self.got:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return self.got[i] - t0

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def measure(agent, watcher: AlertWatcher, stream: LiveStream, rt: RoundTrip, count: int, pause: float,
            timeout: float = 5.0) -> dict:
    """``count`` forced-door alerts and as many raw round trips, interleaved."""
    from device.simulate import set_door

    mqtt_s, web_s, raw_s = [], [], []
    stages: list[tuple[float, str, float]] = []  # (wall time of the edge, event id, MQTT arrival - edge)
    missing_mqtt = missing_web = 0
    seen: set[int] = {a[1]["id"] for a in watcher.alerts}
    for _ in range(count):
        r = rt.sample()
        if r is not None:
            raw_s.append(r)
        time.sleep(pause / 2)
        since = stream.mark()
        wall0 = time.time()
        t0 = time.monotonic()
        set_door(agent, True)
        got = watcher.wait(lambda a: a["rule"] == "forced" and a["id"] not in seen, timeout)
        if got is None:
            missing_mqtt += 1
        else:
            seen.add(got[1]["id"])
            mqtt_s.append(got[0] - t0)
            stages.append((wall0, got[1]["event_id"], got[0] - t0))
            alert_id = got[1]["id"]
            t_web = stream.wait(lambda name, p: name == "alert" and p.get("id") == alert_id, timeout, since)
            if t_web is None:
                missing_web += 1
            else:
                web_s.append(t_web - t0)
        set_door(agent, False)
        time.sleep(pause / 2)
    return {"mqtt": mqtt_s, "web": web_s, "raw": raw_s, "missing_mqtt": missing_mqtt, "missing_web": missing_web,
            "stages": stages}


def print_stages(db, stages: list[tuple[float, str, float]]) -> None:
    """Where the time goes, from what the hub stored: the event's received_at (the hub's MQTT
    thread took it: agent, outbox commit and broker behind it) and the alert's raised_at (its
    row being written: for an urgent event inside the event's own transaction, so the one
    commit comes after it)."""
    from datetime import datetime

    from bench.common import db_query

    def ts(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    received = dict(db_query(db, "SELECT event_id, received_at FROM events WHERE kind='door.forced'"))
    raised = dict(db_query(db, "SELECT event_id, raised_at FROM alerts WHERE rule='forced'"))
    a, b, c = [], [], []
    for wall0, event_id, total in stages:
        if event_id in received and event_id in raised:
            r, q = ts(received[event_id]), ts(raised[event_id])
            a.append(r - wall0)
            b.append(q - r)
            c.append(total - (q - wall0))
    rows = []
    for name, vals in (("edge -> hub received the event (agent: decide, outbox commit, publish; broker)", a),
                       ("hub received -> alert row written (ingest batch, the event's transaction up to its alert)", b),
                       ("alert row written -> on the MQTT alert topic (the commit, publish, broker)", c)):
        d = dist_ms(vals)
        rows.append([name, d["n"], d["p50"], d["p95"], d["p99"], d["max"]])
    print(table(["stage (from the hub's stored times)", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"], rows))


def print_latency(res: dict, label: str = "") -> tuple[dict, dict, dict]:
    raw, mq, web = dist_ms(res["raw"]), dist_ms(res["mqtt"]), dist_ms(res["web"])
    rows = []
    for name, d in ((f"raw MQTT round trip (QoS 1, via a paho echo process){label}", raw),
                    (f"door edge -> alert on the MQTT alert topic{label}", mq),
                    (f"door edge -> alert on the web live stream{label}", web)):
        rows.append([name, d["n"], d["p50"], d["p95"], d["p99"], d["max"],
                     f"{d['p99'] / raw['p99']:.1f}x" if raw["p99"] == raw["p99"] and raw["p99"] else "-"])
    print(table(["path", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms", "p99 vs raw"], rows))
    if res["missing_mqtt"] or res["missing_web"]:
        print(f"alerts not seen within 5 s: MQTT {res['missing_mqtt']}, web {res['missing_web']}")
    return raw, mq, web


def start_stack(run: Run, args, station: str = "latency-1", *, database_url: str | None = None,
                sites: list[str] | None = None):
    """Broker, hub (with web page; its store at ``database_url``, its file naming ``sites``),
    the agent in this process, alert watcher, live stream."""
    from device import unit_file
    from device.agent import Agent

    broker = run.broker()
    prefix = "lat" + uuid.uuid4().hex[:8]
    wait_ms = getattr(args, "batch_wait_ms", None)  # bench/scale.py has no such option
    ingest = {"batch_wait_ms": wait_ms} if wait_ms is not None else None
    hub = HubProc(run, broker.port, prefix, web=True, ingest=ingest, database_url=database_url, sites=sites)
    hub.add_web_user()
    hub.start()
    unit = write_unit(run, broker.port, prefix, station, timings={"debounce_ms": args.debounce_ms, "heartbeat_s": 30})
    agent = Agent(unit_file.load(unit)).start()
    run.on_close(agent.stop)
    wait_until(lambda: agent.link.connected(), 20, what="agent connected")
    watcher = AlertWatcher(broker.port, prefix)
    run.on_close(watcher.close)
    stream = LiveStream(hub.web_port)
    run.on_close(stream.close)
    rt = RoundTrip(run, broker.port)
    run.on_close(rt.close)
    return broker, prefix, hub, agent, watcher, stream, rt


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=900)
    p.add_argument("--events", type=int, default=1000, help="door edges (alerts) to time")
    p.add_argument("--background", type=float, default=200.0, help="events/s from simulated stations meanwhile")
    p.add_argument("--stations", type=int, default=20, help="simulated stations carrying the background load")
    p.add_argument("--background-here", action="store_true",
                   help="the simulated stations in this process (as before 2026-12-06), not their own")
    p.add_argument("--pause", type=float, default=0.05, help="seconds between samples")
    p.add_argument("--debounce-ms", type=int, default=0, help="the agent's timings.debounce_ms")
    p.add_argument("--batch-wait-ms", type=int, default=None,
                   help="the hub's ingest.batch_wait_ms (default: the hub's)")
    args = p.parse_args()
    if args.quick:
        args.events, args.stations = min(args.events, 20), min(args.stations, 5)
    with Run("alert-latency", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Alert latency: door edge (mock pin, real agent) -> alert on MQTT and on the live page", args)
        broker, prefix, hub, agent, watcher, stream, rt = start_stack(run, args)
        names = [f"bg-{i:03d}" for i in range(args.stations)]
        if args.background_here:
            swarm = Swarm(broker.port, prefix, names).start()
            run.on_close(swarm.stop)
            state = background(swarm, args.background)
        else:
            stations = BackgroundProcess(broker.port, prefix, names, args.background)
            run.on_close(stations.stop)
        time.sleep(1.0)
        meter = LoadMeter()
        t0 = time.monotonic()
        res = measure(agent, watcher, stream, rt, args.events, args.pause)
        took = time.monotonic() - t0
        load = meter.stop()
        if args.background_here:
            sent, acked, elapsed = state["sent"], swarm.acked_total, time.monotonic() - state["t0"]
            where = "in this process"
        else:
            got = stations.stop()
            sent, acked, elapsed = got.get("sent", 0), got.get("acked", 0), got.get("elapsed", 0.0)
            where = "in a process of their own"
        bg_rate = sent / elapsed if elapsed else 0.0
        print()
        raw, mq, web = print_latency(res)
        print()
        print_stages(hub.db, res["stages"])
        print()
        print(f"background: {args.stations} simulated stations {where}, {bg_rate:,.0f} events/s achieved "
              f"(asked {args.background:,.0f}), {acked:,.0f} acked; {len(res['mqtt'])} alerts in {took:.0f} s")
        print(f"load during the measurement: {load}")
        ok = mq["p99"] < TARGET_P99_MS and web["p99"] < TARGET_P99_MS
        print(f"target: p99 < {TARGET_P99_MS:.0f} ms: {verdict(ok)} (MQTT {mq['p99']:.1f} ms, web {web['p99']:.1f} ms)")
        return 0 if res["missing_mqtt"] == 0 and res["missing_web"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
