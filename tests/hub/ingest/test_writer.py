"""Ingest: what stations publish ends up stored once, in order, and acked only after commit;
whatever is malformed is quarantined with its reason while good messages still get through."""
from __future__ import annotations

import hashlib
import json
import threading

import pytest
from sqlalchemy import select

from hub.store.chain import verify
from hub.store.db import make_engine
from hub.ingest.writer import Ingest
from hub.store.schema import events, quarantine, snapshots, station_log, stations
from kagiban.protocol import MAX_EVENT_BYTES
from tests.hub.helpers import (
    SITE, encode, event, heartbeat, snapshot, status, stored_seqs,
)
from tests.support.mosquitto import wait_for

LISTED = [
    {"id": "cabinet-1", "site": SITE, "kind": "cabinet"},
    {"id": "cabinet-2", "site": SITE, "kind": "cabinet"},
]


def test_events_are_stored_in_order_and_acked_only_after_commit(start_hub, station):
    hub = start_hub()
    reader = make_engine(hub.cfg.db_url())
    missing_at_ack: list[int] = []

    def check_committed(ack):
        # Runs when the ack arrives: every acked seq must already be readable in the store.
        stored = set(stored_seqs(reader, "cabinet-1"))
        missing_at_ack.extend(sorted(ack.seq_set() - stored))

    st = station("cabinet-1", on_ack=check_committed)
    for seq in range(1, 51):
        st.publish("event", encode(event("cabinet-1", seq)))

    wait_for(lambda: st.acked_seqs() == set(range(1, 51)), timeout=10, what="acks for seq 1..50")
    assert missing_at_ack == []
    assert stored_seqs(reader, "cabinet-1") == list(range(1, 51))
    assert verify(hub.engine).ok
    assert hub.ingest.ingested == 50
    reader.dispose()


def test_stored_event_keeps_what_the_station_sent(start_hub, station):
    hub = start_hub()
    st = station("cabinet-1")
    body = event("cabinet-1", 7, at="2025-04-01T09:30:00+09:00", data={"door": "open", "n": 1.5})
    st.publish("event", encode(body))
    wait_for(lambda: 7 in st.acked_seqs(), timeout=10, what="ack for seq 7")

    with hub.engine.connect() as conn:
        row = conn.execute(select(events)).one()
    assert (row.site, row.station, row.seq, row.event_id) == (SITE, "cabinet-1", 7, body["id"])
    assert row.at == "2025-04-01T09:30:00+09:00"  # the station's offset is kept
    assert row.at_utc == "2025-04-01T00:30:00.000000Z"
    assert (row.badge, row.person) == ("012E4CD2A5B71F03", "staff-001")
    assert json.loads(row.data) == {"door": "open", "n": 1.5}


def test_duplicates_are_stored_once_but_acked_again(start_hub, station):
    hub = start_hub()
    st = station("cabinet-1")
    bodies = [event("cabinet-1", seq) for seq in (1, 2, 3)]
    for body in bodies:
        st.publish("event", encode(body))
    wait_for(lambda: st.acked_seqs() == {1, 2, 3}, timeout=10, what="first acks")
    first_acks = len(st.acks)

    for body in bodies:  # the station did not see the ack and sends again
        st.publish("event", encode(body))
    wait_for(lambda: sum(len(a.seq_set()) for a in st.acks[first_acks:]) >= 3,
             timeout=10, what="acks for the resent events")

    assert stored_seqs(hub.engine, "cabinet-1") == [1, 2, 3]
    assert {s for a in st.acks[first_acks:] for s in a.seq_set()} == {1, 2, 3}
    assert hub.ingest.duplicates == 3
    assert verify(hub.engine).rows == 3


def test_same_seq_with_another_event_id_is_quarantined_and_acked(start_hub, station):
    hub = start_hub()
    st = station("cabinet-1")
    original = event("cabinet-1", 1)
    st.publish("event", encode(original))
    wait_for(lambda: st.acked_seqs() == {1}, timeout=10, what="ack for seq 1")
    before = len(st.acks)

    st.publish("event", encode(event("cabinet-1", 1, kind="door.forced")))
    wait_for(lambda: len(st.acks) > before, timeout=10, what="ack for the conflicting event")

    with hub.engine.connect() as conn:
        stored = conn.execute(select(events.c.event_id, events.c.kind)).all()
        held = conn.execute(select(quarantine.c.reason, quarantine.c.payload)).all()
    assert stored == [(original["id"], "door.opened")]
    assert [r.reason for r in held] == ["seq_conflict"]
    assert json.loads(held[0].payload)["kind"] == "door.forced"  # kept whole for review


def _oversized() -> bytes:
    body = event("cabinet-1", 1, data={"pad": "x" * MAX_EVENT_BYTES})
    return encode(body)


