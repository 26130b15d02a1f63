"""Cabinet holders and stand-ins, after-hours lists, the shredder's rotation table."""
from __future__ import annotations

from datetime import date

import pytest

from hub import registry
from tests.support.registry_office import ACTOR


@pytest.fixture
def staff(engine):
    for no in ("001", "002", "003", "004"):
        registry.add_person(engine, ACTOR, no, f"職員 {no}")
    return engine


def test_one_holder_per_cabinet_and_any_number_of_stand_ins(staff):
    registry.set_holder(staff, ACTOR, "cabinet-1", "001")
    registry.add_stand_in(staff, ACTOR, "cabinet-1", "002")
    registry.add_stand_in(staff, ACTOR, "cabinet-1", "003")

    registry.set_holder(staff, ACTOR, "cabinet-1", "002")  # the stand-in takes over

    got = registry.station_designations(staff, "cabinet-1")
    assert got["holder"]["staff_no"] == "002"
    assert [p["staff_no"] for p in got["stand_ins"]] == ["003"]
    assert [(e.key, e.action) for e in registry.history(staff, entity="designation", limit=2)] == [
        ("cabinet-1/002", "update"), ("cabinet-1/001", "delete")]
    assert list(registry.all_designations(staff)) == ["cabinet-1"]
    with pytest.raises(registry.RegistryError, match="Station ID 'cabinet/1' must match") as refused:
        registry.set_holder(staff, ACTOR, "cabinet/1", "001")
    assert refused.value.code == "station.invalid"


def test_after_hours_list_and_settings(staff):
    assert registry.get_station_settings(staff, "cabinet-1") == {"others": "flag", "after_hours": "deny"}
    registry.add_after_hours_user(staff, ACTOR, "cabinet-1", "004")
    assert registry.add_after_hours_user(staff, ACTOR, "cabinet-1", "004") is False
    registry.set_station_settings(staff, ACTOR, "cabinet-1", others="deny")

    assert [p["staff_no"] for p in registry.after_hours_list(staff, "cabinet-1")] == ["004"]
    assert registry.get_station_settings(staff, "cabinet-1") == {"others": "deny", "after_hours": "deny"}
    with pytest.raises(registry.RegistryError, match=r"'allow' is not a choice for others \(flag, deny\)") as refused:
        registry.set_station_settings(staff, ACTOR, "cabinet-1", others="allow")
    assert (refused.value.code, refused.value.params["what"]) == ("settings.bad_choice", "others")


def test_rotation_table_fills_working_days_in_turn(staff):
    # Mon 2 June to Mon 9 June 2025; Wednesday is a holiday.
    changed = registry.fill_rotation(staff, ACTOR, "shredder-1", "2025-06-02", "2025-06-09",
                                     [["001", "002"], ["003", "004"]], skip=[date(2025, 6, 4)])

    table = registry.roster_table(staff, "shredder-1", "2025-06-01", "2025-06-30")
    assert table == {
        date(2025, 6, 2): ["001", "002"],
        date(2025, 6, 3): ["003", "004"],
        date(2025, 6, 5): ["001", "002"],
        date(2025, 6, 6): ["003", "004"],
        date(2025, 6, 9): ["001", "002"],
    }
    assert changed == 5
    assert [p["staff_no"] for p in registry.roster(staff, "shredder-1", "2025-06-03")] == ["003", "004"]
    registry.set_roster(staff, ACTOR, "shredder-1", "2025-06-03", [])
    assert registry.roster(staff, "shredder-1", "2025-06-03") == []
    assert registry.history(staff, limit=1)[0].action == "delete"
