"""``kagiban demo``: broker, hub, a print server and one simulated station of each kind on this
machine.

Everything is real except the hardware: mosquitto on loopback with a generated config, the hub
with a SQLite file and its web page, a cupsd on loopback with the repository's print-server
policy and queues and a PDF file as its printer (demo.cups), and seven device agents
(separate processes, the same program a Pi runs) on mock pins with the stand-in reader and
camera, each playing a scenario:

- cabinet-1: the designated holder and the stand-in use the keys; then someone whose
  personal-data training has expired taps and is refused;
- cabinet-2: a forced door, an unknown badge, a use by a trained but not designated person
  (allowed, flagged, the supervisors alerted);
- cabinet-3: a door held open, and every few minutes the unit loses power (killed) and comes
  back, so the page shows it going offline and online again;
- shredder-1: Staff 001 and Staff 002, on today's roster, shred together; one of them taps
  alone and nobody comes (refused when the pair window runs out); a second badge whose
  training has expired is refused; a pair of whom neither is on the roster shreds (the hub
  flags the session) until the bin door is opened;
- printer-1: terminals print to the holding queue as two people (``lp`` run as the OS accounts
  named by their print user names, known to cupsd by peer credentials: the demo needs those
  accounts, and root to act as them; otherwise the prints are refused and logged); Staff 001's tap releases only theirs, the printout is left in the tray past the
  demo's short tray alert, and Staff 002's job, never collected, expires unprinted;
- door-1: a badged entry, then the door opened without a tap (an intrusion);
- annunciator-1: the back office's lamp and buzzer, lit and sounding while a critical alert of
  the site is open (cabinet-2's forced door, door-1's intrusion); its silence button is pressed
  now and then (the lamp stays lit until a supervisor acknowledges on the page).

The broker is set up as a deployment's is, in miniature: a password generated at each start
for the hub and for each unit (files of mode 0600 under ``credentials/``, named by the YAML
files, never in them), no anonymous clients, the client id bound to the user name, and the
deployment's ACL (config/mosquitto/acl). The demo's folder is private: what it creates there
(databases, keys, configuration, logs) is readable by the user running it only, except the
print server's own folder, whose filters run as another user.

Every station runs, always. When a part cannot start, the banner says which and why, and so
does the status page (a notice the demo gives the hub): without a print server (no cupsd, or a
configuration cupsd refuses) printer-1 still runs, reads badges and reports, and its releases
fail as they would with its print server down. The broker and the hub are needed by all the
rest: if either cannot start, the demo lists the parts, says why, and exits 1.

Logs: the hub's and each unit's in ``logs/`` of the demo's folder, the broker's in
``mosquitto/mosquitto.log``, cupsd's in ``cups/log/``; the banner names each one. The terminal
shows only warnings and the banner.

The stations' policies come from the hub's registry, seeded at start through hub.registry
(actor "demo"): one training required at every kind of station, five people with one badge
each (print user names too), the cabinets' holder and stand-in designations and the
shredder's roster for today and tomorrow. The admin pages show and change all of it; a badge
revoked there is refused at the simulated stations within seconds.

``python -m demo.run unit --config FILE --scenario FILE`` runs one simulated unit as
``kagiban device --scenario`` does, with two steps scenarios do not have: ``tray: occupied`` /
``tray: empty`` (paper on the printer's tray sensor) and ``print: {...}`` (a terminal sends a
job with ``lp``). The demo's printer unit runs that way.
"""
from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from hub import config as hub_config

from demo import cups as localcups
from demo.broker import BrokerUnavailable, Mosquitto, free_port, generate_credentials
from kagiban.signing import load_or_create_private_key, public_key_b64

_LOG = logging.getLogger(__name__)

SITE = "ward-a"
HOLDER = "0123456789ABCDEF"
STANDIN = "1111222233334444"
CLERK = "5555666677778888"
CLERK2 = "2222333344445555"
EXPIRED = "9999AAAABBBBCCCC"
UNKNOWN = "FFFFEEEEDDDDCCCC"

