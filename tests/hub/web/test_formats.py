"""The page formats (hub.web.formats) give the very text flask_babel gives: every hour, minute
and second, in Japanese and English, in every named format and the app's default, day after
day; numbers as format_decimal writes them; messages and labels translated; and a page that
switches language mid-request (flask_babel.force_locale) gets the new language."""
from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import flask_babel
import pytest

from hub.web import formats, i18n
from hub.web.pages import localtime, seconds

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")  # a zone with summer time: zone names change


def each_second(day: datetime):
    """Every second of a day, hour by hour (each hour's own minutes and seconds)."""
    for hour in range(24):
        for minute in range(60):
            yield day.replace(hour=hour, minute=minute, second=(minute * 7 + hour) % 60, microsecond=minute * 1013)
    for second in range(60):
        yield day.replace(hour=13, minute=5, second=second)


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_datetimes_read_as_flask_babel_writes_them(app, lang):
    with app.test_request_context("/"), flask_babel.force_locale(lang):
        fm = formats.current()
        assert fm is not None and str(fm.locale) == lang
        checked = 0
        for fmt in ("medium", "short", "long", "full", None, "yyyy-MM-dd HH:mm", "EEEE h 'o''clock' a"):
            for zone in (TOKYO, NEW_YORK):
                for day in (datetime(2025, 4, 1, tzinfo=zone), datetime(2025, 12, 31, tzinfo=zone),
                            datetime(2026, 3, 8, tzinfo=zone)):
                    values = list(each_second(day)) if fmt in ("medium", None) else [
                        day + timedelta(minutes=37 * n, seconds=n) for n in range(60)]
                    for value in values:
                        value = value.astimezone(zone)
                        assert fm.format_datetime(value, fmt) == flask_babel.format_datetime(value, fmt, rebase=False)
                        checked += 1
        assert checked > 10_000


def test_compiled_time_patterns_cover_both_languages(app):
    """Japanese and English medium and short times are the compiled (table) kind; long and
    full ones name the zone and stay with Babel."""
    for lang in ("ja", "en"):
        with app.test_request_context("/"), flask_babel.force_locale(lang):
            locale = flask_babel.get_locale()
            assert formats.datetime_text(locale, "medium").hour_templates is not None
            assert formats.datetime_text(locale, "short").hour_templates is not None
            assert formats.datetime_text(locale, "full").hour_templates is None


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_numbers_read_as_format_decimal_writes_them(app, lang):
    with app.test_request_context("/"), flask_babel.force_locale(lang):
        fm = formats.current()
        for number in [0.0, -0.0, 0.1, 1.0, 12.5, 99.9, 100.0, 1234.5, 12345678.9, -3.2, 1e16, float("nan"),
                       float("inf"), *[n / 10 for n in range(0, 20000, 7)]]:
            assert fm.format_decimal(number) == flask_babel.format_decimal(number), number
            assert fm.format_decimal(number) == flask_babel.format_decimal(number)  # kept: the same again


def test_page_helpers_keep_their_texts(app):
    when = datetime(2025, 4, 1, 23, 59, 40, tzinfo=TOKYO)
    with app.test_request_context("/"):
        assert localtime(when, "ward-a") == "2025/04/01 23:59:40"
        assert localtime("2025-04-01T14:59:40+00:00", "ward-a") == "2025/04/01 23:59:40"
        assert localtime(None) == "" and localtime("not a time") == ""
        assert seconds(68.04) == "68 秒" and seconds(1234.56) == "1,234.6 秒" and seconds(None) == ""
        assert formats.current().label(i18n.LEDGER_ENTRIES, "forced") == "こじ開け"
        with flask_babel.force_locale("en"):
            # Another language inside the same request: its own formats, not the page's.
            assert localtime(when, "ward-a") == "Apr 1, 2025, 11:59:40\u202fPM"
            assert seconds(68.04) == "68 s"
            assert formats.current().label(i18n.LEDGER_ENTRIES, "forced") == "Forced open"
        assert localtime(when, "ward-a") == "2025/04/01 23:59:40"
        assert formats.current().text("Key ledger") == "鍵の使用簿"


def test_outside_a_request_there_are_no_page_formats():
    assert formats.current() is None
