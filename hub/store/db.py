"""Engines for the hub's store: SQLite tuned for an audit trail, or any SQLAlchemy URL.

An ack promises the station that its events are on disk, so SQLite runs with
``synchronous=FULL``; WAL lets readers (web page, verify) run while the writer commits.
Write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the busy
timeout instead of failing when one upgrades a read lock.
"""
from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from pathlib import Path

from sqlalchemy import Connection, CursorResult, Engine, create_engine, event
from sqlalchemy.engine import make_url

_LOG = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "kagiban_sqlite_begin"


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for a SQLite file, its folder is created and pragmas applied."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        # Python 3.11's sqlite3 would otherwise skip BEGIN before SELECT and DDL; we emit it.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get(_BEGIN_OPTION) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    _LOG.debug("SQLite engine for %s", parsed.database)
    return engine


def inserted_id(result: CursorResult) -> int:
    """The primary key of the row a one-row insert added. (SQLAlchemy types the key as
    optional; an insert of one row always has it.)"""
    key = result.inserted_primary_key
    if key is None:
        raise ValueError("not a one-row insert")
    return int(key[0])


def begin_write(engine: Engine) -> AbstractContextManager[Connection]:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed when the block ends."""
    return engine.execution_options(**{_BEGIN_OPTION: True}).begin()
