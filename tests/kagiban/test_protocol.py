"""The wire protocol: topics, validation and the reasons a message is refused."""
import base64
import json
from datetime import datetime, timezone

import pytest

from kagiban import protocol
from kagiban.protocol import ProtocolError, parse_station_message

PREFIX = "kagiban"
GOOD = {
    "v": 1,
    "id": "01a21803-0143-76db-b517-d6df02d63c69",
    "seq": 1,
    "site": "ward-a",
    "station": "cabinet-1",
    "kind": "door.opened",
    "at": "2026-11-26T10:00:00+09:00",
    "badge": None,
    "person": None,
    "data": {},
}
T = "kagiban/ward-a/cabinet-1/event"


def test_topic_round_trip():
    t = protocol.topic(PREFIX, "ward-a", "cabinet-1", "event")
    assert t == T
    assert protocol.parse_topic(PREFIX, t) == ("ward-a", "cabinet-1", "event")
    assert protocol.subscription("a/b", "event") == "a/b/+/+/event"
    assert protocol.parse_topic("a/b", "a/b/s/c/ack") == ("s", "c", "ack")


def test_good_event_parses_with_its_offset():
    channel, ev = parse_station_message(PREFIX, T, json.dumps(GOOD).encode())
    assert channel == "event" and ev.seq == 1
    assert ev.at.utcoffset().total_seconds() == 9 * 3600


@pytest.mark.parametrize(
    "topic,payload,reason",
    [
        ("kagiban/ward-a/cabinet-1", b"{}", "bad_topic"),
        ("other/ward-a/cabinet-1/event", b"{}", "bad_topic"),
        ("kagiban/ward-a/cabinet-1/ack", b"{}", "not_station_channel"),
        (T, b"{not json", "bad_json"),
        (T, b"[1,2]", "bad_schema"),
        (T, json.dumps({**GOOD, "v": 2}).encode(), "bad_version"),
        (T, json.dumps({**GOOD, "v": 1.0}).encode(), "bad_version"),
        (T, json.dumps({**GOOD, "v": True}).encode(), "bad_version"),
        (T, json.dumps({**GOOD, "v": "1"}).encode(), "bad_version"),
        (T, json.dumps({k: v for k, v in GOOD.items() if k != "v"}).encode(), "bad_version"),
        # Another version's payload breaks the schema too; the version is the reason given.
        (T, json.dumps({**GOOD, "v": 2, "seq": "one", "new_field": 1}).encode(), "bad_version"),
        (T, json.dumps({k: v for k, v in GOOD.items() if k not in ("v", "seq")}).encode(), "bad_version"),
        (T, json.dumps({**GOOD, "seq": 0}).encode(), "bad_schema"),
        (T, json.dumps({**GOOD, "at": "2026-11-26T10:00:00"}).encode(), "bad_schema"),
        (T, json.dumps({**GOOD, "extra": 1}).encode(), "bad_schema"),
        (T, json.dumps({**GOOD, "station": "cabinet-2"}).encode(), "forged_origin"),
        (T, json.dumps({**GOOD, "data": {"x": "y" * 20000}}).encode(), "oversized"),
    ],
)
def test_bad_messages_are_refused_with_a_reason(topic, payload, reason):
    with pytest.raises(ProtocolError) as err:
        parse_station_message(PREFIX, topic, payload)
    assert err.value.reason == reason


def test_snapshot_must_be_a_jpeg():
    snap = {
        "v": 1,
        "event_id": GOOD["id"],
        "site": "ward-a",
        "station": "cabinet-1",
        "taken_at": "2026-11-26T10:00:00+09:00",
        "content_type": "image/jpeg",
        "image": base64.b64encode(b"GIF89a...").decode(),
    }
    with pytest.raises(ProtocolError) as err:
        parse_station_message(PREFIX, "kagiban/ward-a/cabinet-1/snapshot", json.dumps(snap).encode())
    assert err.value.reason == "bad_image"
    snap["image"] = base64.b64encode(b"\xff\xd8\xff\xe0jpeg").decode()
    channel, model = parse_station_message(PREFIX, "kagiban/ward-a/cabinet-1/snapshot", json.dumps(snap).encode())
    assert channel == "snapshot" and model.image_bytes().startswith(b"\xff\xd8")


def test_ranges_compress_and_expand():
    assert protocol.ranges({7, 1, 2, 3, 9, 8}) == [(1, 3), (7, 9)]
    ack = protocol.Ack(station="cabinet-1", seqs=protocol.ranges([1, 2, 3, 7]))
    assert ack.seq_set() == {1, 2, 3, 7}


def test_policy_denies_unknown_badges():
    pol = protocol.Policy(
        version=1, issued_at="2026-11-26T10:00:00+09:00", site="ward-a", station="cabinet-1", badges={}
    )
    assert pol.decide("0123456789ABCDEF", datetime.now(timezone.utc)).reason == "unknown"


def test_an_event_may_name_its_outbox_incarnation_and_nothing_else_there():
    inc = "01a21803-0143-76db-b517-d6df02d63c70"
    _, ev = parse_station_message(PREFIX, T, json.dumps({**GOOD, "incarnation": inc}).encode())
    assert ev.incarnation == inc
    _, old = parse_station_message(PREFIX, T, json.dumps(GOOD).encode())
    assert old.incarnation is None
    with pytest.raises(ProtocolError) as err:
        parse_station_message(PREFIX, T, json.dumps({**GOOD, "incarnation": "cabinet-1"}).encode())
    assert err.value.reason == "bad_schema"


def test_revision_2_fields_are_left_out_when_empty_so_older_peers_read_the_message():
    plain = protocol.Ack(station="cabinet-1", seqs=[(1, 2)])
    assert "incarnation" not in json.loads(protocol.dumps(plain))
    named = protocol.Ack(station="cabinet-1", seqs=[(1, 2)], incarnation="01a21803-0143-76db-b517-d6df02d63c70")
    assert json.loads(protocol.dumps(named))["incarnation"] == named.incarnation
    assert json.loads(protocol.dumps(protocol.Event.model_validate(GOOD)))["badge"] is None  # other nulls stay
