"""The store's engines (hub.store.db) on SQLite and on PostgreSQL: write transactions queue one at
a time, so two hubs writing to one store keep one chain, one sequence of row numbers, and store a
resent event once; the schema migrates once when two hubs start together; a hub that finds a new
SQLite file held by another connection waits for it (bounded) before switching it to WAL."""
from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from hub.accounts.users import add_user
from hub.audit import verify
from hub.ingest.writer import Ingest
from hub.store import db, migrate
from hub.store.chain import verify as verify_chain
from hub.store.db import begin_takeover, begin_write, make_engine
from hub.store.schema import events, quarantine, registry_log, users
from tests.hub.helpers import encode, event
from tests.support.postgres import Store

PREFIX = "p"
PER_STATION = 60


def _payloads(station: str) -> list[tuple[str, bytes]]:
    made = [event(station, seq, kind="door.opened") for seq in range(1, PER_STATION + 1)]
    return [(f"{PREFIX}/{body['site']}/{station}/event", encode(body)) for body in made]


def _feed(ingest: Ingest, streams: list[list[tuple[str, bytes]]], go: threading.Event) -> None:
    go.wait(10)
    for messages in zip(*streams):  # the stations' events interleaved, each in seq order
        for topic, payload in messages:
            ingest.submit(topic, payload)


def test_two_hubs_writing_at_once_keep_one_chain_and_store_a_resent_event_once(tmp_path, store):
    url = store.url(tmp_path)
    first, second = make_engine(url), make_engine(url)  # two hub processes' engines
    migrate.upgrade(first)
    # Small batches: many transactions from each side, interleaved.
    a = Ingest(first, prefix=PREFIX, batch_max=15, batch_wait_s=0).start()
    b = Ingest(second, prefix=PREFIX, batch_max=15, batch_wait_s=0).start()
    go = threading.Event()
    # door-9's events reach both hubs (a station resending after a failover): stored once each.
    resent = _payloads("door-9")
    feeders = [threading.Thread(target=_feed, args=(a, [_payloads("cabinet-1"), _payloads("cabinet-2"), resent], go)),
               threading.Thread(target=_feed, args=(b, [_payloads("shredder-1"), _payloads("printer-1"), resent], go))]
    # A third writer meanwhile: accounts added (each in the registry's side log, chained in the
    # same store); what fails in its thread is kept to be reported below.
    signin_errors: list[BaseException] = []

    def add_users() -> None:
        try:
            for n in range(10):
                add_user(first, f"user-{n:02d}", "a long enough password", "auditor", display_name=f"職員00{n:02d}")
        except BaseException as exc:
            signin_errors.append(exc)

    signins = threading.Thread(target=add_users)
    for t in feeders + [signins]:
        t.start()
    go.set()
    for t in feeders + [signins]:
        t.join(60)
    a.stop()
    b.stop()
    try:
        with first.connect() as conn:
            row_nos = list(conn.execute(select(events.c.row_no).order_by(events.c.row_no)).scalars())
            assert conn.execute(select(func.count()).select_from(quarantine)).scalar_one() == 0
            per_station = dict(conn.execute(select(events.c.station, func.count()).group_by(events.c.station)).all())
            names = list(conn.execute(select(users.c.username).order_by(users.c.username)).scalars())
        assert signin_errors == []
        assert names == [f"user-{n:02d}" for n in range(10)]
        assert row_nos == list(range(1, 5 * PER_STATION + 1))  # one sequence, no gap, no repeat
        assert per_station == {s: PER_STATION for s in
                               ("cabinet-1", "cabinet-2", "door-9", "shredder-1", "printer-1")}
        assert a.ingested + b.ingested == 5 * PER_STATION
        assert a.duplicates + b.duplicates == PER_STATION
        assert verify_chain(first).ok
        assert verify.run(url) == 0
    finally:
        first.dispose()
        second.dispose()


def test_two_hubs_starting_together_migrate_the_store_once(tmp_path, store):
    url = store.url(tmp_path, empty=True)
    engines = [make_engine(url), make_engine(url)]
    done: list[str] = []
    errors: list[BaseException] = []

    def start(engine) -> None:
        try:
            done.append(migrate.upgrade(engine))
        except BaseException as exc:  # reported below, with the other thread's result
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        assert done == [migrate.head_revision()] * 2
        assert migrate.current_revision(engines[0]) == migrate.head_revision()
    finally:
        for e in engines:
            e.dispose()