ACTOR = "demo"
TRAINING = "個人情報保護研修 / Personal data protection"
TRAINING_DAYS = 365
KINDS = ["cabinet", "shredder", "printer", "door"]
# (staff number, name, job role, badge, print user): the holder of every cabinet, the stand-in
# at cabinet-1 (flagged elsewhere), two trained clerks designated nowhere (flagged) and on no
# shredder roster, and a clerk whose training has expired (refused everywhere). Terminals
# print as the print user name, which is not the staff number.
PEOPLE = [
    ("S001", "Staff 001", "責任職", HOLDER, "staff001"),
    ("S002", "Staff 002", "庶務担当", STANDIN, "staff002"),
    ("S003", "Staff 003", "係員", CLERK, "staff003"),
    ("S004", "Staff 004", "係員", EXPIRED, "staff004"),
    ("S005", "Staff 005", "係員", CLERK2, "staff005"),
]
TRAINED = ["S001", "S002", "S003", "S005"]
ROSTER = ["S001", "S002"]

# The print server's queues and the demo's short printer timings: a printout lying in the tray
# longer than TRAY_ALERT_S is an alert, a held job older than HOLD_MAX_S is cancelled unprinted.
# The holding queue is looked at every CHECK_S (each look is a "print queue checked" event).
HOLD_QUEUE, PRINT_QUEUE = "kagiban-hold", "kagiban-print"
TRAY_ALERT_S, HOLD_MAX_S, CHECK_S = 10, 20, 15
PAIR_WINDOW_S = 8


def _use(badge: str, open_s: float, then_wait: float) -> list[dict]:
    return [{"tap": badge}, {"wait": 1.0}, {"door": "open"}, {"wait": open_s}, {"door": "close"},
            {"wait": then_wait}]


def _pair(first: str, second: str) -> list[dict]:
    return [{"tap": first}, {"wait": 2}, {"tap": second}]


def _print(user: str, title: str, pages: int) -> dict:
    return {"print": {"user": user, "title": title, "pages": pages}}


