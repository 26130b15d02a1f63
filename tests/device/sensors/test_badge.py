"""The badge reader seam: stand-in taps, badge id form, the factory from the unit file."""
from __future__ import annotations

import threading

import pytest

from device.config import ReaderSection
from device.sensors import make_reader
from device.sensors.badge import BadgeIdError, StandInReader, normalise_badge_id
from device.sensors.nfc_reader import NfcpyReader
from kagiban.badge_id import normalise_badge_id as kagiban_normalise


def test_stand_in_taps_reach_the_handler_as_upper_case_hex():
    reader = StandInReader()
    seen: list[tuple[str, str]] = []
    reader.start(lambda badge: seen.append((badge, threading.current_thread().name)))
    reader.tap("012e4cd7a15b3c09")
    reader.tap("04:a2:2b:1a")
    me = threading.current_thread().name
    assert seen == [("012E4CD7A15B3C09", me), ("04A22B1A", me)]
    reader.close()
    reader.tap("04A22B1A")
    assert len(seen) == 2


def test_a_failing_handler_does_not_break_the_reader():
    reader = StandInReader()
    calls = []

    def handler(badge: str) -> None:
        calls.append(badge)
        raise RuntimeError("handler bug")

    reader.start(handler)
    reader.tap("04A22B1A")
    reader.tap("04A22B1B")
    assert calls == ["04A22B1A", "04A22B1B"]


def test_stand_in_taps_take_every_written_form_and_refuse_ids_no_card_has():
    reader = StandInReader()
    seen: list[str] = []
    reader.start(seen.append)
    reader.tap("01-2e-4c-d2-a5-b7-1f-03")
    reader.tap("０４：Ａ２：２Ｂ：１Ａ")
    assert seen == ["012E4CD2A5B71F03", "04A22B1A"]
    for bad, code in [("", "badge_id_empty"), ("xyz", "badge_id_not_hex"), ("123", "badge_id_odd_length"),
                      ("0" * 34, "badge_id_length"), ("04A22B1A6C", "badge_id_length")]:
        with pytest.raises(BadgeIdError) as refused:
            reader.tap(bad)
        assert refused.value.code == code
    assert seen == ["012E4CD2A5B71F03", "04A22B1A"]  # nothing reached the station
    assert normalise_badge_id is kagiban_normalise  # the reader's name for the one rule


def test_make_reader_follows_the_reader_section():
    assert make_reader(ReaderSection(type="none")) is None
    assert isinstance(make_reader(ReaderSection(type="standin")), StandInReader)
    reader = make_reader(ReaderSection(type="nfcpy", path="usb:054c:06c3", repeat_s=3.0))
    assert isinstance(reader, NfcpyReader)
    assert not reader.running  # nothing is opened until start()
