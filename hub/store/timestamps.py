"""The one text form the hub stores instants in: UTC, fixed width, so text order is time order."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_text(when: datetime) -> str:
    """``when`` (timezone-aware) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: the hub stores only instants with an offset")
    try:
        utc = when.astimezone(timezone.utc)
    except OverflowError:
        # Only a bound of a query gets here (year 1 east of UTC, year 9999 west of it): the
        # store's first or last instant stands for it. Ingest never stores such a time.
        return _FIRST if when.year == 1 else _LAST
    # isoformat pads the year to four digits where strftime("%Y") would not.
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


_FIRST = "0001-01-01T00:00:00.000000Z"
_LAST = "9999-12-31T23:59:59.999999Z"


def now_utc() -> datetime:
    """The current instant in UTC."""
    return datetime.now(timezone.utc)
