"""Two-person shredder rules, with time passed in: who may switch it on, for how long, and what
the shredding ledger gets to read (both people, times, why it stopped)."""
from datetime import datetime, timedelta, timezone

from device.stations.effects import Emit, Feedback, PowerOff, PowerOn
from device.stations.shredder import ShredderLogic
from device.wire import PolicyEntry

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=timezone(timedelta(hours=9)))
FIRST = "AAAAAAAAAAAAAAAA"
SECOND = "BBBBBBBBBBBBBBBB"
FIRST_SPARE = "ABABABABABABABAB"  # a second badge of the first person
OFF_ROSTER = "DDDDDDDDDDDDDDDD"
REFUSED = "CCCCCCCCCCCCCCCC"

POLICY = {
    FIRST: PolicyEntry(person="S001", decision="allow", reason="allowed"),
    SECOND: PolicyEntry(person="S002", decision="allow", reason="allowed"),
    FIRST_SPARE: PolicyEntry(person="S001", decision="allow", reason="allowed"),
    OFF_ROSTER: PolicyEntry(person="S004", decision="allow_flag", reason="not_designated"),
    REFUSED: PolicyEntry(person="S003", decision="deny", reason="untrained"),
}


def decide(badge):
    return POLICY.get(badge, PolicyEntry(decision="deny", reason="unknown"))


def shredder(window=15, max_s=600):
    logic = ShredderLogic(pair_window_s=window, shred_max_s=max_s)
    logic.assume_door(False, 0.0, T0)
    return logic


def at(s):
    return T0 + timedelta(seconds=s)


def emitted(effects, kind=None):
    out = [e for e in effects if isinstance(e, Emit)]
    return [e for e in out if e.kind == kind] if kind else out


def kinds(effects):
    return [e.kind for e in emitted(effects)]


def powered(effects):
    """+1 for power on, -1 for power off, 0 if the relay is not touched."""
    return sum(1 if isinstance(e, PowerOn) else -1 if isinstance(e, PowerOff) else 0 for e in effects)


def started_pair(logic, t=0.0):
    logic.badge(FIRST, decide(FIRST), t, at(t))
    return logic.badge(SECOND, decide(SECOND), t + 4, at(t + 4))


def test_two_different_authorised_badges_within_the_window_switch_the_power_on():
    s = shredder()
    fx = s.badge(FIRST, decide(FIRST), 1.0, at(1))
    assert kinds(fx) == ["badge.granted", "shred.waiting"] and powered(fx) == 0
    waiting = emitted(fx, "shred.waiting")[0]
    assert waiting.person == "S001" and waiting.data["window_s"] == 15
    fx = s.badge(SECOND, decide(SECOND), 10.0, at(10))
    assert kinds(fx) == ["badge.granted", "shred.started"] and powered(fx) == 1
    assert Feedback("granted") in fx
    started = emitted(fx, "shred.started")[0]
    assert started.data["people"] == ["S001", "S002"]
    assert started.data["badges"] == [FIRST, SECOND]
    assert started.data["max_s"] == 600 and started.snapshot
    assert s.running


def test_one_badge_alone_does_nothing_and_the_window_expires():
    s = shredder()
    s.badge(FIRST, decide(FIRST), 1.0, at(1))
    assert s.next_deadline() is not None and 16.0 <= s.next_deadline() < 16.1
    assert s.tick(10.0, at(10)) == []
    fx = s.tick(16.1, at(16.1))
    assert powered(fx) == 0 and Feedback("denied") in fx
    [refused] = emitted(fx)
    assert refused.kind == "shred.refused" and refused.data["reason"] == "window_expired"
    assert refused.person == "S001" and refused.badge == FIRST
    # The colleague arriving late starts a new wait, not a session.
    fx = s.badge(SECOND, decide(SECOND), 20.0, at(20))
    assert kinds(fx) == ["badge.granted", "shred.waiting"] and not s.running


def test_a_late_second_tap_is_not_paired_even_before_the_clock_ticked():
    s = shredder()
    s.badge(FIRST, decide(FIRST), 1.0, at(1))
    fx = s.badge(SECOND, decide(SECOND), 17.0, at(17))
    assert [e.data.get("reason") for e in emitted(fx, "shred.refused")] == ["window_expired"]
    assert kinds(fx)[-1] == "shred.waiting" and powered(fx) == 0


def test_the_same_badge_twice_is_refused():
    s = shredder()
    s.badge(FIRST, decide(FIRST), 1.0, at(1))
    fx = s.badge(FIRST, decide(FIRST), 3.0, at(3))
    assert powered(fx) == 0 and Feedback("denied") in fx
    assert [(e.kind, e.data["reason"]) for e in emitted(fx)] == [("shred.refused", "same_badge")]
    # The pair must begin again: the next tap is a first tap.
    assert kinds(s.badge(SECOND, decide(SECOND), 4.0, at(4))) == ["badge.granted", "shred.waiting"]


def test_two_badges_of_one_person_are_not_two_people():
    s = shredder()
    s.badge(FIRST, decide(FIRST), 1.0, at(1))
    fx = s.badge(FIRST_SPARE, decide(FIRST_SPARE), 2.0, at(2))
    assert powered(fx) == 0
    assert [e.data["reason"] for e in emitted(fx, "shred.refused")] == ["same_person"]


