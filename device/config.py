"""The unit's YAML file: one typed model per section, unknown keys rejected.

``DeviceConfig`` is what every unit file holds. Each station kind's own model (the pins it
cannot work without, e.g. a shredder's ``power_relay``) lives beside its logic in
``device/stations/<kind>.py``; device.unit_file reads a file as the model of its
``station.kind`` and names the file, the key and the reason when it is wrong, e.g.
``pins.power_relay: missing value``. This module imports no station module, so each of them
can build on it.

The sections are msgspec Structs read by kagiban.configfile.convert: a started station never
imports pydantic (issue 17). The ``Meta`` constraints hold for what a file holds; a section built
in code (tests) is taken as given.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta, field

from kagiban.broker import BrokerConfig
from kagiban.configfile import FieldProblem
from kagiban.ed25519 import parse_public_key
from kagiban.wire import ID_PATTERN, StationKind

# A BCM pin number, as gpiozero takes it.
Pin = Annotated[int, Meta(ge=0, le=53)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A section of the unit file: unknown keys refused; fields named, never by position.

    A subclass that adds a required field after defaults (a kind's pins, its unit model) says
    ``kw_only=True`` again: msgspec inherits it, mypy's reading of the class does not."""


class StationSection(_Section):
    """Who this unit is."""

    id: Annotated[str, Meta(pattern=ID_PATTERN)]
    kind: StationKind
    name: str = ""


class PinsSection(_Section):
    """BCM pin numbers; ``factory`` picks gpiozero's backend (None: gpiozero's own default)."""

    factory: Literal["lgpio", "rpigpio", "pigpio", "native", "mock"] | None = None
    door: Pin | None = None
    # A reed switch wired to ground closes (reads low) while the door is shut.
    door_closed_level: Literal["low", "high"] = "low"
    lock: Pin | None = None
    lock_active_high: bool = True
    led_granted: Pin | None = None
    led_denied: Pin | None = None
    buzzer: Pin | None = None
    # Shredder: the power relay (energised = the shredder runs; off at start and on stop), a stop
    # button (to ground: reads low while pressed) and an optional bin-door reed switch (wired
    # like the door: closed reads ``door_closed_level``).
    power_relay: Pin | None = None
    power_active_high: bool = True
    stop_button: Pin | None = None
    bin_sensor: Pin | None = None
    # Printer: the output-tray sensor (a switch or optical sensor: "closed" while paper lies there).
    tray: Pin | None = None
    tray_occupied_level: Literal["low", "high"] = "low"
    # Annunciator: the lamp (a signal tower's light, through a relay or transistor) and a
    # silence button (to ground: reads low while pressed); its alarm sounds on ``buzzer``.
    lamp: Pin | None = None
    lamp_active_high: bool = True
    silence_button: Pin | None = None


class ReaderSection(_Section):
    """The badge reader: an nfcpy device path, or a stand-in fed by software."""

    type: Literal["nfcpy", "standin", "none"] = "nfcpy"
    # nfcpy paths: "usb" (first USB reader, e.g. Sony RC-S380), "usb:054c:06c3" (RC-S380 by id),
    # "tty:serial0:pn532" (PN532 on the UART), "udp:127.0.0.1:54321" (nfcpy's simulator).
    path: str = "usb"
    # A card held on the reader counts once; the same card again within this many seconds of its
    # last tap is the same tap (its feedback again, no new event: device/stations/repeat.py).
    # Unset: 2 s for a real reader, none for the stand-in (software makes each tap on purpose).
    repeat_s: Annotated[float, Meta(ge=0.0, le=60.0)] | None = None

    @property
    def repeat_window_s(self) -> float:
        """The repeat window in seconds: ``repeat_s``, or its default for the reader type."""
        if self.repeat_s is not None:
            return self.repeat_s
        return 0.0 if self.type == "standin" else 2.0


class CameraSection(_Section):
    """Snapshots on door opened, forced and denied badge."""

    type: Literal["picamera2", "standin", "none"] = "picamera2"
    width: Annotated[int, Meta(ge=160, le=4056)] = 1280
    height: Annotated[int, Meta(ge=120, le=3040)] = 720
    jpeg_quality: Annotated[int, Meta(ge=10, le=95)] = 80
    # A capture that has not returned by then is given up (the event records snapshot.failed).
    capture_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    # A camera that is missing or failed is opened again after 2, 4, ... up to this many seconds.
    retry_max_s: Annotated[float, Meta(ge=1, le=3600)] = 60.0
    # Simulated units only (type standin): behave like a camera that is missing, raises or hangs.
    fault: Literal["missing", "raise", "hang"] | None = None

    def __post_init__(self) -> None:
        if self.fault is not None and self.type != "standin":
            raise ValueError("fault is for a simulated camera only (type: standin)")


class TimingsSection(_Section):
    """Seconds unless the name says otherwise."""

    unlock_s: Annotated[float, Meta(gt=0, le=120)] = 5.0
    held_open_s: Annotated[float, Meta(gt=0, le=86400)] = 60.0
    debounce_ms: Annotated[int, Meta(ge=0, le=2000)] = 50
    heartbeat_s: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    # Events sent but not acknowledged within this time are sent again.
    ack_timeout_s: Annotated[float, Meta(gt=0, le=3600)] = 10.0
    # How many unacknowledged events may be on the wire at once (a backlog drains in windows).
    send_window: Annotated[int, Meta(ge=1, le=100000)] = 1000
    # Shredder: the second person must tap within this time of the first; a session's longest run.
    pair_window_s: Annotated[float, Meta(gt=0, le=600)] = 15.0
    shred_max_s: Annotated[float, Meta(gt=0, le=7200)] = 600.0
    # Printer: held jobs older than this are cancelled and reported; printouts lying in the tray
    # longer than this alert the site's supervisors.
    hold_max_s: Annotated[float, Meta(gt=0, le=30 * 86400)] = 8 * 3600.0
    tray_alert_s: Annotated[float, Meta(gt=0, le=86400)] = 300.0


