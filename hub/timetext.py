"""Times as people read them: in the site's zone, in one format on every page, export and alert.

``YYYY-MM-DD HH:MM:SS`` (24 hours, no zone name) in both languages: the same text on the
pages, in an alert's sentence, in a notification, in a CSV export and in the monthly report,
so a time copied from one into another can be searched for. Stored times are UTC (ISO 8601
with an offset); they are shown in the zone of the site they belong to.
"""
from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_LOG = logging.getLogger(__name__)

# The strftime form of the text (for a spreadsheet's number format, docs); time_text writes it.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def parse(value: object) -> datetime | None:
    """A stored time (an aware datetime or ISO 8601 text with an offset or ``Z``); None if it
    is missing, malformed or has no offset."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else None
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def wall_text(local: datetime) -> str:
    """A wall-clock time (already in the zone it is shown in) as ``YYYY-MM-DD HH:MM:SS``."""
    # Not strftime: the C library writes the year 1 as "1" (no four digits).
    return (f"{local.year:04d}-{local.month:02d}-{local.day:02d} "
            f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}")


def zone_of(zone: tzinfo | str | None) -> tzinfo | None:
    """``zone`` as a tzinfo (a zone name is looked up); None for no zone or an unknown name."""
    if zone is None or isinstance(zone, tzinfo):
        return zone
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        _LOG.debug("unknown time zone %r: the time is shown with its own offset", zone)
        return None


def time_text(value: object, zone: tzinfo | str | None) -> str:
    """``value`` (a stored time) in ``zone`` as ``YYYY-MM-DD HH:MM:SS``; "" when it is not a
    time (missing, malformed, or without an offset)."""
    when = parse(value)
    if when is None:
        return ""
    found = zone_of(zone)
    try:
        local = when.astimezone(found) if found is not None else when
    except (OverflowError, ValueError):
        # A stored time the zone cannot hold (year 9999 ahead of UTC): shown as stored.
        return when.isoformat()
    return wall_text(local)
