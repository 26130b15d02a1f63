"""What the benchmark and fault scripts share: a run folder and its clean-up, the machine and its
load, mosquitto, a hub process, units (agents), swarms of simulated stations, latency figures.

Every script is bounded in count and time, talks only to 127.0.0.1, starts its own mosquitto
(demo.broker) and leaves no process and no folder behind. Figures are ratios against a
baseline measured in the same run, because the machine is shared: each script prints the load
it saw (other processes' CPU before it started, the load average, the CPU busy during the run).

Helpers run as their own processes with ``python -m bench.common rawsub|echo ...`` (a plain
paho subscriber that counts, and a plain paho echo), so a baseline has the same process layout
as the hub it is compared with.
"""
from __future__ import annotations

import argparse
import atexit
import base64
import http.client
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import paho.mqtt
import paho.mqtt.client as mqtt  # noqa: E402
import uuid6  # noqa: E402
import yaml  # noqa: E402

from kagiban import protocol  # noqa: E402
from demo.broker import Mosquitto, free_port  # noqa: E402

SITE = "ward-a"
JST = timezone(timedelta(hours=9))
HOLDER = "0123456789ABCDEF"  # allowed everywhere
STANDIN = "1111222233334444"  # allowed, flagged
UNKNOWN = "FFFFEEEEDDDDCCCC"  # not in any policy: denied
STAFF = {
    "people": [
        {"id": "S001", "name": "Staff 001", "badges": [HOLDER], "stations": ["*"], "decision": "allow"},
        {"id": "S002", "name": "Staff 002", "badges": [STANDIN], "stations": ["*"], "decision": "allow_flag"},
    ]
}
WEB_USER = "bench-sup"
WEB_PASSWORD = "bench password 01"
PROBE = "probe"  # the station the readiness probe publishes as; left out of every count


# --- the run: folder, processes, clean-up, deadline --------------------------------------------


class Deadline(Exception):
    """The script ran past its --max-seconds."""


class Run:
    """One script run: a temp folder, the processes and brokers it started, all cleaned up.

    ``with Run(args) as run:`` arms an alarm at ``args.max_seconds``; SIGTERM and SIGINT end the
    run through the same clean-up. ``--keep`` leaves the folder (to read the logs).
    """

    def __init__(self, name: str, *, keep: bool = False, max_seconds: float = 600.0):
        self.name = name
        self.keep = keep
        self.max_seconds = max_seconds
        self.dir = Path(tempfile.mkdtemp(prefix=f"kagiban-bench-{name}-"))
        self.procs: list[subprocess.Popen] = []
        self.brokers: list[Mosquitto] = []
        self.closers: list[Callable[[], None]] = []
        self.started = time.monotonic()
        self._closed = False

    def __enter__(self) -> "Run":
        def on_alarm(*_):
            raise Deadline(f"{self.name}: still running after {self.max_seconds:.0f} s")

        def on_term(signum, _frame):
            raise SystemExit(128 + signum)

        import logging

        # The agent (when it runs in this process) logs through the root logger: errors only.
        logging.basicConfig(level=logging.ERROR, format="# log %(levelname)s %(name)s: %(message)s")
        signal.signal(signal.SIGALRM, on_alarm)
        signal.signal(signal.SIGTERM, on_term)
        signal.setitimer(signal.ITIMER_REAL, self.max_seconds)
        atexit.register(self.close)
        return self

    def __exit__(self, *exc) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.close()

    def path(self, *parts: str) -> Path:
        p = self.dir.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def broker(self, name: str = "mosquitto", extra_config: str = "") -> Mosquitto:
        m = Mosquitto(self.dir / name, extra_config=extra_config).start()
        self.brokers.append(m)
        return m

    def spawn(self, args: list[str], log: Path, *, env: dict[str, str] | None = None,
              stdout=None, stdin=None) -> subprocess.Popen:
        """A child process (killed at the end of the run if still alive)."""
        f = open(log, "ab")
        proc = subprocess.Popen(
            args, stdout=stdout if stdout is not None else f, stderr=f, cwd=ROOT, stdin=stdin,
            env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
        )
        f.close()
        self.procs.append(proc)
        return proc

    def on_close(self, fn: Callable[[], None]) -> None:
        self.closers.append(fn)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        debug = os.environ.get("BENCH_DEBUG_CLOSE")
        for fn in reversed(self.closers):
            t = time.monotonic()
            try:
                fn()
            except Exception as exc:  # clean-up goes on
                print(f"# clean-up: {exc!r}", file=sys.stderr)
            if debug:
                print(f"# close {fn!r}: {time.monotonic() - t:.1f} s", file=sys.stderr)
        for proc in self.procs:
            t = time.monotonic()
            stop_process(proc)
            if debug:
                print(f"# stop {proc.args[:6]}: {time.monotonic() - t:.1f} s", file=sys.stderr)
        for b in self.brokers:
            try:
                b.kill()
            except Exception:
                pass
        if self.keep:
            print(f"# kept {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    """SIGTERM, then SIGKILL; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)
    return proc.returncode