# A CUPS queue name.
_QUEUE = r"^[A-Za-z0-9_.-]{1,127}$"


class PrinterSection(_Section):
    """Printer stations: the CUPS print server and its two queues (see config/cups/).

    ``server``: the print server's unix socket (``/run/cups/cups.sock``: CUPS knows the agent's
    user by its peer credentials, no password) or ``host[:port]`` (HTTP Basic as
    ``admin_user``, password from ``password_env`` or ``password_file``, never YAML).
    ``admin_user`` must be in the server's SystemGroup: only it may move and release jobs.
    None: the OS user the agent runs as. ``backend: standin`` keeps jobs in memory (no CUPS).
    """

    backend: Literal["cups", "standin"] = "cups"
    server: str = "/run/cups/cups.sock"
    holding_queue: Annotated[str, Meta(pattern=_QUEUE)] = "kagiban-hold"
    printer_queue: Annotated[str, Meta(pattern=_QUEUE)] = "kagiban-print"
    admin_user: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    password_env: str | None = None
    password_file: str | None = None
    # Each request to the print server waits at most this long.
    timeout_s: Annotated[float, Meta(gt=0, le=120)] = 10.0
    # How often the holding queue is looked at (held jobs, expiry, print.queue).
    check_s: Annotated[float, Meta(gt=0, le=3600)] = 60.0


class StorageSection(_Section):
    """Where the outbox and the policy cache live (relative paths: beside the config file)."""

    dir: Path = Path("/var/lib/kagiban")
    outbox_capacity: Annotated[int, Meta(ge=10)] = 200_000


class PolicySection(_Section):
    """The hub's policy-signing public key: the station uses only policies signed with it.

    Base64 of the 32 raw Ed25519 bytes, as printed by ``kagiban hub policy-key``. Required:
    a station without it would have to trust whoever can publish on its policy topic.

    ``max_age_h``: a policy issued longer ago is refused when offered, and one held that grows
    older (or passes its own expiry) is expired: then ``when_expired`` says whether the station
    keeps deciding and flags every allow (``flag``) or denies everyone (``deny``).
    ``future_slack_s``: how far a policy's issue time may be past this unit's clock (and its
    version past its issue time) before it is refused.
    """

    public_key: str
    max_age_h: Annotated[float, Meta(gt=0, le=24 * 366)] = 336.0
    when_expired: Literal["flag", "deny"] = "flag"
    future_slack_s: Annotated[float, Meta(ge=0, le=86400)] = 3600.0

    def __post_init__(self) -> None:
        try:
            parse_public_key(self.public_key)
        except ValueError as exc:
            raise FieldProblem(
                "public_key", f"not an Ed25519 public key ({exc}); paste the line from `kagiban hub policy-key`"
            ) from exc
        self.public_key = self.public_key.strip()


class SigningSection(_Section):
    """The station's own Ed25519 key, which signs every event and snapshot it sends.

    Made on the unit by ``kagiban device enroll`` (mode 600; the private key never leaves the
    unit) and registered at the hub with ``kagiban hub station-key add``. ``key_file`` may name
    a systemd credential (``${CREDENTIALS_DIRECTORY}/station-key``); unset: ``station.key`` in
    the storage folder. A unit without the file sends its events unsigned, which the hub
    accepts only while no key is registered for the station.
    """

    key_file: str | None = None


class DeviceConfig(_Section, kw_only=True):
    """A whole unit file."""

    site: Annotated[str, Meta(pattern=ID_PATTERN)]
    station: StationSection
    pins: PinsSection = field(default_factory=PinsSection)
    reader: ReaderSection = field(default_factory=ReaderSection)
    camera: CameraSection = field(default_factory=CameraSection)
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    timings: TimingsSection = field(default_factory=TimingsSection)
    storage: StorageSection = field(default_factory=StorageSection)
    printer: PrinterSection = field(default_factory=PrinterSection)
    policy: PolicySection
    signing: SigningSection = field(default_factory=SigningSection)
    time_zone: str = "Asia/Tokyo"

    # Set by device.unit_file.load: the folder the file was in, for resolving relative paths
    # (a ``_`` field is never read from the file: kagiban.configfile).
    _config_dir: Path = Path(".")

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise FieldProblem(
                "time_zone", f"unknown time zone {self.time_zone!r} (an IANA name such as Asia/Tokyo)"
            ) from exc

    def data_dir(self) -> Path:
        """The storage folder, relative paths taken from the config file's folder."""
        d = self.storage.dir
        return d if d.is_absolute() else (self._config_dir / d)

    def station_key_path(self) -> Path:
        """Where the station's signing key is: ``signing.key_file`` (environment variables
        expanded; relative to the config file's folder) or ``station.key`` in the storage folder."""
        if self.signing.key_file is None:
            return self.data_dir() / "station.key"
        path = Path(os.path.expandvars(self.signing.key_file))
        return path if path.is_absolute() else (self._config_dir / path)
