"""Restricted-door rules, with time passed in: who came in with a badge, who came in without
one, and a door left open."""
from datetime import datetime, timedelta, timezone

from device.stations.door import DoorLogic
from device.stations.effects import Emit, Feedback, Lock, Unlock
from device.wire import PolicyEntry

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=timezone(timedelta(hours=9)))
STAFF = "AAAAAAAAAAAAAAAA"
OTHER = "BBBBBBBBBBBBBBBB"
REFUSED = "CCCCCCCCCCCCCCCC"
POLICY = {
    STAFF: PolicyEntry(person="S001", decision="allow", reason="allowed"),
    OTHER: PolicyEntry(person="S002", decision="allow", reason="allowed"),
    REFUSED: PolicyEntry(person="S003", decision="deny", reason="untrained"),
}


def decide(badge):
    return POLICY.get(badge, PolicyEntry(decision="deny", reason="unknown"))


def door(has_reader=True):
    logic = DoorLogic(unlock_s=5, held_open_s=60, has_reader=has_reader)
    logic.assume_door(False, 0.0, T0)
    return logic


def at(s):
    return T0 + timedelta(seconds=s)


def emitted(effects):
    return [e for e in effects if isinstance(e, Emit)]


def kinds(effects):
    return [e.kind for e in emitted(effects)]


def test_a_badged_entry_names_the_person_and_relocks():
    d = door()
    fx = d.badge(STAFF, decide(STAFF), 1.0, at(1))
    assert isinstance(fx[0], Unlock) and Feedback("granted") in fx and kinds(fx) == ["badge.granted"]
    fx = d.door(True, 3.0, at(3))
    assert Lock() in fx
    [opened] = emitted(fx)
    assert opened.kind == "door.opened" and opened.person == "S001" and opened.data["authorised"] is True
    assert opened.snapshot
    [closed] = emitted(d.door(False, 8.5, at(8.5)))
    assert closed.kind == "door.closed" and closed.person == "S001"
    assert closed.data["open_s"] == 5.5 and closed.data["authorised"] is True


def test_an_opening_without_a_tap_is_an_intrusion_with_a_snapshot():
    d = door()
    fx = d.door(True, 1.0, at(1))
    [intrusion] = emitted(fx)
    assert intrusion.kind == "door.intrusion" and intrusion.snapshot and intrusion.person is None
    [closed] = emitted(d.door(False, 2.0, at(2)))
    assert closed.data["authorised"] is False


def test_an_opening_after_the_unlock_window_is_an_intrusion():
    d = door()
    d.badge(STAFF, decide(STAFF), 1.0, at(1))
    fx = d.tick(6.1, at(6.1))
    assert kinds(fx) == ["unlock.expired"] and Lock() in fx
    assert kinds(d.door(True, 7.0, at(7))) == ["door.intrusion"]


def test_a_refused_badge_is_recorded_and_leaves_the_door_locked():
    d = door()
    fx = d.badge(REFUSED, decide(REFUSED), 1.0, at(1))
    assert Feedback("denied") in fx and not any(isinstance(e, Unlock) for e in fx)
    [denied] = emitted(fx)
    assert denied.kind == "badge.denied" and denied.snapshot and denied.data["reason"] == "untrained"
    assert kinds(d.door(True, 2.0, at(2))) == ["door.intrusion"]


def test_propped_open_is_held_open_once():
    d = door()
    d.badge(STAFF, decide(STAFF), 0.0, at(0))
    d.door(True, 1.0, at(1))
    assert d.next_deadline() == 61.0
    [held] = emitted(d.tick(61.0, at(61)))
    assert held.kind == "door.held_open" and held.person == "S001" and held.snapshot
    assert held.data["limit_s"] == 60
    assert d.tick(500.0, at(500)) == []


def test_without_a_reader_openings_are_recorded_not_called_intrusions():
    d = door(has_reader=False)
    [opened] = emitted(d.door(True, 1.0, at(1)))
    assert opened.kind == "door.opened" and opened.data["authorised"] is None and opened.snapshot
    assert kinds(d.tick(61.0, at(61))) == ["door.held_open"]


def test_a_door_found_open_at_start_is_not_an_intrusion_but_can_be_held_open():
    d = DoorLogic(unlock_s=5, held_open_s=60)
    d.assume_door(True, 0.0, T0)
    assert kinds(d.tick(60.0, at(60))) == ["door.held_open"]
    assert kinds(d.door(False, 61.0, at(61))) == ["door.closed"]


def test_the_example_unit_file_makes_a_door_and_without_a_reader_no_intrusions():
    from pathlib import Path

    import msgspec

    from device.unit_file import load
    from device.stations import make_logic

    cfg = load(Path(__file__).resolve().parents[3] / "config" / "door.example.yaml")
    logic = make_logic(cfg)
    assert isinstance(logic, DoorLogic) and logic.has_reader
    no_reader = msgspec.structs.replace(cfg, reader=msgspec.structs.replace(cfg.reader, type="none"))
    assert make_logic(no_reader).has_reader is False


def test_a_second_persons_tap_ends_the_first_grant_and_the_entry_is_theirs():
    d = door()
    d.badge(STAFF, decide(STAFF), 1.0, at(1))
    fx = d.badge(OTHER, decide(OTHER), 2.0, at(2))
    assert kinds(fx) == ["unlock.ended", "badge.granted"]
    [ended, _granted] = emitted(fx)
    assert ended.person == "S001" and ended.data["reason"] == "superseded" and ended.data["by_person"] == "S002"
    [opened] = emitted(d.door(True, 3.0, at(3)))
    assert opened.kind == "door.opened" and opened.person == "S002"


def test_a_retap_at_the_door_within_the_repeat_window_gets_feedback_not_silence():
    d = DoorLogic(unlock_s=5, held_open_s=60, repeat_s=2.0)
    d.assume_door(False, 0.0, T0)
    d.badge(REFUSED, decide(REFUSED), 1.0, at(1))
    assert d.badge(REFUSED, decide(REFUSED), 1.5, at(1.5)) == [Feedback("denied")]
    d.badge(STAFF, decide(STAFF), 2.0, at(2))
    assert d.badge(STAFF, decide(STAFF), 2.5, at(2.5)) == [Feedback("granted")]
