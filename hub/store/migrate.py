"""Bring the store's schema up to date with Alembic, in-process, at hub start.

No alembic.ini: the Alembic config is built here with ``script_location`` inside the
package, so an installed hub migrates its own database.
"""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from hub.store.db import begin_write

_LOG = logging.getLogger(__name__)

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    """An Alembic config pointing at hub/store/migrations."""
    cfg = Config()
    # ConfigParser interpolates "%", which a folder name may contain.
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    return cfg


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "hub/store/migrations has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Migrate to the newest revision (a no-op when already there); return it."""
    before = current_revision(engine)
    cfg = alembic_config()
    # One write transaction: concurrent starts queue instead of both creating tables.
    with begin_write(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    after = current_revision(engine)
    if before != after:
        _LOG.info("database migrated from %s to %s", before or "empty", after)
    return after or ""
