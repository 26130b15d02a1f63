"""Triage: a station may be ``stopped`` (it said so before a clean shutdown), an alert may be
``closed`` by the hub (closed_at, close_reason), and stations may be put in maintenance.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_constraint(op.f("ck_stations_state"), type_="check")
        batch.create_check_constraint(op.f("ck_stations_state"), "state IN ('online', 'offline', 'stopped', 'unknown')")
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("closed_at", sa.String(27), nullable=True))
        batch.add_column(sa.Column("close_reason", sa.String(32), nullable=True))
        # Revision 0002 named it before the naming convention, which doubled the prefix.
        batch.drop_constraint(op.f("ck_alerts_ck_alerts_state"), type_="check")
        batch.create_check_constraint(op.f("ck_alerts_state"), "state IN ('open', 'acknowledged', 'closed')")
    op.create_table(
        "maintenance",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("starts_at", sa.String(27), nullable=False),
        sa.Column("ends_at", sa.String(27), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("ended_at", sa.String(27), nullable=True),
        sa.Column("ended_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_maintenance"),
    )
    op.create_index("ix_maintenance_station_ends_at", "maintenance", ["station", "ends_at"])


def downgrade() -> None:
    op.drop_index("ix_maintenance_station_ends_at", table_name="maintenance")
    op.drop_table("maintenance")
    op.execute("UPDATE stations SET state = 'offline' WHERE state = 'stopped'")
    with op.batch_alter_table("stations") as batch:
        batch.drop_constraint(op.f("ck_stations_state"), type_="check")
        batch.create_check_constraint(op.f("ck_stations_state"), "state IN ('online', 'offline', 'unknown')")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_constraint(op.f("ck_alerts_state"), type_="check")
        batch.create_check_constraint(op.f("ck_alerts_ck_alerts_state"), "state IN ('open', 'acknowledged')")
        batch.drop_column("close_reason")
        batch.drop_column("closed_at")