def _forged() -> bytes:
    return encode(event("cabinet-2", 1))  # sent on cabinet-1's topic


def _wrong_schema() -> bytes:
    body = event("cabinet-1", 1)
    del body["kind"]
    return encode(body)


def _bad_image() -> bytes:
    return encode(snapshot("cabinet-1", event("cabinet-1", 1)["id"], image=b"GIF89a not a jpeg"))


def _beyond_64_bits() -> bytes:
    # Valid JSON, but no database column can hold the number: refused before the store.
    return encode(event("cabinet-1", 2**63))


def _lone_surrogate() -> bytes:
    return encode(event("cabinet-1", 1)).replace(b'"note": "\xe9\x8d\xb5"', b'"note": "\\ud800"')


def refuse_in_store(engine, event_id: str) -> None:
    """Make the database itself refuse one event (a real failure inside the transaction)."""
    name = f"refuse_{event_id.replace('-', '_')}"
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"RAISE EXCEPTION 'refused by the store'; END $$")
            conn.exec_driver_sql(
                f"CREATE TRIGGER {name} BEFORE INSERT ON events FOR EACH ROW "
                f"WHEN (NEW.event_id = '{event_id}') EXECUTE FUNCTION {name}()")
            return
        conn.exec_driver_sql(
            f"CREATE TRIGGER {name} BEFORE INSERT ON events "
            f"WHEN NEW.event_id = '{event_id}' BEGIN SELECT RAISE(ABORT, 'refused by the store'); END"
        )


# (case, station in the topic, channel, payload, expected reason)
MALFORMED = [
    ("malformed JSON", "cabinet-1", "event", b'{"v": 1, "seq": ', "bad_json"),
    ("not an object", "cabinet-1", "event", b"[1, 2, 3]", "bad_schema"),
    ("wrong schema", "cabinet-1", "event", _wrong_schema(), "bad_schema"),
    ("wrong version", "cabinet-1", "event", encode(event("cabinet-1", 1, v=2)), "bad_version"),
    ("oversized", "cabinet-1", "event", _oversized(), "oversized"),
    ("forged origin", "cabinet-1", "event", _forged(), "forged_origin"),
    ("bad snapshot image", "cabinet-1", "snapshot", _bad_image(), "bad_image"),
    ("unknown station", "cabinet-9", "event", encode(event("cabinet-9", 1)), "unknown_station"),
    ("bad topic", "-cabinet", "event", encode(event("cabinet-1", 1)), "bad_topic"),
    ("seq beyond 64 bits", "cabinet-1", "event", _beyond_64_bits(), "bad_schema"),
    # JSON text that decodes to no Unicode string: the one JSON parser calls it invalid.
    ("lone surrogate in text", "cabinet-1", "event", _lone_surrogate(), "bad_json"),
    ("version true", "cabinet-1", "event", encode(event("cabinet-1", 1, v=True)), "bad_version"),
]