def kill9(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


def base_parser(description: str, *, max_seconds: float) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a few seconds: small counts (the test suite's run)")
    p.add_argument("--keep", action="store_true", help="keep the run folder (logs, databases)")
    p.add_argument("--max-seconds", type=float, default=max_seconds, help="stop (and clean up) after this long")
    return p


# --- the machine and its load --------------------------------------------------------------------


def _cpu_jiffies() -> tuple[int, int]:
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, sum(parts)


def busy_now(seconds: float = 1.0) -> float:
    """Percent of all cores busy over the next ``seconds`` (whoever uses them)."""
    b0, t0 = _cpu_jiffies()
    time.sleep(seconds)
    b1, t1 = _cpu_jiffies()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


class LoadMeter:
    """CPU busy (all cores, every process) and load average over a stretch of the run."""

    def __init__(self) -> None:
        self.b0, self.t0 = _cpu_jiffies()
        self.load0 = os.getloadavg()

    def stop(self) -> str:
        b1, t1 = _cpu_jiffies()
        busy = 100.0 * (b1 - self.b0) / max(1, t1 - self.t0)
        load1 = os.getloadavg()
        return f"machine CPU busy {busy:.0f}% of {os.cpu_count()} cores; load average {self.load0[0]:.2f} -> {load1[0]:.2f}"


def machine_header(title: str, args: argparse.Namespace | None = None) -> None:
    """Print what ran where, and how busy the machine already was (other people's work)."""
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                break
    except OSError:
        pass
    try:
        mosq = subprocess.run([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"], capture_output=True,
                              text=True, timeout=5).stdout.splitlines()[0]
    except Exception:
        mosq = "mosquitto ?"
    print(f"# {title}")
    print(f"# machine: {os.cpu_count()} cores ({cpu}), {mem}; {platform.system()} {platform.release()}; "
          f"Python {platform.python_version()}; paho-mqtt {paho.mqtt.__version__}; {mosq}")
    print(f"# load before start: CPU busy {busy_now(1.0):.0f}% of {os.cpu_count()} cores (other processes); "
          f"load average {os.getloadavg()[0]:.2f}")
    if args is not None:
        shown = {k: v for k, v in vars(args).items() if k not in ("keep",)}
        print(f"# arguments: {shown}")
    sys.stdout.flush()


# --- per-process figures --------------------------------------------------------------------------

_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TCK


def children_cpu_s(pid: int) -> float:
    """proc_cpu_s of a process's live child processes (the hub's signature check workers)."""
    total = 0.0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0.0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids = [int(k) for k in f.read().split()]
        except OSError:
            continue
        for kid in kids:
            try:
                total += proc_cpu_s(kid)
            except OSError:  # ended meanwhile
                pass
    return total


def proc_mem(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) in bytes; with smaps_rollup also Pss and USS (private pages:
    what this process alone holds; RSS also counts shared libraries in full)."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Pss", "Private_Clean", "Private_Dirty"):
                    out[key] = int(rest.split()[0]) * 1024
        out["USS"] = out.get("Private_Clean", 0) + out.get("Private_Dirty", 0)
    except OSError:
        pass
    return out


def mib(n: float) -> str:
    return f"{n / 1024 / 1024:.1f} MiB"


# --- figures --------------------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def dist_ms(values_s: list[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds of a list of seconds."""
    ms = [v * 1000.0 for v in values_s]
    return {
        "n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "p99": percentile(ms, 99),
        "max": max(ms) if ms else float("nan"), "mean": statistics.fmean(ms) if ms else float("nan"),
    }


def table(headers: list[str], rows: Iterable[Iterable[Any]]) -> str:
    """A Markdown table."""
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    return "\n".join(lines)


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# --- payloads -------------------------------------------------------------------------------------


def event_payload(station: str, seq: int, *, kind: str = "key.used", site: str = SITE,
                  at: datetime | None = None, badge: str | None = HOLDER, person: str | None = "S001",
                  data: dict[str, Any] | None = None) -> bytes:
    """A valid protocol Event, as a station would publish it."""
    ev = protocol.Event(
        id=str(uuid6.uuid7()), seq=seq, site=site, station=station, kind=kind,
        at=at or datetime.now(JST), badge=badge, person=person,
        data=data if data is not None else {"duration_s": 12.5, "policy_version": 1, "flagged": False},
    )
    return protocol.dumps(ev)


def heartbeat_payload(station: str, next_seq: int, *, uptime_s: float = 1.0, depth: int = 0,
                      capacity: int = 200_000, site: str = SITE, policy_version: int = 1) -> bytes:
    return protocol.dumps(protocol.Heartbeat(
        site=site, station=station, kind="cabinet", at=datetime.now(JST), uptime_s=uptime_s,
        next_seq=next_seq, outbox_depth=depth, outbox_capacity=capacity, policy_version=policy_version,
        door="closed", locked=True,
    ))


def status_payload(station: str, state: str = "online", site: str = SITE) -> bytes:
    return protocol.dumps(protocol.Status(site=site, station=station, state=state,
                                          at=datetime.now(JST), kind="cabinet"))


# --- keys, hub, units ----------------------------------------------------------------------------


def policy_key(run: Run) -> Path:
    from kagiban.signing import load_or_create_private_key

    path = run.path("policy-signing.key")
    load_or_create_private_key(path)
    return path


def public_key(run: Run) -> str:
    from kagiban.signing import load_private_key, public_key_b64

    return public_key_b64(load_private_key(policy_key(run)))


class HubProc:
    """The hub as its own process (``kagiban hub``), as deployed: killable with -9."""

    def __init__(self, run: Run, broker_port: int, prefix: str, *, web: bool = False,
                 ingest: dict[str, Any] | None = None, log_level: str = "INFO", name: str = "hub",
                 database_url: str | None = None, sites: list[str] | None = None):
        self.run = run
        self.database_url = database_url
        self.prefix = prefix
        self.dir = run.dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "staff.yaml").write_text(yaml.safe_dump(STAFF))
        self.web_port = free_port() if web else 0
        cfg = {
            "broker": {"host": "127.0.0.1", "port": broker_port, "prefix": prefix, "keepalive_s": 5},
            "data_dir": str(self.dir / "data"),
            "staff_file": "staff.yaml",
            "ingest": {"client_id": f"hub-{prefix}", **(ingest or {})},
            "web": {"enabled": web, "port": self.web_port},
            "policy": {"signing_key_file": str(policy_key(run))},
        }
        if database_url:
            cfg["database"] = {"url": database_url}
        if sites:
            cfg["sites"] = {site: {"name": f"Office {site}"} for site in sites}
        self.config = self.dir / "hub.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.log = self.dir / "hub.log"
        self.log_level = log_level
        self.proc: subprocess.Popen | None = None
        self.port = broker_port
        self.starts = 0

    @property
    def db(self) -> Path:
        return self.dir / "data" / "kagiban.db"

    def scalar(self, sql: str) -> int:
        """One number from the hub's store, SQLite or PostgreSQL (0 if it cannot be read yet)."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        from hub.store.db import make_engine

        if self.database_url is None and not self.db.exists():
            return 0
        engine = make_engine(self.database_url or f"sqlite:///{self.db}")
        try:
            with engine.connect() as conn:
                return int(conn.execute(text(sql)).scalar() or 0)
        except SQLAlchemyError:
            return 0
        finally:
            engine.dispose()

    def with_store(self, fn: Callable[[Any], None]) -> None:
        """Run ``fn(engine)`` on the hub's store (migrated), before the hub starts."""
        from hub.store import migrate
        from hub.config import load
        from hub.store.db import make_engine

        engine = make_engine(load(self.config).db_url())
        try:
            migrate.upgrade(engine)
            fn(engine)
        finally:
            engine.dispose()

    def add_web_user(self) -> None:
        """A supervisor for the live stream (HTTP Basic), made before the hub starts."""
        from hub.store import migrate
        from hub.config import load
        from hub.store.db import make_engine
        from hub.accounts.users import add_user

        engine = make_engine(load(self.config).db_url())
        try:
            migrate.upgrade(engine)
            add_user(engine, WEB_USER, WEB_PASSWORD, "supervisor", display_name="bench", replace=True)
        finally:
            engine.dispose()

    def start(self, wait: bool = True, timeout: float = 60.0) -> "HubProc":
        self.proc = self.run.spawn(
            [sys.executable, "-m", "kagiban.cli", "--log-level", self.log_level, "hub", "--config", str(self.config)],
            self.log,
        )
        self.starts += 1
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Until the hub stores and acks a probe event; seconds it took."""
        t0 = time.monotonic()
        probe_ack(self.port, self.prefix, timeout=timeout, alive=lambda: self.proc is None or self.proc.poll() is None)
        if self.web_port:
            wait_until(lambda: _accepting(self.web_port), timeout, what="the hub's web page")
        return time.monotonic() - t0

    def kill9(self) -> None:
        if self.proc is not None:
            kill9(self.proc)

    def stop(self) -> int | None:
        return stop_process(self.proc) if self.proc is not None else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def _accepting(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


_probe_seq = [int(time.time() * 1000)]  # unique across restarts of the probe station


def probe_ack(port: int, prefix: str, *, timeout: float = 60.0, alive: Callable[[], bool] = lambda: True) -> None:
    """Publish a probe event until the hub acks it: the hub is subscribed and storing."""
    got = threading.Event()
    _probe_seq[0] += 1
    seq = _probe_seq[0]
    c = plain_client(f"probe-{uuid.uuid4().hex[:8]}")

    def on_message(_c, _u, msg):
        try:
            ack = protocol.Ack.model_validate_json(msg.payload)
        except ValueError:
            return
        if seq in ack.seq_set():
            got.set()

    c.on_message = on_message
    c.on_connect = lambda cl, *_: cl.subscribe(protocol.topic(prefix, SITE, PROBE, "ack"), qos=1)
    c.connect_async("127.0.0.1", port)
    c.loop_start()
    deadline = time.monotonic() + timeout
    try:
        while not got.wait(0.5):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the hub did not ack a probe within {timeout:.0f} s")
            if not alive():
                raise RuntimeError("the hub process exited while starting")
            if c.is_connected():
                c.publish(protocol.topic(prefix, SITE, PROBE, "event"),
                          event_payload(PROBE, seq, kind="bench.probe"), qos=1)
    finally:
        c.disconnect()
        c.loop_stop()


def nodelay(_client, _userdata, sock) -> None:
    """paho's on_socket_open: no Nagle delay on small packets (paho does not set TCP_NODELAY)."""
    import socket

    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):
        pass


