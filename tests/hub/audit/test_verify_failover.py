"""Takeovers of a failover pair's shared store in the trail: each ``hub_leases`` row has its
entry in the ``failover`` side log, written with the row, and ``kagiban verify`` holds the two
against each other both ways and against the signed checkpoints, naming the part and the epoch.

The lease needs PostgreSQL (a real cluster, tests/support/postgres.py); the tests that take it
run there. A store without failover (SQLite, or PostgreSQL with one hub) has an empty, intact
``failover`` part, and a takeover row inserted by hand is named on both stores."""
from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import NoResultFound

from hub.audit import verify
from hub.audit.checkpoints import build, sign_line
from hub.store import migrate
from hub.store.chain import canonical_json, row_hash_text
from hub.store.db import make_engine
from hub.store.lease import Lease
from hub.store.schema import GENESIS_HASH, hub_leases, side_log
from kagiban.signing import generate_private_key
from tests.support.mosquitto import wait_for
from tests.support.postgres import Store


@pytest.fixture
def pg_url(tmp_path, pg_cluster):
    made = Store("postgresql", pg_cluster)
    yield made.url(tmp_path)
    made.drop_all()


def _take_over_twice(url: str) -> None:
    """hub-a takes the store, stops cleanly, and hub-b takes over: epochs 1 and 2, as two hub
    processes would leave them (each its own engine)."""
    engines = [make_engine(url), make_engine(url)]
    migrate.upgrade(engines[0])
    a = Lease(engines[0], url, hub="hub-a", web_url="http://127.0.0.1:8081")
    b = Lease(engines[1], url, hub="hub-b", web_url="http://127.0.0.1:8082")
    try:
        assert a.try_acquire()
        assert not b.try_acquire()
        a.release()
        # PostgreSQL frees the lock once hub-a's session has ended: the standby polls for it.
        wait_for(b.try_acquire, timeout=10, interval=0.1, what="hub-b taking the lease")
        assert b.epoch == 2
    finally:
        a.close()
        b.close()
        for e in engines:
            e.dispose()


def _verify(url: str, **kw) -> tuple[int, dict[str, str]]:
    """``kagiban verify`` as an auditor runs it: the exit code and each part's line."""
    out = io.StringIO()
    code = verify.run(url, out, **kw)
    lines = out.getvalue().splitlines()
    return code, {line.split(":")[0]: line for line in lines}


