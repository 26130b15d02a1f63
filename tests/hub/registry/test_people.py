"""People and badges: checks, search, badge states."""
from __future__ import annotations

from datetime import date

import pytest

from hub import registry
from tests.support.registry_office import ACTOR


def test_add_and_get_a_person_with_badges(engine):
    pid = registry.add_person(engine, ACTOR, "００１００１", "職員 1001", kana="しょくいん いち", section="戸籍係",
                              employment="shokutaku", role="係員", active_from=date(2025, 4, 1))
    registry.add_badge(engine, ACTOR, "001001", "01:2e:4c:d2:a5:b7:1f:03")
    registry.add_badge(engine, ACTOR, "001001", "AABBCCDD", valid_from="2025-04-01", valid_to="2026-03-31")

    person = registry.get_person(engine, "001001")  # full-width digits were normalised

    assert person["id"] == pid and person["employment"] == "shokutaku"
    assert person["active_from"] == date(2025, 4, 1) and person["active_to"] is None
    assert [(b["badge_id"], b["state"]) for b in person["badges"]] == [
        ("012E4CD2A5B71F03", "active"), ("AABBCCDD", "active")]
    assert registry.find_badge(engine, "012e4cd2a5b71f03")["staff_no"] == "001001"


@pytest.mark.parametrize("kwargs, code, message", [
    ({"staff_number": "00 1"}, "staff_no.invalid", "Staff number '00 1': use 1 to 32 letters"),
    ({"name": " "}, "text.empty", "name: Fill in every required field"),
    ({"employment": "temp"}, "person.bad_employment", "employment: 'temp' is not an employment type"),
    ({"active_from": "2025-13-01"}, "date.invalid", r"active_from: '2025-13-01' is not a date \(YYYY-MM-DD\)"),
])
def test_bad_person_fields_are_refused(engine, kwargs, code, message):
    args = {"staff_number": "001001", "name": "職員 1001", **kwargs}
    with pytest.raises(registry.RegistryError, match=message) as refused:
        registry.add_person(engine, ACTOR, args.pop("staff_number"), args.pop("name"), **args)
    assert refused.value.code == code


def test_a_badge_belongs_to_one_person_forever(engine):
    registry.add_person(engine, ACTOR, "001001", "職員 1001")
    registry.add_person(engine, ACTOR, "001002", "職員 1002")
    registry.add_badge(engine, ACTOR, "001001", "AABBCCDD")
    registry.revoke_badge(engine, ACTOR, "AABBCCDD")

    with pytest.raises(registry.RegistryError, match="already registered to 001001"):
        registry.add_badge(engine, ACTOR, "001002", "aabbccdd")
    with pytest.raises(registry.RegistryError, match="not a hexadecimal digit") as refused:
        registry.add_badge(engine, ACTOR, "001002", "XYZ")
    assert refused.value.code == "badge_id_not_hex"
    with pytest.raises(registry.NotFound):
        registry.revoke_badge(engine, ACTOR, "0000000000000000")
    with pytest.raises(registry.RegistryError, match="before the first day"):
        registry.add_badge(engine, ACTOR, "001002", "11223344", valid_from="2025-05-01", valid_to="2025-04-30")


def test_search_ignores_width_kana_and_spaces(engine):
    registry.add_person(engine, ACTOR, "001001", "職員 1001", kana="ショクイン イチ", section="戸籍係")
    registry.add_person(engine, ACTOR, "001002", "職員 1002", kana="ｼｮｸｲﾝ ﾆ", section="住民係",
                        active_to="2025-03-31")
    registry.add_badge(engine, ACTOR, "001002", "AABBCCDD")

    found = lambda q, **kw: [p["staff_no"] for p in registry.search_people(engine, q, **kw)]  # noqa: E731
    assert found("しょくいん いち") == ["001001"]
    assert found("ショクインニ") == ["001002"]
    assert found("職員1001") == ["001001"]
    assert found("係") == ["001001", "001002"]
    assert found("aabb") == ["001002"]
    assert found("００１") == ["001001", "001002"]
    assert found("係", active_on=date(2025, 6, 1)) == ["001001"]
    assert [p["staff_no"] for p in registry.list_people(engine, active_on=date(2025, 6, 1))] == ["001001"]
    assert [p["staff_no"] for p in registry.list_people(engine, section="住民係")] == ["001002"]