def plain_client(client_id: str) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    c.on_socket_open = nodelay
    c.max_inflight_messages_set(100)
    c.max_queued_messages_set(0)
    c.reconnect_delay_set(min_delay=0.2, max_delay=1)
    return c


def write_unit(run: Run, broker_port: int, prefix: str, station: str, *, timings: dict[str, Any] | None = None,
               capacity: int | None = None, policy: bool = True, folder: str = "units") -> Path:
    """A simulated cabinet's file (mock pins, stand-in reader and camera); with ``policy`` its
    data folder holds a signed policy (version 1) so it decides from the first tap."""
    base = run.dir / folder
    base.mkdir(parents=True, exist_ok=True)
    storage: dict[str, Any] = {"dir": f"./{station}-data"}
    if capacity is not None:
        storage["outbox_capacity"] = capacity
    cfg = {
        "site": SITE,
        "station": {"id": station, "kind": "cabinet"},
        "pins": {"factory": "mock", "door": 17, "lock": 27, "led_granted": 22, "led_denied": 23, "buzzer": 24},
        "reader": {"type": "standin"},
        "camera": {"type": "standin", "width": 320, "height": 240},
        "broker": {"host": "127.0.0.1", "port": broker_port, "prefix": prefix, "keepalive_s": 5},
        "timings": {"unlock_s": 5, "held_open_s": 60, "debounce_ms": 0, "heartbeat_s": 5,
                    "ack_timeout_s": 2, **(timings or {})},
        "storage": storage,
        "policy": {"public_key": public_key(run)},
    }
    path = base / f"{station}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    if policy:
        write_policy(run, base / f"{station}-data", station)
    return path


