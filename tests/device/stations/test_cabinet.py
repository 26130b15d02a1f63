"""Key-cabinet rules, with time passed in: taps, door edges and the clock."""
from datetime import datetime, timedelta, timezone

from device.stations.cabinet import CabinetLogic
from device.stations.effects import Emit, Feedback, Lock, Unlock
from device.wire import PolicyEntry

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=9)))
HOLDER = "AAAAAAAAAAAAAAAA"
OTHER = "BBBBBBBBBBBBBBBB"
REFUSED = "CCCCCCCCCCCCCCCC"

POLICY = {
    HOLDER: PolicyEntry(person="S001", decision="allow", reason="designated holder"),
    OTHER: PolicyEntry(person="S002", decision="allow_flag", reason="not designated"),
    REFUSED: PolicyEntry(person="S003", decision="deny", reason="untrained"),
}


def decide(badge):
    return POLICY.get(badge, PolicyEntry(decision="deny", reason="unknown"))


def cabinet():
    logic = CabinetLogic(unlock_s=5, held_open_s=60)
    logic.assume_door(False, 0.0, T0)
    return logic


def at(s):
    return T0 + timedelta(seconds=s)


def kinds(effects):
    return [e.kind for e in effects if isinstance(e, Emit)]


def test_authorised_tap_unlocks_and_door_use_is_one_key_use():
    c = cabinet()
    fx = c.badge(HOLDER, decide(HOLDER), 1.0, at(1))
    assert isinstance(fx[0], Unlock) and Feedback("granted") in fx
    assert kinds(fx) == ["badge.granted"]
    fx = c.door(True, 3.0, at(3))
    assert kinds(fx) == ["door.opened"] and Lock() in fx
    opened = [e for e in fx if isinstance(e, Emit)][0]
    assert opened.person == "S001" and opened.snapshot
    fx = c.door(False, 13.5, at(13.5))
    assert kinds(fx) == ["door.closed", "key.used"]
    use = fx[1]
    assert use.person == "S001" and use.badge == HOLDER
    assert use.data["duration_s"] == 10.5
    assert use.data["unlocked_at"] == at(1).isoformat()
    assert use.data["flagged"] is False


def test_non_designated_but_allowed_use_is_flagged():
    c = cabinet()
    fx = c.badge(OTHER, decide(OTHER), 1.0, at(1))
    assert [e.data["flagged"] for e in fx if isinstance(e, Emit)] == [True]
    c.door(True, 2.0, at(2))
    fx = c.door(False, 4.0, at(4))
    assert fx[1].kind == "key.used" and fx[1].data["flagged"] is True


def test_refused_or_unknown_badge_is_denied_and_lock_untouched():
    c = cabinet()
    for badge, reason in [(REFUSED, "untrained"), ("DDDDDDDDDDDDDDDD", "unknown")]:
        fx = c.badge(badge, decide(badge), 1.0, at(1))
        assert Feedback("denied") in fx
        assert not any(isinstance(e, (Unlock, Lock)) for e in fx)
        [denied] = [e for e in fx if isinstance(e, Emit)]
        assert denied.kind == "badge.denied" and denied.data["reason"] == reason and denied.snapshot
    assert not c.unlocked


def test_door_opened_without_tap_is_forced():
    c = cabinet()
    fx = c.door(True, 1.0, at(1))
    assert kinds(fx) == ["door.forced"]
    assert fx[-1].snapshot
    fx = c.door(False, 2.0, at(2))
    assert kinds(fx) == ["door.closed"] and fx[0].data["authorised"] is False


def test_door_opened_after_the_unlock_window_is_forced():
    c = cabinet()
    c.badge(HOLDER, decide(HOLDER), 1.0, at(1))
    assert c.next_deadline() is not None and c.next_deadline() > 6.0
    fx = c.tick(6.1, at(6.1))
    assert kinds(fx) == ["unlock.expired"] and Lock() in fx
    fx = c.door(True, 7.0, at(7))
    assert kinds(fx) == ["door.forced"]


def test_open_longer_than_limit_is_held_open_once():
    c = cabinet()
    c.badge(HOLDER, decide(HOLDER), 0.0, at(0))
    c.door(True, 1.0, at(1))
    assert c.tick(30.0, at(30)) == []
    assert c.next_deadline() == 61.0
    fx = c.tick(61.0, at(61))
    assert kinds(fx) == ["door.held_open"]
    assert fx[0].person == "S001" and fx[0].data["limit_s"] == 60
    assert c.tick(200.0, at(200)) == []


def test_door_found_open_at_start_is_not_forced_but_can_be_held_open():
    c = CabinetLogic(unlock_s=5, held_open_s=60)
    c.assume_door(True, 0.0, T0)
    assert c.tick(10.0, at(10)) == []
    assert kinds(c.tick(60.0, at(60))) == ["door.held_open"]
    assert kinds(c.door(False, 61.0, at(61))) == ["door.closed"]