# A first wait in each: a unit starting up takes a moment to receive its policy.
SCENARIOS: dict[str, dict[str, Any]] = {
    "cabinet-1": {"repeat": 0, "steps": [{"wait": 3}, *_use(HOLDER, 4, 10), *_use(STANDIN, 3, 8),
                                         {"tap": EXPIRED}, {"wait": 7}]},
    "cabinet-2": {"repeat": 0, "steps": [
        {"wait": 6}, {"door": "open"}, {"wait": 3}, {"door": "close"}, {"wait": 10},
        {"tap": UNKNOWN}, {"wait": 10},
        *_use(CLERK, 3, 12),
    ]},
    "cabinet-3": {"repeat": 0, "steps": [{"wait": 3}, *_use(HOLDER, 14, 17)]},
    "shredder-1": {"repeat": 0, "steps": [
        {"wait": 3},
        # The rostered pair shreds, and stops with the button.
        *_pair(HOLDER, STANDIN), {"wait": 8}, {"press": "stop_button"}, {"wait": 4},
        # One person alone: nobody comes within the pair window.
        {"tap": HOLDER}, {"wait": PAIR_WINDOW_S + 4},
        # The second badge's training has expired: refused, the shredder stays off.
        *_pair(STANDIN, EXPIRED), {"wait": 6},
        # A pair of whom neither is on today's roster: it runs (the station cannot know), the hub
        # flags the session; opening the bin door stops it.
        *_pair(CLERK, CLERK2), {"wait": 5}, {"bin": "open"}, {"wait": 3}, {"bin": "close"},
        {"wait": 20},
    ]},
    "printer-1": {"repeat": 0, "steps": [
        # Two people print from their desks; their jobs wait in the holding queue.
        _print("staff001", "住民票の写し / Residence record copy", 2),
        _print("staff001", "課税証明書 / Tax certificate", 1),
        _print("staff002", "戸籍謄本 / Family register copy", 3),
        {"wait": 5},
        # Staff 001 taps: only their two jobs print; the pages land in the tray and stay there.
        {"tap": HOLDER}, {"wait": 3}, {"tray": "occupied"}, {"wait": TRAY_ALERT_S + 5},
        {"tray": "empty"},
        # Staff 002 never comes: their job is cancelled unprinted after HOLD_MAX_S.
        {"wait": HOLD_MAX_S + CHECK_S + 5},
    ]},
    "door-1": {"repeat": 0, "steps": [
        {"wait": 3}, *_use(HOLDER, 3, 6),
        # Opened without a badge: an intrusion.
        {"door": "open"}, {"wait": 4}, {"door": "close"}, {"wait": 8},
        {"tap": EXPIRED}, {"wait": 30},
    ]},
    # Someone at the back office presses the silence button now and then.
    "annunciator-1": {"repeat": 0, "steps": [{"wait": 14}, {"press": "silence"}, {"wait": 16}]},
}
NAMES = {
    "cabinet-1": "Family register section, key cabinet",
    "cabinet-2": "Back office, key cabinet",
    "cabinet-3": "Card safe, key cabinet",
    "shredder-1": "Family register section, shredder",
    "printer-1": "Family register section, printer 1F",
    "door-1": "Back office door",
    "annunciator-1": "Back office annunciator",
}
KIND = {sid: sid.split("-")[0] for sid in NAMES}
HUB_USER = "kagiban-hub"
# The deployment's ACL, as the demo runs from a checkout (like demo.cups).
ACL_FILE = localcups.ROOT / "config" / "mosquitto" / "acl"
# Under the demo's folder: the broker passwords (NAME.password, mode 0600).
CREDENTIALS = "credentials"
STORY = {
    "cabinet-1": "key uses, expired training refused",
    "cabinet-2": "forced door, unknown badge, non-designated use",
    "cabinet-3": "held open, power cuts",
    "shredder-1": "the rostered pair shreds; one alone times out; a second badge with expired "
                  "training refused; an off-roster pair flagged",
    "printer-1": "Staff 001's tap releases only their jobs, left in the tray; Staff 002's job "
                 "expires unprinted",
    "door-1": "badged entry, then opened without a tap (intrusion)",
    "annunciator-1": "lit and sounding for open critical alerts; silence button pressed now and then",
}
# cabinet-3 loses power this long after start, every CYCLE seconds, for OUTAGE seconds.
OUTAGE_AFTER, OUTAGE, CYCLE = 45.0, 25.0, 180.0
FLAKY = "cabinet-3"
# Open all day (start == end: a window of 24 hours; an end of 23:59 would leave the last minute
# of each day after hours). Only cabinet-3 keeps office hours (after-hours use in the evening).
ALL_DAY = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "00:00"}


def seed_registry(engine, today: date) -> None:
    """The demo's people, badges, training, designations and roster, through hub.registry as
    an admin would enter them; what is already there (a rerun on the same data) is kept."""
    from hub import registry

    training = next((t for t in registry.list_trainings(engine) if t["name"] == TRAINING), None)
    if training is None:
        registry.add_training(engine, ACTOR, TRAINING, KINDS, TRAINING_DAYS)
    elif sorted(training["station_kinds"]) != sorted(KINDS):
        # Data from an earlier demo that had key cabinets only.
        registry.update_training(engine, ACTOR, TRAINING, station_kinds=KINDS)
    for number, name, role, badge, print_user in PEOPLE:
        try:
            registry.get_person(engine, number)
        except registry.NotFound:
            registry.add_person(engine, ACTOR, number, name, section="戸籍係", role=role, print_user=print_user)
            registry.add_badge(engine, ACTOR, number, badge)
        else:
            registry.update_person(engine, ACTOR, number, print_user=print_user)
    # Staff 004 took the training more than a year ago (expired), the others a month ago.
    for held, numbers in ((today - timedelta(days=30), TRAINED),
                          (today - timedelta(days=TRAINING_DAYS + 35), ["S004"])):
        session = registry.find_session(engine, TRAINING, held) or registry.add_session(
            engine, ACTOR, TRAINING, held, place="会議室A")
        registry.record_attendance(engine, ACTOR, session, numbers)
    for station, kind in KIND.items():
        if kind == "cabinet":
            registry.set_holder(engine, ACTOR, station, "S001")
    registry.add_stand_in(engine, ACTOR, "cabinet-1", "S002")
    # cabinet-3 keeps office hours: its holder may still use it in the evening (and the
    # supervisors hear of it), anyone else is refused then.
    registry.add_after_hours_user(engine, ACTOR, "cabinet-3", "S001")
    # Tomorrow too: a demo left running past midnight keeps its pair on the roster.
    for day in (today, today + timedelta(days=1)):
        registry.set_roster(engine, ACTOR, "shredder-1", day, ROSTER)