def write_policy(run: Run, data_dir: Path, station: str, version: int = 1) -> None:
    from kagiban.signing import load_private_key, sign

    badges = {
        HOLDER: protocol.PolicyEntry(person="S001", name="Staff 001", decision="allow", reason="allowed",
                                     after_hours="allow"),
        STANDIN: protocol.PolicyEntry(person="S002", name="Staff 002", decision="allow_flag",
                                      reason="not_designated", after_hours="allow"),
    }
    policy = protocol.Policy(version=version, issued_at=datetime.now(JST), site=SITE, station=station,
                             badges=badges)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "policy.json").write_bytes(sign(policy, load_private_key(policy_key(run))))


def unit_data(unit: Path, station: str) -> Path:
    return unit.parent / f"{station}-data"


def outbox_state(unit: Path, station: str) -> tuple[int, int]:
    """(events waiting, last seq allocated) of a unit's outbox, read from its file."""
    return outbox_file_state(unit_data(unit, station) / "outbox.sqlite")


def outbox_file_state(db: Path) -> tuple[int, int]:
    """(events waiting, last seq allocated) of the outbox file ``db``; (0, 0) until the agent
    has made it and its tables."""
    if not db.exists():
        return 0, 0
    con = sqlite3.connect(db, timeout=10)
    try:
        depth = con.execute("SELECT count(*) FROM events").fetchone()[0]
        nxt = con.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
        return depth, int(nxt) - 1
    except (sqlite3.OperationalError, TypeError):
        return 0, 0
    finally:
        con.close()


def spawn_agent(run: Run, unit: Path, *, scenario: Path | None = None, log_level: str = "INFO") -> subprocess.Popen:
    args = [sys.executable, "-m", "kagiban.cli", "--log-level", log_level, "device", "--config", str(unit)]
    if scenario is not None:
        args += ["--scenario", str(scenario)]
    return run.spawn(args, unit.with_suffix(".log"))


