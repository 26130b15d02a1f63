"""The badge reader seam: stand-in taps, badge id form, the factory from the unit file."""
from __future__ import annotations

import threading

import pytest

from device.config import ReaderSection
from device.sensors import make_reader
from device.sensors.badge import StandInReader, normalise_badge_id
from device.sensors.nfc_reader import NfcpyReader


def test_stand_in_taps_reach_the_handler_as_upper_case_hex():
    reader = StandInReader()
    seen: list[tuple[str, str]] = []
    reader.start(lambda badge: seen.append((badge, threading.current_thread().name)))
    reader.tap("012e4cd7a15b3c09")
    reader.tap("04:a2:2b:1a")
    me = threading.current_thread().name
    assert seen == [("012E4CD7A15B3C09", me), ("04A22B1A", me)]
    reader.close()
    reader.tap("01")
    assert len(seen) == 2


def test_a_failing_handler_does_not_break_the_reader():
    reader = StandInReader()
    calls = []

    def handler(badge: str) -> None:
        calls.append(badge)
        raise RuntimeError("handler bug")

    reader.start(handler)
    reader.tap("01")
    reader.tap("02")
    assert calls == ["01", "02"]


@pytest.mark.parametrize("bad", ["", "xyz", "123", "0" * 34])
def test_ids_that_are_not_hex_bytes_are_refused(bad):
    with pytest.raises(ValueError):
        normalise_badge_id(bad)


def test_make_reader_follows_the_reader_section():
    assert make_reader(ReaderSection(type="none")) is None
    assert isinstance(make_reader(ReaderSection(type="standin")), StandInReader)
    reader = make_reader(ReaderSection(type="nfcpy", path="usb:054c:06c3", repeat_s=3.0))
    assert isinstance(reader, NfcpyReader)
    assert not reader.running  # nothing is opened until start()
