"""People's print user name: the owner name their print jobs carry at the CUPS print server,
when it is not their staff number (printer stations release only that owner's jobs).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("print_user", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.drop_column("print_user")
