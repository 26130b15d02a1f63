"""The Pi agent: wires sensors, station logic, outbox, camera and MQTT link, and runs the loop.

Threads: gpiozero, the badge reader, paho and the camera worker each run their own; they only
``post()`` into one queue. The loop thread alone owns the station logic and the outbox
(the rpi2home-assistant pattern), so there are no locks around state.

Sending: the loop keeps at most ``send_window`` events on the wire; an event not acknowledged
within ``ack_timeout_s`` is sent again, and a reconnect starts again from the oldest
unacknowledged event. The hub inserts idempotently, so sending twice is harmless and losing an
ack costs only a resend.

Peripherals degrade the station, never stop it: pins whose GPIO cannot be opened leave a unit
without door and lock, a badge reader absent or unplugged is reopened by its own thread, a
camera missing, raising or hanging is given up per capture (``camera.capture_timeout_s``) and
reopened later (device.camera.guard); the event whose photo failed gets a ``snapshot.failed``
event, and every heartbeat carries each peripheral's health. Only a hardware library that
cannot be imported stops the agent at start (device.missing_library.LibraryMissing, exit 2).
Stopping takes at most ``STOP_S`` seconds whatever a peripheral does (systemd's
TimeoutStopSec is 20).
"""
from __future__ import annotations

import base64
import logging
import queue
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Callable
from zoneinfo import ZoneInfo

from device.camera.base import Camera
from device.camera.guard import CameraGuard, SnapshotFailure
from device.camera.shrink import fit_jpeg
from device.clock import ClockSource, StandinClock, SystemClock
from device.config import DeviceConfig
from device.health import HealthCell
from device.link import MqttLink
from device.policy_cache import PolicyRejected
from device.sensors.badge import BadgeReader
from device.sensors.debounce import Debouncer
from device.sensors.door import DoorSwitch
from device.outputs import Outputs
from device.stations import feed_input, make_logic
from device.stations.effects import Effect, Emit, Feedback, Lock, PowerOff, PowerOn, Unlock
from device.stations.effects import Work
from device.storage_check import open_outbox, open_policy
from kagiban import protocol
from kagiban.configfile import ConfigError
from kagiban.event_signing import EventSigner, load_station_key

_LOG = logging.getLogger(__name__)

# How many refused policy versions the agent remembers having reported, and how many
# policy.rejected events it records per hour at most (a flood of forged versions is logged only).
REJECTED_MEMORY = 64
REJECTED_PER_HOUR = 20
# The longest stop() may take: well inside systemd's TimeoutStopSec=20, whatever hangs.
STOP_S = 8.0

# Extra inputs by name: the config pin, and whether the input is active when its contact is
# open (a bin-door reed switch) or when it is closed (a stop button pulls its pin to ground).
INPUT_PINS = {"stop_button": ("stop_button", False), "bin": ("bin_sensor", True), "tray": ("tray", False)}


def station_signer(cfg: DeviceConfig) -> EventSigner | None:
    """The signer of the unit's enrolled key; None (events unsigned) if it has not been
    enrolled. A key file that is there but unreadable stops the agent: a configuration error."""
    path = cfg.station_key_path()
    if not path.exists():
        _LOG.warning("no station key at %s: events go out unsigned (enroll: kagiban device enroll)", path)
        return None
    try:
        return EventSigner(load_station_key(path))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"signing.key_file: {exc}") from exc


def make_inputs(pins, pin_factory=None) -> dict[str, DoorSwitch]:
    """The unit's extra inputs (stop button, bin door) as switches, by input name."""
    from device.sensors.door import GpioDoorSwitch

    out: dict[str, DoorSwitch] = {}
    for name, (field, _active_open) in INPUT_PINS.items():
        pin = getattr(pins, field)
        if pin is not None:
            level = {"stop_button": "low", "tray": pins.tray_occupied_level}.get(name, pins.door_closed_level)
            out[name] = GpioDoorSwitch(pin, closed_level=level, pin_factory=pin_factory)
    return out


