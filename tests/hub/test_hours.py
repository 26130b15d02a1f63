"""Business hours: the window a supervisor configured, judged in the office's own time zone,
including night windows past midnight, holidays and daylight saving."""
from __future__ import annotations

from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

import pytest

from hub.config import HoursSection
from hub.hours import is_business_time

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
