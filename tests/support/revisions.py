"""A store's schema revision as the upgrade tests set and read it: taken back one revision (not
yet upgraded), stamped with a revision this code does not know (migrated by a newer kagiban),
or read. Each call opens and disposes an engine of its own, outside any hub (no hub's fence)."""
from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text

from hub.store import migrate
from hub.store.db import begin_write, make_engine

FUTURE = "0099_from_a_newer_kagiban"  # a revision no kagiban here knows


def previous_revision() -> str:
    """The revision just before the code's newest (a store not yet upgraded)."""
    down = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(migrate.head_revision()).down_revision
    assert isinstance(down, str)
    return down


def migrated(url: str) -> None:
    """The store at ``url`` migrated to this code's newest revision."""
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """The store taken back to ``revision`` by Alembic (its tables as that revision had them)."""
    engine = make_engine(url)
    try:
        cfg = migrate.alembic_config()
        with begin_write(engine) as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def stamp(url: str, revision: str) -> None:
    """The store marked as at ``revision``, its tables untouched."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        engine.dispose()


def revision(url: str) -> str | None:
    """The revision the store at ``url`` is at."""
    engine = make_engine(url)
    try:
        return migrate.current_revision(engine)
    finally:
        engine.dispose()
