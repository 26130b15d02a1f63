"""One format for every time a person reads (hub.timetext): the site's wall-clock time as
YYYY-MM-DD HH:MM:SS, whatever the stored form, summer time included; what is not a time
reads as nothing, and a time the zone cannot hold as stored."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from hub.timetext import time_text


def test_a_stored_utc_time_reads_in_the_sites_zone():
    assert time_text("2026-12-04T21:54:54.358459Z", "Asia/Tokyo") == "2026-12-05 06:54:54"
    assert time_text("2026-12-04T21:54:54+00:00", ZoneInfo("Asia/Tokyo")) == "2026-12-05 06:54:54"
    assert time_text(datetime(2026, 12, 4, 21, 54, 54, tzinfo=timezone.utc), "Asia/Tokyo") == "2026-12-05 06:54:54"


def test_summer_time_and_zone_names_change_the_wall_clock_only():
    ny = "America/New_York"
    assert time_text("2025-03-09T06:59:59Z", ny) == "2025-03-09 01:59:59"  # EST
    assert time_text("2025-03-09T07:00:00Z", ny) == "2025-03-09 03:00:00"  # EDT from 02:00


def test_without_a_zone_a_time_keeps_its_own_offset():
    assert time_text("2025-04-01T09:00:00+09:00", None) == "2025-04-01 09:00:00"
    assert time_text("2025-04-01T09:00:00+09:00", "No/Such_Zone") == "2025-04-01 09:00:00"


def test_what_is_not_a_time_reads_as_nothing_and_extremes_do_not_fail():
    assert [time_text(v, "Asia/Tokyo") for v in (None, "", "NaN", "2025-04-01T09:00:00", 42)] == [""] * 5
    assert time_text("0001-01-01T00:00:00+00:00", "UTC") == "0001-01-01 00:00:00"  # four digits
    assert time_text("9999-12-31T23:59:59+00:00", "Asia/Tokyo") == "9999-12-31T23:59:59+00:00"  # as stored
