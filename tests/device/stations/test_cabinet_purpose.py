"""A cabinet's purpose buttons: pressed after a use, they record what the key was for (作業内容)
against that use; pressed with no use just ended, they are refused and record nothing."""
from datetime import datetime, timedelta, timezone

import pytest

from device.stations.cabinet import CabinetPins
from device.hardware import input_active
from device.stations.cabinet import CabinetLogic
from device.stations.effects import Emit, Feedback
from device.wire import PolicyEntry
from kagiban.configfile import ConfigProblems, Problem, convert

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=9)))
HOLDER = "AAAAAAAAAAAAAAAA"
ENTRY = PolicyEntry(person="S001", decision="allow", reason="designated holder")


def at(s):
    return T0 + timedelta(seconds=s)


def used_once():
    logic = CabinetLogic(unlock_s=5, held_open_s=60, purpose_s=120)
    logic.assume_door(False, 0.0, T0)
    logic.badge(HOLDER, ENTRY, 1.0, at(1))
    logic.door(True, 3.0, at(3))
    logic.door(False, 13.0, at(13))
    return logic


def emitted(effects):
    return [e for e in effects if isinstance(e, Emit)]


def test_a_button_after_a_use_records_its_work_under_the_use():
    logic = used_once()
    fx = logic.input("purpose:register", True, 20.0, at(20))
    [purpose] = emitted(fx)
    assert purpose.kind == "key.purpose" and Feedback("granted") in fx
    assert purpose.data["purpose"] == "register" and purpose.data["unlocked_at"] == at(1).isoformat()
    assert (purpose.badge, purpose.person) == (HOLDER, "S001")
    # Releasing the button is nothing; pressing another corrects it (the last one counts).
    assert logic.input("purpose:register", False, 20.5, at(20.5)) == []
    assert [e.data["purpose"] for e in emitted(logic.input("purpose:card-safe", True, 30.0, at(30)))] == ["card-safe"]


def test_a_button_with_no_use_just_ended_is_refused():
    logic = CabinetLogic(unlock_s=5, held_open_s=60, purpose_s=120)
    logic.assume_door(False, 0.0, T0)
    assert logic.input("purpose:register", True, 5.0, at(5)) == [Feedback("denied")]
    late = used_once()
    assert late.input("purpose:register", True, 13.0 + 121, at(134)) == [Feedback("denied")]


def test_other_inputs_are_not_purposes():
    assert used_once().input("stop_button", True, 20.0, at(20)) == []


def test_a_pressed_button_reads_active():
    # Wired to ground: pressed closes the contact.
    assert input_active("purpose:register", is_open=False) is True
    assert input_active("purpose:register", is_open=True) is False


def test_the_unit_file_names_a_bad_button_by_its_key():
    # As the unit file's ``pins:`` section is read (device.unit_file).
    pins = convert({"door": 17, "lock": 27, "purpose_buttons": {"register": 5, "card-safe": 6}}, CabinetPins)
    assert pins.purpose_buttons == {"register": 5, "card-safe": 6}
    with pytest.raises(ConfigProblems) as shared:
        convert({"door": 17, "lock": 27, "purpose_buttons": {"register": 5, "card-safe": 5}}, CabinetPins)
    assert shared.value.problems == (Problem("purpose_buttons", "two purpose buttons share a pin"),)
    with pytest.raises(ConfigProblems) as beyond:
        convert({"door": 17, "lock": 27, "purpose_buttons": {"register": 60}}, CabinetPins)
    assert beyond.value.problems == (Problem("purpose_buttons.register", "should be less than or equal to 53"),)