@dataclass(frozen=True)
class PrintServer:
    """Where printer-1 releases (cupsd's socket) and terminals print (its TCP port): the demo's
    cupsd, or, when it could not start, the same kind of addresses with nothing behind them."""

    socket: str
    tcp: str
    admin_user: str

    @classmethod
    def of(cls, cups: localcups.LocalCups | None, data: Path) -> PrintServer:
        if cups is not None:
            return cls(cups.socket, cups.tcp, cups.admin_user)
        return cls(str(data / "cups" / "cups.sock"), f"127.0.0.1:{free_port()}", getpass.getuser())


@dataclass(frozen=True)
class Part:
    """One line of the banner: a part of the demo, its state, and why when it is not running."""

    name: str
    state: Literal["running", "degraded", "FAILED", "exited"]
    detail: str
    log: Path | None = None


def _unit_config(sid: str, broker_port: int, public_key: str, server: PrintServer, password_file: Path) -> dict:
    kind = KIND[sid]
    leds = {"factory": "mock", "led_granted": 22, "led_denied": 23, "buzzer": 24}
    timings = {"heartbeat_s": 5, "ack_timeout_s": 5}
    extra: dict = {}
    if kind == "cabinet":
        pins = {**leds, "door": 17, "lock": 27}
        timings.update(unlock_s=5, held_open_s=10)
    elif kind == "door":
        pins = {**leds, "door": 17, "lock": 27}
        timings.update(unlock_s=5, held_open_s=20)
    elif kind == "shredder":
        pins = {**leds, "power_relay": 25, "stop_button": 5, "bin_sensor": 6}
        timings.update(pair_window_s=PAIR_WINDOW_S, shred_max_s=60)
    elif kind == "annunciator":
        # A signal tower's lamp and buzzer and a silence button; no reader, no camera.
        pins = {"factory": "mock", "lamp": 5, "buzzer": 6, "silence_button": 13}
        extra.update(reader={"type": "none"}, camera={"type": "none"})
    else:
        pins = {**leds, "tray": 5}
        timings.update(hold_max_s=HOLD_MAX_S, tray_alert_s=TRAY_ALERT_S)
        # The unit releases over cupsd's socket as the user running the demo (its SystemGroup).
        extra["printer"] = {"server": server.socket, "holding_queue": HOLD_QUEUE, "printer_queue": PRINT_QUEUE,
                            "admin_user": server.admin_user, "timeout_s": 5, "check_s": CHECK_S}
    return {
        "site": SITE,
        "station": {"id": sid, "kind": kind, "name": NAMES[sid]},
        "pins": pins,
        "reader": {"type": "standin"},
        "camera": {"type": "standin", "width": 640, "height": 480},
        "broker": {"host": "127.0.0.1", "port": broker_port, "keepalive_s": 5,
                   "username": sid, "password_file": str(password_file)},
        "timings": timings,
        "storage": {"dir": f"{sid}-data"},
        "policy": {"public_key": public_key},
        **extra,
    }