def scenario(run: Run, name: str, steps: list[dict[str, Any]], repeat: int = 0) -> Path:
    path = run.path("scenarios", f"{name}.yaml")
    path.write_text(yaml.safe_dump({"repeat": repeat, "steps": steps}))
    return path


# --- a private PostgreSQL for a run ------------------------------------------------------------------

# PostgreSQL's own durable defaults (fsync, synchronous_commit, full_page_writes on), not the
# tests' fast settings: a benchmark compares stores as deployed (the hub's SQLite commits with
# synchronous=FULL). Connections: a hub pools a few; the web bench's store build a few more.
DURABLE_PG = {"max_connections": "100", "shared_buffers": "256MB"}


class PgServer:
    """A PostgreSQL server for one run: a private cluster (tests/support/postgres.py's, as the
    test session starts it: initdb into a temporary folder, its own socket and loopback port,
    durable settings), or the server of a URL given (``--database-url``, used as it is: an empty
    database). Stopped and removed when the run closes."""

    def __init__(self, run: Run, database_url: str | None = None):
        self.run = run
        self.given = database_url
        self.cluster: Any = None
        self.folder: Path | None = None
        if database_url is None:
            from tests.support.postgres import PostgresCluster

            # Outside the run folder: that one is mode 700 for root, and the server runs as postgres.
            self.folder = Path(tempfile.mkdtemp(prefix=f"kagiban-bench-{run.name}-pg-"))
            run.on_close(self.close)
            self.cluster = PostgresCluster(self.folder, settings=DURABLE_PG).start()
        self._n = 0

    def new_database(self) -> str:
        """The URL of a new, empty database (the given URL itself, once)."""
        if self.cluster is None:
            if self._n:
                raise ValueError("--database-url names one database: one store per run")
            self._n += 1
            return str(self.given)
        self._n += 1
        name = f"bench_{self._n}"
        self.cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\'')
        return self.cluster.url(name)

    def describe(self) -> str:
        """The server's version and where it runs (for the run's header)."""
        from sqlalchemy import text

        from hub.store.db import make_engine

        engine = make_engine(self.cluster.url() if self.cluster is not None else str(self.given))
        try:
            with engine.connect() as conn:
                version = conn.execute(text("SHOW server_version")).scalar()
                fsync = conn.execute(text("SHOW fsync")).scalar()
                commit = conn.execute(text("SHOW synchronous_commit")).scalar()
        finally:
            engine.dispose()
        where = "a private cluster on loopback" if self.cluster is not None else "the server of --database-url"
        return f"PostgreSQL {version}, {where} (fsync={fsync}, synchronous_commit={commit})"

    def cpu_s(self) -> float:
        """CPU seconds of the private cluster's processes so far (postmaster and live children:
        the hub's connections, the writer, the WAL writer); 0 for a given server."""
        pid = self.cluster.pid if self.cluster is not None else None
        if pid is None:
            return 0.0
        return proc_cpu_s(pid) + children_cpu_s(pid)

    def close(self) -> None:
        for proc in self.run.procs:  # the hub and the helpers first: they hold connections
            stop_process(proc)
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None
        if self.folder is not None:
            if self.run.keep:  # the cluster's data folder with the run's (start it with postgres -D)
                print(f"# kept {self.folder}")
            else:
                shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


# --- reading the hub's store ----------------------------------------------------------------------


def db_query(db: Path, sql: str, *args: Any) -> list[tuple]:
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def stored_count(db: Path, station: str | None = None) -> int:
    if station is None:
        rows = db_query(db, "SELECT count(*) FROM events WHERE station != ?", PROBE)
    else:
        rows = db_query(db, "SELECT count(*) FROM events WHERE station = ?", station)
    return rows[0][0] if rows else 0


@dataclass
class Accounting:
    """What one station generated against what the hub stored."""

    station: str
    generated: int
    stored: int
    distinct: int
    duplicates: int
    lost: list[int]
    in_order: bool

    @property
    def lost_n(self) -> int:
        return len(self.lost)


def account(db: Path, station: str, generated: int) -> Accounting:
    """Compare seqs 1..generated of ``station`` with the store (chain order)."""
    rows = db_query(db, "SELECT seq, event_id FROM events WHERE station=? ORDER BY row_no", station)
    seqs = [r[0] for r in rows]
    distinct = len(set(seqs))
    ids = len({r[1] for r in rows})
    lost = sorted(set(range(1, generated + 1)) - set(seqs))
    return Accounting(station=station, generated=generated, stored=len(rows), distinct=distinct,
                      duplicates=(len(rows) - distinct) + (len(rows) - ids), lost=lost,
                      in_order=seqs == sorted(seqs))


