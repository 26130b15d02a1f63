"""``kagiban demo``: broker, hub and three simulated key cabinets on this machine.

Everything is real except the hardware: mosquitto on loopback with a generated config, the hub
with a SQLite file and its web page, and three device agents (separate processes, the same
program a Pi runs) on mock pins with the stand-in reader and camera, each playing a scenario:

- cabinet-1: the designated holder and the stand-in use the keys; then someone whose
  personal-data training has expired taps and is refused;
- cabinet-2: a forced door, an unknown badge, a use by a trained but not designated person
  (allowed, flagged, the supervisors alerted);
- cabinet-3: a door held open, and every few minutes the unit loses power (killed) and comes
  back, so the page shows it going offline and online again.

The stations' policies come from the hub's registry, seeded at start through hub.registry
(actor "demo"): one training required at key cabinets, four people with one badge each, the
holder and stand-in designations. The admin pages show and change all of it; a badge revoked
there is refused at the simulated cabinet within seconds.
"""
from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import yaml

from kagiban.localbroker import Mosquitto
from kagiban.signing import load_or_create_private_key, public_key_b64

_LOG = logging.getLogger(__name__)

SITE = "ward-a"
HOLDER = "0123456789ABCDEF"
STANDIN = "1111222233334444"
CLERK = "5555666677778888"
EXPIRED = "9999AAAABBBBCCCC"
UNKNOWN = "FFFFEEEEDDDDCCCC"

ACTOR = "demo"
TRAINING = "個人情報保護研修 / Personal data protection"
TRAINING_DAYS = 365
# (staff number, name, job role, badge): the holder of every cabinet, the stand-in at
# cabinet-1 (flagged elsewhere), a trained clerk designated nowhere (flagged), and a clerk
# whose training has expired (refused everywhere).
PEOPLE = [
    ("S001", "Staff 001", "責任職", HOLDER),
    ("S002", "Staff 002", "庶務担当", STANDIN),
    ("S003", "Staff 003", "係員", CLERK),
    ("S004", "Staff 004", "係員", EXPIRED),
]


def _use(badge: str, open_s: float, then_wait: float) -> list[dict]:
    return [{"tap": badge}, {"wait": 1.0}, {"door": "open"}, {"wait": open_s}, {"door": "close"},
            {"wait": then_wait}]


SCENARIOS = {
    # A first wait: a unit starting up takes a moment to receive its policy.
    "cabinet-1": {"repeat": 0, "steps": [{"wait": 3}, *_use(HOLDER, 4, 10), *_use(STANDIN, 3, 8),
                                         {"tap": EXPIRED}, {"wait": 7}]},
    "cabinet-2": {"repeat": 0, "steps": [
        {"wait": 6}, {"door": "open"}, {"wait": 3}, {"door": "close"}, {"wait": 10},
        {"tap": UNKNOWN}, {"wait": 10},
        *_use(CLERK, 3, 12),
    ]},
    "cabinet-3": {"repeat": 0, "steps": [{"wait": 3}, *_use(HOLDER, 14, 17)]},
}
NAMES = {
    "cabinet-1": "Family register section, key cabinet",
    "cabinet-2": "Back office, key cabinet",
    "cabinet-3": "Card safe, key cabinet",
}
# cabinet-3 loses power this long after start, every CYCLE seconds, for OUTAGE seconds.
OUTAGE_AFTER, OUTAGE, CYCLE = 45.0, 25.0, 180.0


def seed_registry(engine, today: date) -> None:
    """The demo's people, badges, training and designations, through hub.registry as an
    admin would enter them; what is already there (a rerun on the same data) is kept."""
    from hub import registry

    if not any(t["name"] == TRAINING for t in registry.list_trainings(engine)):
        registry.add_training(engine, ACTOR, TRAINING, ["cabinet"], TRAINING_DAYS)
    for number, name, role, badge in PEOPLE:
        try:
            registry.get_person(engine, number)
        except registry.NotFound:
            registry.add_person(engine, ACTOR, number, name, section="戸籍係", role=role)
            registry.add_badge(engine, ACTOR, number, badge)
    # Staff 001-003 took the training a month ago; Staff 004 more than a year ago (expired).
    for held, numbers in ((today - timedelta(days=30), ["S001", "S002", "S003"]),
                          (today - timedelta(days=TRAINING_DAYS + 35), ["S004"])):
        session = registry.find_session(engine, TRAINING, held) or registry.add_session(
            engine, ACTOR, TRAINING, held, place="会議室A")
        registry.record_attendance(engine, ACTOR, session, numbers)
    for station in NAMES:
        registry.set_holder(engine, ACTOR, station, "S001")
    registry.add_stand_in(engine, ACTOR, "cabinet-1", "S002")
    # cabinet-3 keeps office hours: its holder may still use it in the evening (and the
    # supervisors hear of it), anyone else is refused then.
    registry.add_after_hours_user(engine, ACTOR, "cabinet-3", "S001")


