"""``kagiban demo``: broker, hub, a print server and one simulated station of each kind on this
machine, playing an office's day.

Everything is real except the hardware: mosquitto on loopback with a generated config, the hub
with a SQLite file and its web page, a cupsd on loopback with the repository's print-server
policy and queues and a PDF file as its printer (demo.cups), and a device agent per station
(separate processes, the same program a Pi runs) on mock pins with the stand-in reader and
camera.

The office is a ward office's family-register section (demo.office: its people as 職員 numbers
with roles, their badges, training, designations and roster, seeded through hub.registry, actor
"demo"). Its day (demo.day: a typed list of timed episodes) runs from 07:55 to 19:35 on a clock
compressed ``speed`` times (about ten minutes by default): arrivals at the office's door, the
keys used by their holders and by a stand-in, a print released, two people shredding, the
archive's cabinet forced, a part-time clerk without training refused, the archive opened after
hours; then the stations stay up and quiet (``repeat`` plays the day again and again). Each unit
plays its own part against the day's shared start (demo.unit).

The broker is set up as a deployment's is, in miniature: a password generated at each start
for the hub and for each unit (files of mode 0600 under ``credentials/``, named by the YAML
files, never in them), no anonymous clients, the client id bound to the user name, and the
deployment's ACL (config/mosquitto/acl). The demo's folder is private: what it creates there
(databases, keys, configuration, logs) is readable by the user running it only, except the
print server's own folder, whose filters run as another user.

Every station runs, always. When a part cannot start, the banner says which and why, and so
does the status page (a notice the demo gives the hub): without a print server (no cupsd, or a
configuration cupsd refuses) printer-1 still runs, reads badges and reports, and its releases
fail as they would with its print server down. The terminals print as OS accounts named by the
print user names (``lp`` on cupsd's socket, peer credentials: the demo needs those accounts, and
root to act as them; otherwise the prints are refused and logged). The broker and the hub are
needed by all the rest: if either cannot start, the demo lists the parts, says why, and exits 1.

Logs: the hub's and each unit's in ``logs/`` of the demo's folder (each episode a unit plays is
a line there), the broker's in ``mosquitto/mosquitto.log``, cupsd's in ``cups/log/``; the
banner names each one. The terminal shows only warnings and the banner.

``python -m demo.run unit --config FILE --day FILE`` runs one simulated unit and its part of
the day (demo.steps.UnitDay).
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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import msgspec
import yaml

if TYPE_CHECKING:
    from hub import config as hub_config

from demo import cups as localcups
from demo import day as office_day
from demo import office
from demo.broker import BrokerUnavailable, Mosquitto, free_port, generate_credentials
from demo.desk import RollCallDesk
from kagiban.signing import load_or_create_private_key, public_key_b64

_LOG = logging.getLogger(__name__)

SITE = office.SITE
TIME_ZONE = "Asia/Tokyo"

# The print server's queues and the demo's short printer timings: a printout lying in the tray
# longer than TRAY_ALERT_S is an alert, a held job older than HOLD_MAX_S is cancelled unprinted.
# The holding queue is looked at every CHECK_S (each look is a "print queue checked" event).
HOLD_QUEUE, PRINT_QUEUE = "kagiban-hold", "kagiban-print"
TRAY_ALERT_S, HOLD_MAX_S, CHECK_S = 10, 20, 15
PAIR_WINDOW_S = 8
# The day starts this long after the configuration is written: the hub and the units start and
# the units get their policies meanwhile (an episode due before its unit is ready plays late).
LEAD_S = 20.0

NAMES = {
    "cabinet-1": "戸籍住民課 執務室 鍵保管庫",
    "cabinet-2": "戸籍住民課 書庫 鍵保管庫",
    "cabinet-3": "戸籍住民課 カード保管庫 鍵保管庫",
    "shredder-1": "戸籍住民課 執務室 シュレッダー",
    "printer-1": "戸籍住民課 執務室 共用プリンター",
    "door-1": "戸籍住民課 執務室 通用口",
    "annunciator-1": "戸籍住民課 執務室 警報灯",
    "rollcall-1": "戸籍住民課 第1会議室 点呼端末",
}
KIND = {sid: sid.split("-")[0] for sid in NAMES}
HUB_USER = "kagiban-hub"
# The deployment's ACL, as the demo runs from a checkout (like demo.cups).
ACL_FILE = localcups.ROOT / "config" / "mosquitto" / "acl"
# Under the demo's folder: the broker passwords (NAME.password, mode 0600).
CREDENTIALS = "credentials"
STORY = {
    "cabinet-1": "keys by the holder and the stand-in; an untrained part-timer refused, let in once trained",
    "cabinet-2": "the archive: a use, a forced door, a use after hours",
    "cabinet-3": "the card safe opened in the morning, closed in the afternoon",
    "shredder-1": "the rostered pair shreds together",
    "printer-1": "a print released with a tap and collected",
    "door-1": "arrivals, back from lunch",
    "annunciator-1": "lit and sounding while the archive's forced door is open; silenced at 14:30",
    "rollcall-1": "the 13:30 training's roll call: the part-timer checks in; closed at 14:00",
}
# Open all day (start == end: a window of 24 hours; an end of 23:59 would leave the last minute
# of each day after hours). Only the archive keeps office hours, on the day's compressed clock.
ALL_DAY = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "00:00", "end": "00:00"}


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
    elif kind == "rollcall":
        # A reader, its two LEDs and a buzzer at the meeting room; it unlocks nothing.
        pins = dict(leds)
        extra.update(camera={"type": "none"})
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
                   credentials: dict[str, Path], clock: office_day.Clock, repeat: bool = False,
                   notices: Sequence[hub_config.Notice] = ()) -> tuple[Path, dict[str, tuple[Path, Path]]]:
    # The hub signs the stations' policies; each unit file carries the public key.
    signing_key = load_or_create_private_key(data / "hub" / "policy-signing.key")
    zone = ZoneInfo(TIME_ZONE)
    hub_cfg = {
        "broker": {"host": "127.0.0.1", "port": broker_port, "username": HUB_USER,
                   "password_file": str(credentials[HUB_USER])},
        "data_dir": "hub",
        "time_zone": TIME_ZONE,
        "stations": [
            {"id": sid, "site": SITE, "kind": KIND[sid], "name": NAMES[sid],
             # The archive keeps office hours on the day's clock, so its evening use is after hours.
             "hours": office_day.compressed_hours(clock, zone) if sid == office_day.AFTER_HOURS_STATION else ALL_DAY}
            for sid in stations
        ],
        # The demo plays a working day whatever the date: no national holidays.
        "sites": {SITE: {"name": office.SITE_NAME, "holiday_calendar": "none"}},
        "rules": {"offline_grace_s": 20},
        "web": {"host": "127.0.0.1", "port": web_port},
        "policy": {"signing_key_file": "hub/policy-signing.key"},
        # Parts that could not start (hub.config.Notice): the status page shows them in a box.
        "notices": [n.model_dump() for n in notices],
    }
    hub_path = data / "hub.yaml"
    hub_path.write_text(yaml.safe_dump(hub_cfg, allow_unicode=True))
    # The holding queue takes a job only from a signed-in user: the terminals print on cupsd's
    # socket as the OS users named (peer credentials; see localcups.lp).
    parts = office_day.for_units(clock, zone, stations, print_server=server.socket, queue=HOLD_QUEUE,
                                 repeat=repeat)
    units = {}
    for sid in stations:
        unit_path = data / f"{sid}.yaml"
        unit_path.write_text(yaml.safe_dump(
            _unit_config(sid, broker_port, public_key_b64(signing_key), server, credentials[sid]),
            allow_unicode=True))
        day_path = data / f"{sid}-day.yaml"
        day_path.write_text(yaml.safe_dump(msgspec.to_builtins(parts[sid]), allow_unicode=True))
        units[sid] = (unit_path, day_path)
    return hub_path, units


class _Unit:
    """One simulated station process."""

    def __init__(self, sid: str, unit: Path, day: Path, log: Path):
        self.sid, self.unit, self.day, self.log = sid, unit, day, log
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as f:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "demo.run", "--log-level", "INFO", "unit", "--config", str(self.unit),
                 "--day", str(self.day)],
                stdout=f, stderr=f, env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )

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
            duration: float | None, clock: office_day.Clock, repeat: bool) -> str:
    lines = ["", "kagiban demo is running.",
             f"  Open:     {url}",
             f"  Log in:   admin / {password}",
             f"  Data:     {data}",
             f"  Logs:     {data / LOGS}/ (the hub and each station; the others below)",
             "  Parts:"]
    lines += _parts_table(parts, data)
    if server is not None:
        printer = office.SHUJI_A
        lines.append(f"  Print:    as the OS user {printer.print_user}: lp -h {server.socket} -d {HOLD_QUEUE} FILE "
                     f"(held until {printer.name}'s next tap at printer-1; the print users must be OS accounts)")
    lines.append(f"  People:   {url}registry/people (revoke a badge there and watch its station refuse it)")
    minutes = clock.length_s() / 60
    again = "then again and again (--repeat)" if repeat else "then quiet (--repeat plays it again and again)"
    lines.append(f"  The day:  {office_day.DAY_START:%H:%M}-{office_day.DAY_END:%H:%M} in {minutes:.1f} min "
                 f"(--speed {clock.speed:g}), {again}")
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
        admin_password: str | None = None, speed: float = office_day.DEFAULT_SPEED, repeat: bool = False) -> int:
    """Run the demo until ``duration`` seconds pass or Ctrl-C; stop everything it started. The
    office's day runs ``speed`` times faster than real time, once (or again and again with
    ``repeat``). 1 if the broker or the hub could not start (every part is listed, with why)."""
    try:
        office_day.Clock(epoch=time.time(), speed=speed)  # a bad speed is refused before anything starts
    except ValueError as exc:
        print(f"kagiban demo: {exc}", file=sys.stderr, flush=True)
        return 2
    # Everything the demo and its units create (databases, keys, configuration, logs) is
    # private: files 0600, folders 0700. The units inherit it.
    previous = os.umask(0o077)
    try:
        data = Path(data_dir).resolve() if data_dir else Path(tempfile.mkdtemp(prefix="kagiban-demo-"))
        data.mkdir(parents=True, exist_ok=True)
        (data / LOGS).mkdir(exist_ok=True)
        with _QuietTerminal(data / LOGS / "hub.log"):
            return _run(data, port, duration, admin_password, speed, repeat)
    finally:
        os.umask(previous)


def _run(data: Path, port: int, duration: float | None, admin_password: str | None, speed: float,
         repeat: bool) -> int:
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
    desk: RollCallDesk | None = None
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
        # The day starts once the hub and the units have had a moment to start.
        clock = office_day.Clock(epoch=time.time() + LEAD_S, speed=speed)
        hub_path, unit_files = _write_configs(data, broker.port, port, stations, server, credentials, clock,
                                              repeat, notices)
        hub_part = Part("hub", "running", "", data / LOGS / "hub.log")
        try:
            cfg = hub_config.load(hub_path)
            # Seeded before the hub starts, so its first policies already hold the demo's people.
            engine = make_engine(cfg.db_url())
            try:
                migrate.upgrade(engine)
                office.seed_registry(engine, datetime.now(cfg.site_zone(SITE)).date())
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
        # The supervisor's roll call for the afternoon's training, on the same clock.
        period = office_day.day_length(clock, ZoneInfo(TIME_ZONE)) + 1.0 if repeat else None
        desk = RollCallDesk(hub, clock, period).start()
        parts = [broker_part, hub_part, print_part]
        for unit in units:
            if unit.proc is None or unit.proc.poll() is not None:
                parts.append(Part(unit.sid, "exited", "see its log", unit.log))
            elif unit.sid in printers and cups is None:
                parts.append(Part(unit.sid, "degraded", f"{STORY[unit.sid]} (no print server: its releases "
                                  "fail; it reads badges and reports)", unit.log))
            else:
                parts.append(Part(unit.sid, "running", STORY[unit.sid], unit.log))
        print(_banner(url, password, data, parts, server if cups is not None else None, duration, clock, repeat),
              flush=True)
        _play(units, stop, duration)
    finally:
        # The units first: the printer's may be asking cupsd something.
        for unit in units:
            unit.stop()
        if desk is not None:
            desk.stop()
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
    """Wait for the end; a unit that stops by itself is named on the terminal (once), never
    dropped silently."""
    start = time.monotonic()
    told: set[str] = set()
    while not stop.wait(0.5):
        if duration is not None and time.monotonic() - start >= duration:
            return
        for unit in units:
            code = unit.proc.poll() if unit.proc is not None else None
            if code is not None and unit.sid not in told:
                told.add(unit.sid)
                print(f"kagiban demo: {unit.sid} stopped by itself (exit {code}); see {unit.log}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m demo.run unit --config FILE --day FILE``."""
    from demo.unit import run_unit
    from kagiban.configfile import ConfigError

    parser = argparse.ArgumentParser(prog="python -m demo.run", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("unit", help="run one simulated unit playing its part of the demo's day")
    p.add_argument("--config", required=True)
    p.add_argument("--day", required=True, help="its part of the day (demo.steps.UnitDay, YAML)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run_unit(args.config, args.day)
    except ConfigError as exc:
        print(f"kagiban demo unit: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
