"""Station keys at the hub: what ingest accepts from an enrolled station, and a unit swapped
for a new one (new key, new outbox incarnation from seq 1) without losing the old one's rows."""
from __future__ import annotations

import base64
import io
import json

import pytest
import uuid6
from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from hub.store import migrate
from hub.audit import verify
from hub.store.db import make_engine
from hub.ingest.writer import _PARALLEL_MIN, Ingest
from hub.store.schema import events, quarantine, snapshots, station_keys
from hub.stations import keys as keys_module
from hub.stations.keys import KeyRing, StationKeyError, add_key, list_keys, retire_key
from kagiban.event_signing import EventSigner, create_station_key
from kagiban.protocol import dumps
from kagiban.signing import public_key_b64
from tests.hub.helpers import JPEG, SITE, encode, event, stored_seqs
from tests.security.signed_store import STATION, signed_event, signed_snapshot
from tests.support.mosquitto import wait_for


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def _ingest(engine, *payloads, channel="event", station=STATION):
    ingest = Ingest(engine, prefix="p")
    for payload in payloads:
        ingest.submit(f"p/{SITE}/{station}/{channel}", payload)
    ingest.start()
    ingest.stop()


def _quarantined(engine):
    with engine.connect() as conn:
        return [(r.reason, r.detail) for r in conn.execute(select(quarantine).order_by(quarantine.c.id))]


def _enrolled(engine, tmp_path, name="station.key"):
    key = create_station_key(tmp_path / name)
    add_key(engine, STATION, public_key_b64(key))
    return EventSigner(key)


def test_a_signed_event_is_stored_with_the_exact_bytes_it_signed(engine, tmp_path):
    signer = _enrolled(engine, tmp_path)
    ev, payload = signed_event(signer, 1, str(uuid6.uuid7()))
    _ingest(engine, payload)
    with engine.connect() as conn:
        row = conn.execute(select(events)).one()
    assert row.signed.encode() == dumps(ev)  # what the outbox committed before signing
    assert row.key_id == signer.key_id and len(row.signature) == 88
    assert _quarantined(engine) == []


def test_an_enrolled_station_must_sign_and_with_its_own_key(engine, tmp_path):
    signer = _enrolled(engine, tmp_path)
    inc = str(uuid6.uuid7())
    stranger = EventSigner(create_station_key(tmp_path / "other.key"))
    _, forged = signed_event(stranger, 2, inc)
    _, good = signed_event(signer, 3, inc)
    altered = good.replace(b'"staff-001"', b'"staff-002"')
    unsigned = encode(event(STATION, 4))
    _ingest(engine, unsigned, forged, altered)
    reasons = [r for r, _ in _quarantined(engine)]
    assert reasons == ["unsigned", "unknown_key", "bad_signature"]
    with engine.connect() as conn:
        assert conn.execute(select(events)).all() == []


def test_a_station_not_enrolled_may_still_send_unsigned(engine):
    _ingest(engine, encode(event("cabinet-2", 1)), station="cabinet-2")
    with engine.connect() as conn:
        row = conn.execute(select(events)).one()
    assert (row.signed, row.signature, row.key_id) == ("", "", "")


def test_a_snapshot_is_checked_against_the_hash_the_station_signed(engine, tmp_path):
    signer = _enrolled(engine, tmp_path)
    ev, payload = signed_event(signer, 1, str(uuid6.uuid7()))
    good = signed_snapshot(signer, ev.id)
    body = json.loads(good)
    body["image"] = base64.b64encode(JPEG + b"\x00").decode()  # other bytes, the same signature
    _ingest(engine, payload)
    _ingest(engine, json.dumps(body).encode(), good, channel="snapshot")
    assert [r for r, _ in _quarantined(engine)] == ["bad_signature"]  # the swapped one, first
    with engine.connect() as conn:
        snap = conn.execute(select(snapshots)).one()
    assert snap.key_id == signer.key_id and snap.signature


