"""How big the store is, and how fast it grows (the status page's store box).

The size now is measured (SQLite: the database file with its WAL; PostgreSQL:
``pg_database_size``); the growth per day comes from the sizes the signed checkpoints recorded
(``checkpoints.store_bytes``): the last one of each day against the last one before it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path

from sqlalchemy import Engine, select, text

from hub.store.schema import checkpoints
from hub.store.timestamps import utc_text

_LOG = logging.getLogger(__name__)


def measure(engine: Engine) -> int | None:
    """The store's size in bytes now; None if it cannot be measured."""
    url = engine.url
    try:
        if url.get_backend_name() == "sqlite":
            if not url.database or url.database == ":memory:":
                return None
            db = Path(url.database)
            return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists())
        if url.get_backend_name() == "postgresql":
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())
    except Exception:
        _LOG.warning("cannot measure the store's size", exc_info=True)
    return None


@dataclass(frozen=True)
class DayGrowth:
    """Bytes the store grew on one local day (None: no checkpoint that day)."""

    day: date
    grown: int | None


def growth(engine: Engine, zone: tzinfo, *, days: int = 7, now: datetime | None = None) -> list[DayGrowth]:
    """Growth per local day over the last ``days`` days, oldest first, today included."""
    now = now or datetime.now(timezone.utc)
    today = now.astimezone(zone).date()
    first = today - timedelta(days=days - 1)
    since = datetime.combine(first - timedelta(days=1), datetime.min.time(), tzinfo=zone)
    with engine.connect() as conn:
        rows = conn.execute(
            select(checkpoints.c.at, checkpoints.c.store_bytes)
            .where(checkpoints.c.at >= utc_text(since), checkpoints.c.store_bytes.is_not(None))
            .order_by(checkpoints.c.at)).all()
    last_of: dict[date, int] = {}
    first_of: dict[date, int] = {}
    for at, size in rows:
        day = datetime.fromisoformat(at.replace("Z", "+00:00")).astimezone(zone).date()
        first_of.setdefault(day, size)
        last_of[day] = size
    out = []
    for i in range(days):
        day = first + timedelta(days=i)
        if day not in last_of:
            out.append(DayGrowth(day, None))
            continue
        before = [d for d in last_of if d < day]
        base = last_of[max(before)] if before else first_of[day]
        out.append(DayGrowth(day, last_of[day] - base))
    return out


def human(size: int | None) -> str:
    """``size`` bytes as B, KB, MB or GB (1000-based, one decimal)."""
    if size is None:
        return "-"
    sign = "-" if size < 0 else ""
    value = float(abs(size))
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"