def _write_configs(data: Path, broker_port: int, web_port: int, stations: list[str], server: PrintServer,
                   credentials: dict[str, Path],
                   notices: Sequence[hub_config.Notice] = ()) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    # The hub signs the stations' policies; each unit file carries the public key.
    signing_key = load_or_create_private_key(data / "hub" / "policy-signing.key")
    hub_cfg = {
        "broker": {"host": "127.0.0.1", "port": broker_port, "username": HUB_USER,
                   "password_file": str(credentials[HUB_USER])},
        "data_dir": "hub",
        "stations": [
            {"id": sid, "site": SITE, "kind": KIND[sid], "name": NAMES[sid],
             # cabinet-3 keeps office hours, so the demo shows after-hours use in the evening.
             **({} if sid == "cabinet-3" else {"hours": ALL_DAY})}
            for sid in stations
        ],
        "sites": {SITE: {"name": "Ward A, family register section"}},
        "rules": {"offline_grace_s": 20},
        "web": {"host": "127.0.0.1", "port": web_port},
        "policy": {"signing_key_file": "hub/policy-signing.key"},
        # Parts that could not start (hub.config.Notice): the status page shows them in a box.
        "notices": [n.model_dump() for n in notices],
    }
    hub_path = data / "hub.yaml"
    hub_path.write_text(yaml.safe_dump(hub_cfg, allow_unicode=True))
    units = {}
    for sid in stations:
        unit_path = data / f"{sid}.yaml"
        unit_path.write_text(yaml.safe_dump(
            _unit_config(sid, broker_port, public_key_b64(signing_key), server, credentials[sid]),
            allow_unicode=True))
        scenario = SCENARIOS[sid]
        if KIND[sid] == "printer":
            # The holding queue takes a job only from a signed-in user: the terminals print on
            # cupsd's socket as the OS users named (peer credentials; see localcups.lp).
            scenario = {**scenario, "steps": [
                {"print": {**s["print"], "server": server.socket, "queue": HOLD_QUEUE}} if "print" in s else s
                for s in scenario["steps"]]}
        scenario_path = data / f"{sid}-scenario.yaml"
        scenario_path.write_text(yaml.safe_dump(scenario, allow_unicode=True))
        units[sid] = (unit_path, scenario_path)
    return hub_path, units


class _Unit:
    """One simulated station process."""

    def __init__(self, sid: str, unit: Path, scenario: Path, log: Path):
        self.sid, self.unit, self.scenario, self.log = sid, unit, scenario, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        if KIND[self.sid] == "printer":
            # Its scenario has the demo's own steps (tray, print): demo.run runs it.
            program = ["demo.run", "--log-level", "INFO", "unit"]
        else:
            program = ["kagiban.cli", "--log-level", "INFO", "device"]
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *program, "--config", str(self.unit), "--scenario", str(self.scenario)],
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


def _start_cups(data: Path) -> tuple[localcups.LocalCups | None, str]:
    """The demo's print server with its two queues, or None and why not (cupsd's own words)."""
    reason = localcups.available()
    if reason is not None:
        return None, reason
    cups = None
    # cupsd and its tools make their own folder readable by its filters' user: not the demo's
    # private umask (run()).
    private = os.umask(0o022)
    try:
        # As root cupsd's filters run as another user, who must pass through the data folder.
        localcups.let_filters_through(data)
        cups = localcups.LocalCups(data / "cups", log_level="warn")
        cups.start()
        cups.add_queues(HOLD_QUEUE, PRINT_QUEUE)
        return cups, ""
    except (localcups.CupsUnavailable, OSError, subprocess.SubprocessError) as exc:
        _LOG.warning("no print server for the demo: %s", exc)
        if cups is not None:
            cups.close()
        return None, " ".join(str(exc).split())[:MAX_WHY]
    finally:
        os.umask(private)


# The banner shows this much of a part's reason; the status page shows it whole (up to the
# Notice's limit).
MAX_WHY, BANNER_WHY = 2000, 300


def _rel(path: Path | None, data: Path) -> str:
    if path is None:
        return ""
    try:
        return str(path.relative_to(data))
    except ValueError:
        return str(path)


