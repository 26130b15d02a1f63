"""Personal API tokens: scripts and Prometheus call the API and /metrics with
``Authorization: Bearer ...`` instead of a password checked with argon2 on every request.
Only each token's SHA-256 is stored.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_api_tokens_user_id_users"),
                  nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(27), nullable=False),
        sa.Column("last_used_at", sa.String(27), nullable=True),
        sa.Column("revoked_at", sa.String(27), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.UniqueConstraint("key_id", name="uq_api_tokens_key_id"),
    )
    op.create_index("ix_api_tokens_user", "api_tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_api_tokens_user", table_name="api_tokens")
    op.drop_table("api_tokens")
