"""The work done with a key (作業内容): ``key_work``, one append-only row per recording (the
latest of a use counts), and its side log ``work`` (who recorded what, when).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_work",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("work", sa.String(64), nullable=False),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_key_work"),
    )
    op.create_index("ix_key_work_event_id", "key_work", ["event_id"])
    op.execute("INSERT INTO side_heads (part, n, hash) VALUES ('work', 0, '" + "0" * 64 + "')")


def downgrade() -> None:
    op.execute("DELETE FROM side_log WHERE part = 'work'")
    op.execute("DELETE FROM side_heads WHERE part = 'work'")
    op.drop_index("ix_key_work_event_id", table_name="key_work")
    op.drop_table("key_work")