def _parts_table(parts: list[Part], data: Path) -> list[str]:
    width = max(len(p.name) for p in parts)
    lines = []
    for p in parts:
        detail = p.detail if len(p.detail) <= BANNER_WHY else p.detail[:BANNER_WHY - 1] + "…"
        log = f"  [log: {_rel(p.log, data)}]" if p.log else ""
        lines.append(f"    {p.name:<{width}}  {p.state:<8}  {detail}{log}")
    return lines


def _banner(url: str, password: str, data: Path, parts: list[Part], server: PrintServer | None,
            duration: float | None) -> str:
    lines = ["", "kagiban demo is running.",
             f"  Open:     {url}",
             f"  Log in:   admin / {password}",
             f"  Data:     {data}",
             f"  Logs:     {data / LOGS}/ (the hub and each station; the others below)",
             "  Parts:"]
    lines += _parts_table(parts, data)
    if server is not None:
        lines.append(f"  Print:    as the OS user staff001: lp -h {server.socket} -d {HOLD_QUEUE} FILE "
                     f"(held until Staff 001's next tap at printer-1; the print users must be OS accounts)")
    lines.append(f"  People:   {url}registry/people (revoke a badge there and watch cabinet-1 refuse it)")
    if duration:
        lines.append(f"  Stops after {duration:.0f} s; Ctrl-C stops it sooner.")
    else:
        lines.append("  Ctrl-C stops everything (or start it with --duration SECONDS).")
    return "\n".join(lines) + "\n"


def _failed(data: Path, parts: list[Part]) -> int:
    """Say which part could not start and why, when the demo cannot run without it."""
    lines = ["", "kagiban demo could not start:", *_parts_table(parts, data), ""]
    print("\n".join(lines), file=sys.stderr, flush=True)
    return 1


# Under the demo's folder: the hub's and the units' logs.
LOGS = "logs"


class _QuietTerminal:
    """The hub's log goes to ``logs/hub.log``; the terminal keeps the banner and what the demo
    itself has to say (and errors other than alerts, which the page shows)."""

    def __init__(self, path: Path):
        self.file = logging.FileHandler(path, encoding="utf-8")
        self.file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.consoles: list[logging.Handler] = []

    @staticmethod
    def _for_terminal(record: logging.LogRecord) -> bool:
        if record.name == __name__ or record.name.startswith(f"{__name__}."):
            return record.levelno >= logging.WARNING
        return record.levelno >= logging.ERROR and not record.name.startswith("hub.alerting.alerts")

    def __enter__(self) -> _QuietTerminal:
        root = logging.getLogger()
        for handler in root.handlers:
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                handler.addFilter(self._for_terminal)
                self.consoles.append(handler)
        root.addHandler(self.file)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self.file)
        self.file.close()
        for handler in self.consoles:
            handler.removeFilter(self._for_terminal)


def run(*, port: int = 8080, data_dir: str | None = None, duration: float | None = None,
        admin_password: str | None = None) -> int:
    """Run the demo until ``duration`` seconds pass or Ctrl-C; stop everything it started.
    1 if the broker or the hub could not start (every part is listed, with why)."""
    # Everything the demo and its units create (databases, keys, configuration, logs) is
    # private: files 0600, folders 0700. The units inherit it.
    previous = os.umask(0o077)
    try:
        data = Path(data_dir).resolve() if data_dir else Path(tempfile.mkdtemp(prefix="kagiban-demo-"))
        data.mkdir(parents=True, exist_ok=True)
        (data / LOGS).mkdir(exist_ok=True)
        with _QuietTerminal(data / LOGS / "hub.log"):
            return _run(data, port, duration, admin_password)
    finally:
        os.umask(previous)


