"""Events read in the verifier processes (a large batch) are refused for the same reasons, with
the same details, as when the writer reads them itself (a small batch); and an urgent event is
stored without waiting for the rest of its batch."""
from __future__ import annotations

import json
import re
import time

import pytest
import uuid6
from sqlalchemy import select

from hub.alerting.rules import EVENT_RULES
from hub.ingest.writer import _PARALLEL_MIN, URGENT_KINDS, Ingest
from hub.stations.keys import add_key
from hub.store import migrate
from hub.store.db import make_engine
from hub.store.schema import events, quarantine
from kagiban.event_signing import EventSigner, create_station_key
from kagiban.signing import public_key_b64
from tests.hub.helpers import SITE, encode, event, stored_seqs
from tests.security.signed_store import STATION, signed_event
from tests.support.mosquitto import wait_for

TOPIC = f"p/{SITE}/{STATION}/event"


def _engine(path):
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    return engine


def _signer(folder, name: str) -> EventSigner:
    return EventSigner(create_station_key(folder / name))


def _refusals(engine) -> list[tuple[str, int | None, str]]:
    with engine.connect() as conn:
        # The retirement time differs from one store to the other.
        return [(r.reason, r.seq, re.sub(r"retired at \S+;", "retired at T;", r.detail))
                for r in conn.execute(select(quarantine).order_by(quarantine.c.id))]


def _bad_payloads(old: EventSigner, stranger: EventSigner, inc_a: str, inc_b: str, first: int) -> list[bytes]:
    """One payload for each refusal ingest makes of an event, seqs from ``first``."""
    dup = encode(event(STATION, first, incarnation=inc_a)).replace(b'"kind": "door.opened"',
                                                                   b'"kind": "test.dupkey", "kind": "door.closed"')
    nan = encode(event(STATION, first + 1, incarnation=inc_a)).replace(b'"n": %d' % (first + 1), b'"n": NaN')
    schema = encode(event(STATION, first + 2, incarnation=inc_a)).replace(b'"seq": %d' % (first + 2), b'"seq": "x"')
    offset = json.loads(encode(event(STATION, first + 3, incarnation=inc_a)))
    offset["at"] = offset["at"][:-6] + "+15:00"
    unsigned = encode(event(STATION, first + 4, incarnation=inc_a))
    forged = signed_event(stranger, first + 5, inc_a)[1]
    altered = signed_event(old, first + 6, inc_a)[1].replace(b'"staff-001"', b'"staff-009"')
    retired = signed_event(old, 1, inc_b)[1]  # the retired key in an incarnation it never signed
    bad = [dup, nan, schema, json.dumps(offset).encode(), unsigned, forged, altered, retired]
    assert len(set(bad)) == len(bad) and b"NaN" in nan and b'"x"' in schema and dup.count(b'"kind"') == 2
    return bad


def test_a_large_batch_read_in_the_workers_refuses_each_event_as_the_writer_does(tmp_path):
    old, new, stranger = (_signer(tmp_path, n) for n in ("old.key", "new.key", "stranger.key"))
    inc_a, inc_b, inc_new = (str(uuid6.uuid7()) for _ in range(3))
    outcomes = []
    for name, one_by_one in (("small", True), ("large", False)):
        engine = _engine(tmp_path / f"{name}.db")
        add_key(engine, STATION, public_key_b64(old._key))
        first = Ingest(engine, prefix="p").start()
        first.submit(TOPIC, signed_event(old, 1, inc_a)[1])  # the old unit's first event
        first.stop()
        add_key(engine, STATION, public_key_b64(new._key), replace=True)  # the unit swapped
        backlog = [signed_event(old, seq, inc_a)[1] for seq in range(2, 6)]  # the old unit's backlog
        fresh = [signed_event(new, seq, inc_new)[1] for seq in range(1, _PARALLEL_MIN * 2)]
        payloads = backlog + _bad_payloads(old, stranger, inc_a, inc_b, 100) + fresh
        ingest = Ingest(engine, prefix="p")
        if one_by_one:
            ingest.start()
            for payload in payloads:  # each its own batch: read on the writer thread
                before = ingest.ingested + ingest.quarantined
                ingest.submit(TOPIC, payload)
                wait_for(lambda: ingest.ingested + ingest.quarantined > before, timeout=30, what="one message stored")
            assert ingest.verifiers is None
        else:
            for payload in payloads:  # one batch: read in the verifier processes
                ingest.submit(TOPIC, payload)
            ingest.start()
        ingest.stop()
        if not one_by_one:
            assert ingest.verifiers is not None and ingest.batches == 1
        with engine.connect() as conn:
            stored = [(r.incarnation, r.seq, r.key_id) for r in conn.execute(select(events).order_by(events.c.row_no))]
        outcomes.append((_refusals(engine), stored))
        engine.dispose()
    (small_refused, small_stored), (large_refused, large_stored) = outcomes
    assert [r for r, _seq, _detail in large_refused] == [
        "duplicate_key", "bad_number", "bad_schema", "bad_offset", "unsigned", "unknown_key", "bad_signature",
        "retired_key"]
    assert large_refused == small_refused
    assert large_stored == small_stored
    assert [(inc, seq) for inc, seq, _ in large_stored] == (
        [(inc_a, s) for s in range(1, 6)] + [(inc_new, s) for s in range(1, _PARALLEL_MIN * 2)])


@pytest.fixture
def engine(tmp_path):
    engine = _engine(tmp_path / "u.db")
    yield engine
    engine.dispose()


def test_an_urgent_event_is_stored_without_waiting_for_the_rest_of_its_batch(engine):
    ingest = Ingest(engine, prefix="p", batch_wait_s=30.0).start()  # a batch waits long for more
    try:
        ingest.submit(TOPIC, encode(event(STATION, 1, kind="key.used")))
        time.sleep(1.0)
        assert stored_seqs(engine, STATION) == []  # an ordinary event waits for its batch
        t0 = time.monotonic()
        ingest.submit(TOPIC, encode(event(STATION, 2, kind="door.forced")))
        wait_for(lambda: stored_seqs(engine, STATION) == [1, 2], timeout=20, what="the batch stored")
        assert time.monotonic() - t0 < 20
    finally:
        ingest.stop()


def test_the_urgent_kinds_are_the_event_kinds_with_a_critical_rule():
    assert {"door.forced", "door.intrusion", "storage.failed", "storage.corrupt", "policy.rejected"} == URGENT_KINDS
    assert URGENT_KINDS <= set(EVENT_RULES)
