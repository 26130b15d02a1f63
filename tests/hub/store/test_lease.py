"""The failover lease on a real PostgreSQL store: one holder at a time, a takeover when the
holder's session ends, and the fence that stops a hub that lost its lease from writing. A hub
file that asks for failover on SQLite is refused, naming the file and the key."""
from __future__ import annotations

import logging
import socket
import threading

import pytest
import yaml
from sqlalchemy import event, insert, select, text
from sqlalchemy.engine import make_url

from hub.config import load
from hub.store import migrate
from hub.store.db import FencedOut, begin_write, make_engine
from hub.store.lease import LEASE_LOCK_KEY, Lease, LeaseKeeper, holder
from hub.store.schema import hub_leases, registry_log
from kagiban.configfile import ConfigError
from tests.support import revisions
from tests.support.postgres import Store


@pytest.fixture
def pg_url(tmp_path, pg_cluster):
    made = Store("postgresql", pg_cluster)
    yield made.url(tmp_path)
    made.drop_all()


@pytest.fixture
def two_engines(pg_url):
    """Two hubs' engines on one store (as two processes would have)."""
    engines = [make_engine(pg_url), make_engine(pg_url)]
    migrate.upgrade(engines[0])
    yield engines
    for e in engines:
        e.dispose()


def _write(engine, n: int) -> None:
    """One registry change: any write of the hub goes through begin_write like this."""
    with begin_write(engine) as conn:
        conn.execute(insert(registry_log).values(
            at="2026-12-06T01:00:00.000000Z", actor="職員0012", entity="person", key=f"職員{n:04d}",
            action="added", before=None, after="{}"))


def _changes(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(registry_log.c.key).order_by(registry_log.c.id)).scalars())


def _lease_backend_pids(engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = :k"), {"k": LEASE_LOCK_KEY}).scalars())


def test_one_hub_holds_the_lease_and_the_standby_writes_nothing(pg_url, two_engines):
    a = Lease(two_engines[0], pg_url, hub="hub-a", web_url="http://127.0.0.1:8081")
    b = Lease(two_engines[1], pg_url, hub="hub-b")
    try:
        assert a.try_acquire()
        assert not b.try_acquire(), "a second hub took a lease that is held"
        assert a.try_acquire() and a.epoch == 1  # asked again while holding it: no second takeover
        _write(two_engines[0], 1)
        with pytest.raises(FencedOut, match="standby"):
            _write(two_engines[1], 2)
        assert _changes(two_engines[0]) == ["職員0001"]
        now = holder(two_engines[1])
        assert now is not None and (now.hub, now.epoch, now.web_url) == ("hub-a", 1, "http://127.0.0.1:8081")
        assert a.alive()
    finally:
        a.close()
        b.close()


def test_a_terminated_lease_session_hands_over_and_fences_the_old_holder(pg_url, two_engines, pg_cluster):
    a = Lease(two_engines[0], pg_url, hub="hub-a")
    b = Lease(two_engines[1], pg_url, hub="hub-b")
    try:
        assert a.try_acquire()
        _write(two_engines[0], 1)
        # The database ends hub-a's lease session (as pg_terminate_backend or a network cut would);
        # hub-a's pooled connections still work.
        pids = _lease_backend_pids(two_engines[1])
        assert len(pids) == 1
        pg_cluster.execute(f"SELECT pg_terminate_backend({pids[0]})")
        assert b.try_acquire()
        assert holder(two_engines[0]).hub == "hub-b"
        assert b.epoch == 2
        # hub-a has not noticed yet: its write fails under the write lock, nothing is stored.
        with pytest.raises(FencedOut, match="another hub took over"):
            _write(two_engines[0], 2)
        assert not a.alive()
        _write(two_engines[1], 3)
        assert _changes(two_engines[1]) == ["職員0001", "職員0003"]
        with two_engines[1].connect() as conn:
            assert [tuple(r) for r in conn.execute(select(hub_leases.c.epoch, hub_leases.c.hub)
                                                   .order_by(hub_leases.c.epoch))] == [(1, "hub-a"), (2, "hub-b")]
    finally:
        a.close()
        b.close()


def test_a_released_lease_is_taken_by_the_other_hub(pg_url, two_engines):
    a = Lease(two_engines[0], pg_url, hub="hub-a")
    b = Lease(two_engines[1], pg_url, hub="hub-b")
    try:
        assert a.try_acquire()
        a.release()  # a clean stop
        assert b.try_acquire()
        with pytest.raises(FencedOut):
            _write(two_engines[0], 1)
    finally:
        a.close()
        b.close()


def test_failover_on_a_sqlite_store_is_refused_naming_file_and_key(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"data_dir": "data", "failover": {"enabled": True, "hub_name": "hub-a"}}))
    with pytest.raises(ConfigError) as err:
        load(path)
    assert str(path) in str(err.value)
    assert "failover.enabled: failover needs a PostgreSQL store" in str(err.value)


def test_a_failover_hub_needs_a_name(tmp_path):
    path = tmp_path / "hub.yaml"
    path.write_text(yaml.safe_dump({"failover": {"enabled": True}}))
    with pytest.raises(ConfigError, match="hub_name: missing value"):
        load(path)


