"""Near-miss (ヒヤリハット) cases: the ``staff`` role, the cases and their monthly digests, and
the ``nearmiss`` side log.

Revision ID: 0017
Revises: 0013
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        # Revision 0002 named it before the naming convention, which doubled the prefix.
        batch.drop_constraint(op.f("ck_users_ck_users_role"), type_="check")
        batch.create_check_constraint(op.f("ck_users_role"), "role IN ('admin', 'supervisor', 'auditor', 'staff')")
    op.create_table(
        "nearmiss_cases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("occurred_at", sa.String(27), nullable=False),
        sa.Column("station", sa.String(64), nullable=True),
        sa.Column("place", sa.String(128), nullable=False, server_default=""),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("what", sa.Text, nullable=False),
        sa.Column("why", sa.Text, nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("anonymous", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reporter", sa.String(64), nullable=False),
        sa.Column("filed_by", sa.String(64), nullable=False),
        sa.Column("filed_at", sa.String(27), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("alert_id", sa.Integer, nullable=True),
        sa.Column("event_ids", sa.Text, nullable=False, server_default="[]"),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("countermeasure", sa.Text, nullable=True),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("reviewed_at", sa.String(27), nullable=True),
        sa.Column("shared_by", sa.String(64), nullable=True),
        sa.Column("shared_at", sa.String(27), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_nearmiss_cases"),
        sa.CheckConstraint("state IN ('filed', 'reviewed', 'shared')", name=op.f("ck_nearmiss_cases_state")),
        sa.CheckConstraint("category IN ('keys', 'printer', 'shredder', 'counter', 'pc', 'mail', 'other')",
                           name=op.f("ck_nearmiss_cases_category")),
        sa.CheckConstraint("severity IN ('minor', 'moderate', 'serious')", name=op.f("ck_nearmiss_cases_severity")),
    )
    op.create_index("ix_nearmiss_cases_state_shared_at", "nearmiss_cases", ["state", "shared_at"])
    op.create_index("ix_nearmiss_cases_occurred_at", "nearmiss_cases", ["occurred_at"])
    op.create_table(
        "nearmiss_digests",
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("sent_at", sa.String(27), nullable=False),
        sa.Column("cases", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("month", name="pk_nearmiss_digests"),
    )
    op.execute("INSERT INTO side_heads (part, n, hash) VALUES ('nearmiss', 0, '" + "0" * 64 + "')")


def downgrade() -> None:
    op.execute("DELETE FROM side_log WHERE part = 'nearmiss'")
    op.execute("DELETE FROM side_heads WHERE part = 'nearmiss'")
    op.drop_table("nearmiss_digests")
    op.drop_index("ix_nearmiss_cases_occurred_at", table_name="nearmiss_cases")
    op.drop_index("ix_nearmiss_cases_state_shared_at", table_name="nearmiss_cases")
    op.drop_table("nearmiss_cases")
    # The older code knows no staff role: such accounts stay (never deleted) but cannot sign in.
    op.execute("UPDATE users SET active = 0, role = 'auditor' WHERE role = 'staff'")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_role"), type_="check")
        batch.create_check_constraint(op.f("ck_users_ck_users_role"), "role IN ('admin', 'supervisor', 'auditor')")
