"""Build a real hub and real agents around a test's mosquitto: config files on disk, mock pins,
the stand-in reader and camera, and read-back from the hub's SQLite file."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from kagiban.protocol import Policy
from kagiban.signing import load_or_create_private_key, load_private_key, public_key_b64, sign

ROOT = Path(__file__).resolve().parents[2]

HOLDER = "0123456789ABCDEF"  # designated holder of cabinet-1
STANDIN = "1111222233334444"  # allowed, not designated: flagged
UNKNOWN = "FFFFEEEEDDDDCCCC"

STAFF = {
    "people": [
        {"id": "S001", "name": "Staff 001", "badges": [HOLDER], "stations": ["*"], "decision": "allow"},
        {"id": "S002", "name": "Staff 002", "badges": [STANDIN], "stations": ["*"], "decision": "allow_flag"},
    ]
}


POLICY_KEY_FILE = "policy-signing.key"


def policy_key(tmp: Path) -> Path:
    """The test's policy signing key (created once per folder): the hub signs with it and the
    units written into the same folder carry its public key."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / POLICY_KEY_FILE
    load_or_create_private_key(path)
    return path


def policy_public_key(tmp: Path) -> str:
    """Base64 public key of ``policy_key(tmp)``."""
    return public_key_b64(load_private_key(policy_key(tmp)))


def sign_policy(tmp: Path, policy: Policy | dict) -> bytes:
    """``policy`` signed with the test's key, as the hub would publish it."""
    return sign(policy, load_private_key(policy_key(tmp)))


def write_hub_config(
    tmp: Path, broker_port: int, prefix: str, stations=("cabinet-1", "cabinet-2", "cabinet-3"), **ingest
) -> Path:
    """A hub config file with its own database and staff file under ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "staff.yaml").write_text(yaml.safe_dump(STAFF))
    cfg = {
        "broker": {"host": "127.0.0.1", "port": broker_port, "prefix": prefix},
        "data_dir": str(tmp / "hub-data"),
        "staff_file": "staff.yaml",
        "ingest": {"client_id": f"hub-{prefix}", **ingest},
        # Any free port: tests run side by side, and 8080 may be taken.
        "web": {"port": 0},
        "stations": [{"id": s, "site": "ward-a", "kind": "cabinet"} for s in stations],
        "policy": {"signing_key_file": str(policy_key(tmp))},
    }
    path = tmp / "hub.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def write_unit_config(tmp: Path, broker_port: int, prefix: str, station: str = "cabinet-1", **timings) -> Path:
    """A simulated cabinet's config file (mock pins, stand-in reader and camera)."""
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = {
        "site": "ward-a",
        "station": {"id": station, "kind": "cabinet"},
        "pins": {"factory": "mock", "door": 17, "lock": 27, "led_granted": 22, "led_denied": 23, "buzzer": 24},
        "reader": {"type": "standin"},
        "camera": {"type": "standin", "width": 320, "height": 240},
        "broker": {"host": "127.0.0.1", "port": broker_port, "prefix": prefix, "keepalive_s": 5},
        "timings": {"unlock_s": 5, "held_open_s": 60, "debounce_ms": 20, "heartbeat_s": 2,
                    "ack_timeout_s": 2, **timings},
        "storage": {"dir": f"./{station}-data"},
        "policy": {"public_key": policy_public_key(tmp)},
    }
    path = tmp / f"{station}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    if (tmp / "hub.yaml").exists():  # the stack's hub: enrolled there, the unit signs its events
        enroll(path, hub_db(tmp / "hub.yaml"))
    return path


def station_key_path(unit_config: Path) -> Path:
    """Where the unit of ``unit_config`` keeps its signing key."""
    from device import unit_file

    return unit_file.load(unit_config).station_key_path()


def enroll(unit_config: Path, db: Path):
    """Enroll the unit of ``unit_config`` at the hub whose SQLite store is ``db`` (migrated
    first if the hub has not made it yet); returns the registered StationKey."""
    from hub.store import migrate
    from hub.store.db import make_engine
    from hub.stations.keys import enroll_local_unit

    station = yaml.safe_load(unit_config.read_text())["station"]["id"]
    db.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{db}")
    try:
        migrate.upgrade(engine)
        return enroll_local_unit(engine, station, station_key_path(unit_config))
    finally:
        engine.dispose()


def hub_db(hub_config: Path) -> Path:
    return hub_config.parent / "hub-data" / "kagiban.db"


def stored(db: Path, station: str | None = None) -> list[tuple]:
    """(station, seq, kind, person) of every stored event, in chain order."""
    if not db.exists():
        return []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        sql = "SELECT station, seq, kind, person FROM events"
        args: tuple = ()
        if station:
            sql += " WHERE station = ?"
            args = (station,)
        return con.execute(sql + " ORDER BY row_no", args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        con.close()


def query(db: Path, sql: str, *args) -> list[tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def outbox_depth(unit_config: Path, station: str = "cabinet-1") -> int:
    db = unit_config.parent / f"{station}-data" / "outbox.sqlite"
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.OperationalError:
        return 0  # the agent has created the file but not its tables yet
    finally:
        con.close()


def spawn(args: list[str], log: Path) -> subprocess.Popen:
    """Run ``kagiban ARGS`` as a separate process (so it can be killed with -9)."""
    f = open(log, "ab")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "kagiban.cli", *args], stdout=f, stderr=f, cwd=ROOT, env=env)
    f.close()
    return proc


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)


def terminate(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(5)
    return proc.returncode


# --- units of every kind, for the end-to-end tests of doors and shredders ---

SHREDDER = "shredder-1"
POWER_PIN, STOP_PIN, BIN_PIN = 25, 5, 6
ALWAYS = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "00:00"}
NEVER = {"days": [], "start": "08:30", "end": "17:15"}


def write_hub(tmp: Path, port: int, prefix: str, stations: list[dict], **sections) -> Path:
    """The e2e hub file (stack.write_hub_config) with these stations (kinds, hours) instead."""
    path = write_hub_config(tmp, port, prefix)
    body = yaml.safe_load(path.read_text())
    body["stations"] = [{"site": "ward-a", **s} for s in stations]
    body.update(sections)
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    return path


def write_unit(tmp: Path, port: int, prefix: str, station: str, kind: str, *, pins: dict | None = None,
               reader: str = "standin", **timings) -> Path:
    """A simulated unit of ``kind`` (stack.write_unit_config with its pins and timings changed)."""
    path = write_unit_config(tmp, port, prefix, station=station, **timings)
    body = yaml.safe_load(path.read_text())
    body["station"]["kind"] = kind
    if pins is not None:
        body["pins"] = {"factory": "mock", "led_granted": 22, "led_denied": 23, "buzzer": 24, **pins}
    body["reader"] = {"type": reader}
    path.write_text(yaml.safe_dump(body))
    return path


def kinds(db: Path, station: str) -> list[str]:
    return [k for (k,) in query(db, "SELECT kind FROM events WHERE station=? ORDER BY seq", station)]
