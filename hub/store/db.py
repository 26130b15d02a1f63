"""Engines for the hub's store: SQLite tuned for an audit trail, or any SQLAlchemy URL.

An ack promises the station that its events are on disk, so SQLite runs with
``synchronous=FULL``; WAL lets readers (web page, verify) run while the writer commits.
Write transactions start with ``BEGIN IMMEDIATE`` so two writers queue on the busy
timeout instead of failing when one upgrades a read lock.

On PostgreSQL the same promise is kept the same way: a write transaction first takes one
transaction-level advisory lock (``pg_advisory_xact_lock``, released by the commit or rollback,
never left behind in the pool), so writers queue one at a time exactly as on SQLite and the
chain's row numbers stay one sequence whatever the number of hub processes or threads.
Statements after the lock run in READ COMMITTED and so see every write committed before it.
Readers that need one consistent view of several tables (verify, checkpoints) use
:func:`read_snapshot`, REPEATABLE READ on PostgreSQL.

Two hubs in a failover pair (hub.store.lease) share one PostgreSQL store: each sets a *fence*
on its engine (:func:`set_fence`), a check run inside every write transaction right after the
write lock is taken, which raises :class:`FencedOut` unless this hub holds the newest lease. A
hub that lost its lease therefore cannot commit anything, whatever thread tries.
"""
from __future__ import annotations

import logging
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import URL, Connection, CursorResult, Engine, create_engine, event
from sqlalchemy.engine import make_url

_LOG = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 10_000
_BEGIN_OPTION = "kagiban_write_begin"
_UNFENCED_OPTION = "kagiban_unfenced"
# The advisory lock every write transaction takes on PostgreSQL: one number for the whole
# store ("kagiban" in ASCII, so another application's locks are unlikely to collide).
WRITE_LOCK_KEY = 0x6B61676962616E

# Fence checks by the engine's pool (shared by the engine and its execution_options copies).
_FENCES: "weakref.WeakKeyDictionary[object, Callable[[Connection], None]]" = weakref.WeakKeyDictionary()


class FencedOut(RuntimeError):
    """A write refused because this hub does not hold the store's lease (failover)."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for a SQLite file, its folder is created and pragmas applied."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        return _postgres_engine(parsed)
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
            _use_wal(cur)
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


def _use_wal(cur: sqlite3.Cursor) -> None:
    """Put the file in WAL mode (it stays so). Switching needs the file to itself, and SQLite
    answers "database is locked" at once, without its busy timeout, while another connection
    holds it (two hubs starting on a new store): so the switch is retried, bounded like the
    busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _postgres_engine(parsed: URL) -> Engine:
    engine = create_engine(parsed, pool_pre_ping=True)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_BEGIN_OPTION):
            # Bounded like SQLite's busy timeout: a writer stuck behind another for longer
            # fails (and its batch is retried one by one) instead of waiting for ever.
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{BUSY_TIMEOUT_MS}ms'")
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")
            fence = _FENCES.get(conn.engine.pool)
            if fence is not None and not conn.get_execution_options().get(_UNFENCED_OPTION):
                fence(conn)  # under the write lock: no takeover can commit between check and commit

    _LOG.debug("PostgreSQL engine for %s", parsed.render_as_string(hide_password=True))
    return engine


def inserted_id(result: CursorResult) -> int:
    """The primary key of the row a one-row insert added. (SQLAlchemy types the key as
    optional; an insert of one row always has it.)"""
    key = result.inserted_primary_key
    if key is None:
        raise ValueError("not a one-row insert")
    return int(key[0])


def begin_write(engine: Engine) -> AbstractContextManager[Connection]:
    """A write transaction (``BEGIN IMMEDIATE`` on SQLite, the store's advisory lock on
    PostgreSQL), committed when the block ends."""
    return engine.execution_options(**{_BEGIN_OPTION: True}).begin()


def set_fence(engine: Engine, check: Callable[[Connection], None] | None) -> None:
    """Run ``check(conn)`` in every write transaction on ``engine`` after the write lock (it
    raises FencedOut to refuse the write); None removes it. PostgreSQL stores only."""
    if check is None:
        _FENCES.pop(engine.pool, None)
    else:
        _FENCES[engine.pool] = check


def begin_takeover(engine: Engine) -> AbstractContextManager[Connection]:
    """A write transaction the fence does not check: the one that records a takeover."""
    return engine.execution_options(**{_BEGIN_OPTION: True, _UNFENCED_OPTION: True}).begin()


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction whose statements all see the store as of its first one:
    REPEATABLE READ on PostgreSQL (its default, READ COMMITTED, gives each statement a newer
    view); on SQLite a deferred transaction in WAL mode does this already."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def is_sqlite(url: str | URL) -> bool:
    """True when ``url`` names a SQLite store."""
    return make_url(url).get_backend_name() == "sqlite"
