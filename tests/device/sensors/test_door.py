"""Door contact on gpiozero mock pins: the open/closed meaning for both wirings."""
from __future__ import annotations

import queue
import threading
import time

from device.config import PinsSection
from device.sensors.door import GpioDoorSwitch, StandInDoorSwitch, make_door

_WAIT_S = 2.0


def _edges(q: queue.Queue, n: int) -> list[bool]:
    """The next ``n`` door_open values, waiting at most _WAIT_S for each."""
    return [q.get(timeout=_WAIT_S)[0] for _ in range(n)]


def test_reed_to_ground_reads_low_when_closed(mock_factory):
    door = GpioDoorSwitch(17, closed_level="low", pin_factory=mock_factory)
    q: queue.Queue = queue.Queue()
    door.start(lambda is_open, t: q.put((is_open, t)))
    pin = mock_factory.pin(17)

    pin.drive_low()
    assert door.is_open() is False
    pin.drive_high()
    assert door.is_open() is True
    pin.drive_low()
    assert _edges(q, 3) == [False, True, False]
    door.close()


def test_reed_to_3v3_reads_high_when_closed(mock_factory):
    door = GpioDoorSwitch(17, closed_level="high", pin_factory=mock_factory)
    q: queue.Queue = queue.Queue()
    door.start(lambda is_open, t: q.put((is_open, t)))
    pin = mock_factory.pin(17)

    pin.drive_high()
    assert door.is_open() is False
    pin.drive_low()
    assert door.is_open() is True
    assert _edges(q, 2) == [False, True]
    door.close()


def test_edges_carry_the_monotonic_time(mock_factory):
    door = GpioDoorSwitch(17, closed_level="low", pin_factory=mock_factory)
    q: queue.Queue = queue.Queue()
    door.start(lambda is_open, t: q.put((is_open, t)))
    before = time.monotonic()
    mock_factory.pin(17).drive_low()
    is_open, t = q.get(timeout=_WAIT_S)
    assert is_open is False
    assert before <= t <= time.monotonic()
    door.close()


def test_a_bouncing_contact_reports_every_raw_edge(mock_factory):
    # bounce_time does nothing on mock pins; the switch reports raw edges for the Debouncer.
    door = GpioDoorSwitch(17, closed_level="low", pin_factory=mock_factory)
    q: queue.Queue = queue.Queue()
    door.start(lambda is_open, t: q.put((is_open, t)))
    pin = mock_factory.pin(17)
    pin.drive_low()
    for i in range(11):
        (pin.drive_high if i % 2 == 0 else pin.drive_low)()
    assert _edges(q, 12) == [False] + [True, False] * 5 + [True]
    door.close()


def test_a_failing_handler_does_not_stop_later_edges(mock_factory):
    door = GpioDoorSwitch(17, closed_level="low", pin_factory=mock_factory)
    seen: list[bool] = []

    def handler(is_open: bool, t: float) -> None:
        seen.append(is_open)
        raise RuntimeError("handler bug")

    door.start(handler)
    pin = mock_factory.pin(17)
    pin.drive_low()
    pin.drive_high()
    assert seen == [False, True]
    door.close()


def test_close_releases_the_pin(mock_factory):
    door = GpioDoorSwitch(17, closed_level="low", pin_factory=mock_factory)
    door.start(lambda is_open, t: None)
    door.close()
    again = GpioDoorSwitch(17, closed_level="low", pin_factory=mock_factory)
    again.close()


def test_make_door_uses_the_pins_section(mock_factory):
    assert make_door(PinsSection()) is None
    door = make_door(PinsSection(door=22, door_closed_level="high"), pin_factory=mock_factory)
    assert isinstance(door, GpioDoorSwitch)
    mock_factory.pin(22).drive_high()
    assert door.is_open() is False
    door.close()


def test_stand_in_door_reports_changes_only():
    door = StandInDoorSwitch(is_open=False)
    seen: list[tuple[bool, str]] = []
    door.start(lambda is_open, t: seen.append((is_open, threading.current_thread().name)))
    door.set_open(False)
    door.set_open(True)
    door.set_open(True)
    door.set_open(False)
    me = threading.current_thread().name
    assert seen == [(True, me), (False, me)]
    assert door.is_open() is False
    door.close()
    door.set_open(True)
    assert len(seen) == 2
