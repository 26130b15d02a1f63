"""Compiling the registry into station policies: one decision and reason per badge, the
times the station judges itself, and the change hook that makes a revocation go out."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert

from hub import registry
from hub.config import ClosedDays
from hub.store.schema import policies, stations
from tests.support.registry_office import ACTOR, TODAY

TOKYO = ZoneInfo("Asia/Tokyo")
PRIVACY = "個人情報保護研修"
MYNUMBER = "マイナンバー研修"
NOW = datetime(2025, 6, 2, 1, 0, tzinfo=timezone.utc)  # 10:00 in Tokyo, TODAY


def badge(n: int) -> str:
    return f"0A0B0C0D{n:08X}"


def midnight(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=TOKYO).isoformat()


@pytest.fixture
def office(engine):
    """A registry with one person per case; staff number 1xx has badge(1xx)."""
    add = lambda no, name, **kw: registry.add_person(engine, ACTOR, no, name, **kw)  # noqa: E731
    add("100", "課長 一郎", role="責任職")          # cabinet holder
    add("101", "庶務 花子", role="庶務担当")        # stand-in, on today's shredder roster
    add("102", "係員 次郎")                         # trained, not designated, on the roster
    add("103", "新人 三郎")                         # no training at all
    add("104", "期限 四郎")                         # training expired
    add("105", "失効 五郎")                         # badge revoked
    add("106", "紛失 六子")                         # badge lost
    add("107", "退職 七郎", active_to="2025-05-31")  # left last month
    add("108", "夜間 八郎")                         # may use the cabinet after hours
    add("109", "予定 九子")                         # badge valid from next week
    add("110", "転出 十郎", active_to="2025-06-30")  # leaves at the end of the month
    add("111", "短時間 十一", employment="part_time", active_from="2025-06-05")  # starts Thursday
    add("112", "古札 十二")                         # badge past its last day
    add("113", "期限札 十三")                       # badge ends mid-month
    add("114", "一般 十四")                         # only the general training
    registry.add_training(engine, ACTOR, PRIVACY, ["cabinet", "shredder", "printer", "door"], 365)
    registry.add_training(engine, ACTOR, MYNUMBER, ["cabinet"], 730)
    recent = registry.add_session(engine, ACTOR, PRIVACY, "2025-04-10")
    old = registry.add_session(engine, ACTOR, PRIVACY, "2024-05-01")  # expired 2025-05-01
    mynumber = registry.add_session(engine, ACTOR, MYNUMBER, "2025-01-15")  # valid to 2027-01-14
    everyone = [str(n) for n in range(100, 115) if n not in (103, 104)]
    registry.record_attendance(engine, ACTOR, recent, everyone)
    registry.record_attendance(engine, ACTOR, old, ["104"])
    registry.record_attendance(engine, ACTOR, mynumber, ["104"] + [n for n in everyone if n != "114"])
    for n in range(100, 115):
        kwargs = {}
        if n == 109:
            kwargs = {"valid_from": "2025-06-09"}
        elif n == 112:
            kwargs = {"valid_to": "2025-05-31"}
        elif n == 113:
            kwargs = {"valid_from": "2025-04-01", "valid_to": "2025-06-15"}
        registry.add_badge(engine, ACTOR, str(n), badge(n), **kwargs)
    registry.revoke_badge(engine, ACTOR, badge(105))
    registry.mark_badge_lost(engine, ACTOR, badge(106))
    registry.set_holder(engine, ACTOR, "cabinet-1", "100")
    registry.add_stand_in(engine, ACTOR, "cabinet-1", "101")
    registry.add_after_hours_user(engine, ACTOR, "cabinet-1", "108")
    registry.set_roster(engine, ACTOR, "shredder-1", TODAY, ["101", "102"])
    registry.set_roster(engine, ACTOR, "shredder-1", TODAY + timedelta(days=1), ["108", "110"])
    return engine


def decisions(policy: dict) -> dict[str, tuple[str, str]]:
    """staff number -> (decision, reason)."""
    return {e["person"]: (e["decision"], e["reason"]) for e in policy["badges"].values()}


def test_cabinet_decisions(office, cfg):
    policy = registry.compile_station(office, cfg, "cabinet-1", "ward-a", "cabinet", TODAY, now=NOW)

    assert decisions(policy) == {
        "100": ("allow", "designated_holder"),
        "101": ("allow", "stand_in"),
        "102": ("allow_flag", "not_designated"),
        "103": ("deny", "untrained"),
        "104": ("deny", "training_expired"),
        "105": ("deny", "revoked"),
        "106": ("deny", "revoked"),
        "107": ("deny", "inactive"),
        "108": ("allow_flag", "not_designated"),
        "109": ("allow_flag", "not_designated"),
        "110": ("allow_flag", "not_designated"),
        "111": ("allow_flag", "not_designated"),
        "112": ("deny", "badge_expired"),
        "113": ("allow_flag", "not_designated"),
        "114": ("deny", "untrained"),  # the cabinet also needs the My Number training
    }
    entries = {e["person"]: e for e in policy["badges"].values()}
    # Allowed until the first required training expires (the general one, 2026-04-10).
    assert entries["100"]["valid_until"] == midnight(date(2026, 4, 10))
    assert entries["100"]["expiry_reason"] == "training_expired"
    assert entries["100"]["valid_from"] is None
    # Not yet valid: from the badge's first day / the person's first day, in the site's zone.
    assert entries["109"]["valid_from"] == "2025-06-09T00:00:00+09:00"
    assert entries["111"]["valid_from"] == midnight(date(2025, 6, 5))
    # Ends with the person's last day, or the badge's, whichever is first.
    assert (entries["110"]["valid_until"], entries["110"]["expiry_reason"]) == (midnight(date(2025, 7, 1)), "inactive")
    assert (entries["113"]["valid_until"], entries["113"]["expiry_reason"]) == (
        midnight(date(2025, 6, 16)), "badge_expired")
    # After hours: only the listed person; denied entries never.
    assert entries["108"]["after_hours"] == "allow"
    assert entries["100"]["after_hours"] == "deny"
    assert all(e["after_hours"] == "deny" for e in entries.values() if e["decision"] == "deny")
    assert entries["100"]["name"] == "課長 一郎"
    assert list(policy["badges"]) == sorted(policy["badges"])


def test_the_policy_carries_hours_holidays_zone_version_and_issue_time(office, cfg):
    cabinet = registry.compile_station(office, cfg, "cabinet-1", "ward-a", "cabinet", TODAY, now=NOW)
    printer = registry.compile_station(office, cfg, "printer-1", "ward-a", "printer", TODAY, now=NOW)

    assert (cabinet["site"], cabinet["station"], cabinet["time_zone"]) == ("ward-a", "cabinet-1", "Asia/Tokyo")
    assert cabinet["hours"] == {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:30", "end": "17:15"}
    assert printer["hours"] == {"days": ["mon", "tue", "wed", "thu", "fri", "sat"], "start": "07:00", "end": "20:00"}
    # 海の日, national: the past ones are left out, and those over 60 days ahead (山の日, 11 Aug).
    assert cabinet["holidays"] == ["2025-07-21"]
    assert cabinet["version"] == int(NOW.timestamp() * 1000)
    assert cabinet["issued_at"] == "2025-06-02T10:00:00+09:00"


def test_the_policy_carries_national_and_own_days_off_sixty_days_ahead_or_its_validity_and_more(office, cfg):
    cfg.sites["ward-a"].holidays = [ClosedDays.model_validate({"from": "12-29", "to": "01-03", "label": "年末年始"})]
    friday = date(2025, 12, 19)
    issued = datetime(2025, 12, 19, 1, 0, tzinfo=timezone.utc)

    cabinet = registry.compile_station(office, cfg, "cabinet-1", "ward-a", "cabinet", friday, now=issued)
    # To 17 February 2026: the closure, 成人の日, 建国記念の日; not 天皇誕生日 (23 February).
    assert cabinet["holidays"] == ["2025-12-29", "2025-12-30", "2025-12-31", "2026-01-01", "2026-01-02",
                                   "2026-01-03", "2026-01-12", "2026-02-11"]
    policy = registry.to_policy(cabinet)
    at = lambda *a: datetime(*a, tzinfo=TOKYO)  # noqa: E731
    assert policy.decide(badge(100), at(2026, 1, 2, 10, 0)).reason == "outside_hours"  # a Friday, closed
    assert policy.decide(badge(100), at(2026, 1, 12, 10, 0)).reason == "outside_hours"  # 成人の日, a Monday
    assert policy.decide(badge(100), at(2026, 1, 13, 10, 0)).reason == "designated_holder"

    # A policy valid for 90 days carries 104 days (validity and a 14-day margin).
    cfg.policy.validity_h = 90 * 24
    longer = registry.compile_station(office, cfg, "cabinet-1", "ward-a", "cabinet", friday, now=issued)
    assert longer["holidays"][-3:] == ["2026-02-11", "2026-02-23", "2026-03-20"]  # to 2 April


def test_others_can_be_denied_at_a_cabinet_and_flagged_after_hours(office, cfg):
    registry.set_station_settings(office, ACTOR, "cabinet-1", others="deny", after_hours="flag")

    policy = registry.compile_station(office, cfg, "cabinet-1", "ward-a", "cabinet", TODAY, now=NOW)

    got = decisions(policy)
    assert got["100"] == ("allow", "designated_holder")
    assert got["101"] == ("allow", "stand_in")
    assert got["102"] == ("deny", "not_designated")
    entries = {e["person"]: e for e in policy["badges"].values()}
    assert entries["100"]["after_hours"] == "flag"
    assert entries["108"]["decision"] == "deny"  # not designated, so not after hours either
    assert entries["102"]["after_hours"] == "deny" and entries["102"]["valid_until"] is None


def test_shredder_follows_the_days_roster(office, cfg):
    today = registry.compile_station(office, cfg, "shredder-1", "ward-a", "shredder", TODAY, now=NOW)
    tomorrow = registry.compile_station(office, cfg, "shredder-1", "ward-a", "shredder",
                                        TODAY + timedelta(days=1), now=NOW)

    got = decisions(today)
    assert got["101"] == got["102"] == ("allow", "allowed")
    assert got["100"] == ("allow_flag", "not_designated")  # designations are the cabinet's
    assert got["114"] == ("allow_flag", "not_designated")  # the shredder needs only the general training
    assert got["103"] == ("deny", "untrained")
    assert got["105"] == ("deny", "revoked")
    later = decisions(tomorrow)
    assert later["108"] == later["110"] == ("allow", "allowed")
    assert later["101"] == ("allow_flag", "not_designated")


def test_printer_and_door_allow_the_trained(office, cfg):
    for station, kind in (("printer-1", "printer"), ("door-1", "door")):
        got = decisions(registry.compile_station(office, cfg, station, "ward-a", kind, TODAY, now=NOW))
        assert got["114"] == got["100"] == ("allow", "allowed")
        assert got["103"] == ("deny", "untrained")
        assert got["104"] == ("deny", "training_expired")
        assert got["107"] == ("deny", "inactive")


def test_training_expires_on_its_day(office, cfg):
    expiry = date(2026, 4, 10)
    day_before = registry.compile_station(office, cfg, "door-1", "ward-a", "door", expiry - timedelta(days=1), now=NOW)
    on_the_day = registry.compile_station(office, cfg, "door-1", "ward-a", "door", expiry, now=NOW)

    assert decisions(day_before)["100"] == ("allow", "allowed")
    assert decisions(on_the_day)["100"] == ("deny", "training_expired")


def test_a_future_session_does_not_train_anyone_yet(office, cfg):
    future = registry.add_session(office, ACTOR, PRIVACY, "2025-06-20")
    registry.record_attendance(office, ACTOR, future, ["103"])

    assert decisions(registry.compile_station(office, cfg, "door-1", "ward-a", "door", TODAY, now=NOW))["103"] == (
        "deny", "untrained")
    assert decisions(registry.compile_station(office, cfg, "door-1", "ward-a", "door", date(2025, 6, 20),
                                              now=NOW))["103"] == ("allow", "allowed")


def test_the_station_decides_the_times_itself(office, cfg):
    policy = registry.to_policy(registry.compile_station(office, cfg, "cabinet-1", "ward-a", "cabinet",
                                                         TODAY, now=NOW))
    at = lambda *a: datetime(*a, tzinfo=TOKYO)  # noqa: E731

    assert policy.decide(badge(100), at(2025, 6, 2, 10, 0)).decision == "allow"
    assert policy.decide(badge(100), at(2025, 6, 2, 20, 0)).reason == "outside_hours"
    assert policy.decide(badge(108), at(2025, 6, 2, 20, 0)).decision == "allow_flag"  # listed: still flagged
    assert policy.decide(badge(109), at(2025, 6, 3, 10, 0)).reason == "not_yet_valid"
    assert policy.decide(badge(109), at(2025, 6, 9, 10, 0)).decision == "allow_flag"
    assert policy.decide(badge(113), at(2025, 6, 16, 10, 0)).reason == "badge_expired"
    assert policy.decide(badge(110), at(2025, 7, 1, 10, 0)).reason == "inactive"
    assert policy.decide(badge(100), at(2025, 7, 21, 10, 0)).reason == "outside_hours"  # a holiday
    assert policy.decide("FFFFFFFFFFFFFFFF", at(2025, 6, 2, 10, 0)).reason == "unknown"


def test_compile_all_covers_configured_and_seen_stations(office, cfg):
    with office.begin() as conn:
        conn.execute(insert(stations).values(station="door-9", site="ward-b", kind=None, state="online"))
        conn.execute(insert(stations).values(station="cabinet-1", site="elsewhere", kind="door", state="online"))

    compiled = registry.compile_all(office, cfg, TODAY, now=NOW)

    assert sorted(compiled) == ["cabinet-1", "door-1", "door-9", "printer-1", "shredder-1"]
    site, cabinet = compiled["cabinet-1"]
    assert site == "ward-a" and decisions(cabinet)["100"] == ("allow", "designated_holder")  # config wins
    site, unknown_kind = compiled["door-9"]
    assert site == "ward-b"
    # A station that never said its kind requires every training any kind requires.
    assert decisions(unknown_kind)["114"] == ("deny", "untrained")
    assert decisions(unknown_kind)["102"] == ("allow", "allowed")
    # An unlisted site keeps office hours and Japan's national holidays (海の日).
    assert unknown_kind["hours"]["start"] == "08:30" and unknown_kind["holidays"] == ["2025-07-21"]


def test_unchanged_content_keeps_its_version(office, cfg):
    first = registry.compile_station(office, cfg, "door-1", "ward-a", "door", TODAY, now=NOW)
    with office.begin() as conn:
        conn.execute(insert(policies).values(station="door-1", site="ward-a", version=first["version"],
                                             content_sha256="x", payload=json.dumps(first),
                                             published_at="2025-06-02T01:00:00.000000Z"))
    later = NOW + timedelta(hours=1)

    same = registry.compile_station(office, cfg, "door-1", "ward-a", "door", TODAY, now=later)
    registry.mark_badge_lost(office, ACTOR, badge(102))
    changed = registry.compile_station(office, cfg, "door-1", "ward-a", "door", TODAY, now=later)

    assert (same["version"], same["issued_at"]) == (first["version"], first["issued_at"])
    assert changed["version"] == int(later.timestamp() * 1000) > first["version"]


def test_revoking_a_badge_fires_the_hook_and_the_next_compile_denies_it(office, cfg):
    seen = []
    registry.changes(office).connect(seen.append)
    try:
        assert registry.revoke_badge(office, "supervisor-1", badge(100)) is True
        assert registry.revoke_badge(office, "supervisor-1", badge(100)) is False  # no change, no call
    finally:
        registry.changes(office).disconnect(seen.append)

    assert len(seen) == 1
    assert seen[0].actor == "supervisor-1" and seen[0].items == (("badge", badge(100), "revoke"),)
    for station, (_site, policy) in registry.compile_all(office, cfg, TODAY, now=NOW).items():
        assert policy["badges"][badge(100)]["decision"] == "deny", station
        assert policy["badges"][badge(100)]["reason"] == "revoked"


def test_policy_source_feeds_the_publisher(office, cfg):
    source = registry.policy_source(office, cfg)(NOW)

    assert set(source) == {"cabinet-1", "shredder-1", "printer-1", "door-1"}
    assert set(source["cabinet-1"]) == {"site", "badges", "time_zone", "hours", "holidays"}
    # What the publisher makes of it: imported here, so only this test fails if it goes.
    from hub.registry.policy import as_compiled

    compiled = as_compiled(source["cabinet-1"])
    assert compiled.badges[badge(100)].reason == "designated_holder"
