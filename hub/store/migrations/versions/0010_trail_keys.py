"""The audit trail's leftovers: the station-key registry gets a side log of its own
(``keys``: every key added or retired with the tooling; the checkpoints hold its head and a
digest of every key), a refused signed message is kept once in quarantine with a count of its
repeats (``station``, ``incarnation``, ``seq``, ``repeats``, ``last_at``), and a snapshot says
whether the station's clock was synchronised when it was taken (``clock_unsynced``). Keys
registered before this revision are entered into the key log here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations


import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("clock_unsynced", sa.Boolean, nullable=False, server_default=sa.false()))
    with op.batch_alter_table("quarantine") as batch:
        batch.add_column(sa.Column("station", sa.String(64), nullable=True))
        batch.add_column(sa.Column("incarnation", sa.String(36), nullable=True))
        batch.add_column(sa.Column("seq", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("repeats", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_at", sa.String(27), nullable=True))
    op.create_index("ix_quarantine_station_incarnation_seq_reason", "quarantine", ["station", "incarnation", "seq", "reason"])
    op.execute("INSERT INTO side_heads (part, n, hash) VALUES ('keys', 0, '" + "0" * 64 + "')")
    # Imported here, not at the top: only this step needs the entry builders.
    from hub.audit.entries import adopt_keys

    adopt_keys(op.get_bind())


def downgrade() -> None:
    op.execute("DELETE FROM side_log WHERE part = 'keys'")
    op.execute("DELETE FROM side_heads WHERE part = 'keys'")
    op.drop_index("ix_quarantine_station_incarnation_seq_reason", table_name="quarantine")
    with op.batch_alter_table("quarantine") as batch:
        for name in ("last_at", "repeats", "seq", "incarnation", "station"):
            batch.drop_column(name)
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("clock_unsynced")