def test_repeated_edges_of_the_same_state_record_nothing():
    c = cabinet()
    assert c.door(False, 1.0, at(1)) == []


def emitted(effects, kind):
    [found] = [e for e in effects if isinstance(e, Emit) and e.kind == kind]
    return found


def test_a_second_persons_tap_ends_the_first_grant_and_the_use_is_theirs():
    c = cabinet()
    c.badge(HOLDER, decide(HOLDER), 1.0, at(1))
    fx = c.badge(OTHER, decide(OTHER), 3.0, at(3))
    # The first grant's end comes first, then the second person's grant; the lock stays open.
    assert kinds(fx) == ["unlock.ended", "badge.granted"]
    assert Unlock() in fx and Lock() not in fx and Feedback("granted") in fx
    ended = emitted(fx, "unlock.ended")
    assert (ended.badge, ended.person) == (HOLDER, "S001")
    assert ended.data["reason"] == "superseded"
    assert (ended.data["by_badge"], ended.data["by_person"]) == (OTHER, "S002")
    assert ended.data["unlocked_at"] == at(1).isoformat()
    # The window is now the second person's, counted from their tap.
    assert c.next_deadline() > 8.0
    c.door(True, 7.5, at(7.5))
    fx = c.door(False, 9.0, at(9))
    use = emitted(fx, "key.used")
    assert (use.badge, use.person) == (OTHER, "S002")
    assert use.data["unlocked_at"] == at(3).isoformat() and use.data["flagged"] is True
    # Nothing more is said about the first grant.
    assert c.tick(30.0, at(30)) == []


def test_a_superseding_grant_that_is_never_used_expires_as_its_own():
    c = cabinet()
    c.badge(HOLDER, decide(HOLDER), 1.0, at(1))
    c.badge(OTHER, decide(OTHER), 2.0, at(2))
    fx = c.tick(7.1, at(7.1))
    expired = emitted(fx, "unlock.expired")
    assert expired.person == "S002" and expired.data["unlocked_at"] == at(2).isoformat()
    assert Lock() in fx


def test_the_same_badge_again_renews_its_window_without_ending_it():
    c = cabinet()
    c.badge(HOLDER, decide(HOLDER), 1.0, at(1))
    fx = c.badge(HOLDER, decide(HOLDER), 4.0, at(4))
    assert kinds(fx) == ["badge.granted"] and Unlock() in fx
    assert c.tick(6.5, at(6.5)) == []  # the first tap's window would have ended at 6
    c.door(True, 8.0, at(8))
    use = emitted(c.door(False, 9.0, at(9)), "key.used")
    assert use.person == "S001" and use.data["unlocked_at"] == at(1).isoformat()


def test_a_tap_after_the_window_ran_out_but_before_the_tick_expires_the_first_grant():
    c = cabinet()
    c.badge(HOLDER, decide(HOLDER), 1.0, at(1))
    fx = c.badge(OTHER, decide(OTHER), 6.5, at(6.5))
    assert kinds(fx) == ["unlock.expired", "badge.granted"]
    assert emitted(fx, "unlock.expired").person == "S001"
    assert Lock() not in fx and Unlock() in fx  # no click off and on again


def test_a_refused_tap_leaves_an_open_window_alone():
    c = cabinet()
    c.badge(HOLDER, decide(HOLDER), 1.0, at(1))
    assert kinds(c.badge(REFUSED, decide(REFUSED), 2.0, at(2))) == ["badge.denied"]
    c.door(True, 3.0, at(3))
    assert emitted(c.door(False, 4.0, at(4)), "key.used").person == "S001"


def test_a_retap_within_the_repeat_window_gets_its_feedback_again_and_nothing_else():
    c = CabinetLogic(unlock_s=5, held_open_s=60, repeat_s=2.0)
    c.assume_door(False, 0.0, T0)
    assert kinds(c.badge(HOLDER, decide(HOLDER), 1.0, at(1))) == ["badge.granted"]
    assert c.badge(HOLDER, decide(HOLDER), 1.8, at(1.8)) == [Feedback("granted")]  # no event, no new window
    assert c.badge(HOLDER, decide(HOLDER), 3.5, at(3.5)) == [Feedback("granted")]  # 1.7 s after the last sighting
    assert c.next_deadline() < 7.0
    # Refused, and refused again: red again, one event only.
    assert kinds(c.badge(REFUSED, decide(REFUSED), 4.0, at(4))) == ["badge.denied"]
    assert c.badge(REFUSED, decide(REFUSED), 4.5, at(4.5)) == [Feedback("denied")]
    # Away for the whole window: a new tap, decided and recorded.
    fx = c.badge(HOLDER, decide(HOLDER), 7.0, at(7))
    assert kinds(fx) == ["unlock.expired", "badge.granted"] and Feedback("granted") in fx
