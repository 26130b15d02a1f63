"""Outbox incarnations: events carry the id of the station outbox they came from, and are
unique per (station, incarnation, seq), so a station whose storage was replaced starts again at
seq 1 without conflicting with its earlier events. Stored events get "" (no incarnation); their
hashes stay valid because the chain hashes the incarnation only when there is one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("incarnation", sa.String(36), nullable=False, server_default=""))
        batch.drop_constraint("uq_events_station_seq", type_="unique")
        batch.create_unique_constraint("uq_events_station_incarnation_seq", ["station", "incarnation", "seq"])


def downgrade() -> None:
    # Only possible while no station has two incarnations (seqs would repeat per station).
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_station_incarnation_seq", type_="unique")
        batch.create_unique_constraint("uq_events_station_seq", ["station", "seq"])
        batch.drop_column("incarnation")
