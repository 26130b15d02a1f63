"""The lease that makes one of two hubs on a shared PostgreSQL store the active one.

A failover pair is two hub processes (two machines) on one PostgreSQL store; exactly one is
*active* (ingest, alerting, scheduled jobs, policies), the other a *standby* waiting to take over.

- **The lease** is a session-level advisory lock, ``pg_try_advisory_lock(LEASE_LOCK_KEY)``, held
  on a connection of its own (not from the pool: a pooled connection would hand the lock to
  whatever borrows it next). PostgreSQL releases it when the holder's session ends: the
  process killed (-9), its machine gone, its backend terminated. The standby tries for it every
  ``failover.poll_s`` seconds; the active checks every ``poll_s`` that its lease connection is
  still there.
- **Fencing.** Taking the lease appends a row to ``hub_leases`` with the next epoch, in a write
  transaction (so under the store's write lock). Every write transaction of either hub then
  checks, under that same lock, that the newest epoch is its own (hub.store.db.set_fence), so a
  hub that lost its lease, and has not noticed yet, can commit nothing: its batch fails, no ack
  goes out, the stations send it again to the new active. A standby has no epoch and writes
  nothing at all.
- **In the trail.** The ``hub_leases`` row and its entry in the ``failover`` side log
  (hub.audit.entries.record_lease) are committed together, so ``kagiban verify`` and the signed
  checkpoints name a takeover row altered, deleted or inserted by hand.

- **Upgrades.** A lease made with ``migrate=True`` (the hub's) migrates the store in the takeover
  transaction, under the lease and before the lease row: only the hub about to be active changes
  the schema, never a standby under a running active (docs/reliability.md "Upgrading a failover
  pair"). A store at a revision this code does not know (a newer kagiban migrated it) is not
  taken over at all: ``blocked`` says why, and nothing is stored.

What the hub does on taking or losing the lease is hub.service's (:class:`LeaseKeeper` calls it).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from hub.audit.entries import record_lease
from hub.store import migrate as migrations
from hub.store.db import WRITE_LOCK_KEY, FencedOut, begin_takeover, set_fence
from hub.store.schema import hub_leases
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

# Not the write lock's key: the lease is held for as long as a hub is active, the write lock
# only for one transaction.
LEASE_LOCK_KEY = WRITE_LOCK_KEY + 1
# A lease connection that does not answer within this is taken as lost (a network cut leaves
# the socket open; keepalives end it).
_CONNECT_ARGS = {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 5,
                 "keepalives_interval": 2, "keepalives_count": 2}


@dataclass(frozen=True)
class LeaseHolder:
    """The newest row of ``hub_leases``: which hub is active, since when, where its pages are."""

    epoch: int
    hub: str
    since: datetime
    web_url: str | None


def current_holder(conn: Connection) -> LeaseHolder | None:
    """The hub that took the lease last, or None if no hub ever did."""
    row = conn.execute(select(hub_leases).order_by(hub_leases.c.epoch.desc()).limit(1)).first()
    if row is None:
        return None
    return LeaseHolder(epoch=int(row.epoch), hub=row.hub, since=datetime.fromisoformat(row.since), web_url=row.web_url)


def holder(engine: Engine) -> LeaseHolder | None:
    """:func:`current_holder` in a read transaction of its own."""
    with engine.connect() as conn:
        return current_holder(conn)


class Lease:
    """This hub's side of the lease on the store behind ``engine`` (PostgreSQL).

    ``epoch`` is set while this hub holds the lease. Installs the fence on ``engine``: from
    then on, a write by this hub fails with FencedOut unless it holds the newest lease.
    """

    def __init__(self, engine: Engine, url: str, *, hub: str, web_url: str | None = None,
                 migrate: bool = False):
        if engine.dialect.name != "postgresql":
            raise ValueError("a hub lease needs a PostgreSQL store")
        self._engine = engine
        self._lease_engine = create_engine(make_url(url), poolclass=NullPool, connect_args=_CONNECT_ARGS)
        self.hub = hub
        self.web_url = web_url
        self.epoch: int | None = None
        self.since: datetime | None = None
        self._migrate = migrate
        # Set while the store is newer than this code: the lease is not taken (see the docstring).
        self.blocked: migrations.StoreNewer | None = None
        self._conn: Connection | None = None
        self._fenced = threading.Event()  # a write of ours was refused: the lease is gone
        set_fence(engine, self.check)

    @property
    def held(self) -> bool:
        return self.epoch is not None and not self._fenced.is_set()

    def check(self, conn: Connection) -> None:
        """The fence (inside a write transaction, under the write lock)."""
        if self.epoch is None:
            raise FencedOut(f"hub {self.hub} is the standby: it writes nothing")
        newest = conn.execute(select(func.max(hub_leases.c.epoch))).scalar()
        if newest != self.epoch:
            self._fenced.set()
            raise FencedOut(f"hub {self.hub} holds lease {self.epoch}, but lease {newest} is the store's newest: "
                            "another hub took over")

    def try_acquire(self) -> bool:
        """Take the lease if no other hub holds it; True if this hub holds it now."""
        if self.held:
            return True
        if self._migrate:
            # Checked before trying for the lock: a hub that cannot take over never holds it.
            with self._engine.connect() as conn:
                if self._set_blocked(migrations.newer_store(conn)):
                    return False
        if self._conn is None:
            self._conn = self._lease_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        got = bool(self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEASE_LOCK_KEY}).scalar())
        if not got:
            return False
        since = now_utc()
        migrated: tuple[str | None, str] | None = None
        try:
            with begin_takeover(self._engine) as conn:
                if self._migrate:
                    # Under the lease and in the takeover's transaction: the schema changes with
                    # the new epoch (which fences the old active) or not at all.
                    migrated = migrations.upgrade_on(conn)
                epoch = self._record_takeover(conn, since)
        except migrations.StoreNewer as exc:
            # Migrated by a hub that is not a pair's member meanwhile: give the lease back at once.
            self.release()
            self._set_blocked(exc)
            return False
        if migrated is not None and migrated[0] != migrated[1]:
            _LOG.warning("hub %s migrated the store from %s to %s on taking the lease", self.hub,
                         migrated[0] or "empty", migrated[1])
        self._set_blocked(None)
        self.epoch, self.since = epoch, since
        self._fenced.clear()
        _LOG.warning("hub %s took the lease (epoch %d): now the active hub", self.hub, epoch)
        return True

    def _record_takeover(self, conn: Connection, since: datetime) -> int:
        """The new epoch's ``hub_leases`` row and its entry in the trail; the epoch."""
        newest = conn.execute(select(func.max(hub_leases.c.epoch))).scalar() or 0
        epoch = int(newest) + 1
        row = {"epoch": epoch, "hub": self.hub, "since": utc_text(since), "web_url": self.web_url}
        conn.execute(insert(hub_leases).values(**row))
        # The takeover in the trail, committed with its row or not at all.
        record_lease(conn, row)
        return epoch

    def _set_blocked(self, problem: migrations.StoreNewer | None) -> bool:
        """Remember why this hub cannot take over (logged once per change); True if it cannot."""
        if problem != self.blocked:
            if problem is not None:
                _LOG.error("hub %s will not take over: %s", self.hub, problem)
            else:
                _LOG.warning("hub %s: the store's revision is known again; it may take over", self.hub)
        self.blocked = problem
        return problem is not None

    def alive(self) -> bool:
        """Whether the lease is still this hub's: its connection answers and no write was
        refused. False once means lost for good (a new lease is a new epoch)."""
        if self.epoch is None or self._fenced.is_set():
            return False
        assert self._conn is not None
        try:
            self._conn.execute(text("SELECT 1"))
            return True
        except Exception as exc:  # any failure of the lease connection ends the lease
            _LOG.error("hub %s: the lease connection failed (%s): the lease is lost", self.hub, exc)
            return False

    def release(self) -> None:
        """Give the lease up (clean stop), or forget a lost one; the fence stays shut."""
        self.epoch = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # the session ends: PostgreSQL releases the advisory lock
            except Exception:
                _LOG.debug("closing the lease connection failed", exc_info=True)

    def close(self) -> None:
        self.release()
        set_fence(self._engine, None)
        self._lease_engine.dispose()


class LeaseKeeper:
    """A thread: as standby, try for the lease every ``poll_s``; as active, check it every
    ``poll_s``. Calls ``on_acquired()`` once when the lease is taken and ``on_lost()`` once when
    it is lost (then the thread ends: a hub that lost its lease starts again as a standby)."""

    def __init__(self, lease: Lease, poll_s: float, *, on_acquired: Callable[[], None],
                 on_lost: Callable[[], None]):
        self.lease = lease
        self.poll_s = poll_s
        self._on_acquired = on_acquired
        self._on_lost = on_lost
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)

    def start(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        lease = self.lease
        while not self._stop.is_set():
            try:
                got = lease.try_acquire()
            except Exception:  # the store is away: try again at the next poll
                _LOG.warning("hub %s: cannot reach the store for the lease", lease.hub, exc_info=True)
                lease.release()
                got = False
            if got:
                break
            self._stop.wait(self.poll_s)
        if self._stop.is_set():
            return
        self._on_acquired()
        while not self._stop.wait(self.poll_s):
            if not lease.alive():
                lease.release()
                self._on_lost()
                return
