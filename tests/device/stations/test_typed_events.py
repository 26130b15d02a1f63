"""What the station logics record is typed (kagiban.events): every event a cabinet, a door and a
shredder make in a day's ordinary use is of a known kind, its data fit that kind's model with
nothing left out, and the hub reads back the values the station meant."""
from datetime import datetime, timedelta, timezone

import pytest

from device.stations.cabinet import CabinetLogic
from device.stations.door import DoorLogic
from device.stations.effects import Emit
from device.stations.shredder import BIN, STOP_BUTTON, ShredderLogic
from kagiban import events as ev
from device.wire import PolicyEntry

T0 = datetime(2026, 12, 3, 10, 0, tzinfo=timezone(timedelta(hours=9)))
HOLDER, OTHER, REFUSED = "AAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBB", "CCCCCCCCCCCCCCCC"
POLICY = {
    HOLDER: PolicyEntry(person="S001", decision="allow", reason="designated_holder"),
    OTHER: PolicyEntry(person="S002", decision="allow_flag", reason="not_designated"),
}


def decide(badge):
    return POLICY.get(badge, PolicyEntry(decision="deny", reason="unknown"))


def tap(logic, badge, now, wall):
    """A tap, decided from POLICY as the agent decides it from the cached policy."""
    return logic.badge(badge, decide(badge), now, wall)


def at(s):
    return T0 + timedelta(seconds=s)


def cabinet_day(logic):
    """Taps, openings, a forced door, a door held open, an expired and a superseded unlock."""
    logic.assume_door(False, 0.0, T0)
    out = tap(logic, REFUSED, 1, at(1))
    out += tap(logic, HOLDER, 2, at(2)) + logic.door(True, 3, at(3)) + logic.door(False, 30, at(30))
    out += tap(logic, HOLDER, 40, at(40)) + logic.tick(50, at(50))  # not opened: expired
    out += tap(logic, HOLDER, 60, at(60)) + tap(logic, OTHER, 61, at(61))  # taken over
    out += logic.door(True, 62, at(62)) + logic.tick(200, at(200)) + logic.door(False, 201, at(201))
    out += logic.door(True, 300, at(300)) + logic.door(False, 301, at(301))  # no tap
    return [e for e in out if isinstance(e, Emit)]


def shredder_day():
    logic = ShredderLogic(pair_window_s=15, shred_max_s=600)
    out = tap(logic, HOLDER, 1, at(1)) + tap(logic, OTHER, 2, at(2)) + logic.input(STOP_BUTTON, True, 30, at(30))
    out += tap(logic, HOLDER, 40, at(40)) + tap(logic, HOLDER, 100, at(100))  # same badge: refused
    out += tap(logic, HOLDER, 200, at(200)) + tap(logic, OTHER, 201, at(201)) + tap(logic, OTHER, 260, at(260))
    out += tap(logic, HOLDER, 300, at(300)) + tap(logic, OTHER, 301, at(301)) + logic.input(BIN, True, 310, at(310))
    out += logic.input(BIN, False, 320, at(320)) + tap(logic, REFUSED, 330, at(330)) + logic.tick(400, at(400))
    return [e for e in out if isinstance(e, Emit)]


DAYS = {
    "cabinet": lambda: cabinet_day(CabinetLogic(unlock_s=5.0, held_open_s=60.0)),
    "door": lambda: cabinet_day(DoorLogic(unlock_s=5.0, held_open_s=60.0)),
    "door without reader": lambda: cabinet_day(DoorLogic(unlock_s=5.0, held_open_s=60.0,
                                                         has_reader=False)),
    "shredder": shredder_day,
}


@pytest.mark.parametrize("station", sorted(DAYS))
def test_every_event_of_a_day_fits_its_kind_s_model_with_nothing_left_out(station):
    emits = DAYS[station]()
    assert len(emits) >= 8
    for e in emits:
        assert e.kind in ev.MODELS, e.kind
        # Strict: the data the station writes are exactly what the model takes.
        typed = ev.MODELS[e.kind].model_validate(e.data)
        assert typed.data() == e.data and typed.model_extra == {}
        assert ev.read(e.kind, e.data) == typed


def test_the_hub_reads_back_the_times_and_people_the_cabinet_meant():
    emits = cabinet_day(CabinetLogic(unlock_s=5.0, held_open_s=60.0))
    used, taken_over = [ev.read(e.kind, e.data) for e in emits if e.kind == "key.used"]
    assert (used.unlocked_at, used.opened_at, used.closed_at) == (at(2), at(3), at(30))
    assert (used.duration_s, used.flagged, used.reason) == (27, False, "designated_holder")
    assert (taken_over.unlocked_at, taken_over.flagged, taken_over.reason) == (at(61), True, "not_designated")
    [ended] = [ev.read(e.kind, e.data) for e in emits if e.kind == "unlock.ended"]
    assert (ended.reason, ended.by_badge, ended.by_person, ended.unlocked_at) == ("superseded", OTHER, "S002", at(60))
