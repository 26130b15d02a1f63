"""The training catalogue, sessions, per-session rosters, per-person records and who needs
training for a station kind."""
from __future__ import annotations

from datetime import date

import pytest

from hub import registry
from tests.support.registry_office import ACTOR

PRIVACY = "個人情報保護研修"
MYNUMBER = "マイナンバー研修"


@pytest.fixture
def staff(engine):
    for no, name, kw in (("001", "職員 1001", {}), ("002", "職員 1002", {}),
                         ("003", "職員 1003", {"employment": "part_time", "active_from": "2025-07-01"}),
                         ("004", "退職 四郎", {"active_to": "2025-03-31"})):
        registry.add_person(engine, ACTOR, no, name, **kw)
    registry.add_training(engine, ACTOR, PRIVACY, ["cabinet", "shredder", "printer", "door"], 365)
    registry.add_training(engine, ACTOR, MYNUMBER, ["cabinet"], None)
    return engine


def test_catalogue_checks(staff):
    with pytest.raises(registry.RegistryError, match=r"Unknown station kind\(s\) safe") as refused:
        registry.add_training(staff, ACTOR, "x", ["safe"], 30)
    assert refused.value.code == "training.unknown_kinds"
    with pytest.raises(registry.RegistryError, match="a whole number from 1 to") as refused:
        registry.add_training(staff, ACTOR, "x", ["door"], 0)
    assert refused.value.code == "training.bad_valid_days"
    with pytest.raises(registry.RegistryError, match="already exists"):
        registry.add_training(staff, ACTOR, PRIVACY, ["door"], 30)
    assert [(t["name"], t["station_kinds"], t["valid_days"]) for t in registry.list_trainings(staff)] == [
        (MYNUMBER, ["cabinet"], None), (PRIVACY, ["cabinet", "door", "printer", "shredder"], 365)]


def test_sessions_rosters_and_records(staff):
    first = registry.add_session(staff, ACTOR, PRIVACY, "2024-04-10", place="会議室A")
    second = registry.add_session(staff, ACTOR, PRIVACY, date(2025, 4, 10))
    registry.record_attendance(staff, ACTOR, first, ["001", "002"])
    assert registry.record_attendance(staff, ACTOR, second, ["001", "001"]) == 1  # repeats skipped

    with pytest.raises(registry.RegistryError, match="already has a session on 2025-04-10"):
        registry.add_session(staff, ACTOR, PRIVACY, "2025-04-10")
    assert [(s["held_on"], s["attendees"]) for s in registry.list_sessions(staff)] == [
        (date(2025, 4, 10), 1), (date(2024, 4, 10), 2)]
    roster = registry.session_roster(staff, first)
    assert (roster["training"], roster["place"]) == (PRIVACY, "会議室A")
    assert [a["staff_no"] for a in roster["attendees"]] == ["001", "002"]
    assert [(r["held_on"], r["expires_on"]) for r in registry.person_record(staff, "001")] == [
        (date(2025, 4, 10), date(2026, 4, 10)), (date(2024, 4, 10), date(2025, 4, 10))]

    assert registry.delete_session(staff, ACTOR, first) == 2
    assert registry.find_session(staff, PRIVACY, "2024-04-10") is None
    assert [e.action for e in registry.history(staff, limit=3)] == ["delete", "delete", "delete"]


def test_who_needs_training_for_a_station_kind(staff):
    session = registry.add_session(staff, ACTOR, PRIVACY, "2024-06-20")
    registry.record_attendance(staff, ACTOR, session, ["001"])
    mynumber = registry.add_session(staff, ACTOR, MYNUMBER, "2020-01-10")
    registry.record_attendance(staff, ACTOR, mynumber, ["001", "002"])

    gaps = registry.training_gaps(staff, "cabinet", date(2025, 6, 1), within_days=30)
    door = registry.training_gaps(staff, "door", date(2025, 6, 1), within_days=10)

    assert [(g["staff_no"], g["training"], g["status"], g["expires_on"]) for g in gaps] == [
        ("001", PRIVACY, "expiring", date(2025, 6, 20)),
        ("002", PRIVACY, "untrained", None),
        ("003", PRIVACY, "untrained", None),  # a part-timer who starts next month: train first
        ("003", MYNUMBER, "untrained", None),
    ]
    assert [(g["staff_no"], g["status"]) for g in door] == [("002", "untrained"), ("003", "untrained")]
    assert [(g["staff_no"], g["status"]) for g in registry.training_gaps(staff, "door", date(2025, 6, 20))] == [
        ("001", "expired"), ("002", "untrained"), ("003", "untrained")]
