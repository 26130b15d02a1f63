"""Signature checks in worker processes: a large signed batch is checked outside the hub's
interpreter, a forged event in it is still quarantined, and a worker that dies costs nothing:
the batch is checked in the hub, stored and acked only after its commit, new workers start."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import uuid6
from sqlalchemy import select

from hub.store import migrate
from hub.store.db import make_engine
from hub.ingest.writer import _PARALLEL_MIN, Ingest
from hub.ingest.verify_workers import MAX_RESTARTS, VerifierPool, check_all
from hub.store.schema import quarantine
from hub.stations.keys import add_key
from kagiban.event_signing import EventSigner, create_station_key, split_event
from kagiban.signing import public_key_b64
from tests.hub.helpers import SITE, stored_seqs
from tests.security.signed_store import STATION, signed_event
from tests.support.mosquitto import wait_for

BAD = "the signature does not match the signed bytes"


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'v.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def signer(engine, tmp_path):
    key = create_station_key(tmp_path / "station.key")
    add_key(engine, STATION, public_key_b64(key))
    return EventSigner(key)


def _reasons(engine):
    with engine.connect() as conn:
        return [(r.reason, r.seq) for r in conn.execute(select(quarantine).order_by(quarantine.c.id))]


def test_a_worker_answers_each_check_as_the_hub_would(signer):
    _, payload = signed_event(signer, 1, str(uuid6.uuid7()))
    split = split_event(payload)
    raw = signer._key.public_key().public_bytes_raw()
    checks = [(raw, split.signature, split.signed, ""),
              (raw, split.signature, split.signed.replace(b"staff-001", b"staff-002"), ""),
              (raw, "not base64!", split.signed, "snapshot: ")]
    pool = VerifierPool(1)
    try:
        answers = pool.answers(pool.check(checks), checks)
        assert pool.pids() and os.getpid() not in pool.pids()
    finally:
        pool.close()
    assert answers == [None, BAD, "snapshot: the signature is not base64"]
    assert answers == check_all(checks)  # the same as checked in the hub


def test_workers_that_cannot_start_are_given_up_and_every_check_is_still_made(signer):
    _, payload = signed_event(signer, 1, str(uuid6.uuid7()))
    split = split_event(payload)
    raw = signer._key.public_key().public_bytes_raw()
    checks = [(raw, split.signature, split.signed, ""),
              (raw, split.signature, split.signed.replace(b"staff-001", b"staff-002"), "")]
    pool = VerifierPool(1, initializer=sys.exit)  # each worker ends before its first check
    try:
        for _ in range(MAX_RESTARTS + 1):
            assert pool.answers(pool.check(checks), checks) == [None, BAD]
        assert pool.given_up and pool.restarts == MAX_RESTARTS and pool.pids() == []
    finally:
        pool.close()


def test_a_worker_killed_under_a_running_ingest_loses_nothing_and_is_replaced(engine, signer):
    inc = str(uuid6.uuid7())
    stored_when_acked: list[tuple[list[int], list[int]]] = []

    def on_acks(acks):
        # Each acked seq must already be committed: what the station deletes on this ack.
        for _site, _station, ack in acks:
            seqs = [n for lo, hi in ack.seqs for n in range(lo, hi + 1)]
            stored_when_acked.append((seqs, stored_seqs(engine, STATION)))

    ingest = Ingest(engine, prefix="p", on_acks=on_acks)
    ingest.warm_up()  # as the hub does at start for enrolled stations
    ingest.start()
    n = _PARALLEL_MIN * 2

    def send(first: int, forged: int | None = None) -> None:
        before = ingest.ingested + ingest.quarantined
        for seq in range(first, first + n):
            payload = signed_event(signer, seq, inc)[1]
            if seq == forged:
                payload = payload.replace(b'"staff-001"', b'"staff-009"')  # altered after signing
            ingest.submit(f"p/{SITE}/{STATION}/event", payload)
        wait_for(lambda: ingest.ingested + ingest.quarantined >= before + n, timeout=60,
                 what=f"{n} signed events handled")

    try:
        send(1)  # a large batch: the workers start and check it
        pool = ingest.verifiers
        assert pool is not None and pool.pids()
        old = pool.pids()
        os.kill(old[0], signal.SIGKILL)
        send(n + 1, forged=n + 10)
        send(2 * n + 1, forged=2 * n + 5)  # and the next batches go to new workers
        assert pool.restarts >= 1
        assert pool.pids() and old[0] not in pool.pids()
    finally:
        ingest.stop()
    assert _reasons(engine) == [("bad_signature", n + 10), ("bad_signature", 2 * n + 5)]
    assert stored_seqs(engine, STATION) == [s for s in range(1, 3 * n + 1) if s not in (n + 10, 2 * n + 5)]
    assert stored_when_acked
    for seqs, stored in stored_when_acked:
        forged = {n + 10, 2 * n + 5}
        assert set(seqs) - forged <= set(stored)


def test_workers_end_when_the_hub_is_killed(tmp_path):
    """A hub killed with -9 leaves no signature check workers behind."""
    script = tmp_path / "hub_stand_in.py"
    script.write_text(
        "import time\n"
        "from hub.ingest.verify_workers import VerifierPool\n"
        "if __name__ == '__main__':\n"
        "    pool = VerifierPool(2)\n"
        "    pool.warm()\n"
        "    print(' '.join(str(p) for p in pool.pids()), flush=True)\n"
        "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, cwd=os.getcwd())
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]  # type: ignore[union-attr]
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        proc.kill()
        proc.wait(10)
    wait_for(lambda: not any(_alive(p) for p in pids), timeout=10, what="the workers to end")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False