def verify_db(db: Path | str) -> tuple[int, str]:
    """``kagiban verify --db FILE_OR_URL``: (exit code, output)."""
    out = subprocess.run([sys.executable, "-m", "kagiban.cli", "verify", "--db", str(db)],
                         capture_output=True, text=True, cwd=ROOT, timeout=600)
    return out.returncode, (out.stdout + out.stderr).strip()


def on_decisions(agent: Any, seen: Callable[[str], None]) -> None:
    """Call ``seen("unlock")`` or ``seen("denied")`` as an in-process agent acts on a decision
    (the lock relay released, the refusal signalled), before its outputs do."""
    out = agent.outputs
    real = {"unlock": out.unlock, "denied": out.denied}

    def wrap(what: str) -> Callable[[], None]:
        def act() -> None:
            seen(what)
            real[what]()
        return act

    out.unlock, out.denied = wrap("unlock"), wrap("denied")


def count_decisions(agent: Any) -> dict[str, int]:
    """Live counts of an in-process agent's decisions: {"unlock": n, "denied": m}."""
    acts = {"unlock": 0, "denied": 0}

    def seen(what: str) -> None:
        acts[what] += 1

    on_decisions(agent, seen)
    return acts


def wait_until(pred: Callable[[], Any], timeout: float, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- a swarm of simulated stations: many paho clients on one thread -------------------------------


class Swarm:
    """Simulated stations, each its own MQTT v5 connection, all driven by one thread through
    paho's external-loop API (socket, loop_read, loop_write, loop_misc), plus one watcher
    connection that receives every ack (and, if asked, every alert) of the prefix.

    ``driver(swarm, now)`` runs on the swarm thread on every turn and publishes with
    ``swarm.publish``; acks are counted per station in ``acked``.
    """

    def __init__(self, port: int, prefix: str, stations: list[str], *, watch_alerts: bool = False,
                 window: int = 200, sites: dict[str, str] | None = None):
        import selectors

        self.port = port
        self.site_of = sites or {}  # station -> site (SITE for any not named)
        self.prefix = prefix
        self.stations = stations
        self.window = window
        self.sel = selectors.DefaultSelector()
        self.clients: dict[str, mqtt.Client] = {}
        self.sent: dict[str, int] = {s: 0 for s in stations}
        self.pubacked: dict[str, int] = {s: 0 for s in stations}
        self.acked: dict[str, set[int]] = {s: set() for s in stations}
        self.acked_total = 0
        self.ack_times: list[tuple[float, int]] = []  # (monotonic, acked_total after it)
        self.alerts: list[tuple[float, dict]] = []
        # The policy version the hub published to each station (its retained policy topic): a
        # station's heartbeat reports the version it holds, and the hub raises policy_stale for
        # every station that keeps reporting an older one.
        self.policy_version: dict[str, int] = {}
        self.driver: Callable[["Swarm", float], None] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []
        tag = uuid.uuid4().hex[:6]
        for s in stations:
            c = plain_client(f"sw-{tag}-{s}")
            c.on_publish = self._on_publish_for(s)
            self.clients[s] = c
        self.watcher = plain_client(f"sw-{tag}-watch")
        self.watcher.on_message = self._on_message
        subs = [(protocol.subscription(prefix, "ack"), 1), (protocol.subscription(prefix, "policy"), 1)]
        if watch_alerts:
            subs.append((protocol.subscription(prefix, "alert"), 1))
        self._subs = subs
        self._subscribed = threading.Event()
        self.watcher.on_connect = lambda c, *_: c.subscribe(self._subs)
        self.watcher.on_subscribe = lambda *_: self._subscribed.set()

    def _on_publish_for(self, station: str):
        def cb(_c, _u, _mid, rc, _p):
            self.pubacked[station] += 1
            if rc.is_failure:
                self.errors.append(f"{station}: {rc}")
        return cb

    def _on_message(self, _c, _u, msg) -> None:
        now = time.monotonic()
        if msg.topic.endswith("/ack"):
            try:
                ack = protocol.Ack.model_validate_json(msg.payload)
            except ValueError:
                return
            got = self.acked.get(ack.station)
            if got is None:
                return
            before = len(got)
            for lo, hi in ack.seqs:
                got.update(range(lo, hi + 1))
            with self._lock:
                self.acked_total += len(got) - before
                self.ack_times.append((now, self.acked_total))
        elif msg.topic.endswith("/alert"):
            with self._lock:
                self.alerts.append((now, json.loads(msg.payload)))
        elif msg.topic.endswith("/policy"):
            from kagiban.signing import envelope_policy

            # Not verified (a real station checks the signature): only its version is taken.
            policy = envelope_policy(msg.payload) or {}
            station = msg.topic.split("/")[-2]
            if station in self.sent and type(policy.get("version")) is int:
                self.policy_version[station] = policy["version"]

    def start(self, timeout: float = 60.0) -> "Swarm":
        import selectors

        all_clients = [self.watcher, *self.clients.values()]
        deadline = time.monotonic() + timeout
        for c in all_clients:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(all_clients)} swarm connections not made within {timeout:.0f} s")
            c.connect("127.0.0.1", self.port, keepalive=60)
            self.sel.register(c.socket(), selectors.EVENT_READ, c)
        self._thread = threading.Thread(target=self._loop, name="swarm", daemon=True)
        self._thread.start()
        wait_until(lambda: all(c.is_connected() for c in all_clients) and self._subscribed.is_set(), timeout,
                   what=f"{len(all_clients)} swarm connections")
        return self

    def publish(self, station: str, channel: str, payload: bytes, qos: int = 1) -> None:
        """From the driver (swarm thread) only."""
        site = self.site_of.get(station, SITE)
        self.clients[station].publish(protocol.topic(self.prefix, site, station, channel), payload, qos=qos)
        if channel == "event":
            self.sent[station] += 1

    def acked_by(self, total: int) -> float | None:
        """When the acked count reached ``total`` (monotonic time), or None if it has not."""
        with self._lock:
            return next((t for t, n in self.ack_times if n >= total), None)

    def room(self, station: str) -> int:
        """How many more QoS 1 messages this station may hand paho now (its window)."""
        return self.window - (self.sent[station] - self.pubacked[station])

    def _loop(self) -> None:
        all_clients = [self.watcher, *self.clients.values()]
        next_misc = 0.0
        while not self._stop.is_set():
            try:
                for key, _ in self.sel.select(timeout=0.005):
                    key.data.loop_read()
                now = time.monotonic()
                if self.driver is not None:
                    self.driver(self, now)
                for c in all_clients:
                    if c.want_write():
                        c.loop_write()
                if now >= next_misc:
                    for c in all_clients:
                        c.loop_misc()
                    next_misc = now + 0.5
            except Exception as exc:  # keep driving; report at the end
                self.errors.append(repr(exc))
                time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for c in [self.watcher, *self.clients.values()]:
            try:
                c.disconnect()
            except Exception:
                pass
        self.sel.close()


