"""Hub failover: the ``hub_leases`` table, one row per takeover of the shared store.

The row with the highest epoch names the hub allowed to write (hub.store.lease); it is read
under the store's write lock by every write transaction of a hub in a failover pair.

Revision ID: 0021_failover
Revises: 0020_pages
Create Date: 2026-12-06

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021_failover"
down_revision = "0020_pages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hub_leases",
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hub", sa.String(64), nullable=False),
        sa.Column("since", sa.String(27), nullable=False),
        sa.Column("web_url", sa.String(512)),
        sa.PrimaryKeyConstraint("epoch", name="pk_hub_leases"),
    )


def downgrade() -> None:
    op.drop_table("hub_leases")
