"""The sites each web user sees: ``user_sites`` (user id, site id), hub.accounts.sites.

A user without rows sees every site, so a hub with one office changes nothing.

Revision ID: 0023_scopes
Revises: 0021_failover
Create Date: 2026-12-06

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023_scopes"
down_revision = "0021_failover"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_sites",
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_user_sites_user_id"), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "site", name="pk_user_sites"),
    )


def downgrade() -> None:
    op.drop_table("user_sites")