class Agent:
    """One station unit."""

    def __init__(
        self,
        cfg: DeviceConfig,
        *,
        pin_factory=None,
        door: DoorSwitch | None = None,
        outputs: Outputs | None = None,
        reader: BadgeReader | None = None,
        camera: Camera | None = None,
        inputs: dict[str, DoorSwitch] | None = None,
        print_server=None,
        build_hardware: bool = True,
        clock: ClockSource | None = None,
    ):
        self.cfg = cfg
        self.site = cfg.site
        self.station = cfg.station.id
        self.tz = ZoneInfo(cfg.time_zone)
        # The time events carry and whether it is synchronised: the kernel's on a unit, a
        # stand-in (synchronised, no offset) for a simulated one (mock pins), as with the pins.
        self.clock: ClockSource = clock or (StandinClock() if cfg.pins.factory == "mock" else SystemClock())
        t = cfg.timings
        # Each peripheral's health for the heartbeat; the reader's and camera's are their own.
        self._pins_health: HealthCell | None = None
        self._print_health: HealthCell | None = None
        if build_hardware:
            # Each factory imports its hardware library only when the config asks for it; a
            # library that cannot be imported stops the unit here, before anything starts.
            from device.libraries import check
            from device.sensors import make_reader

            check(cfg)
            pin_factory, door, outputs, inputs = self._make_pins(cfg, pin_factory, door, outputs, inputs)
            reader = reader if reader is not None else make_reader(cfg.reader)
            if print_server is None and cfg.station.kind == "printer":
                from device.printing import make_print_server

                print_server = make_print_server(cfg.printer)
        self.pin_factory = pin_factory
        self.inputs = inputs or {}
        if cfg.pins.factory == "mock":
            # A simulated unit starts with its cabinet shut (a mock pin's idle level would read
            # open), its stop button released and its bin closed.
            from device.simulate import set_door, set_input

            if cfg.pins.door is not None:
                set_door(self, False)
            for name in self.inputs:
                set_input(self, name, False)
        self.door_switch = door
        self.outputs = outputs
        self.reader = reader
        self._plain_reader_health = HealthCell("badge reader") if reader is not None else None
        # Never called directly: captures have a time limit and a missing camera is reopened.
        from device.camera import guarded_camera

        section = cfg.camera if build_hardware else cfg.camera.model_copy(update={"type": "none"})
        self.camera: CameraGuard | None = guarded_camera(section, self.station, tz=self.tz, camera=camera)
        # Slow requests (device.stations.effects.Work: the print server) run on their own thread.
        self.print_server = print_server
        if print_server is not None:
            self._print_health = HealthCell("print server")
        self._work_q: queue.Queue = queue.Queue()

        data = cfg.data_dir()
        # A store that cannot be read is moved aside and replaced; start() records each one.
        self.signer = station_signer(cfg)
        self.outbox, outbox_damage = open_outbox(
            data / "outbox.sqlite", site=self.site, station=self.station, capacity=cfg.storage.outbox_capacity,
            signer=self.signer,
        )
        self.policy, policy_damage = open_policy(
            data / "policy.json", site=self.site, station=self.station, public_key=cfg.policy.public_key,
            clock=lambda: self.clock.now(self.tz), slack_s=cfg.policy.future_slack_s,
            max_age_s=cfg.policy.max_age_h * 3600.0, when_expired=cfg.policy.when_expired,
        )
        self.storage_damage = [d for d in (outbox_damage, policy_damage) if d is not None]
        # The logic asks decide(badge); the agent supplies the wall-clock time of the tap.
        self._tap_wall: datetime | None = None
        self._last_entry: protocol.PolicyEntry | None = None
        self.logic = make_logic(cfg, self._decide)
        # (reason, offered version) already reported as policy.rejected: one event per version.
        self._rejected_reported: OrderedDict[tuple[str, int | None], None] = OrderedDict()
        self._rejected_times: list[float] = []
        self._debounce = Debouncer(t.debounce_ms / 1000.0)
        self.link = MqttLink(cfg.broker, site=self.site, station=self.station, kind=cfg.station.kind, on_input=self.post)

        self._q: queue.Queue[tuple] = queue.Queue()
        self._snap_q: queue.Queue[tuple | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connected = False
        self._inflight: dict[int, float] = {}
        self._sent_upto = 0
        self._snap_inflight: dict[str, float] = {}
        self._started_mono = time.monotonic()
        self._next_heartbeat = 0.0
        self._next_resend = 0.0
        self._debounce_deadline: float | None = None
        # Events that happened but could not be committed (disk full, I/O error), oldest first.
        self._unrecorded: list[Emit] = []
        self._unrecorded_snaps: list[protocol.Snapshot] = []
        self._storage_error: str | None = None
        self._storage_failed_since: datetime | None = None
        self._storage_kept_max = 0
        self._input_debounce: dict[str, Debouncer] = {}
        self._input_deadlines: dict[str, float] = {}
        self.decisions = 0  # badge taps decided (for figures)

    def _make_pins(self, cfg: DeviceConfig, pin_factory, door, outputs, inputs):
        """The unit's pin factory, door, outputs and extra inputs (those not given). GPIO that
        cannot be opened leaves the unit without them, its pins reported failed; a pin library
        that cannot be imported is LibraryMissing."""
        from device.outputs import make_outputs
        from device.sensors.door import make_door
        from device.sensors.pins import PinFactoryUnavailable, make_pin_factory, no_default_factory

        p = cfg.pins
        uses_pins = any(getattr(p, name) is not None for name in (
            "door", "lock", "led_granted", "led_denied", "buzzer", "power_relay", "stop_button",
            "bin_sensor", "tray"))
        if not uses_pins:
            return pin_factory, door, outputs, inputs
        self._pins_health = HealthCell("pins")
        # Without pins.factory gpiozero tries its backends in turn, warning about each that
        # fails: those reasons go into the one line of LibraryMissing, not onto the console.
        with warnings.catch_warnings(record=True) as fallbacks:
            warnings.simplefilter("always")
            try:
                if pin_factory is None:
                    pin_factory = make_pin_factory(p)
                door = door if door is not None else make_door(p, pin_factory)
                outputs = outputs if outputs is not None else make_outputs(p, pin_factory)
                inputs = inputs if inputs is not None else make_inputs(p, pin_factory)
            except ImportError as exc:  # gpiozero's BadPinFactory: no backend loads here
                raise no_default_factory([str(w.message) for w in fallbacks] or [str(exc)]) from exc
            except PinFactoryUnavailable as exc:
                self._pins_health.failed("gpio_unavailable", str(exc))
            except Exception as exc:  # a pin in use, no permission on /dev/gpiochip*, ...
                self._pins_health.failed("pin_failed", f"{type(exc).__name__}: {exc}")
        for w in fallbacks:
            _LOG.info("gpiozero: %s", w.message)
        if not self._pins_health.is_ok:
            _LOG.error("pins cannot be used (%s): running without door, lock and inputs",
                       self._pins_health.get().detail)
            for made in (door, outputs, *(inputs or {}).values()):
                try:
                    if made is not None:
                        made.close()
                except Exception:
                    _LOG.debug("closing a half-made pin device failed", exc_info=True)
            return pin_factory, None, None, {}
        return pin_factory, door, outputs, inputs

    # ---- time -------------------------------------------------------------------------------

    def wall(self, mono: float | None = None) -> datetime:
        """Aware local time of a monotonic instant (now if None)."""
        now_wall = self.clock.now(self.tz)
        if mono is None:
            return now_wall
        return now_wall - timedelta(seconds=max(0.0, time.monotonic() - mono))

    def _decide(self, badge: str) -> protocol.PolicyEntry:
        """The policy's effective entry for ``badge`` at the time of the tap being handled."""
        entry = self.policy.decide(badge, self._tap_wall or self.wall())
        self._last_entry = entry
        return entry

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> "Agent":
        """Start every thread; the station decides from its cached policy from here on."""
        now = time.monotonic()
        door_open = self.door_switch.is_open() if self.door_switch else False
        self._debounce = Debouncer(self.cfg.timings.debounce_ms / 1000.0, initial=door_open)
        self.logic.assume_door(door_open, now, self.wall(now))
        if self.outputs:
            self.outputs.lock()
            self.outputs.power_off()
        levels = {name: sw.is_open() for name, sw in self.inputs.items()}
        self._input_debounce = {name: Debouncer(self.cfg.timings.debounce_ms / 1000.0, initial=level)
                                for name, level in levels.items()}
        for damage in self.storage_damage:  # a fresh outbox's first event says why it is fresh
            self._commit(Emit(protocol.STORAGE_CORRUPT, self.wall(now), data=damage.data()))
        self._commit(
            Emit(
                "station.started",
                self.wall(now),
                data={
                    "policy_version": self.policy.version,
                    "outbox_depth": self.outbox.depth(),
                    "door": "open" if door_open else "closed",
                },
            )
        )
        # Each thread costs resident memory (its stack, often a malloc arena of its own), so a
        # unit runs only those it needs: the camera worker if it has a camera, the print worker
        # if it is a printer (only the printer logic asks for Work).
        self._threads = [threading.Thread(target=self._run, name=f"agent-{self.station}", daemon=True)]
        if self.camera:
            self._threads.append(threading.Thread(target=self._snapshot_worker, name="camera", daemon=True))
        if self.print_server is not None or self.cfg.station.kind == "printer":
            self._threads.append(threading.Thread(target=self._work_worker, name="work", daemon=True))
        for th in self._threads:
            th.start()
        if self.door_switch:
            self.door_switch.start(lambda is_open, t: self.post(("door_raw", is_open, t)))
        for name, sw in self.inputs.items():
            if self._input_active(name, levels[name]):
                # Found active at start (e.g. a bin left open): the logic hears it like an edge.
                self.post(("input", name, levels[name], now))
            def on_edge(is_open: bool, t: float, name: str = name) -> None:
                self.post(("input_raw", name, is_open, t))
            sw.start(on_edge)
        if self.reader:
            self.reader.start(lambda uid: self.post(("badge", uid, time.monotonic())))
        self.link.start()
        _LOG.info("station %s/%s started; %d events waiting", self.site, self.station, self.outbox.depth())
        return self

    def stop(self, timeout: float = STOP_S) -> None:
        """Stop threads, say offline, close files, within about ``timeout`` seconds whatever a
        peripheral does. The outbox keeps what is unacknowledged."""
        if self._stop.is_set():
            return
        deadline = time.monotonic() + timeout

        def left(most: float) -> float:
            return max(0.1, min(most, deadline - time.monotonic()))

        self._stop.set()
        if self.camera:
            self.camera.close(timeout=left(1.0))  # a capture in progress gives up at once
        if self.reader:
            try:
                self.reader.close(timeout=left(2.0))  # type: ignore[call-arg]
            except TypeError:  # a reader without a timeout (the stand-in)
                self.reader.close()
        if self.door_switch:
            self.door_switch.close()
        for sw in self.inputs.values():
            sw.close()
        self._q.put(("wake",))
        self._snap_q.put(None)
        self._work_q.put(None)
        for th in self._threads:
            th.join(timeout=left(5.0))
            if th.is_alive():
                _LOG.warning("thread %s did not stop in time; left behind", th.name)
        if self.print_server is not None:
            self.print_server.close()
        self.link.stop()
        if self.outputs:
            self.outputs.close()
        if any(th.is_alive() for th in self._threads if th.name.startswith("agent-")):
            return  # the loop still owns the outbox; the process exit closes it
        self.outbox.close()

    def post(self, item: tuple) -> None:
        """Hand an input to the loop (thread-safe)."""
        self._q.put(item)

    def call(self, fn: Callable[["Agent"], object], timeout: float = 10.0):
        """Run ``fn(agent)`` on the loop thread and return its result (for tests and status)."""
        done = threading.Event()
        box: list = []

        def run(agent):
            try:
                box.append((True, fn(agent)))
            except BaseException as exc:  # handed back to the caller
                box.append((False, exc))
            done.set()

        self.post(("call", run))
        if not done.wait(timeout):
            raise TimeoutError("agent loop did not answer")
        ok, value = box[0]
        if not ok:
            raise value
        return value

    # ---- the loop ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            deadlines = [self._next_heartbeat, self._next_resend]
            if self._debounce_deadline is not None:
                deadlines.append(self._debounce_deadline)
            deadlines.extend(self._input_deadlines.values())
            logic_deadline = self.logic.next_deadline()
            if logic_deadline is not None:
                deadlines.append(logic_deadline)
            timeout = max(0.0, min(min(deadlines) - now, 1.0))
            try:
                item = self._q.get(timeout=timeout)
            except queue.Empty:
                item = None
            try:
                if item is not None:
                    self._handle(item)
                    # Drain what else is waiting before timers, so bursts are handled together.
                    for _ in range(1000):
                        try:
                            self._handle(self._q.get_nowait())
                        except queue.Empty:
                            break
                self._timers(time.monotonic())
            except Exception:
                # The station must keep deciding; the failure is logged with its traceback.
                _LOG.exception("agent loop error")

    def _handle(self, item: tuple) -> None:
        what = item[0]
        if what == "badge":
            _, uid, t = item
            self.decisions += 1
            self._tap_wall = self.wall(t)
            self._last_entry = None
            try:
                effects = self.logic.badge(uid.upper(), t, self._tap_wall)
            finally:
                self._tap_wall = None
            if self._last_entry is not None:
                for eff in effects:
                    if isinstance(eff, Emit) and eff.kind.startswith("badge."):
                        eff.data.setdefault("decision", self._last_entry.decision)
            self._apply(effects)
        elif what == "door_raw":
            _, is_open, t = item
            if self.cfg.timings.debounce_ms == 0:
                self._apply(self.logic.door(is_open, t, self.wall(t)))
            else:
                self._debounce_deadline = self._debounce.raw(is_open, t)
        elif what == "input_raw":
            _, name, is_open, t = item
            if self.cfg.timings.debounce_ms == 0:
                self._handle(("input", name, is_open, t))
            else:
                self._input_deadlines[name] = self._input_debounce[name].raw(is_open, t)
        elif what == "input":
            _, name, is_open, t = item
            self._apply(feed_input(self.logic, name, self._input_active(name, is_open), t, self.wall(t)))
        elif what == "work_done":
            _, work, result, t = item
            handler = getattr(self.logic, "work_done", None)
            if handler is not None:
                self._apply(handler(work, result, t, self.wall(t)))
            self._note_print_server()
        elif what == "ack":
            self._on_ack(item[1])
        elif what == "policy":
            try:
                self.policy.offer(item[1])
            except PolicyRejected as exc:
                _LOG.error("policy refused: %s", exc)
                self._report_rejected(exc)
        elif what == "policy-control":
            held = self.policy.version
            try:
                if self.policy.control(item[1]) and self.policy.version != held:
                    _LOG.info("policy version %s in force after a key change or reset", self.policy.version)
            except PolicyRejected as exc:
                _LOG.error("policy control message refused: %s", exc)
                self._report_rejected(exc)
        elif what == "link":
            self._connected = item[1]
            self._inflight.clear()
            self._snap_inflight.clear()
            self._sent_upto = 0
            if self._connected:
                self._next_heartbeat = 0.0
                self._pump()
        elif what == "snapshot":
            self._unrecorded_snaps.append(item[1])
            self._retry_unrecorded()
            self._pump()
        elif what == "snapshot_failed":
            _, failed, t = item
            self._record([Emit("snapshot.failed", self.wall(t), data=failed.model_dump(exclude_none=True))])
            self._pump()
        elif what == "call":
            item[1](self)

    def _timers(self, now: float) -> None:
        if self._debounce_deadline is not None and now >= self._debounce_deadline:
            self._debounce_deadline = None
            edge_at = self._debounce.changed_at
            level = self._debounce.poll(now)
            if level is not None and edge_at is not None:  # poll() gives a level only after an edge
                # The event carries the time the door moved, not the end of the debounce wait.
                self._apply(self.logic.door(level, edge_at, self.wall(edge_at)))
        for name, input_deadline in list(self._input_deadlines.items()):
            if now >= input_deadline:
                del self._input_deadlines[name]
                deb = self._input_debounce[name]
                edge_at = deb.changed_at
                level = deb.poll(now)
                if level is not None:
                    self._handle(("input", name, level, edge_at))
        deadline = self.logic.next_deadline()
        if deadline is not None and now >= deadline:
            self._apply(self.logic.tick(now, self.wall(now)))
        if self._unrecorded or self._unrecorded_snaps:
            self._retry_unrecorded()
        if now >= self._next_resend:
            self._next_resend = now + max(0.2, self.cfg.timings.ack_timeout_s / 4)
            self._resend(now)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.cfg.timings.heartbeat_s
            # A policy refused while this clock was behind may be good now.
            self.policy.retry_pending()
            self._heartbeat(now)

    @staticmethod
    def _input_active(name: str, is_open: bool) -> bool:
        """An input's contact level as the logic sees it: pressed, or open."""
        active_open = INPUT_PINS.get(name, (name, True))[1]
        return is_open if active_open else not is_open

    def _report_rejected(self, exc: PolicyRejected) -> None:
        """Tell the hub (through the outbox) that an offered policy was refused, once per reason
        and offered version, so a retained bad policy does not add an event at every reconnect."""
        offered = exc.offered_version
        key = (exc.reason, offered)
        if key in self._rejected_reported:
            return
        now = time.monotonic()
        self._rejected_times = [t for t in self._rejected_times if now - t < 3600.0]
        if len(self._rejected_times) >= REJECTED_PER_HOUR:
            _LOG.warning("policy.rejected not recorded for version %s: %d this hour already",
                         offered, len(self._rejected_times))
            return
        self._rejected_times.append(now)
        self._rejected_reported[key] = None
        while len(self._rejected_reported) > REJECTED_MEMORY:
            self._rejected_reported.popitem(last=False)
        data = {"reason": exc.reason, "offered_version": offered, "held_version": self.policy.version}
        self._commit(Emit("policy.rejected", self.wall(), data=data))
        self._pump()

    # ---- effects ----------------------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        # Record first: a decision the station cannot write down is not carried out (no unlock,
        # no power, red light), so nothing happens that the audit trail does not know about.
        # What happened anyway (a door forced) is kept in memory until the disk takes it again,
        # and the heartbeat says so, so the hub raises the alarm.
        recorded = self._record([e for e in effects if isinstance(e, Emit)])
        for eff in effects:
            if not recorded and isinstance(eff, (Unlock, PowerOn, Work)):
                continue
            if isinstance(eff, Work):
                self._work_q.put(eff)  # the worker runs it and posts the result back
            elif isinstance(eff, Unlock) and self.outputs:
                self.outputs.unlock()
            elif isinstance(eff, Lock) and self.outputs:
                self.outputs.lock()
            elif isinstance(eff, PowerOn) and self.outputs:
                self.outputs.power_on()
            elif isinstance(eff, PowerOff) and self.outputs:
                self.outputs.power_off()
            elif isinstance(eff, Feedback) and self.outputs:
                granted = eff.result == "granted" and recorded
                (self.outputs.granted if granted else self.outputs.denied)()
        self._pump()

    def _record(self, emits: list[Emit]) -> bool:
        """Commit ``emits`` in order; False if any had to be kept in memory instead."""
        ok = True
        for eff in emits:
            if self._unrecorded:
                # Keep the order: nothing overtakes an event still waiting for the disk.
                self._unrecorded.append(eff)
                ok = False
                continue
            try:
                self._commit(eff)
            except (sqlite3.Error, OSError) as exc:
                _LOG.error("cannot record %s (%s); kept in memory until storage works again", eff.kind, exc)
                self._unrecorded.append(eff)
                self._storage_failed(exc)
                ok = False
        return ok

    def _storage_failed(self, exc: Exception) -> None:
        self._storage_error = f"{type(exc).__name__}: {exc}"[:300]
        if self._storage_failed_since is None:
            self._storage_failed_since = self.wall()
        self._storage_kept_max = max(self._storage_kept_max, len(self._unrecorded) + len(self._unrecorded_snaps))

    def _retry_unrecorded(self) -> None:
        """Write what could not be recorded, oldest first, as soon as the disk takes it."""
        while self._unrecorded_snaps:
            try:
                self.outbox.add_snapshot(self._unrecorded_snaps[0])
            except (sqlite3.Error, OSError) as exc:
                _LOG.error("cannot record a snapshot (%s); kept in memory", exc)
                self._storage_failed(exc)
                return
            self._unrecorded_snaps.pop(0)
        if not self._unrecorded:
            return
        while self._unrecorded:
            try:
                self._commit(self._unrecorded[0])
            except (sqlite3.Error, OSError) as exc:
                self._storage_failed(exc)
                return
            self._unrecorded.pop(0)
        # _storage_error stays until a heartbeat has reported it (the live alarm); the outage
        # itself becomes an event, so the hub learns of it even if no heartbeat reached it.
        _LOG.warning("storage works again; every kept event is recorded")
        if self._storage_failed_since is not None:
            since, kept = self._storage_failed_since, self._storage_kept_max
            self._storage_failed_since, self._storage_kept_max = None, 0
            try:
                self._commit(Emit("storage.failed", self.wall(), data={
                    "since": since.isoformat(), "kept": kept, "error": self._storage_error or ""}))
            except (sqlite3.Error, OSError) as exc:
                self._storage_failed(exc)
        self._pump()

    def _commit(self, eff: Emit) -> protocol.Event:
        data = dict(eff.data)
        if not self._connected:
            # Decided from the cached policy with no link to the hub: the record says so.
            data.setdefault("offline", True)
        data.setdefault("policy_version", self.policy.version)
        if self.clock.synchronised() is False:
            data[protocol.CLOCK_UNSYNCED] = True  # its time may be hours off (no RTC on a Pi)
        if self.policy.expired():
            data["policy_expired"] = True  # decided from a policy past its expiry
        event = self.outbox.add(eff.kind, eff.at, badge=eff.badge, person=eff.person, data=data)
        _LOG.info("event %d %s badge=%s person=%s", event.seq, event.kind, event.badge, event.person)
        if eff.snapshot and self.camera:
            self._snap_q.put((event.id, event.kind))
        return event

    def _work_worker(self) -> None:
        """Runs Work effects one at a time; a slow print server never holds up the loop."""
        from device.printing import execute

        while True:
            work = self._work_q.get()
            if work is None:
                return
            result = execute(self.print_server, work)
            self.post(("work_done", work, result, time.monotonic()))

    def _snapshot_worker(self) -> None:
        """Takes the photos events ask for, one at a time, and keeps the camera open: a camera
        missing or failed is tried again when its retry is due (CameraGuard.maintain)."""
        camera = self.camera
        assert camera is not None
        while not self._stop.is_set():
            try:
                job = self._snap_q.get(timeout=camera.maintain())
            except queue.Empty:
                continue
            if job is None:
                return
            event_id, label = job
            code: str | None
            detail: str | None
            try:
                jpeg = fit_jpeg(camera.capture(label))
            except SnapshotFailure as exc:
                code, detail = exc.code, exc.detail
            except Exception as exc:  # a frame that cannot be made to fit
                _LOG.exception("snapshot for %s failed", event_id)
                code, detail = "bad_frame", f"{type(exc).__name__}: {exc}"
            else:
                code = detail = None
            if code is not None:
                if self._stop.is_set():
                    return  # stopping: the capture was given up, not failed
                _LOG.warning("no snapshot for %s %s: %s (%s)", label, event_id, code, detail)
                self.post(("snapshot_failed", protocol.SnapshotFailed(
                    event_id=event_id, for_kind=label, error=code,
                    detail=(detail or "")[:protocol.MAX_HEALTH_DETAIL] or None), time.monotonic()))
                continue
            snap = protocol.Snapshot(
                event_id=event_id,
                site=self.site,
                station=self.station,
                # The station's clock, as its events carry (not the camera's, nor the bare system's).
                taken_at=self.clock.now(self.tz),
                image=base64.b64encode(jpeg).decode(),
                clock_unsynced=True if self.clock.synchronised() is False else None,
            )
            self.post(("snapshot", snap))

    # ---- sending ----------------------------------------------------------------------------

    def _pump(self) -> None:
        if not self._connected:
            return
        now = time.monotonic()
        free = self.cfg.timings.send_window - len(self._inflight)
        if free > 0:
            rows = self.outbox.pending(after_seq=self._sent_upto, limit=free)
            for seq, payload in rows:
                self.link.publish("event", payload)
                self._inflight[seq] = now
            if rows:
                self._sent_upto = rows[-1][0]
        for event_id, payload in self.outbox.pending_snapshots(limit=20):
            if event_id not in self._snap_inflight:
                self.link.publish("snapshot", payload)
                self._snap_inflight[event_id] = now

    def _resend(self, now: float) -> None:
        if not self._connected:
            return
        limit = self.cfg.timings.ack_timeout_s
        stale = [seq for seq, t in self._inflight.items() if now - t > limit]
        if stale:
            _LOG.warning("no ack for %d events within %.1fs; sending again", len(stale), limit)
            resent = self.outbox.payloads(stale)
            for seq, payload in resent:
                self.link.publish("event", payload)
                self._inflight[seq] = now
            for seq in set(stale) - {seq for seq, _ in resent}:
                self._inflight.pop(seq, None)  # acknowledged meanwhile
        stale_snaps = [eid for eid, t in self._snap_inflight.items() if now - t > limit]
        for eid in stale_snaps:
            del self._snap_inflight[eid]
        if stale_snaps:
            self._pump()

    def _on_ack(self, payload: bytes) -> None:
        try:
            ack = protocol.parse_hub_message(protocol.Ack, payload)
        except protocol.ProtocolError as exc:
            _LOG.error("ignoring malformed ack: %s", exc)
            return
        if ack.station != self.station:
            _LOG.error("ignoring ack addressed to %s", ack.station)
            return
        # Seqs count per outbox incarnation: an ack for a replaced outbox deletes nothing here.
        seqs = ack.seq_set() if ack.incarnation == self.outbox.incarnation else set()
        if ack.seqs and not seqs:
            _LOG.warning("ignoring acked seqs of incarnation %s (this outbox: %s)",
                         ack.incarnation, self.outbox.incarnation)
        if seqs:
            self.outbox.ack(seqs)
            for seq in seqs:
                self._inflight.pop(seq, None)
        if ack.snapshots:
            self.outbox.ack_snapshots(ack.snapshots)
            for eid in ack.snapshots:
                self._snap_inflight.pop(eid, None)
        self._pump()

    def _heartbeat(self, now: float) -> None:
        if not self._connected:
            return
        hb = protocol.Heartbeat(
            site=self.site,
            station=self.station,
            kind=self.cfg.station.kind,
            at=self.wall(now),
            uptime_s=round(now - self._started_mono, 3),
            next_seq=self.outbox.next_seq(),
            outbox_depth=self.outbox.depth(),
            outbox_capacity=self.outbox.capacity,
            policy_version=self.policy.version,
            door="open" if self.logic.door_open else "closed",
            locked=None if self.outputs is None else self.outputs.is_locked,
            unrecorded=len(self._unrecorded) + len(self._unrecorded_snaps),
            storage_error=self._storage_error,
            incarnation=self.outbox.incarnation,
            peripherals=self.peripherals(),
            clock_synced=self.clock.synchronised(),
            policy_expired=self.policy.expired() or None,
            policy_refused=self.policy.refused,
        )
        self.link.publish("heartbeat", protocol.dumps(hb), qos=0)
        if not self._unrecorded and not self._unrecorded_snaps:
            self._storage_error = None  # reported; storage works again


    def peripherals(self) -> dict[protocol.Peripheral, protocol.PeripheralHealth]:
        """The health of each peripheral the unit has, by name (as the heartbeat reports it)."""
        cells: dict[protocol.Peripheral, object] = {
            "pins": self._pins_health,
            # A reader without a health of its own (the stand-in) works whenever it exists.
            "reader": getattr(self.reader, "health", self._plain_reader_health),
            "camera": self.camera.health if self.camera is not None else None,
            "print_server": self._print_health,
        }
        return {name: cell.get() for name, cell in cells.items() if isinstance(cell, HealthCell)}

    def _note_print_server(self) -> None:
        """The print server's health as the printer logic last found it (cups.down / cups.up)."""
        up = getattr(self.logic, "cups_up", None)
        if self._print_health is None or up is None:
            return
        if up:
            self._print_health.ok()
        else:
            self._print_health.failed("cups_down", "the print server does not answer")


def run(cfg: DeviceConfig, scenario_file: str | None = None) -> int:
    """Run the agent until SIGINT/SIGTERM (``kagiban device``)."""
    import signal

    agent = Agent(cfg)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    agent.start()
    runner = None
    if scenario_file:
        from device.simulate import ScenarioRunner, load_scenario

        runner = ScenarioRunner(agent, load_scenario(scenario_file))
        runner.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        if runner:
            runner.stop()
        agent.stop()
    return 0
