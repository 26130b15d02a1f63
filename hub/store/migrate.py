"""Bring the store's schema up to date with Alembic, in-process, at hub start.

No alembic.ini: the Alembic config is built here with ``script_location`` inside the
package, so an installed hub migrates its own database.

A store at a revision this code does not know (a newer kagiban migrated it) is never touched:
:class:`StoreNewer` names both revisions, before Alembic's own "Can't locate revision". In a
failover pair only the hub holding the lease migrates (hub.store.lease, :func:`upgrade_on`
inside its takeover transaction); see docs/reliability.md "Upgrading a failover pair".
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

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


class StoreNewer(RuntimeError):
    """The store is at a revision this code does not know: a newer kagiban migrated it, and this
    hub must neither migrate it nor work on it. ``code`` is what pages and /healthz translate."""

    code = "store_newer"

    def __init__(self, store_revision: str, code_revision: str):
        super().__init__(f"the store is at revision {store_revision}, which this kagiban does not know "
                         f"(its newest is {code_revision}): a newer kagiban migrated it; upgrade kagiban "
                         "on this machine")
        self.store_revision = store_revision
        self.code_revision = code_revision

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, StoreNewer) and (self.store_revision, self.code_revision)
                == (other.store_revision, other.code_revision))

    def __hash__(self) -> int:
        return hash((self.store_revision, self.code_revision))

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "store_revision": self.store_revision, "code_revision": self.code_revision}


class StoreBehind(RuntimeError):
    """A failover pair's store at an older revision than this code: only the hub taking the lease
    migrates it (its active may still run the older code), so an admin command waits for that."""

    code = "store_behind"

    def __init__(self, store_revision: str | None, code_revision: str):
        super().__init__(f"the failover pair's store is at revision {store_revision or 'none'}, older than this "
                         f"kagiban's {code_revision}; only the hub taking the lease migrates it: run this on the "
                         "active hub's machine, or after the upgraded hub has taken over")
        self.store_revision = store_revision
        self.code_revision = code_revision


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this code has a script for (read once: the scripts do not change)."""
    return frozenset(r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions())


def newer_store(conn: Connection) -> StoreNewer | None:
    """The problem if the store behind ``conn`` is at a revision this code does not know."""
    return _unknown(MigrationContext.configure(conn).get_current_revision())


def _unknown(revision: str | None) -> StoreNewer | None:
    """StoreNewer if ``revision`` (a store's) is one this code has no script for."""
    if revision is None or revision in known_revisions():
        return None
    return StoreNewer(revision, head_revision())


def has_lease_table(engine: Engine) -> bool:
    """Whether the store has ``hub_leases`` (revision 0021_failover or later): only then can a hub
    of a failover pair be active on it."""
    with engine.connect() as conn:
        return inspect(conn).has_table("hub_leases")


@functools.cache
def head_revision() -> str:
    """The newest revision this code knows (read once: the scripts do not change)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "hub/store/migrations has no revisions"
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> str:
    """Migrate to the newest revision (a no-op when already there); return it.

    Raises StoreNewer (nothing changed) for a store at a revision this code does not know.
    """
    # One write transaction: concurrent starts queue instead of both creating tables.
    with begin_write(engine) as conn:
        before, after = upgrade_on(conn)
    if before != after:
        _LOG.info("database migrated from %s to %s", before or "empty", after)
    return after


def upgrade_on(conn: Connection) -> tuple[str | None, str]:
    """Migrate inside the caller's write transaction (committed or rolled back with it);
    (revision before, revision now). Raises StoreNewer before changing anything."""
    before = MigrationContext.configure(conn).get_current_revision()
    problem = _unknown(before)
    if problem is not None:
        raise problem
    head = head_revision()
    if before == head:
        # Nothing to do: Alembic is not loaded (a takeover runs this under the lease).
        return before, head
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, "head")
    return before, head


def ready_for_command(engine: Engine, *, in_pair: bool) -> None:
    """Before an admin command (``kagiban hub user`` ...) works on the store: a single hub's store
    is migrated as at start; a failover pair's store with ``hub_leases`` must already be at this
    code's newest revision (StoreBehind), since migrating it could run under the active.
    StoreNewer for a store a newer kagiban migrated."""
    if not in_pair or not has_lease_table(engine):
        upgrade(engine)
        return
    revision = current_revision(engine)
    problem = _unknown(revision)
    if problem is not None:
        raise problem
    if revision != head_revision():
        raise StoreBehind(revision, head_revision())
