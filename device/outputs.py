"""What a unit drives: the lock relay, the green and red LEDs, the buzzer, and an annunciator's lamp.

A roll-call unit answers each tap with the same LEDs and buzzer in four patterns (``answer``).

Fail-secure: the lock relay is de-energised (locked) when the agent starts and before it
releases the pin on close; once released, a fail-secure strike and the relay board's own
default keep the door locked.
The lock relay is driven on/off by ``lock_active_high``; pins not configured are simply absent.
A shredder's power relay is fail-safe the other way round: off (de-energised) at start and
before the pin is released, so the shredder never runs without a session.
Feedback (LED, beeps) runs in gpiozero's background threads, so no call here blocks.
An annunciator's lamp (a signal tower's light) and buzzer are held steadily on while it signals
(a signal tower's buzzer makes its own pattern); its feedback beeps do not apply.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Protocol

from device.config import PinsSection

_LOG = logging.getLogger(__name__)

# A short beep, as a pair of (on, off) seconds.
_BEEP_ON_S = 0.1
_BEEP_OFF_S = 0.1
# A roll-call unit's "no session open": one long beep, unlike every other answer.
_LONG_BEEP_S = 0.8


class Outputs(Protocol):
    """The unit's actuators and feedback."""

    @property
    def is_locked(self) -> bool:
        """True while the lock is locked."""

    def unlock(self) -> None:
        """Energise the lock relay (release the lock)."""

    def lock(self) -> None:
        """De-energise the lock relay (lock)."""

    def granted(self) -> None:
        """Green LED for about a second and one short beep; returns at once."""

    def denied(self) -> None:
        """Red LED for about a second and three short beeps; returns at once."""

    @property
    def is_powered(self) -> bool:
        """True while the power relay is energised (the shredder may run)."""

    def power_on(self) -> None:
        """Energise the power relay."""

    def power_off(self) -> None:
        """De-energise the power relay."""

    @property
    def is_lit(self) -> bool:
        """True while the lamp is on (an annunciator)."""

    @property
    def is_sounding(self) -> bool:
        """True while the buzzer sounds as an alarm (an annunciator)."""

    def answer(self, result: str) -> None:
        """A roll-call unit's answer to a tap: ``present`` green and one beep, ``late`` green and
        two beeps, ``unexpected`` red and three beeps, ``no_session`` red and one long beep."""

    def signal(self, *, lamp: bool, sound: bool) -> None:
        """Lamp and alarm buzzer on or off (sound only with the lamp lit)."""

    def close(self) -> None:
        """Lock, switch everything off and release the pins."""


