"""Every registry change writes its log row (who, when, before, after) in the same
transaction, and the change hook hears of it after the commit."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from hub import registry
from hub.store.schema import people, registry_log
from tests.support.registry_office import ACTOR

BADGE = "012E4CD2A5B71F03"


def log_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(registry_log)).scalar()


def test_every_change_writes_one_log_row_with_before_and_after(engine):
    r = registry
    steps = [
        # (change, entity, key, action, a field to compare: (before, after))
        (lambda: r.add_person(engine, ACTOR, "001001", "職員 1001", kana="ショクイン"),
         "person", "001001", "add", ("name", None, "職員 1001")),
        (lambda: r.add_person(engine, ACTOR, "001002", "職員 1002"), "person", "001002", "add", None),
        (lambda: r.update_person(engine, ACTOR, "001001", section="戸籍係"),
         "person", "001001", "update", ("section", "", "戸籍係")),
        (lambda: r.deactivate_person(engine, ACTOR, "001002", date(2025, 9, 30)),
         "person", "001002", "update", ("active_to", None, "2025-09-30")),
        (lambda: r.add_badge(engine, ACTOR, "001001", BADGE.lower(), valid_to="2026-03-31"),
         "badge", BADGE, "add", ("valid_to", None, "2026-03-31")),
        (lambda: r.set_badge_dates(engine, ACTOR, BADGE, "2025-04-01", None),
         "badge", BADGE, "update", ("valid_from", None, "2025-04-01")),
        (lambda: r.mark_badge_lost(engine, ACTOR, BADGE), "badge", BADGE, "lose", ("state", "active", "lost")),
        (lambda: r.reinstate_badge(engine, ACTOR, BADGE), "badge", BADGE, "reinstate", ("state", "lost", "active")),
        (lambda: r.revoke_badge(engine, ACTOR, BADGE), "badge", BADGE, "revoke", ("state", "active", "revoked")),
        (lambda: r.add_training(engine, ACTOR, "個人情報保護研修", ["cabinet"], 365),
         "training", "個人情報保護研修", "add", ("valid_days", None, 365)),
        (lambda: r.update_training(engine, ACTOR, "個人情報保護研修", station_kinds=["cabinet", "door"]),
         "training", "個人情報保護研修", "update", ("station_kinds", ["cabinet"], ["cabinet", "door"])),
        (lambda: r.add_session(engine, ACTOR, "個人情報保護研修", "2025-04-10", place="会議室"),
         "session", "1", "add", ("place", None, "会議室")),
        (lambda: r.update_session(engine, ACTOR, 1, notes="午後の部"),
         "session", "1", "update", ("notes", "", "午後の部")),
        (lambda: r.record_attendance(engine, ACTOR, 1, ["001001"]),
         "attendance", "1/001001", "add", ("staff_no", None, "001001")),
        (lambda: r.remove_attendance(engine, ACTOR, 1, "001001"),
         "attendance", "1/001001", "delete", ("staff_no", "001001", None)),
        (lambda: r.set_holder(engine, ACTOR, "cabinet-1", "001001"),
         "designation", "cabinet-1/001001", "add", ("role", None, "holder")),
        (lambda: r.add_stand_in(engine, ACTOR, "cabinet-1", "001002"),
         "designation", "cabinet-1/001002", "add", ("role", None, "standin")),
        (lambda: r.remove_designation(engine, ACTOR, "cabinet-1", "001002"),
         "designation", "cabinet-1/001002", "delete", ("role", "standin", None)),
        (lambda: r.set_station_settings(engine, ACTOR, "cabinet-1", others="deny"),
         "station_settings", "cabinet-1", "add", ("others", None, "deny")),
        (lambda: r.set_station_settings(engine, ACTOR, "cabinet-1", after_hours="flag"),
         "station_settings", "cabinet-1", "update", ("after_hours", "deny", "flag")),
        (lambda: r.add_after_hours_user(engine, ACTOR, "cabinet-1", "001001"),
         "after_hours_user", "cabinet-1/001001", "add", ("staff_no", None, "001001")),
        (lambda: r.remove_after_hours_user(engine, ACTOR, "cabinet-1", "001001"),
         "after_hours_user", "cabinet-1/001001", "delete", ("staff_no", "001001", None)),
        (lambda: r.set_roster(engine, ACTOR, "shredder-1", "2025-06-02", ["001001", "001002"]),
         "roster", "shredder-1/2025-06-02", "add", ("staff_nos", None, ["001001", "001002"])),
        (lambda: r.set_roster(engine, ACTOR, "shredder-1", "2025-06-02", ["001002"]),
         "roster", "shredder-1/2025-06-02", "update", ("staff_nos", ["001001", "001002"], ["001002"])),
    ]
    heard = []
    registry.changes(engine).connect(heard.append)
    try:
        for n, (change, entity, key, action, field) in enumerate(steps, start=1):
            count = log_count(engine)
            change()
            assert log_count(engine) == count + 1, (entity, action)
            entry = registry.history(engine, limit=1)[0]
            assert (entry.entity, entry.key, entry.action, entry.actor) == (entity, key, action, ACTOR)
            assert entry.at.endswith("Z")
            assert (entry.before is None) == (action == "add")
            assert (entry.after is None) == (action == "delete")
            if field is not None:
                name, before, after = field
                assert (entry.before or {}).get(name) == before
                assert (entry.after or {}).get(name) == after
            assert len(heard) == n and heard[-1].items == ((entity, key, action),)
    finally:
        registry.changes(engine).disconnect(heard.append)


def test_a_change_that_changes_nothing_writes_nothing(engine):
    registry.add_person(engine, ACTOR, "001001", "職員 1001", section="戸籍係")
    count = log_count(engine)

    assert registry.update_person(engine, ACTOR, "001001", section="戸籍係") is False
    assert registry.set_holder(engine, ACTOR, "cabinet-1", "001001") is True
    assert registry.set_holder(engine, ACTOR, "cabinet-1", "001001") is False
    assert registry.set_station_settings(engine, ACTOR, "cabinet-1", others="flag") is False

    assert log_count(engine) == count + 1


def test_a_refused_change_leaves_neither_row_nor_log_nor_hook_call(engine):
    registry.add_person(engine, ACTOR, "001001", "職員 1001")
    count = log_count(engine)
    heard = []
    registry.changes(engine).connect(heard.append)
    try:
        with pytest.raises(registry.RegistryError, match="already registered"):
            registry.add_person(engine, ACTOR, "001001", "別人")
        with pytest.raises(registry.RegistryError, match="Every registry change needs") as refused:
            registry.add_person(engine, " ", "001002", "無名")
        assert refused.value.code == "actor.missing"
        with pytest.raises(registry.NotFound):
            registry.record_attendance(engine, ACTOR, 99, ["001001"])
        with pytest.raises(registry.RegistryError, match="before the first day"):
            registry.add_person(engine, ACTOR, "001003", "逆", active_from="2025-05-01", active_to="2025-04-01")
    finally:
        registry.changes(engine).disconnect(heard.append)

    assert log_count(engine) == count and heard == []
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(people)).scalar() == 1


def test_a_failing_listener_does_not_undo_the_change_or_silence_others(engine):
    heard = []

    def broken(_change):
        raise RuntimeError("listener bug")

    registry.changes(engine).connect(broken)
    registry.changes(engine).connect(heard.append)
    try:
        registry.add_person(engine, ACTOR, "001001", "職員 1001")
    finally:
        registry.changes(engine).disconnect(broken)
        registry.changes(engine).disconnect(heard.append)

    assert registry.get_person(engine, "001001")["name"] == "職員 1001"
    assert len(heard) == 1


def test_each_store_has_its_own_change_hook(engine, make_engine_at):
    other = make_engine_at("other")
    heard, heard_other = [], []
    registry.changes(engine).connect(heard.append)
    registry.changes(other).connect(heard_other.append)
    try:
        registry.add_person(engine, ACTOR, "001001", "職員 1001")
        registry.add_person(other, ACTOR, "002001", "職員 1002")
        registry.add_person(other, ACTOR, "002002", "職員 1003")
    finally:
        registry.changes(engine).disconnect(heard.append)
        registry.changes(other).disconnect(heard_other.append)

    assert [c.items for c in heard] == [(("person", "001001", "add"),)]
    assert [c.items for c in heard_other] == [(("person", "002001", "add"),), (("person", "002002", "add"),)]


def test_history_filters(engine):
    registry.add_person(engine, ACTOR, "001001", "職員 1001")
    registry.add_person(engine, "other-admin", "001002", "職員 1002")
    registry.update_person(engine, ACTOR, "001001", kana="ショクイン イチ")

    assert [e.action for e in registry.history(engine, entity="person", key="001001")] == ["update", "add"]
    assert [e.key for e in registry.history(engine, actor="other-admin")] == ["001002"]
