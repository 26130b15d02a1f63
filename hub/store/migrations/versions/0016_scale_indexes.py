"""Indexes for a store of millions of events (bench/web.py, docs/performance.md):

- events (station, kind, at_utc): "the latest event of a kind at a station" (a printer's print
  server state on its release log, the close-out's printer queue) read only that station's events
  of that kind, where the (station, at_utc) index walked every event the station ever sent;
- alerts (raised_at): the alerts of a period (the monthly report, the alert history's dates and
  its exports) without reading every alert.

Revision ID: 0016
Revises: 0013
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_station_kind_at_utc", "events", ["station", "kind", "at_utc"])
    op.create_index("ix_alerts_raised_at", "alerts", ["raised_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_raised_at", table_name="alerts")
    op.drop_index("ix_events_station_kind_at_utc", table_name="events")
