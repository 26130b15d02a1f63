"""Initial schema: events (hash-chained), snapshots, quarantine, stations, station_log,
chain_head, policies.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing the first schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ROW_NO = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_GENESIS_HASH = "0" * 64


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("row_no", _ROW_NO, autoincrement=False, nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("at_utc", sa.String(27), nullable=False),
        sa.Column("badge", sa.String(32), nullable=True),
        sa.Column("person", sa.String(64), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("received_at", sa.String(27), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("row_no", name=op.f("pk_events")),
        sa.UniqueConstraint("station", "seq", name=op.f("uq_events_station_seq")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    op.create_index(op.f("ix_events_station_at_utc"), "events", ["station", "at_utc"])
    op.create_index(op.f("ix_events_kind_at_utc"), "events", ["kind", "at_utc"])
    op.create_index(op.f("ix_events_person_at_utc"), "events", ["person", "at_utc"])

    op.create_table(
        "snapshots",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("taken_at", sa.String(27), nullable=False),
        sa.Column("content_type", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_snapshots")),
    )
    op.create_index(op.f("ix_snapshots_station_taken_at"), "snapshots", ["station", "taken_at"])

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("received_at", sa.String(27), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
    )
    op.create_index(op.f("ix_quarantine_reason_received_at"), "quarantine", ["reason", "received_at"])

    op.create_table(
        "stations",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("state_since", sa.String(27), nullable=True),
        sa.Column("last_seen", sa.String(27), nullable=True),
        sa.Column("last_heartbeat", sa.Text(), nullable=True),
        sa.Column("policy_version", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("state IN ('online', 'offline', 'unknown')", name=op.f("ck_stations_state")),
        sa.PrimaryKeyConstraint("station", name=op.f("pk_stations")),
    )

    op.create_table(
        "station_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("at", sa.String(27), nullable=False),
        sa.Column("received_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_station_log")),
    )
    op.create_index(op.f("ix_station_log_station_at"), "station_log", ["station", "at"])

    chain_head = op.create_table(
        "chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("row_no", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_chain_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_head")),
    )
    # The empty chain: no rows, head at the genesis hash.
    op.bulk_insert(chain_head, [{"id": 1, "row_no": 0, "hash": _GENESIS_HASH}])

    op.create_table(
        "policies",
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("published_at", sa.String(27), nullable=False),
        sa.PrimaryKeyConstraint("station", name=op.f("pk_policies")),
    )


def downgrade() -> None:
    for name in ("policies", "chain_head", "station_log", "stations", "quarantine", "snapshots", "events"):
        op.drop_table(name)
