"""The Pi agent: one station unit, its parts wired together and its loop.

The parts, each in its own module:
- device.hardware: sensors, reader, camera, outputs and print server, from config or simulated;
- device.inbox: the messages other threads post to the loop, one frozen type per kind;
- device.contacts: the door and the extra inputs, debounced one way;
- device.stations: the station's pure logic (inputs and decisions in, effects out);
- device.recorder: the outbox, and the events kept in memory while the disk is full;
- device.sender: the send window, acks, resends and the heartbeat's timing;
- device.workers: the camera and print-server threads;
- device.rejections: which refused policies are recorded.

Threads: gpiozero, the badge reader, paho and the workers each run their own; they only
``post()`` into the inbox. The loop thread alone owns the station logic, the recorder and the
sender (the rpi2home-assistant pattern), so there are no locks around state; :meth:`Agent.run`
dispatches each message to the part that owns it.

Peripherals degrade the station, never stop it (device.hardware, device.camera.guard); the
event whose photo failed gets a ``snapshot.failed`` event, and every heartbeat carries each
peripheral's health. Only a hardware library that cannot be imported stops the agent at start
(device.missing_library.LibraryMissing, exit 2). Stopping takes at most ``STOP_S`` seconds whatever a
peripheral does (systemd's TimeoutStopSec is 20).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from datetime import datetime, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

from device import event_data as ev
from device import inbox, wire
from device.camera.base import Camera
from device.camera.guard import CameraGuard
from device.clock import ClockSource, StandinClock, SystemClock
from device.config import DeviceConfig
from device.contacts import DOOR, Contacts, Settled
from device.hardware import assemble, input_active
from device.link import MqttLink
from device.outputs import Outputs
from device.policy_cache import PolicyRejected
from device.recorder import Recorder
from device.rejections import RejectionLimit
from device.sender import Sender
from device.sensors.badge import BadgeReader
from device.sensors.door import DoorSwitch
from device.stations import make_logic
from device.stations.checkin import check_in
from device.stations.effects import Answer, Effect, Emit, Feedback, Lock, PowerOff, PowerOn, Signal, Unlock, Work
from device.storage_check import open_outbox, open_policy
from device.workers import SnapshotWorker, WorkWorker
from kagiban.wire import CLOCK_UNSYNCED, MAX_ALARM_BYTES, STORAGE_CORRUPT, Peripheral, ProtocolError
from kagiban.configfile import ConfigError
from kagiban.event_signing import EventSigner, load_station_key

_LOG = logging.getLogger(__name__)

# The longest stop() may take: well inside systemd's TimeoutStopSec=20, whatever hangs.
STOP_S = 8.0


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
        self.hardware = assemble(cfg, tz=self.tz, pin_factory=pin_factory, door=door, outputs=outputs,
                                 reader=reader, camera=camera, inputs=inputs, print_server=print_server,
                                 build=build_hardware)

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
        self.logic = make_logic(cfg)
        self.link = MqttLink(cfg.broker, site=self.site, station=self.station, kind=cfg.station.kind,
                             on_input=self.post, site_alarm=self.logic.hears_site_alarm)
        self.sender = Sender(self.link, self.outbox, station=self.station, window=t.send_window,
                             ack_timeout_s=t.ack_timeout_s, heartbeat_s=t.heartbeat_s)
        self.recorder = Recorder(self.outbox, annotate=self._annotate, recorded=self._recorded, wall=self.wall)
        self.contacts = Contacts(t.debounce_ms / 1000.0)
        self.rejections = RejectionLimit()

        self._inbox: queue.Queue[inbox.Message] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started_mono = time.monotonic()
        hw = self.hardware
        self.snapshots = SnapshotWorker(hw.camera, post=self.post, site=self.site, station=self.station,
                                        clock=self.clock, tz=self.tz, stopping=self._stop) if hw.camera else None
        self.work = WorkWorker(hw.print_server, post=self.post)
        self.decisions = 0  # badge taps decided (for figures)

    # ---- the hardware, as callers knew it ---------------------------------------------------

    @property
    def pin_factory(self) -> Any:
        return self.hardware.pin_factory

    @property
    def door_switch(self) -> DoorSwitch | None:
        return self.hardware.door

    @property
    def outputs(self) -> Outputs | None:
        return self.hardware.outputs

    @property
    def inputs(self) -> dict[str, DoorSwitch]:
        return self.hardware.inputs

    @property
    def reader(self) -> BadgeReader | None:
        return self.hardware.reader

    @property
    def camera(self) -> CameraGuard | None:
        return self.hardware.camera

    @property
    def print_server(self) -> Any:
        return self.hardware.print_server

    @property
    def connected(self) -> bool:
        """Whether the station has a link to the hub (as the loop last heard)."""
        return self.sender.connected

    def peripherals(self) -> dict[Peripheral, wire.PeripheralHealth]:
        """The health of each peripheral the unit has, by name (as the heartbeat reports it)."""
        return self.hardware.peripherals()

    # ---- time -------------------------------------------------------------------------------

    def wall(self, mono: float | None = None) -> datetime:
        """Aware local time of a monotonic instant (now if None)."""
        now_wall = self.clock.now(self.tz)
        if mono is None:
            return now_wall
        return now_wall - timedelta(seconds=max(0.0, time.monotonic() - mono))

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> "Agent":
        """Start every thread; the station decides from its cached policy from here on."""
        now = time.monotonic()
        hw = self.hardware
        door_open = hw.door.is_open() if hw.door else False
        levels = {name: sw.is_open() for name, sw in hw.inputs.items()}
        self.contacts.reset({DOOR: door_open, **levels} if hw.door else levels)
        self.logic.assume_door(door_open, now, self.wall(now))
        hw.safe()
        for damage in self.storage_damage:  # a fresh outbox's first event says why it is fresh
            self.recorder.commit(Emit(STORAGE_CORRUPT, self.wall(now), data=damage.data()))
        self.recorder.commit(Emit.of(ev.StationStarted(
            policy_version=self.policy.version, outbox_depth=self.outbox.depth(),
            door="open" if door_open else "closed"), self.wall(now)))
        # Each thread costs resident memory (its stack, often a malloc arena of its own), so a
        # unit runs only those it needs: the camera worker if it has a camera, the print worker
        # if it is a printer (only the printer logic asks for Work).
        self._threads = [threading.Thread(target=self.run, name=f"agent-{self.station}", daemon=True)]
        if self.snapshots:
            self._threads.append(threading.Thread(target=self.snapshots.run, name="camera", daemon=True))
        if hw.print_server is not None or self.cfg.station.kind == "printer":
            self._threads.append(threading.Thread(target=self.work.run, name="work", daemon=True))
        for th in self._threads:
            th.start()
        if hw.door:
            hw.door.start(lambda is_open, t: self.post(inbox.ContactMoved(DOOR, is_open, t)))
        for name, sw in hw.inputs.items():
            if input_active(name, levels[name]):
                # Found active at start (e.g. a bin left open): the logic hears it like an edge.
                self.post(inbox.ContactFound(name, levels[name], now))
            def on_edge(is_open: bool, t: float, name: str = name) -> None:
                self.post(inbox.ContactMoved(name, is_open, t))
            sw.start(on_edge)
        if hw.reader:
            hw.reader.start(lambda uid: self.post(inbox.BadgeTapped(uid, time.monotonic())))
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
        hw = self.hardware
        if hw.camera:
            hw.camera.close(timeout=left(1.0))  # a capture in progress gives up at once
        hw.close_inputs(reader_timeout=left(2.0))
        self._inbox.put(inbox.Wake())
        if self.snapshots:
            self.snapshots.close()
        self.work.close()
        for th in self._threads:
            th.join(timeout=left(5.0))
            if th.is_alive():
                _LOG.warning("thread %s did not stop in time; left behind", th.name)
        if hw.print_server is not None:
            hw.print_server.close()
        self.link.stop()
        if hw.outputs:
            hw.outputs.close()
        if any(th.is_alive() for th in self._threads if th.name.startswith("agent-")):
            return  # the loop still owns the outbox; the process exit closes it
        self.outbox.close()

    def post(self, message: inbox.Message) -> None:
        """Hand a message to the loop (thread-safe)."""
        self._inbox.put(message)

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

        self.post(inbox.Call(run))
        if not done.wait(timeout):
            raise TimeoutError("agent loop did not answer")
        ok, value = box[0]
        if not ok:
            raise value
        return value

    # ---- the loop ---------------------------------------------------------------------------

    def run(self) -> None:
        """The loop: wait for a message or the next deadline, dispatch, run what is due."""
        while not self._stop.is_set():
            now = time.monotonic()
            deadlines = [self.sender.next_deadline()]
            for due in (self.contacts.next_deadline(), self.logic.next_deadline()):
                if due is not None:
                    deadlines.append(due)
            timeout = max(0.0, min(min(deadlines) - now, 1.0))
            try:
                message: inbox.Message | None = self._inbox.get(timeout=timeout)
            except queue.Empty:
                message = None
            try:
                if message is not None:
                    self.dispatch(message)
                    # Drain what else is waiting before timers, so bursts are handled together.
                    for _ in range(1000):
                        try:
                            self.dispatch(self._inbox.get_nowait())
                        except queue.Empty:
                            break
                self._timers(time.monotonic())
            except Exception:
                # The station must keep deciding; the failure is logged with its traceback.
                _LOG.exception("agent loop error")

    def dispatch(self, message: inbox.Message) -> None:
        """Hand one message to the part that owns it (loop thread only)."""
        if isinstance(message, inbox.BadgeTapped):
            self._badge(message.uid.upper(), message.at)
        elif isinstance(message, inbox.ContactMoved):
            self._settled(self.contacts.edge(message.name, message.is_open, message.at))
        elif isinstance(message, inbox.ContactFound):
            self._settled([Settled(message.name, message.is_open, message.at)])
        elif isinstance(message, inbox.WorkDone):
            self._apply(self.logic.work_done(message.work, message.result, message.at, self.wall(message.at)))
            self.hardware.note_print_server(self.logic.print_server_up)
        elif isinstance(message, inbox.AckArrived):
            self.sender.ack(message.payload)
        elif isinstance(message, inbox.PolicyArrived):
            try:
                self.policy.offer(message.payload)
            except PolicyRejected as exc:
                _LOG.error("policy refused: %s", exc)
                self._report_rejected(exc)
        elif isinstance(message, inbox.PolicyControlArrived):
            held = self.policy.version
            try:
                if self.policy.control(message.payload) and self.policy.version != held:
                    _LOG.info("policy version %s in force after a key change or reset", self.policy.version)
            except PolicyRejected as exc:
                _LOG.error("policy control message refused: %s", exc)
                self._report_rejected(exc)
        elif isinstance(message, inbox.SiteAlarmArrived):
            self._site_alarm(message.payload)
        elif isinstance(message, inbox.LinkChanged):
            self.sender.link_changed(message.connected)
        elif isinstance(message, inbox.SnapshotTaken):
            self.recorder.add_snapshot(message.snapshot)
            self.sender.pump()
        elif isinstance(message, inbox.SnapshotMissed):
            f = message.failed  # read by name: the same whatever type the message has
            named: dict[str, Any] = {"event_id": f.event_id, "for_kind": f.for_kind, "error": f.error}
            if f.detail is not None:
                named["detail"] = f.detail
            failed = ev.SnapshotFailed(**named)
            self.recorder.record([Emit.of(failed, self.wall(message.at))])
            self.sender.pump()
        elif isinstance(message, inbox.Call):
            message.fn(self)

    def _site_alarm(self, payload: bytes) -> None:
        """The site's open critical alerts, as the hub last published them (retained)."""
        try:
            alarm = wire.parse_hub_message(wire.SiteAlarm, payload, limit=MAX_ALARM_BYTES)
        except ProtocolError as exc:
            _LOG.warning("site alarm state refused: %s", exc)
            return
        if alarm.site != self.site:
            _LOG.warning("site alarm state for site %s ignored (this unit is at %s)", alarm.site, self.site)
            return
        now = time.monotonic()
        self._apply(self.logic.site_alarm(alarm, now, self.wall(now)))

    def _badge(self, badge: str, at: float) -> None:
        """A tap: the policy decides at the tap's time, the logic acts on the decision."""
        self.decisions += 1
        wall = self.wall(at)
        held = self.policy.current
        session = held.rollcall if held is not None else None
        self.logic.roll_call(session)
        entry = self.policy.decide(badge, wall)
        if session is not None and not self.logic.checks_in_itself:
            # A station picked for a roll call: the tap checks in instead of its usual use.
            self._apply(check_in(session, badge, entry, wall))
            return
        self._apply(self.logic.badge(badge, entry, at, wall))

    def _settled(self, changes: list[Settled]) -> None:
        """Contacts that settled: the door to the logic's door, the rest as its inputs. The
        logic hears the time the contact moved, not the end of the debounce wait."""
        for c in changes:
            wall = self.wall(c.at)
            if c.name == DOOR:
                self._apply(self.logic.door(c.is_open, c.at, wall))
            else:
                self._apply(self.logic.input(c.name, input_active(c.name, c.is_open), c.at, wall))

    def _timers(self, now: float) -> None:
        self._settled(self.contacts.due(now))
        deadline = self.logic.next_deadline()
        if deadline is not None and now >= deadline:
            self._apply(self.logic.tick(now, self.wall(now)))
        if self.recorder.kept:
            self.recorder.retry()
            self.sender.pump()
        self.sender.tick(now)
        if self.sender.heartbeat_due(now):
            # A policy refused while this clock was behind may be good now.
            self.policy.retry_pending()
            if self.sender.heartbeat(self._heartbeat(now)):
                self.recorder.reported()

    def _report_rejected(self, exc: PolicyRejected) -> None:
        """Tell the hub (through the outbox) that an offered policy was refused, once per reason
        and offered version (device.rejections)."""
        if not self.rejections.allow(exc.reason, exc.offered_version, time.monotonic()):
            return
        rejected = ev.PolicyRejected(reason=exc.reason, offered_version=exc.offered_version,
                                     held_version=self.policy.version)
        self.recorder.commit(Emit.of(rejected, self.wall()))
        self.sender.pump()

    def _heartbeat(self, now: float) -> wire.Heartbeat:
        outputs = self.hardware.outputs
        return wire.Heartbeat(
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
            # Only a unit with a lock relay has a lock to report (a shredder's outputs do not).
            locked=None if outputs is None or self.cfg.pins.lock is None else outputs.is_locked,
            unrecorded=self.recorder.kept,
            storage_error=self.recorder.error,
            incarnation=self.outbox.incarnation,
            peripherals=self.peripherals(),
            clock_synced=self.clock.synchronised(),
            policy_expired=self.policy.expired() or None,
            policy_refused=self.policy.refused,
            signal=self.logic.signal,
        )

    # ---- effects ----------------------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        # Record first: a decision the station cannot write down is not carried out (no unlock,
        # no power, red light), so nothing happens that the audit trail does not know about.
        # What happened anyway (a door forced) is kept in memory until the disk takes it again,
        # and the heartbeat says so, so the hub raises the alarm.
        recorded = self.recorder.record([e for e in effects if isinstance(e, Emit)])
        outputs = self.hardware.outputs
        for eff in effects:
            if not recorded and isinstance(eff, (Unlock, PowerOn, Work)):
                continue
            if isinstance(eff, Work):
                self.work.ask(eff)  # the worker runs it and posts the result back
            elif outputs is None:
                continue
            elif isinstance(eff, Unlock):
                outputs.unlock()
            elif isinstance(eff, Lock):
                outputs.lock()
            elif isinstance(eff, PowerOn):
                outputs.power_on()
            elif isinstance(eff, PowerOff):
                outputs.power_off()
            elif isinstance(eff, Signal):
                outputs.signal(lamp=eff.lamp, sound=eff.sound)
            elif isinstance(eff, Answer):
                # A tap the outbox could not take was not recorded: red, as at a refusal.
                if recorded:
                    outputs.answer(eff.result)
                else:
                    outputs.denied()
            elif isinstance(eff, Feedback):
                granted = eff.result == "granted" and recorded
                (outputs.granted if granted else outputs.denied)()
        self.sender.pump()

    def _annotate(self, data: dict[str, Any]) -> None:
        """What every event says about the station when it is recorded."""
        if not self.sender.connected:
            # Decided from the cached policy with no link to the hub: the record says so.
            data.setdefault("offline", True)
        data.setdefault("policy_version", self.policy.version)
        if self.clock.synchronised() is False:
            data[CLOCK_UNSYNCED] = True  # its time may be hours off (no RTC on a Pi)
        if self.policy.expired():
            data["policy_expired"] = True  # decided from a policy past its expiry

    def _recorded(self, event: wire.Event, emit: Emit) -> None:
        """An event is committed: ask the camera for the photo it wants."""
        if emit.snapshot and self.snapshots:
            self.snapshots.ask(event.id, event.kind)


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
