"""Alembic environment for the hub's store, run in-process by hub.store.migrate (no alembic.ini).

hub.store.migrate passes an open connection in ``config.attributes["connection"]``; migrating
inside that transaction keeps a failed upgrade from leaving half a schema behind.
"""
from __future__ import annotations

from alembic import context

from hub.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through hub.store.migrate, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite alters tables by copying them; batch mode does that for later revisions.
    render_as_batch=True,
    # hub.store.db emits BEGIN itself, so SQLite DDL does run inside the transaction.
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