def _held_by_another_writer(path) -> sqlite3.Connection:
    """A connection (another process, say) holding a write on the SQLite file ``path`` while it is
    still in rollback-journal mode, before any hub switched it to WAL."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE early (x)")
    other.execute("BEGIN IMMEDIATE")
    return other


@pytest.mark.sqlite_only
def test_a_hub_starting_while_another_writes_to_a_new_store_waits_and_then_uses_wal(tmp_path):
    # SQLite refuses the switch to WAL at once (no busy timeout) while another connection holds
    # a write: the hub's first connection would fail, as when two hubs start on a new store.
    other = _held_by_another_writer(tmp_path / "kagiban.db")
    release = threading.Timer(0.2, other.execute, args=("COMMIT",))
    engine = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    try:
        started = time.monotonic()
        release.start()
        with engine.connect() as conn:
            waited = time.monotonic() - started
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert waited >= 0.15  # it did meet the other writer's lock
    finally:
        release.join()
        engine.dispose()
        other.close()


@pytest.mark.sqlite_only
def test_a_new_store_held_longer_than_the_busy_timeout_fails_with_locked_instead_of_waiting_for_ever(
        tmp_path, monkeypatch):
    monkeypatch.setattr(db, "BUSY_TIMEOUT_MS", 300)
    other = _held_by_another_writer(tmp_path / "kagiban.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'kagiban.db'}")
    outcome: list[str] = []

    def start() -> None:
        try:
            with engine.connect():
                outcome.append("connected")
        except OperationalError as exc:
            outcome.append(str(exc.orig))

    hub = threading.Thread(target=start, daemon=True)
    try:
        started = time.monotonic()
        hub.start()
        hub.join(10)
        assert outcome == ["database is locked"]
        assert 0.25 <= time.monotonic() - started < 10
    finally:
        other.execute("COMMIT")
        hub.join(10)
        engine.dispose()
        other.close()


@pytest.mark.sqlite_only
def test_a_new_sqlite_store_gets_its_folders_however_deep(tmp_path):
    path = tmp_path / "var" / "lib" / "kagiban" / "kagiban.db"  # a fresh machine: none exist yet
    engine = make_engine(f"sqlite:///{path}")
    try:
        migrate.upgrade(engine)
        assert path.is_file()
    finally:
        engine.dispose()


def test_a_takeover_waits_for_a_write_in_progress(tmp_path, store):
    # The takeover that records a new lease holder queues behind writes as every write does, so
    # no write that passed the old holder's fence can commit after it.
    url = store.url(tmp_path)
    first, second = make_engine(url), make_engine(url)
    order: list[str] = []

    def take_over() -> None:
        with begin_takeover(second):
            order.append("takeover")

    taker = threading.Thread(target=take_over)
    try:
        with begin_write(first):
            taker.start()
            taker.join(0.3)
            order.append("write")
        taker.join(10)
        assert order == ["write", "takeover"]
    finally:
        first.dispose()
        second.dispose()


def test_a_hub_writes_again_after_postgresql_ended_its_connections(tmp_path, pg_cluster):
    # A PostgreSQL restart or an administrator's pg_terminate_backend leaves the hub's pooled
    # connections dead: the next write must find that out and connect again, not fail.
    made = Store("postgresql", pg_cluster)
    url = made.url(tmp_path)
    engine = make_engine(url)
    try:
        with begin_write(engine) as conn:
            conn.execute(text("SELECT 1"))  # a connection now waits in the pool
        pg_cluster.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                           f"WHERE datname = '{make_url(url).database}'")
        with begin_write(engine) as conn:
            conn.execute(insert(registry_log).values(
                at="2026-12-06T01:00:00.000000Z", actor="職員0012", entity="person", key="職員0034",
                action="added", before=None, after="{}"))
        with engine.connect() as conn:
            assert list(conn.execute(select(registry_log.c.key)).scalars()) == ["職員0034"]
    finally:
        engine.dispose()
        made.drop_all()


def test_the_password_of_a_store_never_reaches_the_log(caplog):
    caplog.set_level("DEBUG", logger="hub.store.db")
    engine = make_engine("postgresql+psycopg://kagiban:s3cret-pass@127.0.0.1:5432/kagiban")  # connects later
    engine.dispose()
    assert "kagiban:***@127.0.0.1" in caplog.text
    assert "s3cret-pass" not in caplog.text
