"""Lock relay, LEDs and buzzer on gpiozero mock pins: fail-secure, non-blocking feedback."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from device.config import PinsSection
from device.outputs import GpioOutputs, StandInOutputs, make_outputs

_ROOT = Path(__file__).resolve().parents[2]  # the repository, so `device` imports

LOCK, GREEN, RED, BUZZER = 5, 6, 13, 19


def _wait_until(cond, timeout: float = 2.0, step: float = 0.01) -> bool:
    """Poll ``cond`` until true, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / step) + 1):
        if cond():
            return True
        if time.monotonic() >= deadline:
            break
        time.sleep(step)
    return bool(cond())


def _rises(pin) -> int:
    """How many times the pin went from low to high since it was created."""
    levels = [bool(s.state) for s in pin.states]
    return sum(1 for a, b in zip(levels, levels[1:]) if not a and b)


@pytest.fixture
def outputs(mock_factory):
    out = GpioOutputs(lock=LOCK, lock_active_high=True, led_granted=GREEN, led_denied=RED,
                      buzzer=BUZZER, pin_factory=mock_factory, feedback_s=0.2)
    yield out
    out.close()


def test_the_lock_starts_locked_and_follows_unlock_and_lock(outputs, mock_factory):
    relay = mock_factory.pin(LOCK)
    assert outputs.is_locked is True
    assert relay.state == 0
    outputs.unlock()
    assert outputs.is_locked is False
    assert relay.state == 1
    outputs.lock()
    assert outputs.is_locked is True
    assert relay.state == 0


def test_an_active_low_relay_is_held_high_while_locked(mock_factory):
    out = GpioOutputs(lock=LOCK, lock_active_high=False, led_granted=None, led_denied=None,
                      buzzer=None, pin_factory=mock_factory)
    relay = mock_factory.pin(LOCK)
    assert out.is_locked is True
    assert relay.state == 1
    out.unlock()
    assert relay.state == 0
    out.lock()
    assert relay.state == 1
    out.close()


def test_close_locks_the_door(mock_factory):
    out = GpioOutputs(lock=LOCK, lock_active_high=True, led_granted=None, led_denied=None,
                      buzzer=None, pin_factory=mock_factory)
    relay = mock_factory.pin(LOCK)
    out.unlock()
    out.close()
    levels = [bool(s.state) for s in relay.states]
    # Driven low (locked) after the unlock, before the pin was released.
    assert levels[levels.index(True):][1] is False


def test_granted_lights_green_and_beeps_once_without_blocking(outputs, mock_factory):
    green, red, buzzer = (mock_factory.pin(n) for n in (GREEN, RED, BUZZER))
    started = time.monotonic()
    outputs.granted()
    assert time.monotonic() - started < 0.1
    assert _wait_until(lambda: green.state == 1, timeout=1.0)
    assert red.state == 0
    assert _wait_until(lambda: green.state == 0, timeout=2.0)
    assert _wait_until(lambda: buzzer.state == 0 and _rises(buzzer) == 1, timeout=2.0)
    assert _rises(green) == 1


def test_denied_lights_red_and_beeps_three_times_without_blocking(outputs, mock_factory):
    green, red, buzzer = (mock_factory.pin(n) for n in (GREEN, RED, BUZZER))
    started = time.monotonic()
    outputs.denied()
    assert time.monotonic() - started < 0.1
    assert _wait_until(lambda: red.state == 1, timeout=1.0)
    assert green.state == 0
    assert _wait_until(lambda: _rises(buzzer) == 3 and buzzer.state == 0, timeout=3.0)
    assert _wait_until(lambda: red.state == 0, timeout=2.0)


@pytest.mark.parametrize("result,lit,dark,beeps", [
    ("present", GREEN, RED, 1), ("late", GREEN, RED, 2), ("unexpected", RED, GREEN, 3), ("no_session", RED, GREEN, 1),
])
def test_a_roll_call_answer_lights_its_led_and_beeps_its_count_without_blocking(outputs, mock_factory, result, lit,
                                                                              dark, beeps):
    on, off, buzzer = (mock_factory.pin(n) for n in (lit, dark, BUZZER))
    started = time.monotonic()
    outputs.answer(result)
    assert time.monotonic() - started < 0.1
    assert _wait_until(lambda: on.state == 1, timeout=1.0)
    assert off.state == 0
    assert _wait_until(lambda: _rises(buzzer) == beeps and buzzer.state == 0, timeout=3.0)
    assert _rises(buzzer) == beeps


def test_no_session_is_one_long_beep(outputs, mock_factory):
    buzzer = mock_factory.pin(BUZZER)
    outputs.answer("no_session")
    assert _wait_until(lambda: _rises(buzzer) == 1 and buzzer.state == 0, timeout=3.0)
    # A mock pin stamps each change with the time since the one before: how long it sounded.
    states = buzzer.states
    [on_at] = [i for i in range(1, len(states)) if states[i].state and not states[i - 1].state]
    assert states[on_at + 1].timestamp >= 0.7  # a short beep is 0.1 s


def test_missing_pins_are_simply_absent(mock_factory):
    out = GpioOutputs(lock=None, lock_active_high=True, led_granted=GREEN, led_denied=None,
                      buzzer=None, pin_factory=mock_factory, feedback_s=0.05)
    out.unlock()
    assert out.is_locked is False
    out.denied()
    out.granted()
    assert _wait_until(lambda: _rises(mock_factory.pin(GREEN)) == 1, timeout=1.0)
    out.lock()
    assert out.is_locked is True
    out.close()


def test_no_pins_at_all_needs_no_gpio():
    out = GpioOutputs(lock=None, lock_active_high=True, led_granted=None, led_denied=None,
                      buzzer=None)
    out.unlock()
    out.granted()
    out.denied()
    out.close()
    assert out.is_locked is True


def test_make_outputs_uses_the_pins_section(mock_factory):
    pins = PinsSection(lock=LOCK, lock_active_high=False, buzzer=BUZZER)
    out = make_outputs(pins, pin_factory=mock_factory)
    assert mock_factory.pin(LOCK).state == 1  # active-low relay held off: locked
    out.unlock()
    assert mock_factory.pin(LOCK).state == 0
    out.close()


def test_stand_in_outputs_record_the_calls():
    out = StandInOutputs()
    assert out.is_locked
    out.unlock()
    out.granted()
    assert not out.is_locked
    out.lock()
    out.denied()
    out.close()
    assert out.calls == ["unlock", "granted", "lock", "denied", "close"]
    assert out.is_locked


def test_importing_outputs_does_not_import_gpiozero():
    check = ("import sys, device.outputs\n"
             "device.outputs.GpioOutputs(lock=None, lock_active_high=True, led_granted=None,"
             " led_denied=None, buzzer=None).close()\n"
             "print('gpiozero' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True,
                          timeout=60, cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
