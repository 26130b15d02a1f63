"""Hub takeovers in the audit trail: a side log of its own (``failover``: one ``taken`` entry per
``hub_leases`` row, appended with the row from now on; the checkpoints hold its head). The
takeovers recorded before this revision are entered into the log here, in epoch order, so
``kagiban verify`` reads them as intact.

Revision ID: 0024_lease_log
Revises: 0023_scopes
Create Date: 2026-12-06

Written out in full rather than imported from hub.store.schema, so this revision keeps
describing this schema after hub.store.schema moves on.
"""
from __future__ import annotations

from alembic import op

revision = "0024_lease_log"
down_revision = "0023_scopes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("INSERT INTO side_heads (part, n, hash) VALUES ('failover', 0, '" + "0" * 64 + "')")
    # Imported here, not at the top: only this step needs the entry builders.
    from hub.audit.entries import adopt_leases

    adopt_leases(op.get_bind())


def downgrade() -> None:
    op.execute("DELETE FROM side_log WHERE part = 'failover'")
    op.execute("DELETE FROM side_heads WHERE part = 'failover'")
