"""Audit coverage: side logs (hash chains of alerts and acknowledgements, sign-ins, registry
changes, quarantined messages and snapshot bytes), their heads, and the hub's copy of the
signed checkpoints.

Rows stored before this revision are entered into their side logs here (hub.store.chain's
``adopt_existing``), so ``kagiban verify`` can hold every stored row against its log.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

The tables are written out in full rather than imported from hub.store.schema, so this revision
keeps describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_PARTS = ("alerts", "signins", "registry", "quarantine", "snapshots")


def upgrade() -> None:
    op.create_table(
        "side_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("part", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("at", sa.String(27), nullable=False),
        sa.Column("entry", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_side_log"),
        sa.UniqueConstraint("part", "n", name="uq_side_log_part_n"),
    )
    heads = op.create_table(
        "side_heads",
        sa.Column("part", sa.String(16), nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("part", name="pk_side_heads"),
    )
    op.bulk_insert(heads, [{"part": p, "n": 0, "hash": "0" * 64} for p in _PARTS])
    op.create_table(
        "checkpoints",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(27), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("store_bytes", sa.BigInteger),
        sa.Column("line", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_checkpoints"),
    )
    op.create_index("ix_checkpoints_at", "checkpoints", ["at"])
    # Imported here, not at the top: only this step needs the entry builders.
    from hub.audit.entries import adopt_existing

    adopt_existing(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_checkpoints_at", table_name="checkpoints")
    op.drop_table("checkpoints")
    op.drop_table("side_heads")
    op.drop_table("side_log")
