"""Snapshots are photos of staff, personal data: kept ``snapshots.keep_days`` days after the
hub received them, then deleted. Each deletion appends an ``expired`` entry to the snapshots
side log in the same transaction, so the photo's hash stays in the trail and ``kagiban
verify`` shows it as expired, not missing."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from hub.audit.entries import snapshot_expired
from hub.store.chain import append_side
from hub.store.db import begin_write
from hub.store.schema import snapshots
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

BATCH = 200  # snapshots per transaction: the writer is never held long


def expire(engine: Engine, keep_days: int, now: datetime | None = None, *, max_batches: int = 10_000) -> int:
    """Delete snapshots received more than ``keep_days`` ago; how many were deleted."""
    now = now or now_utc()
    cutoff, at = utc_text(now - timedelta(days=keep_days)), utc_text(now)
    done = 0
    for _ in range(max_batches):
        with begin_write(engine) as conn:
            rows = conn.execute(
                select(snapshots.c.event_id, snapshots.c.sha256).where(snapshots.c.received_at < cutoff)
                .order_by(snapshots.c.received_at, snapshots.c.event_id).limit(BATCH)).all()
            if not rows:
                break
            ids = [r.event_id for r in rows]
            conn.execute(delete(snapshots).where(snapshots.c.event_id.in_(ids)))
            append_side(conn, "snapshots", [(at, snapshot_expired(r.event_id, r.sha256, at)) for r in rows])
        done += len(rows)
    if done:
        _LOG.info("deleted %d snapshot(s) received before %s (kept %d days)", done, cutoff, keep_days)
    return done
