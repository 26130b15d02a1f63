"""The registry: people, badges, trainings with sessions and attendance, designations,
station settings, after-hours users, the shredder roster, and the registry's change log.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("staff_no", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("kana", sa.String(128), nullable=False),
        sa.Column("section", sa.String(128), nullable=False),
        sa.Column("employment", sa.String(16), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("active_from", sa.Date(), nullable=True),
        sa.Column("active_to", sa.Date(), nullable=True),
        sa.CheckConstraint("employment IN ('regular', 'shokutaku', 'part_time')",
                           name="ck_people_employment"),
        sa.PrimaryKeyConstraint("id", name="pk_people"),
        sa.UniqueConstraint("staff_no", name="uq_people_staff_no"),
    )
    op.create_table(
        "badges",
        sa.Column("badge_id", sa.String(32), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("state_changed_at", sa.String(27), nullable=True),
        sa.CheckConstraint("state IN ('active', 'lost', 'revoked')", name="ck_badges_state"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name="fk_badges_person_id"),
        sa.PrimaryKeyConstraint("badge_id", name="pk_badges"),
    )
    op.create_index("ix_badges_person_id", "badges", ["person_id"])
    op.create_table(
        "trainings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("station_kinds", sa.Text(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_trainings"),
        sa.UniqueConstraint("name", name="uq_trainings_name"),
    )
    op.create_table(
        "training_sessions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("training_id", sa.Integer(), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("place", sa.String(128), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["training_id"], ["trainings.id"], name="fk_training_sessions_training_id"),
        sa.PrimaryKeyConstraint("id", name="pk_training_sessions"),
        sa.UniqueConstraint("training_id", "held_on", name="uq_training_sessions_training_id_held_on"),
    )
    op.create_table(
        "attendance",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["session_id"], ["training_sessions.id"], name="fk_attendance_session_id"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name="fk_attendance_person_id"),
        sa.PrimaryKeyConstraint("session_id", "person_id", name="pk_attendance"),
    )
    op.create_index("ix_attendance_person_id", "attendance", ["person_id"])
    op.create_table(
        "designations",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.CheckConstraint("role IN ('holder', 'standin')", name="ck_designations_role"),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name="fk_designations_person_id"),
        sa.PrimaryKeyConstraint("station", "person_id", name="pk_designations"),
    )
    op.create_table(
        "station_settings",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("others", sa.String(8), nullable=False),
        sa.Column("after_hours", sa.String(8), nullable=False),
        sa.CheckConstraint("others IN ('flag', 'deny')", name="ck_station_settings_others"),
        sa.CheckConstraint("after_hours IN ('flag', 'deny')", name="ck_station_settings_after_hours"),
        sa.PrimaryKeyConstraint("station", name="pk_station_settings"),
    )
    op.create_table(
        "after_hours_users",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name="fk_after_hours_users_person_id"),
        sa.PrimaryKeyConstraint("station", "person_id", name="pk_after_hours_users"),
    )
    op.create_table(
        "shredder_roster",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["people.id"], name="fk_shredder_roster_person_id"),
        sa.PrimaryKeyConstraint("station", "day", "person_id", name="pk_shredder_roster"),
    )
    op.create_table(
        "registry_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.String(27), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("key", sa.String(160), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_registry_log"),
    )
    op.create_index("ix_registry_log_entity_key", "registry_log", ["entity", "key"])
    op.create_index("ix_registry_log_at", "registry_log", ["at"])


def downgrade() -> None:
    for name in ("registry_log", "shredder_roster", "after_hours_users", "station_settings",
                 "designations", "attendance", "training_sessions", "trainings", "badges", "people"):
        op.drop_table(name)