class GpioOutputs:
    """Outputs on GPIO pins through gpiozero; any pin may be None (absent)."""

    def __init__(
        self,
        *,
        lock: int | None = None,
        lock_active_high: bool = True,
        led_granted: int | None = None,
        led_denied: int | None = None,
        buzzer: int | None = None,
        pin_factory: Any | None = None,
        feedback_s: float = 1.0,
        power: int | None = None,
        power_active_high: bool = True,
        lamp: int | None = None,
        lamp_active_high: bool = True,
    ) -> None:
        self._feedback_s = feedback_s
        self._locked = True
        self._powered = False
        self._lit = self._sounding = False
        self._lock_relay = self._led_granted = self._led_denied = self._buzzer = None
        self._power_relay = self._lamp = None
        if all(p is None for p in (lock, led_granted, led_denied, buzzer, power, lamp)):
            return
        from gpiozero import LED, Buzzer, DigitalOutputDevice

        devices = []
        try:
            if lock is not None:
                # initial_value=False: the relay starts de-energised, i.e. locked.
                self._lock_relay = DigitalOutputDevice(
                    lock, active_high=lock_active_high, initial_value=False,
                    pin_factory=pin_factory)
                devices.append(self._lock_relay)
            if led_granted is not None:
                self._led_granted = LED(led_granted, pin_factory=pin_factory)
                devices.append(self._led_granted)
            if led_denied is not None:
                self._led_denied = LED(led_denied, pin_factory=pin_factory)
                devices.append(self._led_denied)
            if buzzer is not None:
                self._buzzer = Buzzer(buzzer, pin_factory=pin_factory)
                devices.append(self._buzzer)
            if power is not None:
                # initial_value=False: the shredder has no power until a session starts.
                self._power_relay = DigitalOutputDevice(
                    power, active_high=power_active_high, initial_value=False, pin_factory=pin_factory)
                devices.append(self._power_relay)
            if lamp is not None:
                # initial_value=False: dark until the hub says a critical alert is open.
                self._lamp = DigitalOutputDevice(
                    lamp, active_high=lamp_active_high, initial_value=False, pin_factory=pin_factory)
                devices.append(self._lamp)
        except Exception:
            # Release what was claimed, so a retry does not hit GPIOPinInUse.
            for device in devices:
                device.close()
            raise
        _LOG.info("outputs: lock=%s granted=%s denied=%s buzzer=%s power=%s lamp=%s",
                  lock, led_granted, led_denied, buzzer, power, lamp)

    @property
    def is_locked(self) -> bool:
        """True while the lock relay is de-energised (without a relay: the last command)."""
        if self._lock_relay is not None:
            return not self._lock_relay.is_active
        return self._locked

    def unlock(self) -> None:
        """Energise the lock relay."""
        self._locked = False
        if self._lock_relay is not None:
            self._lock_relay.on()
        _LOG.debug("unlocked")

    def lock(self) -> None:
        """De-energise the lock relay."""
        self._locked = True
        if self._lock_relay is not None:
            self._lock_relay.off()
        _LOG.debug("locked")

    def granted(self) -> None:
        """Green LED on for ``feedback_s`` and one short beep, in the background."""
        if self._led_denied is not None:
            self._led_denied.off()
        if self._led_granted is not None:
            self._led_granted.blink(on_time=self._feedback_s, off_time=0, n=1, background=True)
        if self._buzzer is not None:
            self._buzzer.beep(on_time=_BEEP_ON_S, off_time=_BEEP_OFF_S, n=1, background=True)

    def denied(self) -> None:
        """Red LED on for ``feedback_s`` and three short beeps, in the background."""
        if self._led_granted is not None:
            self._led_granted.off()
        if self._led_denied is not None:
            self._led_denied.blink(on_time=self._feedback_s, off_time=0, n=1, background=True)
        if self._buzzer is not None:
            self._buzzer.beep(on_time=_BEEP_ON_S, off_time=_BEEP_OFF_S, n=3, background=True)

    def answer(self, result: str) -> None:
        """A roll-call answer (see Outputs.answer), in the background."""
        green = result in ("present", "late")
        on, off = (self._led_granted, self._led_denied) if green else (self._led_denied, self._led_granted)
        if off is not None:
            off.off()
        if on is not None:
            on.blink(on_time=self._feedback_s, off_time=0, n=1, background=True)
        if self._buzzer is not None:
            if result == "no_session":
                self._buzzer.beep(on_time=_LONG_BEEP_S, off_time=_BEEP_OFF_S, n=1, background=True)
            else:
                beeps = {"present": 1, "late": 2}.get(result, 3)
                self._buzzer.beep(on_time=_BEEP_ON_S, off_time=_BEEP_OFF_S, n=beeps, background=True)

    @property
    def is_powered(self) -> bool:
        """True while the power relay is energised (without a relay: the last command)."""
        if self._power_relay is not None:
            return bool(self._power_relay.is_active)
        return self._powered

    def power_on(self) -> None:
        """Energise the power relay."""
        self._powered = True
        if self._power_relay is not None:
            self._power_relay.on()
        _LOG.debug("power on")

    def power_off(self) -> None:
        """De-energise the power relay."""
        self._powered = False
        if self._power_relay is not None:
            self._power_relay.off()
        _LOG.debug("power off")

    @property
    def is_lit(self) -> bool:
        """True while the lamp is on (without a lamp: the last command)."""
        if self._lamp is not None:
            return bool(self._lamp.is_active)
        return self._lit

    @property
    def is_sounding(self) -> bool:
        """True while the buzzer is held on as an alarm."""
        return self._sounding

    def signal(self, *, lamp: bool, sound: bool) -> None:
        """Lamp on or off; the buzzer held on (sound, with the lamp) or off."""
        sound = sound and lamp
        self._lit, self._sounding = lamp, sound
        if self._lamp is not None:
            self._lamp.value = lamp
        if self._buzzer is not None:
            if sound:
                self._buzzer.on()
            else:
                self._buzzer.off()
        _LOG.info("signal: lamp %s, buzzer %s", "on" if lamp else "off", "on" if sound else "off")

    def close(self) -> None:
        """Lock, switch the power, the signal and the feedback off and release the pins."""
        self.power_off()
        self.lock()
        self.signal(lamp=False, sound=False)
        for device in (self._led_granted, self._led_denied, self._buzzer, self._lock_relay, self._power_relay,
                       self._lamp):
            if device is not None:
                device.close()
        self._lock_relay = self._led_granted = self._led_denied = self._buzzer = None
        self._power_relay = self._lamp = None


