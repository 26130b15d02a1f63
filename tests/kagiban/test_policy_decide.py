"""Policy.decide(badge, now): the entry the hub compiled, with the time rules applied at the
station at the moment of the tap (hours, holidays, valid_from, valid_until)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from kagiban.protocol import Hours, Policy, PolicyEntry

TOKYO = ZoneInfo("Asia/Tokyo")
B = "0123456789ABCDEF"
OFFICE = Hours()  # mon-fri 08:30-17:15


def tokyo(y, m, d, hh, mm=0, ss=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=TOKYO)


def make(entry: PolicyEntry | None = None, **policy) -> Policy:
    badges = {} if entry is None else {B: entry}
    policy.setdefault("hours", OFFICE)
    return Policy(version=1, issued_at=tokyo(2025, 4, 1, 0), site="ward-a", station="cabinet-1",
                  badges=badges, **policy)


def entry(**kw) -> PolicyEntry:
    kw.setdefault("decision", "allow")
    kw.setdefault("reason", "designated_holder")
    return PolicyEntry(person="S001", **kw)


def verdict(pol: Policy, now: datetime) -> tuple[str, str]:
    e = pol.decide(B, now)
    return e.decision, e.reason


TUESDAY_10 = tokyo(2025, 4, 1, 10, 0)
TUESDAY_EVENING = tokyo(2025, 4, 1, 19, 30)
SATURDAY_10 = tokyo(2025, 4, 5, 10, 0)


def test_inside_hours_the_stored_entry_holds():
    assert verdict(make(entry()), TUESDAY_10) == ("allow", "designated_holder")
    assert verdict(make(entry(decision="allow_flag", reason="not_designated")), TUESDAY_10) == (
        "allow_flag", "not_designated")


@pytest.mark.parametrize("after_hours, expected", [
    ("deny", ("deny", "outside_hours")),
    ("flag", ("allow_flag", "outside_hours")),
    ("allow", ("allow", "designated_holder")),
])
@pytest.mark.parametrize("when", [TUESDAY_EVENING, SATURDAY_10, tokyo(2025, 4, 1, 8, 29, 59),
                                  tokyo(2025, 4, 1, 17, 15)])
def test_outside_hours_after_hours_says_what_happens(after_hours, expected, when):
    assert verdict(make(entry(after_hours=after_hours)), when) == expected


def test_default_after_hours_is_deny():
    assert PolicyEntry(decision="allow").after_hours == "deny"
    assert verdict(make(entry()), TUESDAY_EVENING) == ("deny", "outside_hours")


def test_the_effective_entry_keeps_who_it_is():
    got = make(entry(name="Staff 001", after_hours="flag")).decide(B, TUESDAY_EVENING)
    assert (got.person, got.name) == ("S001", "Staff 001")


def test_a_night_window_runs_past_midnight_into_the_next_day():
    night = Hours(days=["fri"], start="22:00", end="06:00")
    pol = make(entry(), hours=night)
    assert verdict(pol, tokyo(2025, 4, 4, 21, 59))[0] == "deny"  # Friday, before the window
    assert verdict(pol, tokyo(2025, 4, 4, 23, 0))[0] == "allow"  # Friday night
    assert verdict(pol, tokyo(2025, 4, 5, 3, 0))[0] == "allow"  # Saturday 03:00: Friday's window
    assert verdict(pol, tokyo(2025, 4, 5, 6, 0)) == ("deny", "outside_hours")
    assert verdict(pol, tokyo(2025, 4, 5, 23, 0))[0] == "deny"  # no window starts on Saturday


def test_a_holiday_is_outside_hours_all_day():
    showa_day = date(2025, 4, 29)  # a Tuesday
    pol = make(entry(), holidays=[showa_day])
    assert verdict(pol, tokyo(2025, 4, 29, 10)) == ("deny", "outside_hours")
    assert verdict(pol, tokyo(2025, 4, 30, 10)) == ("allow", "designated_holder")
    flagged = make(entry(after_hours="flag"), holidays=[showa_day])
    assert verdict(flagged, tokyo(2025, 4, 29, 10)) == ("allow_flag", "outside_hours")


def test_without_hours_it_is_always_business_time():
    pol = make(entry(), hours=None, holidays=[date(2025, 4, 5)])
    assert verdict(pol, SATURDAY_10) == ("allow", "designated_holder")
    assert verdict(pol, tokyo(2025, 4, 1, 3, 0)) == ("allow", "designated_holder")


def test_hours_are_judged_in_the_policys_zone():
    # 10:00 in Tokyo is 03:00 in Berlin (summer time): outside Berlin's office hours.
    berlin = make(entry(), time_zone="Europe/Berlin")
    assert verdict(berlin, TUESDAY_10) == ("deny", "outside_hours")
    assert verdict(berlin, datetime(2025, 4, 1, 9, 0, tzinfo=timezone.utc))[0] == "allow"  # 11:00 there


def test_after_valid_until_the_badge_is_denied_with_the_expiry_reason():
    until = tokyo(2025, 4, 1, 12, 0)
    pol = make(entry(valid_until=until, expiry_reason="training_expired"))
    assert verdict(pol, until - timedelta(seconds=1)) == ("allow", "designated_holder")
    assert verdict(pol, until) == ("deny", "training_expired")  # from it on
    assert verdict(pol, tokyo(2025, 6, 1, 10)) == ("deny", "training_expired")
    # Expiry wins over hours: the record says why the person may not use it at all.
    assert verdict(pol, tokyo(2025, 4, 1, 19, 0)) == ("deny", "training_expired")


def test_expiry_reason_defaults_to_expired():
    pol = make(entry(valid_until=tokyo(2025, 4, 1, 9, 0)))
    assert verdict(pol, TUESDAY_10) == ("deny", "expired")


def test_before_valid_from_the_badge_is_not_yet_valid():
    start = tokyo(2025, 4, 1, 9, 0)
    pol = make(entry(valid_from=start))
    assert verdict(pol, start - timedelta(minutes=1)) == ("deny", "not_yet_valid")
    assert verdict(pol, start) == ("allow", "designated_holder")


def test_a_stored_deny_stays_a_deny_with_its_reason():
    pol = make(entry(decision="deny", reason="untrained", after_hours="allow"))
    assert verdict(pol, TUESDAY_10) == ("deny", "untrained")
    assert verdict(pol, TUESDAY_EVENING) == ("deny", "untrained")


def test_unknown_badge_is_denied():
    assert make().decide("FFFFEEEEDDDDCCCC", TUESDAY_10).reason == "unknown"


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        make(entry()).decide(B, datetime(2025, 4, 1, 10, 0))


@pytest.mark.parametrize("bad", [
    {"time_zone": "Mars/Olympus"},
    {"hours": {"days": ["mon"], "start": "25:00", "end": "06:00"}},
    {"hours": {"days": ["monday"], "start": "08:00", "end": "17:00"}},
])
def test_malformed_time_rules_are_refused(bad):
    with pytest.raises(ValidationError):
        make(entry(), **bad)


def test_time_rules_travel_as_json():
    pol = make(entry(valid_until=tokyo(2025, 4, 2, 0), expiry_reason="badge_expired", after_hours="flag"),
               holidays=[date(2025, 4, 29)], hours=Hours(days=["mon", "sat"], start="22:00", end="06:00"))
    text = pol.model_dump_json()
    assert '"start":"22:00"' in text and '"holidays":["2025-04-29"]' in text
    assert Policy.model_validate_json(text, strict=True) == pol