def _sql(url: str, *statements: str) -> None:
    """What an insider with the database does: plain SQL, outside any hub."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def _since(url: str, epoch: int) -> str:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(hub_leases.c.since).where(hub_leases.c.epoch == epoch)).scalar_one()
    finally:
        engine.dispose()


def test_two_takeovers_are_logged_with_their_rows_and_verify_lists_them(pg_url):
    _take_over_twice(pg_url)
    engine = make_engine(pg_url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(select(hub_leases).order_by(hub_leases.c.epoch)).mappings()]
        entries = [(r.at, json.loads(r.entry)) for r in conn.execute(
            select(side_log.c.at, side_log.c.entry).where(side_log.c.part == "failover").order_by(side_log.c.n))]
    engine.dispose()
    assert [(r["epoch"], r["hub"]) for r in rows] == [(1, "hub-a"), (2, "hub-b")]
    # Each entry is its row as stored, dated by the takeover.
    assert entries == [(r["since"], {"op": "taken", **r}) for r in rows]

    code, parts = _verify(pg_url)
    assert code == 0, parts
    assert parts["failover"] == "failover: OK: 2 entries (2 takeovers), log intact and matching the store"


@pytest.mark.parametrize("tamper, named", [
    ("UPDATE hub_leases SET hub = 'hub-x' WHERE epoch = 2",
     "takeover epoch 2 (hub-b since {since2}) altered (hub) against log entry 2: the store says hub hub-x"),
    ("UPDATE hub_leases SET since = '2026-12-06T00:00:00.000000Z' WHERE epoch = 1",
     "takeover epoch 1 (hub-a since {since1}) altered (since) against log entry 1: "
     "the store says since 2026-12-06T00:00:00.000000Z"),
    ("DELETE FROM hub_leases WHERE epoch = 1",
     "takeover epoch 1 (hub-a since {since1}) deleted: log entry 1 records it"),
    ("INSERT INTO hub_leases (epoch, hub, since, web_url) "
     "VALUES (3, 'hub-x', '2026-12-06T08:00:00.000000Z', NULL)",
     "takeover epoch 3 (hub-x since 2026-12-06T08:00:00.000000Z) is not in the log (inserted)"),
], ids=["hub-altered", "since-altered", "deleted", "inserted"])
def test_a_takeover_row_changed_by_sql_is_named_with_its_epoch(pg_url, tamper, named):
    _take_over_twice(pg_url)
    since = {"since1": _since(pg_url, 1), "since2": _since(pg_url, 2)}
    _sql(pg_url, tamper)

    code, parts = _verify(pg_url)
    assert code == 1
    assert parts["failover"] == f"failover: TAMPERED: 2 entries; {named.format(**since)}"
    assert parts["events"].startswith("events: OK: ")  # only the part that was touched is named


def test_a_takeover_deleted_with_its_log_entry_is_named_as_a_missing_epoch(pg_url):
    _take_over_twice(pg_url)
    # The row and its entry both gone, the log renumbered and rehashed: consistent by itself.
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM hub_leases WHERE epoch = 1"))
        _rechain(conn, "failover", lambda e: None if e["epoch"] == 1 else e)
    engine.dispose()

    code, parts = _verify(pg_url)
    assert code == 1
    assert parts["failover"] == ("failover: TAMPERED: 1 entries; takeover epoch 1 is missing (the next stored is epoch 2): "
                                 "deleted together with its log entry")


def test_a_log_entry_rewritten_without_an_epoch_is_named_not_a_crash(pg_url):
    _take_over_twice(pg_url)
    engine = make_engine(pg_url)
    with engine.begin() as conn:
        _rechain(conn, "failover", lambda e: {**e, "epoch": str(e["epoch"])} if e["epoch"] == 2 else e)
    engine.dispose()

    code, parts = _verify(pg_url)
    assert code == 1
    assert parts["failover"] == "failover: TAMPERED: 2 entries; log entry 2 names no takeover epoch ('2')"


def test_a_takeover_whose_log_entry_cannot_be_written_stores_no_row(pg_url):
    engine = make_engine(pg_url)
    migrate.upgrade(engine)
    _sql(pg_url, "DELETE FROM side_heads WHERE part = 'failover'")  # the log cannot be appended
    lease = Lease(engine, pg_url, hub="hub-a")
    try:
        with pytest.raises(NoResultFound):
            lease.try_acquire()
        lease.release()  # what the hub's lease keeper does after a failed try
        assert not lease.held
        with engine.connect() as conn:
            assert conn.execute(select(hub_leases.c.epoch)).all() == []
    finally:
        lease.close()
        engine.dispose()


def test_a_rewritten_failover_log_is_named_by_the_checkpoint(pg_url, tmp_path):
    _take_over_twice(pg_url)
    key = generate_private_key()
    log = tmp_path / "offsite" / "checkpoints.jsonl"
    log.parent.mkdir()
    engine = make_engine(pg_url)
    cp = build(engine, "periodic")
    assert cp.side["failover"].n == 2
    log.write_text(sign_line(cp, key) + "\n")

    # The insider renames the hub of epoch 2 in the row and in its log entry, and rehashes the
    # log and its head with the project's own functions: the failover part alone reads intact.
    def rename(e):
        return {**e, "hub": "hub-x"} if e["epoch"] == 2 else e

    with engine.begin() as conn:
        conn.execute(text("UPDATE hub_leases SET hub = 'hub-x' WHERE epoch = 2"))
        _rechain(conn, "failover", rename)
    engine.dispose()

    code, parts = _verify(pg_url, checkpoints=log, audit_key=key.public_key())
    assert code == 1
    assert parts["failover"].startswith("failover: OK: 2 entries (2 takeovers)")
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 1 ")
    assert "failover log entry 2 does not hold the checkpoint's hash" in parts["checkpoints"]
    assert parts["checkpoints"].endswith("the failover log was rewritten")


def test_the_last_takeover_removed_with_its_entry_is_named_by_the_checkpoint(pg_url, tmp_path):
    _take_over_twice(pg_url)
    key = generate_private_key()
    log = tmp_path / "checkpoints.jsonl"
    engine = make_engine(pg_url)
    log.write_text(sign_line(build(engine, "periodic"), key) + "\n")
    # hub-b's takeover erased: row, entry and head, so the store looks like hub-a never left.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM hub_leases WHERE epoch = 2"))
        _rechain(conn, "failover", lambda e: None if e["epoch"] == 2 else e)
    engine.dispose()

    code, parts = _verify(pg_url, checkpoints=log, audit_key=key.public_key())
    assert code == 1
    assert parts["failover"].startswith("failover: OK: 1 entries (1 takeovers)")
    assert ("the failover log has 1 entries, the checkpoint vouched for 2: entries removed"
            in parts["checkpoints"])


def test_a_store_without_failover_has_an_empty_intact_part(store, tmp_path):
    url = store.url(tmp_path)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    code, parts = _verify(url)
    assert code == 0, parts
    assert parts["failover"] == "failover: OK: 0 entries (0 takeovers), log intact and matching the store"


def test_a_takeover_row_inserted_by_hand_is_named_on_either_store(store, tmp_path):
    url = store.url(tmp_path)
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    _sql(url, "INSERT INTO hub_leases (epoch, hub, since, web_url) "
              "VALUES (1, 'hub-x', '2026-12-06T08:00:00.000000Z', 'http://127.0.0.1:9000')")
    code, parts = _verify(url)
    assert code == 1
    assert parts["failover"] == ("failover: TAMPERED: 0 entries; takeover epoch 1 (hub-x since "
                                 "2026-12-06T08:00:00.000000Z) is not in the log (inserted)")


def _rechain(conn: Connection, part: str, edit) -> None:
    """Rewrite ``part``'s side log consistently: ``edit(entry)`` returns the new entry or None
    to drop it; numbers, hashes and the head recomputed with hub.store.chain's functions."""
    kept = []
    for at, entry in conn.execute(text("SELECT at, entry FROM side_log WHERE part = :p ORDER BY n"), {"p": part}):
        new = edit(json.loads(entry))
        if new is not None:
            kept.append((at, new))
    conn.execute(text("DELETE FROM side_log WHERE part = :p"), {"p": part})
    prev = GENESIS_HASH
    for n, (at, entry) in enumerate(kept, 1):
        body = canonical_json(entry)
        digest = row_hash_text(prev, body)
        conn.execute(text("INSERT INTO side_log (part, n, at, entry, prev_hash, hash) "
                          "VALUES (:p, :n, :at, :e, :prev, :h)"),
                     {"p": part, "n": n, "at": at, "e": body, "prev": prev, "h": digest})
        prev = digest
    conn.execute(text("UPDATE side_heads SET n = :n, hash = :h WHERE part = :p"),
                 {"n": len(kept), "h": prev, "p": part})