def test_the_keeper_starts_the_active_hub_once_and_stops_it_once_when_the_lease_session_ends(
        pg_url, two_engines, pg_cluster):
    lease = Lease(two_engines[0], pg_url, hub="hub-a")
    calls: list[str] = []
    acquired, lost = threading.Event(), threading.Event()
    keeper = LeaseKeeper(lease, 0.1, on_acquired=lambda: (calls.append("acquired"), acquired.set()),
                         on_lost=lambda: (calls.append("lost"), lost.set())).start()
    try:
        assert acquired.wait(10), "the keeper did not take a free lease"
        pg_cluster.execute(f"SELECT pg_terminate_backend({_lease_backend_pids(two_engines[1])[0]})")
        assert lost.wait(10), "the active hub did not notice its lease session ended"
        keeper.stop()
        assert calls == ["acquired", "lost"]
        assert not lease.held and _lease_backend_pids(two_engines[1]) == []
    finally:
        keeper.stop()
        lease.close()


def test_a_hub_whose_write_was_refused_counts_its_lease_lost_though_its_connection_still_answers(
        pg_url, two_engines):
    a = Lease(two_engines[0], pg_url, hub="hub-a")
    try:
        assert a.try_acquire()
        # A newer epoch in the store (another hub took over while hub-a's session looked alive
        # to hub-a, as over a cut network before the keepalives end it), written outside any fence.
        other = make_engine(pg_url)
        try:
            with other.begin() as conn:
                conn.execute(insert(hub_leases).values(epoch=2, hub="hub-b", since="2026-12-06T01:00:00.000000Z",
                                                       web_url=None))
        finally:
            other.dispose()
        with pytest.raises(FencedOut, match="another hub took over"):
            _write(two_engines[0], 1)
        assert len(_lease_backend_pids(two_engines[1])) == 1  # hub-a's lease session is still there
        assert not a.alive() and not a.held
    finally:
        a.close()


def test_a_hub_taking_the_lease_of_an_older_store_migrates_it_and_says_so_once(pg_url, two_engines, caplog):
    previous = revisions.previous_revision()
    revisions.downgrade(pg_url, previous)
    a = Lease(two_engines[0], pg_url, hub="hub-a", migrate=True)
    b = Lease(two_engines[1], pg_url, hub="hub-b", migrate=True)
    try:
        with caplog.at_level(logging.WARNING, logger="hub.store.lease"):
            assert a.try_acquire()
            a.release()
            assert b.try_acquire()  # the store is at the newest revision now: nothing to migrate
        assert revisions.revision(pg_url) == migrate.head_revision()
        said = [r.getMessage() for r in caplog.records if "migrated" in r.getMessage()]
        assert said == [f"hub hub-a migrated the store from {previous} to {migrate.head_revision()} "
                        "on taking the lease"]
    finally:
        a.close()
        b.close()


def test_a_hub_older_than_the_store_does_not_take_the_free_lease_and_says_why(pg_url, two_engines):
    revisions.stamp(pg_url, revisions.FUTURE)  # migrated by a newer kagiban
    a = Lease(two_engines[0], pg_url, hub="hub-a", migrate=True)
    try:
        assert not a.try_acquire()
        assert a.blocked == migrate.StoreNewer(revisions.FUTURE, migrate.head_revision())
        assert not a.held and _lease_backend_pids(two_engines[1]) == [] and holder(two_engines[1]) is None
        # The store's revision known again (this hub's code upgraded to it): it takes over.
        revisions.stamp(pg_url, migrate.head_revision())
        assert a.try_acquire() and a.blocked is None and a.epoch == 1
    finally:
        a.close()


def test_a_store_migrated_by_a_newer_kagiban_while_the_lease_is_taken_gets_the_lease_back_at_once(
        pg_url, two_engines):
    a = Lease(two_engines[0], pg_url, hub="hub-a", migrate=True)

    def newer_kagiban_migrates(conn, cursor, statement, *args):
        # Between this hub's look at the revision and its takeover transaction.
        if "pg_try_advisory_lock" in statement:
            revisions.stamp(pg_url, revisions.FUTURE)

    event.listen(a._lease_engine, "after_cursor_execute", newer_kagiban_migrates)
    try:
        assert not a.try_acquire()
        assert a.blocked == migrate.StoreNewer(revisions.FUTURE, migrate.head_revision())
        assert not a.held and _lease_backend_pids(two_engines[1]) == [] and holder(two_engines[1]) is None
    finally:
        event.remove(a._lease_engine, "after_cursor_execute", newer_kagiban_migrates)
        a.close()


def test_a_keeper_that_cannot_reach_the_store_keeps_trying_and_never_starts_the_active_hub(
        pg_url, two_engines, caplog):
    # The store's address with a loopback port nothing listens on: every try fails at once.
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        url = make_url(pg_url)
        away = url.set(query={**url.query, "host": "127.0.0.1", "port": str(free.getsockname()[1])})
    lease = Lease(two_engines[0], away.render_as_string(hide_password=False), hub="hub-a")
    acquired = threading.Event()
    keeper = LeaseKeeper(lease, 0.05, on_acquired=acquired.set, on_lost=lambda: None)
    try:
        with caplog.at_level(logging.WARNING, logger="hub.store.lease"):
            keeper.start()
            assert not acquired.wait(1.0), "a hub that cannot reach the store started as the active hub"
        tries = [r for r in caplog.records if "cannot reach the store for the lease" in r.getMessage()]
        assert len(tries) >= 2  # it went on trying at each poll
        assert not lease.held
    finally:
        keeper.stop()
        lease.close()
