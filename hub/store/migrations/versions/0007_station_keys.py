"""Station signatures: each station's public keys, and the signature stored with every event
and snapshot (the exact signed text, the base64 signature, the key id). Rows stored before have
"" there: they were not signed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "station_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("station", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(16), nullable=False),
        sa.Column("public_key", sa.String(44), nullable=False),
        sa.Column("added_at", sa.String(27), nullable=False),
        sa.Column("retired_at", sa.String(27)),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.PrimaryKeyConstraint("id", name="pk_station_keys"),
        sa.UniqueConstraint("key_id", name="uq_station_keys_key_id"),
    )
    op.create_index("ix_station_keys_station", "station_keys", ["station"])
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("signed", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("signature", sa.String(88), nullable=False, server_default=""))
        batch.add_column(sa.Column("key_id", sa.String(16), nullable=False, server_default=""))
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("signature", sa.String(88), nullable=False, server_default=""))
        batch.add_column(sa.Column("key_id", sa.String(16), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("key_id")
        batch.drop_column("signature")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("key_id")
        batch.drop_column("signature")
        batch.drop_column("signed")
    op.drop_index("ix_station_keys_station", "station_keys")
    op.drop_table("station_keys")
