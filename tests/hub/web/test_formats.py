"""The page formats (hub.web.formats) give the very text flask_babel gives: numbers as
format_decimal writes them, messages and labels translated, and a page that switches language
mid-request (flask_babel.force_locale) gets the new language; a time reads the same in either
language (hub.timetext)."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import flask_babel
import pytest

from hub.web import formats, i18n
from hub.web.pages import localtime, seconds

TOKYO = ZoneInfo("Asia/Tokyo")


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
        assert localtime(when, "ward-a") == "2025-04-01 23:59:40"
        assert localtime("2025-04-01T14:59:40+00:00", "ward-a") == "2025-04-01 23:59:40"
        assert localtime(None) == "" and localtime("not a time") == ""
        assert seconds(68.04) == "68 秒" and seconds(1234.56) == "1,234.6 秒" and seconds(None) == ""
        assert formats.current().label(i18n.LEDGER_ENTRIES, "forced") == "こじ開け"
        with flask_babel.force_locale("en"):
            # Another language inside the same request: its own words, not the page's; a time
            # reads the same in every language (hub.timetext).
            assert localtime(when, "ward-a") == "2025-04-01 23:59:40"
            assert seconds(68.04) == "68 s"
            assert formats.current().label(i18n.LEDGER_ENTRIES, "forced") == "Forced open"
        assert localtime(when, "ward-a") == "2025-04-01 23:59:40"
        assert formats.current().text("Key ledger") == "鍵の使用簿"


def test_outside_a_request_there_are_no_page_formats():
    assert formats.current() is None