def test_a_swapped_unit_starts_again_at_seq_1_and_the_old_rows_still_verify(engine, tmp_path):
    old = _enrolled(engine, tmp_path, "old.key")
    old_inc = str(uuid6.uuid7())
    _ingest(engine, *(signed_event(old, seq, old_inc)[1] for seq in (1, 2, 3)))
    # The unit is replaced: a new key (made on the new unit), registered with --replace.
    new = EventSigner(create_station_key(tmp_path / "new.key"))
    with pytest.raises(StationKeyError) as refused:
        add_key(engine, STATION, public_key_b64(new._key))
    assert refused.value.code == "station_has_key"
    add_key(engine, STATION, public_key_b64(new._key), replace=True)
    states = {k.key_id: k.active for k in list_keys(engine, STATION)}
    assert states == {old.key_id: False, new.key_id: True}

    new_inc = str(uuid6.uuid7())
    _ingest(engine,
            *(signed_event(new, seq, new_inc)[1] for seq in (1, 2)),
            signed_event(old, 4, old_inc)[1],            # the old unit's backlog: still accepted
            signed_event(old, 1, str(uuid6.uuid7()))[1])  # a new outbox under the retired key: not
    with engine.connect() as conn:
        stored = [(r.incarnation, r.seq, r.key_id) for r in conn.execute(select(events).order_by(events.c.row_no))]
    assert stored == [(old_inc, 1, old.key_id), (old_inc, 2, old.key_id), (old_inc, 3, old.key_id),
                      (new_inc, 1, new.key_id), (new_inc, 2, new.key_id), (old_inc, 4, old.key_id)]
    assert [r for r, _ in _quarantined(engine)] == ["retired_key"]
    out = io.StringIO()
    assert verify.run(str(engine.url), out=out) == 0, out.getvalue()
    assert "6 signed rows" in out.getvalue() and "against 2 station keys" in out.getvalue()


def test_retiring_a_key_twice_or_an_unknown_one_says_so(engine, tmp_path):
    signer = _enrolled(engine, tmp_path)
    assert retire_key(engine, signer.key_id).retired_at is not None
    for kid, code in ((signer.key_id, "already_retired"), ("0" * 16, "no_such_key")):
        with pytest.raises(StationKeyError) as err:
            retire_key(engine, kid)
        assert err.value.code == code


class _Running:
    """One Ingest kept running across steps, as in the hub: its key cache stays warm."""

    def __init__(self, engine):
        self.engine = engine
        self.ingest = Ingest(engine, prefix="p").start()

    def send(self, *payloads):
        """Submit ``payloads`` and wait (bounded) until they are stored or quarantined."""
        before = self.ingest.ingested + self.ingest.quarantined
        for payload in payloads:
            self.ingest.submit(f"p/{SITE}/{STATION}/event", payload)
        wait_for(lambda: self.ingest.ingested + self.ingest.quarantined >= before + len(payloads),
                 timeout=10, what=f"{len(payloads)} message(s) handled")

    def stop(self):
        self.ingest.stop()


def test_a_key_retired_while_the_hub_runs_is_refused_for_a_new_outbox_at_once(engine, tmp_path):
    signer = _enrolled(engine, tmp_path)
    running = _Running(engine)
    try:
        inc = str(uuid6.uuid7())
        running.send(signed_event(signer, 1, inc)[1])  # the key is read and cached
        retire_key(engine, signer.key_id)              # as `kagiban hub station-key retire` does
        # The very next message: no waiting for a refresh period.
        running.send(signed_event(signer, 1, str(uuid6.uuid7()))[1])
        running.send(signed_event(signer, 2, inc)[1])  # its stored incarnation's backlog: still accepted
    finally:
        running.stop()
    assert [r for r, _ in _quarantined(engine)] == ["retired_key"]
    assert stored_seqs(engine, STATION) == [1, 2]


