"""Business hours and holidays for the hub's rules: is a moment inside a station's working time?

The rule itself lives in kagiban.hours, shared with the stations (which apply a policy's
hours to each tap), so both sides judge a moment the same way. In short: local time in the
site's zone (daylight saving included); a window whose ``end`` is earlier than its ``start``
runs past midnight and its part after midnight belongs to the day it started
(Fri 22:00-Sat 06:00 counts if Friday is a business day); ``start == end`` is 24 hours from
``start``; every moment on a holiday is after hours, and a holiday also cancels the window
that starts on it.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from hub.config import HoursSection
from kagiban.hours import in_hours

_LOG = logging.getLogger(__name__)


def is_business_time(
    when: datetime, hours: HoursSection, holidays: Iterable[date], tz: ZoneInfo
) -> bool:
    """True if ``when`` (timezone-aware; ValueError if naive) falls in a window of ``hours`` in ``tz``."""
    return in_hours(when, hours, holidays, tz)