def _write_configs(data: Path, broker_port: int, web_port: int) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    # The hub signs the stations' policies; each unit file carries the public key.
    signing_key = load_or_create_private_key(data / "hub" / "policy-signing.key")
    hub_cfg = {
        "broker": {"host": "127.0.0.1", "port": broker_port},
        "data_dir": "hub",
        "stations": [
            {"id": sid, "site": SITE, "kind": "cabinet", "name": name,
             # cabinet-3 keeps office hours, so the demo shows after-hours use in the evening.
             **({} if sid == "cabinet-3" else {"hours": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                                         "start": "00:00", "end": "23:59"}})}
            for sid, name in NAMES.items()
        ],
        "sites": {SITE: {"name": "Ward A, family register section"}},
        "rules": {"offline_grace_s": 20},
        "web": {"host": "127.0.0.1", "port": web_port},
        "policy": {"signing_key_file": "hub/policy-signing.key"},
    }
    hub_path = data / "hub.yaml"
    hub_path.write_text(yaml.safe_dump(hub_cfg, allow_unicode=True))
    units = {}
    for sid in NAMES:
        unit = {
            "site": SITE,
            "station": {"id": sid, "kind": "cabinet", "name": NAMES[sid]},
            "pins": {"factory": "mock", "door": 17, "lock": 27, "led_granted": 22, "led_denied": 23, "buzzer": 24},
            "reader": {"type": "standin"},
            "camera": {"type": "standin", "width": 640, "height": 480},
            "broker": {"host": "127.0.0.1", "port": broker_port, "keepalive_s": 5},
            "timings": {"unlock_s": 5, "held_open_s": 10, "heartbeat_s": 5, "ack_timeout_s": 5},
            "storage": {"dir": f"{sid}-data"},
            "policy": {"public_key": public_key_b64(signing_key)},
        }
        unit_path = data / f"{sid}.yaml"
        unit_path.write_text(yaml.safe_dump(unit, allow_unicode=True))
        scenario_path = data / f"{sid}-scenario.yaml"
        scenario_path.write_text(yaml.safe_dump(SCENARIOS[sid]))
        units[sid] = (unit_path, scenario_path)
    return hub_path, units


class _Unit:
    """One simulated station process."""

    def __init__(self, sid: str, unit: Path, scenario: Path, log: Path):
        self.sid, self.unit, self.scenario, self.log = sid, unit, scenario, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kagiban.cli", "--log-level", "WARNING", "device",
                 "--config", str(self.unit), "--scenario", str(self.scenario)],
                stdout=f, stderr=f, env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )

    def power_cut(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def run(*, port: int = 8080, data_dir: str | None = None, duration: float | None = None,
        admin_password: str | None = None) -> int:
    """Run the demo until ``duration`` seconds pass or Ctrl-C; stop everything it started."""
    from hub import config as hub_config
    from hub import migrate
    from hub.db import make_engine
    from hub.service import Hub
    from hub.users import add_user

    data = Path(data_dir).resolve() if data_dir else Path(tempfile.mkdtemp(prefix="kagiban-demo-"))
    data.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker = Mosquitto(data / "mosquitto").start()
    hub = None
    units: list[_Unit] = []
    try:
        hub_path, unit_files = _write_configs(data, broker.port, port)
        cfg = hub_config.load(hub_path)
        # Seeded before the hub starts, so its first policies already hold the demo's people.
        engine = make_engine(cfg.db_url())
        try:
            migrate.upgrade(engine)
            seed_registry(engine, datetime.now(cfg.site_zone(SITE)).date())
        finally:
            engine.dispose()
        hub = Hub(cfg)
        hub.start()
        password = admin_password or secrets.token_urlsafe(9)
        add_user(hub.engine, "admin", password, "admin", display_name="Demo admin", replace=True)
        units = [_Unit(sid, u, s, data / f"{sid}.log") for sid, (u, s) in unit_files.items()]
        for unit in units:
            unit.start()
        url = hub.web_url or f"http://127.0.0.1:{port}/"
        print(
            f"\nkagiban demo is running.\n"
            f"  Open:     {url}\n"
            f"  Log in:   admin / {password}\n"
            f"  Data:     {data}\n"
            f"  Stations: cabinet-1 (key uses, expired training refused), cabinet-2 (forced door, "
            f"unknown badge, non-designated use), cabinet-3 (held open, power cuts)\n"
            f"  People:   {url}registry/people (revoke a badge there and watch cabinet-1 refuse it)\n"
            f"{'  Stops after %.0f s' % duration if duration else '  Ctrl-C stops everything.'}\n",
            flush=True,
        )
        _play(units[2], stop, duration)
    finally:
        for unit in units:
            unit.stop()
        if hub is not None:
            hub.stop()
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("kagiban demo stopped.", flush=True)
    return 0


def _play(flaky: _Unit, stop: threading.Event, duration: float | None) -> None:
    """Wait for the end, cutting the flaky unit's power on schedule."""
    start = time.monotonic()
    down_since: float | None = None
    while not stop.wait(0.5):
        elapsed = time.monotonic() - start
        if duration is not None and elapsed >= duration:
            return
        in_cycle = elapsed % CYCLE
        if down_since is None and OUTAGE_AFTER <= in_cycle < OUTAGE_AFTER + OUTAGE:
            _LOG.info("demo: power cut at %s", flaky.sid)
            flaky.power_cut()
            down_since = elapsed
        elif down_since is not None and elapsed - down_since >= OUTAGE:
            _LOG.info("demo: power back at %s", flaky.sid)
            flaky.start()
            down_since = None
