"""Roll calls by badge tap: the sessions and who is expected at each (and, once closed, each
person's outcome).

Revision ID: 0018_rollcall
Revises: 0017
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on. Opening and closing a session and each
outcome are registry_log rows (and so in the ``registry`` side log): no side log of its own.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_rollcall"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollcall_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("topic", sa.String(128), nullable=False),
        sa.Column("training_id", sa.Integer, nullable=True),
        sa.Column("training_session_id", sa.Integer, nullable=True),
        sa.Column("stations", sa.Text, nullable=False),
        sa.Column("starts_at", sa.String(27), nullable=False),
        sa.Column("window_min", sa.Integer, nullable=False),
        sa.Column("opened_at", sa.String(27), nullable=False),
        sa.Column("opened_by", sa.String(64), nullable=False),
        sa.Column("closed_at", sa.String(27), nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("procedure_version_id", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rollcall_sessions"),
        sa.CheckConstraint("kind IN ('training', 'meeting')", name=op.f("ck_rollcall_sessions_kind")),
    )
    op.create_index("ix_rollcall_sessions_closed_at", "rollcall_sessions", ["closed_at"])
    op.create_table(
        "rollcall_people",
        sa.Column("session_id", sa.Integer, nullable=False),
        sa.Column("staff_no", sa.String(64), nullable=False),
        sa.Column("expected", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(12), nullable=True),
        sa.Column("tapped_at", sa.String(27), nullable=True),
        sa.Column("station", sa.String(64), nullable=True),
        sa.Column("event_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("session_id", "staff_no", name="pk_rollcall_people"),
        sa.ForeignKeyConstraint(["session_id"], ["rollcall_sessions.id"], name="fk_rollcall_people_session_id"),
    )


def downgrade() -> None:
    op.drop_table("rollcall_people")
    op.drop_index("ix_rollcall_sessions_closed_at", table_name="rollcall_sessions")
    op.drop_table("rollcall_sessions")
