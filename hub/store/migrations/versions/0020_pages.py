"""The verified prefix of the events chain, and the index a month's rows are found by:

- the ``verified`` side log (hub.audit.prefix): how far the events chain was recomputed and
  found intact, so the monthly report recomputes its month's rows, not the whole store;
- events (at_utc): the first and last row of a month (any station) without reading every row.

Revision ID: 0020_pages
Revises: 0017
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

from alembic import op

revision = "0020_pages"
down_revision = "0019_procedures"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_at_utc", "events", ["at_utc"])
    op.execute("INSERT INTO side_heads (part, n, hash) VALUES ('verified', 0, '" + "0" * 64 + "')")


def downgrade() -> None:
    op.execute("DELETE FROM side_log WHERE part = 'verified'")
    op.execute("DELETE FROM side_heads WHERE part = 'verified'")
    op.drop_index("ix_events_at_utc", table_name="events")