def _run(data: Path, port: int, duration: float | None, admin_password: str | None) -> int:
    from hub import config as hub_config
    from hub.store import migrate
    from hub.store.db import make_engine
    from hub.service import Hub
    from hub.stations.keys import enroll_local_unit
    from hub.accounts.users import add_user

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker_part = Part("broker", "running", "", data / "mosquitto" / "mosquitto.log")
    broker = None
    cups: localcups.LocalCups | None = None
    hub = None
    units: list[_Unit] = []
    try:
        try:
            # New passwords at every start: the hub and each unit have their own, nobody else gets in.
            credentials = generate_credentials(data / CREDENTIALS, [HUB_USER, *NAMES])
            broker = Mosquitto(data / "mosquitto", users=credentials,
                               acl_file=ACL_FILE if ACL_FILE.exists() else None).start()
        except (BrokerUnavailable, OSError) as exc:
            return _failed(data, [Part("broker", "FAILED", " ".join(str(exc).split()), broker_part.log)])
        broker_part = Part("broker", "running", f"mosquitto on 127.0.0.1:{broker.port} (passwords in "
                           f"{CREDENTIALS}/, no anonymous clients)", broker_part.log)
        cups, no_printer = _start_cups(data)
        server = PrintServer.of(cups, data)
        printers = [sid for sid in NAMES if KIND[sid] == "printer"]
        if cups is not None:
            print_part = Part("print server", "running", f"cupsd on {cups.tcp} and {cups.socket}",
                              cups.dir / "log" / "error_log")
            notices = []
        else:
            print_part = Part("print server", "FAILED", no_printer,
                              data / "cups" / "log" / "error_log" if (data / "cups" / "log").exists() else None)
            notices = [hub_config.Notice(part="print_server", detail=no_printer, stations=printers)]
        stations = list(NAMES)
        hub_path, unit_files = _write_configs(data, broker.port, port, stations, server, credentials, notices)
        hub_part = Part("hub", "running", "", data / LOGS / "hub.log")
        try:
            cfg = hub_config.load(hub_path)
            # Seeded before the hub starts, so its first policies already hold the demo's people.
            engine = make_engine(cfg.db_url())
            try:
                migrate.upgrade(engine)
                seed_registry(engine, datetime.now(cfg.site_zone(SITE)).date())
                # Each simulated unit gets its signing key and the hub its public half.
                for sid, (unit_path, _) in unit_files.items():
                    enroll_local_unit(engine, sid, unit_path.parent / f"{sid}-data" / "station.key")
            finally:
                engine.dispose()
            hub = Hub(cfg)
            hub.start()
        except Exception as exc:  # the port taken, the folder not writable...: say so, no traceback
            _LOG.info("the hub could not start", exc_info=True)  # the file only, not the terminal
            return _failed(data, [broker_part, print_part,
                                  Part("hub", "FAILED", f"{type(exc).__name__}: {' '.join(str(exc).split())}",
                                       hub_part.log)])
        password = admin_password or secrets.token_urlsafe(9)
        assert hub.engine is not None  # Hub.start() opened it
        add_user(hub.engine, "admin", password, "admin", display_name="Demo admin", replace=True)
        url = hub.web_url or f"http://127.0.0.1:{port}/"
        hub_part = Part("hub", "running", f"web page {url}", hub_part.log)
        units = [_Unit(sid, u, s, data / LOGS / f"{sid}.log") for sid, (u, s) in unit_files.items()]
        for unit in units:
            unit.start()
        parts = [broker_part, hub_part, print_part]
        for unit in units:
            if unit.proc is None or unit.proc.poll() is not None:
                parts.append(Part(unit.sid, "exited", "see its log", unit.log))
            elif unit.sid in printers and cups is None:
                parts.append(Part(unit.sid, "degraded", f"{STORY[unit.sid]} (no print server: its releases "
                                  "fail; it reads badges and reports)", unit.log))
            else:
                parts.append(Part(unit.sid, "running", STORY[unit.sid], unit.log))
        print(_banner(url, password, data, parts, server if cups is not None else None, duration), flush=True)
        _play(units, stop, duration)
    finally:
        # The units first: the printer's may be asking cupsd something.
        for unit in units:
            unit.stop()
        if hub is not None:
            hub.stop()
        if cups is not None:
            cups.close()
        if broker is not None:
            broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        print("kagiban demo stopped.", flush=True)
    return 0