# --- helper processes: raw subscriber and echo ------------------------------------------------------


def start_rawsub(run: Run, port: int, topic_filter: str, count: int, timeout: float,
                 queued: bool = False) -> subprocess.Popen:
    """A plain paho QoS 1 subscriber in its own process; prints ``ready``, then one JSON line.

    ``queued``: it subscribes with a persistent session and goes away; the broker queues for it
    until a line on its stdin tells it to come back (and count from the first message)."""
    args = [sys.executable, "-m", "bench.common", "rawsub", "--port", str(port), "--topic", topic_filter,
            "--count", str(count), "--timeout", str(timeout)]
    if queued:
        args.append("--queued")
    proc = run.spawn(args, run.path("rawsub.log"), stdout=subprocess.PIPE,
                     stdin=subprocess.PIPE if queued else subprocess.DEVNULL)
    line = proc.stdout.readline().decode().strip()  # type: ignore[union-attr]
    if line != "ready":
        raise RuntimeError(f"raw subscriber did not start: {line!r}")
    return proc


def rawsub_result(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    return json.loads(out.decode().strip().splitlines()[-1])


def start_echo(run: Run, port: int, topic_in: str, topic_out: str) -> subprocess.Popen:
    """A plain paho process that republishes (QoS 1) everything it gets: the raw round trip."""
    proc = run.spawn([sys.executable, "-m", "bench.common", "echo", "--port", str(port), "--topic", topic_in,
                      "--out", topic_out], run.path("echo.log"), stdout=subprocess.PIPE)
    line = proc.stdout.readline().decode().strip()  # type: ignore[union-attr]
    if line != "ready":
        raise RuntimeError(f"echo did not start: {line!r}")
    return proc


def _main_rawsub(a: argparse.Namespace) -> int:
    got = {"n": 0, "first": None, "last": None}
    done = threading.Event()
    ready = threading.Event()
    cpu0 = time.process_time()

    def on_message(_c, _u, _msg):
        now = time.monotonic()
        got["n"] += 1
        if got["first"] is None:
            got["first"] = now
        got["last"] = now
        if got["n"] >= a.count:
            done.set()

    from paho.mqtt.packettypes import PacketTypes

    client_id = f"rawsub-{uuid.uuid4().hex[:8]}"
    props = mqtt.Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600

    def client() -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        c.on_socket_open = nodelay
        c.on_message = on_message
        c.on_subscribe = lambda *_: ready.set()
        return c

    c = client()
    c.on_connect = lambda cl, *_: cl.subscribe(a.topic, qos=1)
    c.connect("127.0.0.1", a.port, clean_start=not a.queued, properties=props if a.queued else None)
    c.loop_start()
    ready.wait(30)
    if a.queued:
        c.disconnect()
        c.loop_stop()
        print("ready", flush=True)
        sys.stdin.readline()  # the broker now holds everything for this session
        cpu0 = time.process_time()
        c = client()
        c.connect("127.0.0.1", a.port, clean_start=False, properties=props)
        c.loop_start()
    else:
        print("ready", flush=True)
        cpu0 = time.process_time()
    done.wait(a.timeout)
    got["cpu_s"] = time.process_time() - cpu0  # its CPU while receiving (bench/ingest.py's account)
    c.disconnect()
    c.loop_stop()
    print(json.dumps(got), flush=True)
    return 0


def _main_echo(a: argparse.Namespace) -> int:
    ready = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"echo-{uuid.uuid4().hex[:8]}",
                    protocol=mqtt.MQTTv5)
    c.on_socket_open = nodelay
    c.max_queued_messages_set(0)
    c.on_message = lambda cl, _u, msg: cl.publish(a.out, msg.payload, qos=1)
    c.on_connect = lambda cl, *_: cl.subscribe(a.topic, qos=1)
    c.on_subscribe = lambda *_: ready.set()
    c.connect("127.0.0.1", a.port)
    c.loop_start()
    ready.wait(30)
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait(3600)
    c.disconnect()
    c.loop_stop()
    return 0


