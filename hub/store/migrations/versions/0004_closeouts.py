"""End-of-day close-outs: one per site and day, as built, stored and sent (hub.ledgers.closeout).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "closeouts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("generated_at", sa.String(27), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("deliveries", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_closeouts"),
        sa.UniqueConstraint("site", "day", name="uq_closeouts_site_day"),
    )


def downgrade() -> None:
    op.drop_table("closeouts")
