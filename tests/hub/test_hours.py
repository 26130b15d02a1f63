"""Business hours: the window a supervisor configured, judged in the office's own time zone,
including night windows past midnight, holidays and daylight saving; a site's days off from
its national calendar and its own closed days."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from hub.config import HoursSection, HubConfig
from hub.hours import DayOff, days_off_around, is_business_time, site_holidays

TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = HoursSection()  # mon-fri 08:30-17:15
NIGHT = HoursSection(days=["fri"], start=time(22, 0), end=time(6, 0))  # Fri 22:00 - Sat 06:00


def tokyo(y, m, d, hh, mm=0, ss=0) -> datetime:
    return datetime(y, m, d, hh, mm, ss, tzinfo=TOKYO)


@pytest.mark.parametrize("when, expected", [
    (tokyo(2025, 4, 1, 10, 0), True),  # Tuesday morning
    (tokyo(2025, 4, 1, 8, 30), True),  # the first minute counts
    (tokyo(2025, 4, 1, 8, 29, 59), False),
    (tokyo(2025, 4, 1, 17, 14, 59), True),
    (tokyo(2025, 4, 1, 17, 15), False),  # the end is not inside
    (tokyo(2025, 4, 1, 19, 30), False),  # weekday evening
    (tokyo(2025, 4, 1, 0, 30), False),  # weekday small hours
    (tokyo(2025, 4, 5, 10, 0), False),  # Saturday
    (tokyo(2025, 4, 6, 10, 0), False),  # Sunday
])
def test_weekday_office_hours(when, expected):
    assert is_business_time(when, OFFICE, [], TOKYO) is expected


def test_the_instant_is_judged_in_the_sites_zone_whatever_offset_it_carries():
    # 01:00 UTC is 10:00 in Tokyo (inside); 10:00 UTC is 19:00 in Tokyo (after hours).
    assert is_business_time(datetime(2025, 4, 1, 1, 0, tzinfo=timezone.utc), OFFICE, [], TOKYO)
    assert not is_business_time(datetime(2025, 4, 1, 10, 0, tzinfo=timezone.utc), OFFICE, [], TOKYO)


def test_a_holiday_is_after_hours_all_day():
    showa_day = date(2025, 4, 29)  # a Tuesday
    for hour in (0, 9, 12, 17, 23):
        assert not is_business_time(tokyo(2025, 4, 29, hour), OFFICE, [showa_day], TOKYO)
    assert is_business_time(tokyo(2025, 4, 30, 9), OFFICE, [showa_day], TOKYO)


@pytest.mark.parametrize("when, expected", [
    (tokyo(2025, 4, 4, 21, 59), False),  # Friday before the night window
    (tokyo(2025, 4, 4, 22, 0), True),  # Friday night
    (tokyo(2025, 4, 4, 23, 59), True),
    (tokyo(2025, 4, 5, 0, 0), True),  # after midnight: still Friday's window
    (tokyo(2025, 4, 5, 5, 59), True),
    (tokyo(2025, 4, 5, 6, 0), False),
    (tokyo(2025, 4, 5, 22, 30), False),  # Saturday night: no window starts on Saturday
    (tokyo(2025, 4, 4, 3, 0), False),  # Friday early: that would be Thursday's window
])
def test_a_night_window_runs_past_midnight(when, expected):
    assert is_business_time(when, NIGHT, [], TOKYO) is expected


def test_a_holiday_cancels_the_night_window_that_starts_on_it():
    friday = date(2025, 4, 4)
    assert not is_business_time(tokyo(2025, 4, 4, 23, 0), NIGHT, [friday], TOKYO)
    assert not is_business_time(tokyo(2025, 4, 5, 3, 0), NIGHT, [friday], TOKYO)


def test_a_holiday_after_midnight_is_after_hours_even_inside_the_previous_days_window():
    saturday = date(2025, 4, 5)
    assert is_business_time(tokyo(2025, 4, 4, 23, 0), NIGHT, [saturday], TOKYO)
    assert not is_business_time(tokyo(2025, 4, 5, 3, 0), NIGHT, [saturday], TOKYO)


def test_daylight_saving_moves_the_window_in_utc():
    # The same 07:00 UTC is 08:00 in Berlin in winter (before 08:30) and 09:00 in summer.
    assert not is_business_time(datetime(2025, 1, 7, 7, 0, tzinfo=timezone.utc), OFFICE, [], BERLIN)
    assert is_business_time(datetime(2025, 7, 1, 7, 0, tzinfo=timezone.utc), OFFICE, [], BERLIN)
    # The Monday after the spring change (30 March 2025): 06:45 UTC is 08:45 local.
    assert is_business_time(datetime(2025, 3, 31, 6, 45, tzinfo=timezone.utc), OFFICE, [], BERLIN)
    # And 16:00 UTC that day is 18:00 local: after hours, though 17:00 winter time would not be.
    assert not is_business_time(datetime(2025, 3, 31, 16, 0, tzinfo=timezone.utc), OFFICE, [], BERLIN)
    assert is_business_time(datetime(2025, 3, 28, 16, 0, tzinfo=timezone.utc), OFFICE, [], BERLIN)


def test_equal_start_and_end_is_a_whole_day_from_start():
    all_day = HoursSection(days=["mon"], start=time(0, 0), end=time(0, 0))
    assert is_business_time(tokyo(2025, 3, 31, 0, 0), all_day, [], TOKYO)  # Monday
    assert is_business_time(tokyo(2025, 3, 31, 23, 59), all_day, [], TOKYO)
    assert not is_business_time(tokyo(2025, 4, 1, 0, 0), all_day, [], TOKYO)  # Tuesday


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError):
        is_business_time(datetime(2025, 4, 1, 10, 0), OFFICE, [], TOKYO)


# --- a site's days off: its national calendar and its own closed days ---

def site_config(**site) -> HubConfig:
    return HubConfig.model_validate({"sites": {"ward-a": site}})


def test_japans_national_holidays_come_without_any_date_in_the_file():
    cfg = site_config()
    november = site_holidays(cfg, "ward-a", date(2026, 11, 1), date(2026, 11, 30))
    assert {d.isoformat(): off.national for d, off in november.items()} == {
        "2026-11-03": "文化の日", "2026-11-23": "勤労感謝の日"}
    # 勤労感謝の日 2026 is a Monday: after hours all day, judged from the resolved days alone.
    monday = tokyo(2026, 11, 23, 10)
    assert not is_business_time(monday, OFFICE, days_off_around(cfg, "ward-a", monday), TOKYO)
    assert is_business_time(tokyo(2026, 11, 24, 10), OFFICE,
                            days_off_around(cfg, "ward-a", tokyo(2026, 11, 24, 10)), TOKYO)


def test_a_substitute_holiday_is_a_day_off():
    # 勤労感謝の日 2025 fell on a Sunday; Monday the 24th is its 振替休日.
    cfg = site_config()
    off = site_holidays(cfg, "ward-a", date(2025, 11, 24), date(2025, 11, 24))
    assert [(d.isoformat(), o.national) for d, o in off.items()] == [("2025-11-24", "振替休日")]
    assert not is_business_time(tokyo(2025, 11, 24, 10), OFFICE,
                                days_off_around(cfg, "ward-a", tokyo(2025, 11, 24, 10)), TOKYO)


def test_the_new_year_closure_every_year_spans_both_years_with_its_label():
    cfg = site_config(holidays=[{"from": "12-29", "to": "01-03", "label": "年末年始"}])
    found = site_holidays(cfg, "ward-a", date(2026, 12, 25), date(2027, 1, 12))
    assert [d.isoformat() for d in found] == [
        "2026-12-29", "2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02", "2027-01-03", "2027-01-11"]
    assert found[date(2026, 12, 30)] == DayOff(day=date(2026, 12, 30), closed=True, label="年末年始")
    # New Year's Day is both national and the office's own.
    assert (found[date(2027, 1, 1)].national, found[date(2027, 1, 1)].label) == ("元日", "年末年始")
    assert found[date(2027, 1, 11)].national == "成人の日" and not found[date(2027, 1, 11)].closed
    # And again the next winter, without typing it again.
    assert date(2027, 12, 30) in site_holidays(cfg, "ward-a", date(2027, 12, 1), date(2027, 12, 31))
    # 28 December 2026 is a Monday the office works.
    assert is_business_time(tokyo(2026, 12, 28, 10), OFFICE,
                            days_off_around(cfg, "ward-a", tokyo(2026, 12, 28, 10)), TOKYO)
    assert not is_business_time(tokyo(2026, 12, 29, 10), OFFICE,
                                days_off_around(cfg, "ward-a", tokyo(2026, 12, 29, 10)), TOKYO)


def test_one_off_days_and_ranges_hold_in_their_year_only():
    cfg = site_config(holiday_calendar="none",
                      holidays=["2027-06-15", {"from": "2027-08-12", "to": "2027-08-14", "label": "夏季閉庁"}])
    assert list(site_holidays(cfg, "ward-a", date(2027, 1, 1), date(2027, 12, 31))) == [
        date(2027, 6, 15), date(2027, 8, 12), date(2027, 8, 13), date(2027, 8, 14)]
    assert site_holidays(cfg, "ward-a", date(2028, 1, 1), date(2028, 12, 31)) == {}


def test_without_a_calendar_only_the_offices_own_days_are_off():
    cfg = site_config(holiday_calendar="none", holidays=[{"date": "05-01", "label": "開庁記念日"}])
    assert {d.isoformat(): (o.national, o.label) for d, o in
            site_holidays(cfg, "ward-a", date(2026, 4, 25), date(2026, 5, 10)).items()} == {
        "2026-05-01": ("", "開庁記念日")}  # no Golden Week


def test_names_come_in_the_language_asked_where_the_calendar_has_it():
    cfg = site_config()
    day = date(2026, 11, 23)
    assert site_holidays(cfg, "ward-a", day, day, language="en")[day].national == "Labor Thanksgiving Day"
    assert site_holidays(cfg, "ward-a", day, day, language="ja")[day].national == "勤労感謝の日"
    assert site_holidays(cfg, "ward-a", day, day, language="fr")[day].national == "勤労感謝の日"


def test_another_countrys_calendar_and_each_config_keeps_its_own_days():
    us = site_config(holiday_calendar="US-CA")
    assert date(2026, 7, 3) in site_holidays(us, "ward-a", date(2026, 7, 1), date(2026, 7, 31))  # observed
    assert date(2026, 11, 23) not in site_holidays(us, "ward-a", date(2026, 11, 1), date(2026, 11, 30))
    # A second config with other days gets its own, though the first resolved the same year.
    other = site_config(holidays=["2026-07-01"])
    assert date(2026, 7, 1) in site_holidays(other, "ward-a", date(2026, 7, 1), date(2026, 7, 1))
    assert date(2026, 7, 1) not in site_holidays(us, "ward-a", date(2026, 7, 1), date(2026, 7, 1))