@pytest.mark.parametrize(
    "station_in_topic, channel, payload, reason",
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_message_is_quarantined_and_good_ones_still_stored(
    start_hub, station, prefix, station_in_topic, channel, payload, reason
):
    hub = start_hub(stations=LISTED)
    st = station("cabinet-1")
    bad_topic = f"{prefix}/{SITE}/{station_in_topic}/{channel}"
    st.publish_raw(bad_topic, payload)
    st.publish("event", encode(event("cabinet-1", 5)))

    wait_for(lambda: 5 in st.acked_seqs(), timeout=10, what="ack for the good event")
    with hub.engine.connect() as conn:
        held = conn.execute(select(quarantine)).all()
    assert [(r.topic, r.reason) for r in held] == [(bad_topic, reason)]
    assert held[0].size == len(payload)
    assert held[0].payload == payload[: 64 * 1024]
    assert held[0].detail  # says what was wrong
    assert stored_seqs(hub.engine, "cabinet-1") == [5]
    assert st.acked_seqs() == {5}  # nothing malformed is acked
    assert hub.ingest.quarantined == 1


def test_snapshot_is_stored_once_and_acked(start_hub, station):
    hub = start_hub()
    st = station("cabinet-1")
    ev = event("cabinet-1", 1)
    image = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"
    payload = encode(snapshot("cabinet-1", ev["id"], image=image))
    st.publish("event", encode(ev))
    st.publish("snapshot", payload)
    wait_for(lambda: ev["id"] in st.acked_snapshots(), timeout=10, what="snapshot ack")
    first_acks = len(st.acks)
    st.publish("snapshot", payload)  # resent: acked again, not stored twice
    wait_for(lambda: any(ev["id"] in a.snapshots for a in st.acks[first_acks:]),
             timeout=10, what="second snapshot ack")
    with hub.engine.connect() as conn:
        rows = conn.execute(select(snapshots)).all()
    assert len(rows) == 1
    assert rows[0].image == image
    assert rows[0].sha256 == hashlib.sha256(image).hexdigest()
    assert rows[0].content_type == "image/jpeg"
    assert rows[0].taken_at == "2025-04-01T00:00:01.000000Z"


def test_status_and_heartbeat_track_the_station(start_hub, station, broker, prefix):
    hub = start_hub()
    st = station("cabinet-1")

    def station_row():
        with hub.engine.connect() as conn:
            return conn.execute(select(stations).where(stations.c.station == "cabinet-1")).first()

    def log_states():
        with hub.engine.connect() as conn:
            return list(conn.execute(select(station_log.c.state).order_by(station_log.c.id)).scalars())

    st.publish("status", encode(status("cabinet-1", "online")))
    wait_for(lambda: station_row() is not None and station_row().state == "online",
             timeout=10, what="station online")
    st.publish("heartbeat", encode(heartbeat("cabinet-1", policy_version=42)))
    wait_for(lambda: station_row().policy_version == 42, timeout=10, what="heartbeat stored")
    assert json.loads(station_row().last_heartbeat)["outbox_depth"] == 0
    assert station_row().kind == "cabinet"

    st.publish("status", encode(status("cabinet-1", "offline")))
    st.publish("status", encode(status("cabinet-1", "offline")))  # no change, no new log row
    wait_for(lambda: station_row().state == "offline", timeout=10, what="station offline")
    st.publish("heartbeat", encode(heartbeat("cabinet-1")))  # alive after all
    wait_for(lambda: station_row().state == "online", timeout=10, what="online again")
    assert log_states() == ["online", "offline", "online"]


# --- the writer alone, fed directly (no broker): batching and failure isolation ---

def test_batches_keep_arrival_order_and_stay_within_batch_max(engine):
    acks = []
    ingest = Ingest(engine, prefix="p", batch_max=100, batch_wait_s=0.05, on_acks=acks.extend)
    sent = []
    for seq in range(1, 401):
        for name in ("cabinet-1", "cabinet-2", "cabinet-3"):
            ingest.submit(f"p/{SITE}/{name}/event", encode(event(name, seq)))
            sent.append((name, seq))
    ingest.start()
    ingest.stop()

    with engine.connect() as conn:
        chain = conn.execute(select(events.c.station, events.c.seq).order_by(events.c.row_no)).all()
    assert [tuple(r) for r in chain] == sent
    assert ingest.batches >= 12  # 1200 messages, 100 per transaction at most
    per_batch = [len(ack.seq_set()) for _site, _name, ack in acks]
    assert max(per_batch) <= 100
    for name in ("cabinet-1", "cabinet-2", "cabinet-3"):
        acked = set().union(*(a.seq_set() for _s, n, a in acks if n == name))
        assert acked == set(range(1, 401))
    assert verify(engine).ok


def test_one_unstorable_message_does_not_lose_the_rest_of_its_batch(engine):
    acks = []
    ingest = Ingest(engine, prefix="p", on_acks=acks.extend)
    refused = [event("cabinet-1", 2), event("cabinet-1", 5)]
    for body in refused:
        refuse_in_store(engine, body["id"])
    payloads = [encode(event("cabinet-1", 1)), encode(refused[0]), encode(event("cabinet-1", 3)),
                encode(refused[1]), encode(event("cabinet-1", 4))]
    for payload in payloads:  # all in the queue before start: one batch
        ingest.submit(f"p/{SITE}/cabinet-1/event", payload)
    ingest.start()
    ingest.stop()

    assert stored_seqs(engine, "cabinet-1") == [1, 3, 4]
    with engine.connect() as conn:
        reasons = list(conn.execute(select(quarantine.c.reason)).scalars())
    assert reasons == ["internal_error", "internal_error"]
    assert set().union(*(a.seq_set() for _s, _n, a in acks)) == {1, 3, 4}
    assert verify(engine).ok

    # The writer is still alive for the next run of messages.
    after = Ingest(engine, prefix="p").start()
    after.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", 5)))
    after.stop()
    assert stored_seqs(engine, "cabinet-1") == [1, 3, 4, 5]


def test_a_nul_character_in_an_event_is_refused_by_name_on_every_store(engine):
    # (badge, incarnation and the ids have patterns already; the person field is free text.)
    acks = []
    ingest = Ingest(engine, prefix="p", on_acks=acks.extend)
    for body in (event("cabinet-1", 1), event("cabinet-1", 2, person="S0\u0000012"),
                 event("cabinet-1", 3, data={"note": "a\u0000b"})):  # in data: JSON's \u0000, stored
        ingest.submit(f"p/{SITE}/cabinet-1/event", encode(body))
    ingest.start()
    ingest.stop()

    assert stored_seqs(engine, "cabinet-1") == [1, 3]
    with engine.connect() as conn:
        refused = conn.execute(select(quarantine.c.reason, quarantine.c.detail)).all()
        note = conn.execute(select(events.c.data).where(events.c.seq == 3)).scalar_one()
    assert [tuple(r) for r in refused] == [("bad_schema", "person: a NUL character")]
    assert json.loads(note) == {"note": "a\u0000b"}
    # Refused like any event the hub cannot read: kept whole in quarantine, not acknowledged.
    assert set().union(*(a.seq_set() for _s, _n, a in acks)) == {1, 3}
    assert verify(engine).ok


def test_an_unstorable_event_does_not_take_its_seq_from_a_good_one(engine):
    # Both in one batch, which fails; retried alone, the good event must not count as a conflict.
    ingest = Ingest(engine, prefix="p")
    first = event("cabinet-1", 1)
    refuse_in_store(engine, first["id"])
    unstorable = encode(first)
    second = event("cabinet-1", 1)
    ingest.submit(f"p/{SITE}/cabinet-1/event", unstorable)
    ingest.submit(f"p/{SITE}/cabinet-1/event", encode(second))
    ingest.start()
    ingest.stop()

    with engine.connect() as conn:
        assert list(conn.execute(select(events.c.event_id)).scalars()) == [second["id"]]
        assert list(conn.execute(select(quarantine.c.reason)).scalars()) == ["internal_error"]


def test_a_resend_in_a_batch_of_new_events_is_still_recognised(engine):
    # Seqs above a station's highest stored seq skip the lookup; resent ones below it must not.
    bodies = [event("cabinet-1", seq) for seq in range(1, 6)]
    first = Ingest(engine, prefix="p")
    for body in bodies:
        first.submit(f"p/{SITE}/cabinet-1/event", encode(body))
    first.start()
    first.stop()

    acks = []
    again = Ingest(engine, prefix="p", on_acks=acks.extend)
    again.submit(f"p/{SITE}/cabinet-1/event", encode(bodies[2]))  # seq 3 resent as it was
    again.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", 4)))  # seq 4, another event
    for seq in (6, 7, 8):
        again.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", seq)))
    again.start()
    again.stop()

    assert stored_seqs(engine, "cabinet-1") == [1, 2, 3, 4, 5, 6, 7, 8]
    with engine.connect() as conn:
        stored_4 = conn.execute(select(events.c.event_id).where(events.c.seq == 4)).scalar_one()
        reasons = list(conn.execute(select(quarantine.c.reason)).scalars())
    assert stored_4 == bodies[3]["id"]
    assert reasons == ["seq_conflict"]
    assert again.duplicates == 1 and again.ingested == 3
    assert set().union(*(a.seq_set() for _s, _n, a in acks)) == {3, 4, 6, 7, 8}
    assert verify(engine).ok


def test_events_of_a_station_without_a_stations_row_are_still_found(engine):
    # Rows written some other way (a restore, a tool) may lack the station's row: look up all.
    body = event("cabinet-1", 1)
    first = Ingest(engine, prefix="p")
    first.submit(f"p/{SITE}/cabinet-1/event", encode(body))
    first.start()
    first.stop()
    with engine.begin() as conn:
        conn.execute(stations.delete())

    again = Ingest(engine, prefix="p")
    again.submit(f"p/{SITE}/cabinet-1/event", encode(body))
    again.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", 1)))
    again.start()
    again.stop()

    assert stored_seqs(engine, "cabinet-1") == [1]
    assert again.duplicates == 1
    with engine.connect() as conn:
        assert list(conn.execute(select(quarantine.c.reason)).scalars()) == ["seq_conflict"]


def test_ack_callback_failure_does_not_stop_the_writer(engine):
    calls = []

    def broken(acks):
        calls.append(acks)
        raise RuntimeError("broker gone")

    ingest = Ingest(engine, prefix="p", on_acks=broken, batch_wait_s=0).start()
    ingest.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", 1)))
    wait_for(lambda: calls, timeout=5, what="first ack attempt")
    ingest.submit(f"p/{SITE}/cabinet-1/event", encode(event("cabinet-1", 2)))
    ingest.stop()
    assert stored_seqs(engine, "cabinet-1") == [1, 2]
    assert len(calls) == 2


def test_submit_is_safe_from_many_threads(engine):
    ingest = Ingest(engine, prefix="p", batch_max=50).start()

    def send(name):
        for seq in range(1, 101):
            ingest.submit(f"p/{SITE}/{name}/event", encode(event(name, seq)))

    threads = [threading.Thread(target=send, args=(f"cabinet-{n}",)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    ingest.stop()
    for n in range(1, 5):
        assert stored_seqs(engine, f"cabinet-{n}") == list(range(1, 101))
    assert ingest.ingested == 400
    assert verify(engine).ok
