"""The unit's YAML file: one typed model per section, unknown keys rejected.

``DeviceConfig`` is what every unit file holds. Each station kind's own model (the pins it
cannot work without, e.g. a shredder's ``power_relay``) lives beside its logic in
``device/stations/<kind>.py``; device.unit_file reads a file as the model of its
``station.kind`` and names the file, the key and the reason when it is wrong, e.g.
``pins.power_relay: missing value``. This module imports no station module, so each of them
can build on it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from kagiban.broker import BrokerConfig
from kagiban.protocol import ID_PATTERN, StationKind
from kagiban.signing import parse_public_key


class _Section(BaseModel):
    # Built at first use: a unit reads only its own kind's model (kagiban.protocol._Strict).
    model_config = ConfigDict(extra="forbid", defer_build=True)


class StationSection(_Section):
    """Who this unit is."""

    id: str = Field(pattern=ID_PATTERN)
    kind: StationKind
    name: str = ""


class PinsSection(_Section):
    """BCM pin numbers; ``factory`` picks gpiozero's backend (None: gpiozero's own default)."""

    factory: Literal["lgpio", "rpigpio", "pigpio", "native", "mock"] | None = None
    door: int | None = Field(default=None, ge=0, le=53)
    # A reed switch wired to ground closes (reads low) while the door is shut.
    door_closed_level: Literal["low", "high"] = "low"
    lock: int | None = Field(default=None, ge=0, le=53)
    lock_active_high: bool = True
    led_granted: int | None = Field(default=None, ge=0, le=53)
    led_denied: int | None = Field(default=None, ge=0, le=53)
    buzzer: int | None = Field(default=None, ge=0, le=53)
    # Shredder: the power relay (energised = the shredder runs; off at start and on stop), a stop
    # button (to ground: reads low while pressed) and an optional bin-door reed switch (wired
    # like the door: closed reads ``door_closed_level``).
    power_relay: int | None = Field(default=None, ge=0, le=53)
    power_active_high: bool = True
    stop_button: int | None = Field(default=None, ge=0, le=53)
    bin_sensor: int | None = Field(default=None, ge=0, le=53)
    # Printer: the output-tray sensor (a switch or optical sensor: "closed" while paper lies there).
    tray: int | None = Field(default=None, ge=0, le=53)
    tray_occupied_level: Literal["low", "high"] = "low"
    # Annunciator: the lamp (a signal tower's light, through a relay or transistor) and a
    # silence button (to ground: reads low while pressed); its alarm sounds on ``buzzer``.
    lamp: int | None = Field(default=None, ge=0, le=53)
    lamp_active_high: bool = True
    silence_button: int | None = Field(default=None, ge=0, le=53)


class ReaderSection(_Section):
    """The badge reader: an nfcpy device path, or a stand-in fed by software."""

    type: Literal["nfcpy", "standin", "none"] = "nfcpy"
    # nfcpy paths: "usb" (first USB reader, e.g. Sony RC-S380), "usb:054c:06c3" (RC-S380 by id),
    # "tty:serial0:pn532" (PN532 on the UART), "udp:127.0.0.1:54321" (nfcpy's simulator).
    path: str = "usb"
    # A card held on the reader counts once; the same card again within this many seconds of its
    # last tap is the same tap (its feedback again, no new event: device/stations/repeat.py).
    # Unset: 2 s for a real reader, none for the stand-in (software makes each tap on purpose).
    repeat_s: float | None = Field(default=None, ge=0.0, le=60.0)

    @property
    def repeat_window_s(self) -> float:
        """The repeat window in seconds: ``repeat_s``, or its default for the reader type."""
        if self.repeat_s is not None:
            return self.repeat_s
        return 0.0 if self.type == "standin" else 2.0


class CameraSection(_Section):
    """Snapshots on door opened, forced and denied badge."""

    type: Literal["picamera2", "standin", "none"] = "picamera2"
    width: int = Field(default=1280, ge=160, le=4056)
    height: int = Field(default=720, ge=120, le=3040)
    jpeg_quality: int = Field(default=80, ge=10, le=95)
    # A capture that has not returned by then is given up (the event records snapshot.failed).
    capture_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # A camera that is missing or failed is opened again after 2, 4, ... up to this many seconds.
    retry_max_s: float = Field(default=60.0, ge=1, le=3600)
    # Simulated units only (type standin): behave like a camera that is missing, raises or hangs.
    fault: Literal["missing", "raise", "hang"] | None = None

    @model_validator(mode="after")
    def _fault_only_simulated(self) -> "CameraSection":
        if self.fault is not None and self.type != "standin":
            raise ValueError("fault is for a simulated camera only (type: standin)")
        return self


class TimingsSection(_Section):
    """Seconds unless the name says otherwise."""

    unlock_s: float = Field(default=5.0, gt=0, le=120)
    held_open_s: float = Field(default=60.0, gt=0, le=86400)
    debounce_ms: int = Field(default=50, ge=0, le=2000)
    heartbeat_s: float = Field(default=30.0, gt=0, le=3600)
    # Events sent but not acknowledged within this time are sent again.
    ack_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    # How many unacknowledged events may be on the wire at once (a backlog drains in windows).
    send_window: int = Field(default=1000, ge=1, le=100000)
    # Shredder: the second person must tap within this time of the first; a session's longest run.
    pair_window_s: float = Field(default=15.0, gt=0, le=600)
    shred_max_s: float = Field(default=600.0, gt=0, le=7200)
    # Printer: held jobs older than this are cancelled and reported; printouts lying in the tray
    # longer than this alert the site's supervisors.
    hold_max_s: float = Field(default=8 * 3600.0, gt=0, le=30 * 86400)
    tray_alert_s: float = Field(default=300.0, gt=0, le=86400)


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
    holding_queue: str = Field(default="kagiban-hold", pattern=r"^[A-Za-z0-9_.-]{1,127}$")
    printer_queue: str = Field(default="kagiban-print", pattern=r"^[A-Za-z0-9_.-]{1,127}$")
    admin_user: str | None = Field(default=None, min_length=1, max_length=64)
    password_env: str | None = None
    password_file: str | None = None
    # Each request to the print server waits at most this long.
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    # How often the holding queue is looked at (held jobs, expiry, print.queue).
    check_s: float = Field(default=60.0, gt=0, le=3600)


class StorageSection(_Section):
    """Where the outbox and the policy cache live (relative paths: beside the config file)."""

    dir: Path = Path("/var/lib/kagiban")
    outbox_capacity: int = Field(default=200_000, ge=10)


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
    max_age_h: float = Field(default=336.0, gt=0, le=24 * 366)
    when_expired: Literal["flag", "deny"] = "flag"
    future_slack_s: float = Field(default=3600.0, ge=0, le=86400)

    @field_validator("public_key")
    @classmethod
    def _is_key(cls, value: str) -> str:
        try:
            parse_public_key(value)
        except ValueError as exc:
            raise ValueError(
                f"not an Ed25519 public key ({exc}); paste the line from `kagiban hub policy-key`"
            ) from exc
        return value.strip()


class SigningSection(_Section):
    """The station's own Ed25519 key, which signs every event and snapshot it sends.

    Made on the unit by ``kagiban device enroll`` (mode 600; the private key never leaves the
    unit) and registered at the hub with ``kagiban hub station-key add``. ``key_file`` may name
    a systemd credential (``${CREDENTIALS_DIRECTORY}/station-key``); unset: ``station.key`` in
    the storage folder. A unit without the file sends its events unsigned, which the hub
    accepts only while no key is registered for the station.
    """

    key_file: str | None = None


class DeviceConfig(_Section):
    """A whole unit file."""

    site: str = Field(pattern=ID_PATTERN)
    station: StationSection
    pins: PinsSection = PinsSection()
    reader: ReaderSection = ReaderSection()
    camera: CameraSection = CameraSection()
    broker: BrokerConfig = BrokerConfig()
    timings: TimingsSection = TimingsSection()
    storage: StorageSection = StorageSection()
    printer: PrinterSection = PrinterSection()
    policy: PolicySection
    signing: SigningSection = SigningSection()
    time_zone: str = "Asia/Tokyo"

    # Set by load(): the folder the file was in, for resolving relative paths.
    _config_dir: Path = PrivateAttr(default=Path("."))

    @model_validator(mode="before")
    @classmethod
    def _pins_named(cls, data: Any) -> Any:
        # No pins section at all: name the pins the kind requires, not just "pins".
        if isinstance(data, dict) and "pins" not in data:
            return {**data, "pins": {}}
        return data

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Asia/Tokyo)") from exc
        return value

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
