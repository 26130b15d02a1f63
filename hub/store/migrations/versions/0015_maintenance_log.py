"""Maintenance in the audit trail: a side log of its own (``maintenance``: every period a
supervisor started, and every early end with who, when and a comment; the checkpoints hold its
head), and the comment given when a period is ended early (``maintenance.end_comment``).
Periods set before this revision are entered into the log here.

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("maintenance") as batch:
        batch.add_column(sa.Column("end_comment", sa.Text, nullable=True))
    op.execute("INSERT INTO side_heads (part, n, hash) VALUES ('maintenance', 0, '" + "0" * 64 + "')")
    # Imported here, not at the top: only this step needs the entry builders.
    from hub.audit.entries import adopt_maintenance

    adopt_maintenance(op.get_bind())


def downgrade() -> None:
    op.execute("DELETE FROM side_log WHERE part = 'maintenance'")
    op.execute("DELETE FROM side_heads WHERE part = 'maintenance'")
    with op.batch_alter_table("maintenance") as batch:
        batch.drop_column("end_comment")