def _play(units: list[_Unit], stop: threading.Event, duration: float | None) -> None:
    """Wait for the end, cutting the flaky unit's power on schedule; a unit that stops by
    itself is named on the terminal (once), never dropped silently."""
    flaky = next(u for u in units if u.sid == FLAKY)
    start = time.monotonic()
    down_since: float | None = None
    told: set[str] = set()
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
        for unit in units:
            code = unit.proc.poll() if unit.proc is not None else None
            if code is not None and unit.sid not in told and not (unit is flaky and down_since is not None):
                told.add(unit.sid)
                print(f"kagiban demo: {unit.sid} stopped by itself (exit {code}); see {unit.log}", flush=True)


# --- the demo's simulated unit with two more scenario steps ---


class TrayStep(BaseModel):
    """Paper lands on the printer's tray (``occupied``) or is taken away (``empty``)."""

    model_config = ConfigDict(extra="forbid")
    tray: Literal["occupied", "empty"]


class PrintJob(BaseModel):
    """What a terminal sends: ``pages`` blank pages titled ``title``, as ``user``."""

    model_config = ConfigDict(extra="forbid")
    # The demo's cupsd: its unix socket (an absolute path, no spaces or controls).
    server: str = Field(pattern=r"^/[^\s\x00]{1,200}\.sock$")
    queue: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,127}$")
    user: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=120)
    pages: int = Field(default=1, ge=1, le=20)


class PrintStep(BaseModel):
    """A terminal prints (the job goes to the holding queue)."""

    model_config = ConfigDict(extra="forbid")
    print: PrintJob


def run_unit(config_file: str, scenario_file: str) -> int:
    """One simulated unit until SIGINT/SIGTERM, as ``kagiban device --scenario`` runs it, its
    scenario allowed the tray and print steps too."""
    from device import unit_file
    from device import simulate
    from device.agent import Agent
    from kagiban.configfile import load_config

    class DemoScenario(simulate.Scenario):
        # A wider list than the base's on purpose: pydantic validates the subclass's own field.
        steps: list[simulate.Tap | simulate.Door | simulate.Wait | simulate.Press | simulate.Bin  # type: ignore[assignment]
                    | TrayStep | PrintStep]

    class DemoRunner(simulate.ScenarioRunner):
        def play(self, step) -> None:
            if isinstance(step, TrayStep):
                simulate.set_input(self.agent, "tray", step.tray == "occupied")
            elif isinstance(step, PrintStep):
                _terminal_prints(step.print, docs)
            else:
                super().play(step)

    cfg = unit_file.load(config_file)
    scenario = load_config(scenario_file, DemoScenario)
    docs = cfg.data_dir() / "terminal"
    docs.mkdir(parents=True, exist_ok=True)
    agent = Agent(cfg)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.start()
    runner = DemoRunner(agent, scenario)
    runner.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        runner.stop()
        agent.stop()
    return 0


def _terminal_prints(job: PrintJob, docs: Path) -> None:
    """``lp`` as a desk would; a refusal is logged and the scenario goes on."""
    pdf = docs / f"doc-{job.pages}.pdf"
    if not pdf.exists():
        localcups.make_pdf(pdf, job.pages)
    try:
        number = localcups.job_id(localcups.lp(job.server, job.queue, job.user, job.title, pdf))
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        _LOG.warning("terminal could not print %r as %s: %s", job.title, job.user, exc)
        return
    _LOG.info("terminal printed %r as %s: job %d held", job.title, job.user, number)


def main(argv: list[str] | None = None) -> int:
    """``python -m demo.run unit --config FILE --scenario FILE``."""
    from kagiban.configfile import ConfigError

    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("unit", help="run one simulated unit with the demo's scenario steps")
    p.add_argument("--config", required=True)
    p.add_argument("--scenario", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_unit(args.config, args.scenario)
    except ConfigError as exc:
        print(f"kagiban demo unit: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