def test_a_key_retired_between_a_batch_check_and_its_write_is_refused(engine, tmp_path, monkeypatch):
    # An admin retires the key while the writer holds a batch it has just checked with it: the
    # write transaction sees the key changed, and the batch is checked again before it is stored.
    signer = _enrolled(engine, tmp_path)
    checked = Ingest._prepare
    retired = []

    def check_then_retire(self, batch):
        prepared = checked(self, batch)
        if not retired:
            retire_key(engine, signer.key_id)
            retired.append(signer.key_id)
        return prepared

    monkeypatch.setattr(Ingest, "_prepare", check_then_retire)
    _ingest(engine, signed_event(signer, 1, str(uuid6.uuid7()))[1])
    assert retired == [signer.key_id]
    assert [r for r, _ in _quarantined(engine)] == ["retired_key"]
    assert stored_seqs(engine, STATION) == []


class _Clock:
    """The keys module's monotonic clock, moved by hand: no sleeping, no stall to miss a due read."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now


def test_between_full_reads_the_writer_reads_no_keys_before_a_batch(engine, tmp_path, monkeypatch):
    # Whether a key changed is asked in the batch's write transaction (KeyRing.moved); before
    # the batch, the keys are read only the first time and when a full read is due.
    clock = _Clock()
    monkeypatch.setattr(keys_module, "time", clock)
    _enrolled(engine, tmp_path)
    ring = KeyRing(engine, refresh_s=5.0)
    statements = []
    sa_event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    ring.refresh()
    assert ring.enrolled and statements
    statements.clear()
    clock.now += 4.9
    ring.refresh()
    assert statements == []
    clock.now += 0.1
    ring.refresh()
    assert statements


def test_a_key_edited_by_hand_is_read_at_the_next_full_read(engine, tmp_path, monkeypatch):
    # An edit that changes neither the count, the newest id nor the retired count leaves the
    # mark as it was: it is read at the full read every refresh_s, not before.
    clock = _Clock()
    monkeypatch.setattr(keys_module, "time", clock)
    signer = _enrolled(engine, tmp_path)
    ring = KeyRing(engine, refresh_s=5.0)
    ring.refresh()
    with engine.begin() as conn:
        conn.execute(update(station_keys).values(note="edited by hand"))
    clock.now += 4.9
    ring.sync()
    assert ring.find(signer.key_id).note != "edited by hand"
    clock.now += 0.1
    ring.sync()
    assert ring.find(signer.key_id).note == "edited by hand"


def test_a_replaced_key_gives_way_to_the_new_one_at_once(engine, tmp_path):
    old = _enrolled(engine, tmp_path, "old.key")
    running = _Running(engine)
    try:
        running.send(signed_event(old, 1, str(uuid6.uuid7()))[1])
        new = EventSigner(create_station_key(tmp_path / "new.key"))
        add_key(engine, STATION, public_key_b64(new._key), replace=True)
        new_inc = str(uuid6.uuid7())
        running.send(signed_event(new, 1, new_inc)[1], signed_event(old, 1, str(uuid6.uuid7()))[1])
    finally:
        running.stop()
    assert [r for r, _ in _quarantined(engine)] == ["retired_key"]
    with engine.connect() as conn:
        assert [(r.incarnation, r.key_id) for r in conn.execute(
            select(events).order_by(events.c.row_no))][1:] == [(new_inc, new.key_id)]


def test_a_large_batch_is_checked_in_the_verifier_processes_and_a_bad_one_still_caught(engine, tmp_path):
    signer = _enrolled(engine, tmp_path)
    inc = str(uuid6.uuid7())
    payloads = [signed_event(signer, seq, inc)[1] for seq in range(1, _PARALLEL_MIN * 2 + 1)]
    payloads[40] = payloads[40].replace(b'"staff-001"', b'"staff-009"')  # altered after signing
    _ingest(engine, *payloads)  # one batch: all submitted before the writer starts
    assert _quarantined(engine) == [("bad_signature", "the signature does not match the signed bytes")]
    assert stored_seqs(engine, STATION) == [s for s in range(1, _PARALLEL_MIN * 2 + 1) if s != 41]