def test_an_unauthorised_second_badge_is_refused_and_recorded():
    s = shredder()
    s.badge(FIRST, decide(FIRST), 1.0, at(1))
    fx = s.badge(REFUSED, decide(REFUSED), 2.0, at(2))
    assert powered(fx) == 0 and Feedback("denied") in fx
    assert kinds(fx) == ["badge.denied", "shred.refused"]
    denied, refused = emitted(fx)
    assert denied.snapshot and denied.data["reason"] == "untrained"
    assert refused.data["reason"] == "second_not_authorised"
    assert refused.badge == REFUSED and refused.data["first_person"] == "S001"


def test_an_unknown_first_badge_is_denied_and_nobody_waits():
    s = shredder()
    fx = s.badge("EEEEEEEEEEEEEEEE", decide("EEEEEEEEEEEEEEEE"), 1.0, at(1))
    assert kinds(fx) == ["badge.denied"] and s.next_deadline() is None


def test_a_flagged_person_still_counts_and_the_flag_travels_to_the_hub():
    s = shredder()
    s.badge(OFF_ROSTER, decide(OFF_ROSTER), 1.0, at(1))
    fx = s.badge(SECOND, decide(SECOND), 2.0, at(2))
    started = emitted(fx, "shred.started")[0]
    assert started.data["flagged"] == [True, False] and powered(fx) == 1


def test_a_tap_ends_the_session_with_both_people_and_the_duration():
    s = shredder()
    started_pair(s)
    fx = s.badge(FIRST, decide(FIRST), 94.5, at(94.5))
    assert powered(fx) == -1 and kinds(fx) == ["badge.granted", "shred.ended"]
    ended = emitted(fx, "shred.ended")[0]
    assert ended.data["people"] == ["S001", "S002"] and ended.data["badges"] == [FIRST, SECOND]
    assert ended.data["ended_by"] == "tap" and ended.data["ended_by_person"] == "S001"
    assert ended.data["started_at"] == at(4).isoformat() and ended.data["ended_at"] == at(94.5).isoformat()
    assert ended.data["duration_s"] == 90.5
    assert not s.running and s.next_deadline() is None


def test_the_stop_button_ends_the_session():
    s = shredder()
    started_pair(s)
    assert s.input("stop_button", False, 10.0, at(10)) == []
    fx = s.input("stop_button", True, 30.0, at(30))
    assert powered(fx) == -1 and emitted(fx)[0].data["ended_by"] == "stop_button"
    # Pressing it again with nothing running changes nothing.
    assert s.input("stop_button", True, 31.0, at(31)) == []


def test_the_session_stops_at_its_maximum_length():
    s = shredder(max_s=60)
    started_pair(s)
    assert s.next_deadline() == 64.0
    assert s.tick(63.0, at(63)) == []
    fx = s.tick(64.0, at(64))
    assert powered(fx) == -1
    [ended] = emitted(fx)
    assert ended.data["ended_by"] == "max_length" and ended.data["duration_s"] == 60


def test_a_refused_badge_during_a_session_does_not_stop_or_extend_it():
    s = shredder()
    started_pair(s)
    fx = s.badge(REFUSED, decide(REFUSED), 10.0, at(10))
    assert kinds(fx) == ["badge.denied"] and powered(fx) == 0 and s.running


def test_opening_the_bin_stops_the_shredder_and_a_pair_cannot_start_while_it_is_open():
    s = shredder()
    started_pair(s)
    fx = s.input("bin", True, 20.0, at(20))
    assert powered(fx) == -1
    assert kinds(fx) == ["shred.ended", "bin.opened"]
    assert emitted(fx)[0].data["ended_by"] == "bin_opened" and emitted(fx)[1].data["during_session"]
    s.badge(FIRST, decide(FIRST), 30.0, at(30))
    fx = s.badge(SECOND, decide(SECOND), 31.0, at(31))
    assert powered(fx) == 0 and [e.data["reason"] for e in emitted(fx, "shred.refused")] == ["bin_open"]
    assert kinds(s.input("bin", False, 40.0, at(40))) == ["bin.closed"]
    s.badge(FIRST, decide(FIRST), 41.0, at(41))
    assert powered(s.badge(SECOND, decide(SECOND), 42.0, at(42))) == 1


def test_a_shredder_has_no_door_and_ignores_a_stray_one():
    s = shredder()
    assert s.door(True, 1.0, at(1)) == [] and s.door_open is False


def test_the_example_unit_file_makes_a_two_person_shredder():
    from pathlib import Path

    from device.unit_file import load
    from device.stations import make_logic

    cfg = load(Path(__file__).resolve().parents[3] / "config" / "shredder.example.yaml")
    logic = make_logic(cfg)
    assert isinstance(logic, ShredderLogic)
    assert (logic.pair_window_s, logic.shred_max_s) == (15, 600)
    assert (cfg.pins.power_relay, cfg.pins.stop_button, cfg.pins.bin_sensor) == (25, 5, 6)