class StandInOutputs:
    """Outputs that only record what they were told, for tests and simulated units."""

    def __init__(self) -> None:
        self._locked = True
        self._powered = False
        self._lit = self._sounding = False
        self._lock = threading.Lock()
        # Call names in order: "unlock", "lock", "granted", "denied", "power_on", "power_off",
        # "signal:<lamp on|off>:<sound on|off>", "answer:<result>", "close".
        self.calls: list[str] = []

    def _record(self, what: str) -> None:
        with self._lock:
            self.calls.append(what)

    @property
    def is_locked(self) -> bool:
        """True while locked."""
        return self._locked

    def unlock(self) -> None:
        """Record an unlock."""
        self._locked = False
        self._record("unlock")

    def lock(self) -> None:
        """Record a lock."""
        self._locked = True
        self._record("lock")

    def granted(self) -> None:
        """Record granted feedback."""
        self._record("granted")

    def denied(self) -> None:
        """Record denied feedback."""
        self._record("denied")

    def answer(self, result: str) -> None:
        """Record a roll-call answer as ``answer:<result>``."""
        self._record(f"answer:{result}")

    @property
    def is_powered(self) -> bool:
        """True while the power is on."""
        return self._powered

    def power_on(self) -> None:
        """Record power on."""
        self._powered = True
        self._record("power_on")

    def power_off(self) -> None:
        """Record power off."""
        self._powered = False
        self._record("power_off")

    @property
    def is_lit(self) -> bool:
        """True while the lamp is on."""
        return self._lit

    @property
    def is_sounding(self) -> bool:
        """True while the buzzer sounds."""
        return self._sounding

    def signal(self, *, lamp: bool, sound: bool) -> None:
        """Record the lamp and buzzer."""
        self._lit, self._sounding = lamp, sound and lamp
        self._record(f"signal:{'on' if self._lit else 'off'}:{'on' if self._sounding else 'off'}")

    def close(self) -> None:
        """Power off, lock, signal off and record the close."""
        self._lit = self._sounding = False
        self._powered = False
        self._locked = True
        self._record("close")


def make_outputs(pins: PinsSection, pin_factory: Any | None = None) -> GpioOutputs:
    """The unit's outputs from its ``pins`` section (absent pins are left out)."""
    return GpioOutputs(
        lock=pins.lock,
        lock_active_high=pins.lock_active_high,
        led_granted=pins.led_granted,
        led_denied=pins.led_denied,
        buzzer=pins.buzzer,
        pin_factory=pin_factory,
        power=pins.power_relay,
        power_active_high=pins.power_active_high,
        lamp=pins.lamp,
        lamp_active_high=pins.lamp_active_high,
    )
