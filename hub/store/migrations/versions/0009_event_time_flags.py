"""Times you can trust: an event whose station time is far from when the hub received it is
flagged (``events.time_flag``: ``future`` or ``past``), and each station's clock offset as
measured from its last heartbeat (``stations.clock_offset_s``: station time minus receive
time, seconds). A station's latest event and latest door event are the last to arrive, not the
latest by their time: ``stations.last_row_no`` / ``door_row_no`` point at them (filled here
from the stored events).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("time_flag", sa.String(8), nullable=True))
    with op.batch_alter_table("stations") as batch:
        batch.add_column(sa.Column("clock_offset_s", sa.Float, nullable=True))
        batch.add_column(sa.Column("last_row_no", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("door_row_no", sa.BigInteger, nullable=True))
    op.execute("UPDATE stations SET last_row_no = (SELECT max(row_no) FROM events WHERE events.station = stations.station)")
    op.execute("UPDATE stations SET door_row_no = (SELECT max(row_no) FROM events WHERE events.station = stations.station"
               " AND events.kind IN ('door.opened', 'door.forced', 'door.intrusion', 'door.closed'))")


def downgrade() -> None:
    with op.batch_alter_table("stations") as batch:
        batch.drop_column("door_row_no")
        batch.drop_column("last_row_no")
        batch.drop_column("clock_offset_s")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("time_flag")
