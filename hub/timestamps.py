"""The one text form the hub stores instants in: UTC, fixed width, so text order is time order."""
from __future__ import annotations

from datetime import datetime, timezone


def utc_text(when: datetime) -> str:
    """``when`` (timezone-aware) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: the hub stores only instants with an offset")
    # isoformat pads the year to four digits where strftime("%Y") would not.
    return when.astimezone(timezone.utc).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def now_utc() -> datetime:
    """The current instant in UTC."""
    return datetime.now(timezone.utc)