# --- the web page's live stream --------------------------------------------------------------------


class LiveStream:
    """A server-sent-events client on /events/stream; records (arrival time, kind, data)."""

    def __init__(self, port: int, user: str = WEB_USER, password: str = WEB_PASSWORD):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.conn.request("GET", "/events/stream",
                          headers={"Authorization": f"Basic {token}", "Accept": "text/event-stream"})
        self.sock = self.conn.sock  # kept: shutting it down is what wakes the reader at close
        self.response = self.conn.getresponse()
        if self.response.status != 200:
            raise RuntimeError(f"live stream answered {self.response.status}")
        self.messages: list[tuple[float, str, dict]] = []
        self.cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._read, name="sse", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name, data = "message", []
        try:
            while not self._stop:
                raw = self.response.fp.readline()
                if not raw:
                    return
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
                elif line == "" and data:
                    now = time.monotonic()
                    try:
                        payload = json.loads("\n".join(data))
                    except ValueError:
                        payload = {}
                    with self.cond:
                        self.messages.append((now, name, payload))
                        self.cond.notify_all()
                    name, data = "message", []
        except (OSError, ValueError):
            return

    def mark(self) -> int:
        """How many messages have arrived: a ``since`` for ``wait``."""
        with self.cond:
            return len(self.messages)

    def wait(self, pred: Callable[[str, dict], bool], timeout: float, since: int = 0) -> float | None:
        """Arrival time of the first message from the ``since``-th on matching ``pred``, or None
        after ``timeout``. Each message is looked at once: under a background of hundreds of
        events a second, scanning them all at every arrival took this process's interpreter
        from the agent and the watchers it shares it with."""
        deadline = time.monotonic() + timeout
        i = since
        with self.cond:
            while True:
                for t, name, payload in self.messages[i:]:
                    if pred(name, payload):
                        return t
                i = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def close(self) -> None:
        import socket

        self._stop = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(5)
        try:
            self.response.close()
            self.conn.close()
        except Exception:
            pass


# --- a TCP proxy that can cut one station off (a network partition) --------------------------------


class PartitionProxy:
    """Forwards 127.0.0.1:port -> 127.0.0.1:target. ``cut()`` blackholes every connection (bytes
    are read and dropped both ways, nothing is closed, new connections hang): what a pulled
    cable looks like to both ends. ``heal()`` closes the blackholed connections and forwards again."""

    def __init__(self, target_port: int):
        import socket

        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.cut_ = threading.Event()
        self._stop = threading.Event()
        self._pairs: list[tuple[Any, Any]] = []
        self._lock = threading.Lock()
        self.dropped = 0
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    def _accept(self) -> None:
        import socket

        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            while self.cut_.is_set() and not self._stop.is_set():
                time.sleep(0.05)  # a partitioned link: the connection hangs
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst) -> None:
        try:
            src.settimeout(None)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if self.cut_.is_set():
                    self.dropped += len(data)
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self.cut_.set()

    def heal(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for a, b in pairs:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass
        self.cut_.clear()

    def close(self) -> None:
        self._stop.set()
        self.heal()
        self.sock.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.common")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("rawsub")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--topic", required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--timeout", type=float, default=120)
    r.add_argument("--queued", action="store_true")
    e = sub.add_parser("echo")
    e.add_argument("--port", type=int, required=True)
    e.add_argument("--topic", required=True)
    e.add_argument("--out", required=True)
    a = p.parse_args(argv)
    return _main_rawsub(a) if a.cmd == "rawsub" else _main_echo(a)


if __name__ == "__main__":
    sys.exit(main())
