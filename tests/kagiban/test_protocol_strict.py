"""A strict wire (protocol revision 3): duplicate keys, NaN and Infinity, offsets beyond +-14:00
and times no store can hold are refused with their own reasons, wherever they are in a
payload; JSON that merely looks odd (spaces, escaped quotes, +14:00) still passes."""
from __future__ import annotations

import json

import pytest

from kagiban import protocol
from kagiban.protocol import ProtocolError, parse_hub_message, parse_station_payload

GOOD = {
    "v": 1, "id": "0190f3a2-7c1e-7b3a-9f00-3c2d1e0a4b5c", "seq": 42, "site": "ward-a", "station": "cabinet-1",
    "kind": "key.used", "at": "2024-07-01T08:59:12.345000+09:00", "badge": None, "person": "S0012",
    "data": {"duration_s": 12.5, "nested": {"list": [1, 2.5, {"deep": "x"}]}},
}
HEARTBEAT = {
    "v": 1, "site": "ward-a", "station": "cabinet-1", "kind": "cabinet", "at": "2024-07-01T09:00:00+09:00",
    "uptime_s": 3597.2, "next_seq": 43, "outbox_depth": 0, "outbox_capacity": 200000,
}


def compact(body: dict) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def reason(channel: str, payload: bytes) -> str | None:
    try:
        parse_station_payload("ward-a", "cabinet-1", channel, payload)
    except ProtocolError as exc:
        return exc.reason
    return None


@pytest.mark.parametrize("payload", [
    compact(GOOD).replace(b'"kind":"key.used"', b'"kind":"test.dupkey","kind":"door.forced"'),
    compact(GOOD).replace(b'"deep":"x"', b'"deep":"x","deep":"y"'),  # deep inside data
    compact(GOOD).replace(b'"v":1,', b'"v":1,"v":1,'),  # the same value twice is still two keys
    json.dumps(GOOD, indent=2).encode().replace(b'"kind": "key.used"', b'"kind" : "x.y",\n  "kind"\t: "door.forced"'),
])
def test_a_key_named_twice_is_refused(payload):
    assert reason("event", payload) == "duplicate_key"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_refused_in_data_and_in_number_fields(literal):
    assert reason("event", compact(GOOD).replace(b"12.5", literal)) == "bad_number"
    assert reason("event", compact(GOOD).replace(b",2.5,", b"," + literal + b",")) == "bad_number"  # in a list
    assert reason("heartbeat", compact(HEARTBEAT).replace(b"3597.2", literal)) == "bad_number"


@pytest.mark.parametrize("offset,expected", [
    ("+14:00", None), ("-12:00", None), ("-14:00", None), ("+14:01", "bad_offset"), ("+23:59", "bad_offset"),
    ("-23:59", "bad_offset"),
])
def test_offsets_beyond_fourteen_hours_are_refused(offset, expected):
    body = {**GOOD, "at": "2024-07-01T08:59:12" + offset}
    assert reason("event", compact(body)) == expected
    assert reason("heartbeat", compact({**HEARTBEAT, "at": "2024-07-01T09:00:00" + offset})) == expected


def test_a_time_no_store_can_hold_in_utc_is_refused_and_the_far_future_is_left_to_the_hub():
    assert reason("event", compact({**GOOD, "at": "0001-01-01T00:00:00+09:00"})) == "bad_time"
    assert reason("event", compact({**GOOD, "at": "9999-12-31T23:59:59-01:00"})) == "bad_time"
    # Representable, however unlikely: stored, and flagged by the hub against its receive time.
    assert reason("event", compact({**GOOD, "at": "9999-12-31T23:59:59.999999+00:00"})) is None


@pytest.mark.parametrize("payload", [
    json.dumps(GOOD).encode(),  # spaces after ':' and ','
    json.dumps(GOOD, indent=2).encode(),
    compact({**GOOD, "person": 'say "a": b'}),  # an escaped quote before a ':' inside a string
    compact({**GOOD, "data": {"note": "NaN", "text": "Infinity", "k\\\":": 1}}),
])
def test_json_that_only_looks_odd_is_accepted(payload):
    assert reason("event", payload) is None


def test_the_hub_messages_a_station_reads_are_as_strict():
    ack = b'{"v":1,"station":"cabinet-1","seqs":[[1,2]],"snapshots":[],"station":"cabinet-9"}'
    with pytest.raises(ProtocolError) as exc:
        parse_hub_message(protocol.Ack, ack)
    assert exc.value.reason == "duplicate_key"


def test_clock_fields_of_revision_three():
    hb = parse_station_payload("ward-a", "cabinet-1", "heartbeat", compact({**HEARTBEAT, "clock_synced": False}))
    assert hb.clock_synced is False
    # Left out when unknown, so a hub of revision 2 still reads the heartbeat.
    assert b"clock_synced" not in protocol.dumps(hb.model_copy(update={"clock_synced": None}))
    ev = parse_station_payload("ward-a", "cabinet-1", "event",
                               compact({**GOOD, "data": {"clock_unsynced": True}}))
    assert ev.clock_unsynced is True
    assert reason("event", compact({**GOOD, "data": {"clock_unsynced": False}})) == "bad_schema"
    assert protocol.REVISION >= 3
