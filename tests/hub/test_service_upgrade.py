"""Upgrading a failover pair: a hub of the pair migrates the store only when it takes the lease
(never as the standby, under the running active), and a hub whose code is older than the store
never takes over, saying why on /healthz and its pages. A single hub still migrates at start,
and refuses a store a newer kagiban migrated, naming both revisions.

Real PostgreSQL (the ``store`` fixture) for the pair, with the other hub's lease held by a real
:class:`Lease`; a real mosquitto and the stand-in station for the event the new active stores.
"""
from __future__ import annotations

import io
import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import select, text

from hub.audit import verify
from hub.config import load
from hub.service import Hub
from hub.store import migrate
from hub.store.db import make_engine
from hub.store.lease import LEASE_LOCK_KEY, Lease
from hub.store.schema import hub_leases
from tests.hub.helpers import encode, event, stored_seqs, write_hub_config
from tests.support import revisions
from tests.support.mosquitto import wait_for
from tests.support.revisions import FUTURE

POLL_S = 0.2


def _leases(url: str) -> list[tuple[int, str]]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(  # type: ignore[misc]
                select(hub_leases.c.epoch, hub_leases.c.hub).order_by(hub_leases.c.epoch))]
    finally:
        engine.dispose()


def _lease_lock_holders(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND ((classid::bigint << 32) | objid::bigint) = :k"), {"k": LEASE_LOCK_KEY}).scalar() or 0)
    finally:
        engine.dispose()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def pair_store(store):
    if not store.is_postgres:
        pytest.skip("a failover pair shares a PostgreSQL store (SQLite is refused at start)")
    return store


def _pair_hub_file(tmp_path: Path, broker, prefix: str) -> tuple[Path, str]:
    """hub-b's file (the hub under test) and the URL of the store it shares with hub-a."""
    folder = tmp_path / "hub-b"
    path = write_hub_config(folder, broker, prefix, failover={"enabled": True, "hub_name": "hub-b",
                                                             "poll_s": POLL_S})
    url = load(path).db_url()
    return path, url


def test_an_upgraded_standby_waits_without_migrating_then_migrates_when_it_takes_over(
        pair_store, tmp_path, broker, prefix, station):
    path, url = _pair_hub_file(tmp_path, broker, prefix)
    previous = revisions.previous_revision()
    # hub-a, the active with the older code: it holds the lease on a store one revision behind.
    other_engine = make_engine(url)
    hub_a = Lease(other_engine, url, hub="hub-a")
    hub = None
    try:
        assert hub_a.try_acquire()
        revisions.downgrade(url, previous)

        hub = Hub(load(path))  # hub-b, upgraded first
        hub.start()
        time.sleep(POLL_S * 5)  # five tries for the lease
        assert hub.stats()["role"] == "standby"
        assert not hub.active.is_set()
        assert revisions.revision(url) == previous, "the standby migrated the store under the active"
        assert _leases(url) == [(1, "hub-a")]

        hub_a.release()  # the active is stopped: the upgraded standby takes over
        wait_for(hub.active.is_set, timeout=15, what="hub-b active")
        assert revisions.revision(url) == migrate.head_revision()
        assert _leases(url) == [(1, "hub-a"), (2, "hub-b")]
        assert hub.stats()["role"] == "active" and "blocked" not in hub.stats()

        wait_for(hub.connected.is_set, timeout=10, what="hub-b connected to the broker")
        st = station("cabinet-1")
        st.publish("event", encode(event("cabinet-1", 1)))
        wait_for(lambda: st.acked_seqs() == {1}, timeout=10, what="ack from the new active")
        assert stored_seqs(hub.engine, "cabinet-1") == [1]
    finally:
        if hub is not None:
            hub.stop()
        hub_a.close()
        other_engine.dispose()
    # Both takeovers in the trail, the one taken before the migration included.
    out = io.StringIO()
    assert verify.run(url, out) == 0, out.getvalue()
    assert "failover: OK: 2 entries (2 takeovers), log intact and matching the store" in out.getvalue().splitlines()


def test_a_standby_older_than_the_store_never_takes_the_free_lease_and_says_why(
        pair_store, tmp_path, broker, prefix, caplog):
    path, url = _pair_hub_file(tmp_path, broker, prefix)
    revisions.stamp(url, FUTURE)
    head = migrate.head_revision()
    hub = Hub(load(path))
    caplog.set_level(logging.ERROR, logger="hub.store.lease")
    hub.start()
    try:
        # No hub holds the lease; ten polls later this one has still not taken it.
        time.sleep(POLL_S * 10)
        assert not hub.active.is_set()
        assert _leases(url) == []
        assert _lease_lock_holders(url) == 0
        assert revisions.revision(url) == FUTURE

        assert hub.web_url is not None
        status, body = _get(hub.web_url + "/healthz")
        assert status == 200
        health = json.loads(body)["hub"]
        assert health["role"] == "standby"
        assert health["blocked"] == {"code": "store_newer", "store_revision": FUTURE, "code_revision": head}

        status, page = _get(hub.web_url + "/")  # in the default language, ja (en: test_failover_pages.py)
        assert status == 503
        assert f"ストアのリビジョン {FUTURE} は、このハブの kagiban が知らないものです（このハブが知る最新は {head}）" in page

        said = [r.getMessage() for r in caplog.records if "will not take over" in r.getMessage()]
        assert len(said) == 1, said  # once, not on every poll
        assert FUTURE in said[0] and head in said[0]
    finally:
        hub.stop()


def test_a_single_hub_refuses_a_store_a_newer_kagiban_migrated_naming_both_revisions(
        store, tmp_path, broker, prefix):
    path = write_hub_config(tmp_path / "hub", broker, prefix)
    cfg = load(path)
    revisions.migrated(cfg.db_url())
    revisions.stamp(cfg.db_url(), FUTURE)
    hub = Hub(cfg)
    try:
        with pytest.raises(migrate.StoreNewer) as raised:
            hub.start()
    finally:
        hub.stop()
    assert raised.value.code == "store_newer"
    assert str(raised.value).startswith(
        f"the store is at revision {FUTURE}, which this kagiban does not know "
        f"(its newest is {migrate.head_revision()})")
    assert revisions.revision(cfg.db_url()) == FUTURE


def test_a_single_hub_on_a_store_one_revision_behind_migrates_it_at_start(store, tmp_path, broker, prefix):
    path = write_hub_config(tmp_path / "hub", broker, prefix)
    cfg = load(path)
    revisions.migrated(cfg.db_url())
    revisions.downgrade(cfg.db_url(), revisions.previous_revision())
    hub = Hub(cfg)
    hub.start()
    try:
        assert revisions.revision(cfg.db_url()) == migrate.head_revision()
        wait_for(hub.connected.is_set, timeout=10, what="hub connected")
    finally:
        hub.stop()


def test_a_pair_hub_on_a_store_without_the_lease_table_migrates_it_at_start(pair_store, tmp_path, broker, prefix):
    folder = tmp_path / "hub-b"
    url = pair_store.url(tmp_path / "empty", empty=True)  # never migrated: no hub can be active on it
    path = write_hub_config(folder, broker, prefix, database={"url": url},
                            failover={"enabled": True, "hub_name": "hub-b", "poll_s": POLL_S})
    hub = Hub(load(path))
    hub.start()
    try:
        wait_for(hub.active.is_set, timeout=15, what="hub-b active")
        assert revisions.revision(url) == migrate.head_revision()
        assert _leases(url) == [(1, "hub-b")]
    finally:
        hub.stop()
