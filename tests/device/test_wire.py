"""The station's wire messages (device.wire) against the hub's (kagiban.protocol): what the
station sends, the hub reads as the same values and would write as the same bytes; what the hub
sends, the station reads as the same values; what the hub's reading refuses, the station's
refuses with the same reason; the twins' fields cannot drift apart; and none of it loads
pydantic on the station."""
from __future__ import annotations

import base64
import inspect
import json
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device import wire
from kagiban import protocol, signing
from kagiban.wire import (
    ERROR_CODE_PATTERN,
    ID_PATTERN,
    INCARNATION_PATTERN,
    KEY_ID_PATTERN,
    KIND_PATTERN,
    MAX_ACK_SPAN,
    MAX_ALARM_BYTES,
    SIGNATURE_PATTERN,
    ProtocolError,
)

_ROOT = Path(__file__).resolve().parents[2]

# Each station twin and the hub model it must match.
TWINS = [
    (wire.Event, protocol.Event), (wire.Snapshot, protocol.Snapshot), (wire.Status, protocol.Status),
    (wire.PeripheralHealth, protocol.PeripheralHealth), (wire.Heartbeat, protocol.Heartbeat),
    (wire.SnapshotFailed, protocol.SnapshotFailed), (wire.StorageCorrupt, protocol.StorageCorrupt),
    (wire.Ack, protocol.Ack), (wire.PolicyEntry, protocol.PolicyEntry), (wire.Hours, protocol.Hours),
    (wire.RollCall, protocol.RollCall), (wire.Policy, protocol.Policy),
    (wire.SignedPolicy, protocol.SignedPolicy), (wire.PolicyKeyChange, protocol.PolicyKeyChange),
    (wire.PolicyReset, protocol.PolicyReset), (wire.SignedControl, protocol.SignedControl),
    (wire.SiteAlarm, protocol.SiteAlarm),
]


# ---- the twins' fields ------------------------------------------------------------------------


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """A JSON schema with its $refs inlined and only what a reader checks kept (types,
    patterns, bounds, enums as sets): titles, descriptions and defaults go; what the two
    libraries write differently for the same rule is written one way."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _resolve(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    out = {k: _resolve(v, defs) for k, v in node.items()
           if k not in ("title", "description", "default", "$defs", "discriminator", "properties")}
    if "enum" in out:  # pydantic adds "type": "string" to an enum of strings; msgspec does not
        out.pop("type", None)
        out["enum"] = sorted(out["enum"], key=repr)
    if "const" in out:
        out = {"enum": [out["const"]]}
    for union in ("anyOf", "oneOf"):  # msgspec's tagged union is anyOf, pydantic's oneOf
        if union in out:
            out["anyOf"] = sorted(out.pop(union), key=lambda s: json.dumps(s, sort_keys=True))
    if out.get("additionalProperties") is True:  # an open object either way
        del out["additionalProperties"]
    if "prefixItems" in out and out.get("items") is False:  # a tuple: its length says as much
        del out["items"]
    out["required"] = sorted(out.get("required", []))
    if "properties" in node:
        props = {name: _resolve(value, defs) for name, value in node["properties"].items()}
        if props.get("v") == {"enum": [1], "required": []}:  # the hub's Version: a strict int == 1
            props["v"] = {"type": "integer", "required": []}
        out["properties"] = props
        out["order"] = list(props)
    return out


def _schema_of(kind: Any) -> dict[str, Any]:
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        schema = msgspec.json.schema(kind)
    else:
        schema = kind.model_json_schema()
    return _resolve(schema, schema.get("$defs", {}))


def _tagged(schema: dict[str, Any]) -> dict[str, Any]:
    """The hub's control models carry ``type`` as a defaulted field, the twins as a tag (always
    written, first): the same on the wire; here both count it as required."""
    if "type" in schema.get("properties", {}) and "type" not in schema.get("required", []):
        schema["required"] = sorted([*schema.get("required", []), "type"])
    for value in schema.values():
        if isinstance(value, dict):
            _tagged(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _tagged(item)
    return schema


def _defaults(kind: Any) -> dict[str, Any]:
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        out = {}
        for f in msgspec.structs.fields(kind):
            if f.default is not msgspec.NODEFAULT:
                out[f.name] = f.default
            elif f.default_factory is not msgspec.NODEFAULT:
                out[f.name] = f.default_factory()
        return out
    return {name: info.get_default(call_default_factory=True)
            for name, info in kind.model_fields.items() if not info.is_required()}


@pytest.mark.parametrize(("twin", "hub"), TWINS, ids=[t.__name__ for t, _ in TWINS])
def test_each_twin_has_the_hub_models_fields_in_order_with_their_types_bounds_and_defaults(twin, hub):
    station, hubs = _tagged(_schema_of(twin)), _tagged(_schema_of(hub))
    if twin in (wire.SnapshotFailed, wire.StorageCorrupt):  # event data: the hub keeps more keys
        hubs.pop("additionalProperties", None)
        station.pop("additionalProperties", None)
    assert station == hubs
    assert _defaults(twin) == {k: v for k, v in _defaults(hub).items() if k != "type"}
    assert getattr(twin, "OMIT_IF_NONE", frozenset()) == getattr(hub, "OMIT_IF_NONE", frozenset())


# ---- strategies -------------------------------------------------------------------------------

ids = st.from_regex(ID_PATTERN, fullmatch=True)
# Times as a station's clock makes them: whole-minute offsets within +-14:00.
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
instants = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                        timezones=offsets)
text = st.text(max_size=40)
# Floats as the station writes them (uptime_s rounded to ms; figures in event data): within the
# range where both libraries write the same digits (see the test on far-out floats below).
floats = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False).map(lambda f: round(f, 3))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) | floats | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12)
uuid7 = st.from_regex(INCARNATION_PATTERN, fullmatch=True)
maybe = st.none().__or__


def event_fields() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "id": uuid7, "seq": st.integers(1, 2**63 - 1), "site": ids, "station": ids,
        "kind": st.from_regex(KIND_PATTERN, fullmatch=True).filter(lambda k: len(k) <= 64), "at": instants,
    }, optional={
        "badge": maybe(st.from_regex(r"^[0-9A-F]{8,32}$", fullmatch=True)), "person": maybe(st.text(max_size=64)),
        "data": st.dictionaries(text.filter(lambda k: k != "clock_unsynced"), json_values, max_size=5),
        "incarnation": maybe(uuid7), "key_id": maybe(st.from_regex(KEY_ID_PATTERN, fullmatch=True)),
        "sig": maybe(st.from_regex(SIGNATURE_PATTERN, fullmatch=True)),
    })


def health_fields() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({"state": st.sampled_from(["ok", "failed", "absent"]), "since": instants},
                                 optional={"error": maybe(st.from_regex(ERROR_CODE_PATTERN, fullmatch=True)),
                                           "detail": maybe(st.text(max_size=200))})


def heartbeat_fields() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "site": ids, "station": ids, "kind": st.sampled_from(["cabinet", "shredder", "printer", "door",
                                                              "annunciator", "rollcall"]),
        "at": instants, "uptime_s": st.floats(0, 1e9).map(lambda f: round(f, 3)),
        "next_seq": st.integers(1, 2**40), "outbox_depth": st.integers(0, 2**31),
        "outbox_capacity": st.integers(1, 2**31),
    }, optional={
        "policy_version": maybe(st.integers(1, 2**50)), "door": st.sampled_from(["open", "closed", "unknown"]),
        "locked": maybe(st.booleans()), "unrecorded": st.integers(0, 1000),
        "storage_error": maybe(st.text(max_size=300)), "incarnation": maybe(uuid7),
        "peripherals": maybe(st.dictionaries(st.sampled_from(["pins", "reader", "camera", "print_server"]),
                                             health_fields(), max_size=4)),
        "clock_synced": maybe(st.booleans()), "policy_expired": maybe(st.booleans()),
        "policy_refused": maybe(st.from_regex(ERROR_CODE_PATTERN, fullmatch=True)),
        "signal": maybe(st.sampled_from(["off", "lit", "sounding"])),
    })


def _station(kind: type[msgspec.Struct], fields: dict[str, Any]) -> Any:
    """The station's message of these values (nested ones made as the station's too)."""
    if kind is wire.Heartbeat and fields.get("peripherals"):
        fields = {**fields, "peripherals": {k: wire.PeripheralHealth(**v) for k, v in fields["peripherals"].items()}}
    return kind(**fields)


SLOW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize(("twin", "hub"), TWINS, ids=[t.__name__ for t, _ in TWINS])
def test_each_twin_is_immutable_and_built_by_keywords_only_as_the_hub_model_is(twin, hub):
    # A message is shared by the agent's threads (recorder, sender) once built: none may change it.
    assert twin.__struct_config__.frozen and hub.model_config.get("frozen")
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)
    for kind in (twin, hub):
        assert not [p.name for p in inspect.signature(kind).parameters.values() if p.kind in positional]


# ---- what the station sends -------------------------------------------------------------------


@SLOW
@given(event_fields())
def test_an_event_the_station_writes_is_the_hubs_bytes_and_reads_back_as_the_same_event(fields):
    mine = wire.dumps(_station(wire.Event, fields))
    hubs = protocol.Event(**fields)
    assert mine == protocol.dumps(hubs)
    assert protocol.parse_station_payload(fields["site"], fields["station"], "event", mine) == hubs


@SLOW
@given(heartbeat_fields())
def test_a_heartbeat_the_station_writes_is_the_hubs_bytes_and_reads_back_the_same(fields):
    mine = wire.dumps(_station(wire.Heartbeat, fields))
    hubs = protocol.Heartbeat(**fields)
    assert mine == protocol.dumps(hubs)
    assert protocol.parse_station_payload(fields["site"], fields["station"], "heartbeat", mine) == hubs


@SLOW
@given(st.fixed_dictionaries({
    "event_id": st.uuids().map(str), "site": ids, "station": ids, "taken_at": instants,
    "image": st.binary(max_size=64).map(lambda b: base64.b64encode(b"\xff\xd8" + b).decode()),
}, optional={"clock_unsynced": st.sampled_from([None, True]),
             "key_id": maybe(st.from_regex(KEY_ID_PATTERN, fullmatch=True)),
             "sig": maybe(st.from_regex(SIGNATURE_PATTERN, fullmatch=True))}))
def test_a_snapshot_the_station_writes_is_the_hubs_bytes(fields):
    mine = wire.dumps(wire.Snapshot(**fields))
    hubs = protocol.Snapshot(**fields)
    assert mine == protocol.dumps(hubs)
    assert protocol.parse_station_payload(fields["site"], fields["station"], "snapshot", mine) == hubs


@pytest.mark.parametrize("image", ["/9j/4AAQ SkZJRg==", "/9j/4AAQ*kZJRg==", "/9j/4AAQ\nSkZJRg=="])
def test_a_snapshot_image_that_is_not_strict_base64_is_bad_image_at_the_station_as_at_the_hub(image):
    # The station signs the sha256 of these bytes (device.outbox): what the hub would refuse
    # as bad_image must not be read leniently, signed and committed.
    fields = {"event_id": "01931b2a-0000-7000-8000-000000000000", "site": "ward-a", "station": "cabinet-1",
              "taken_at": datetime(2026, 12, 6, 9, 0, tzinfo=timezone(timedelta(hours=9))), "image": image}
    for snapshot in (wire.Snapshot(**fields), protocol.Snapshot(**fields)):
        with pytest.raises(ProtocolError) as err:
            snapshot.image_bytes()
        assert err.value.reason == "bad_image"


@SLOW
@given(ids, ids, st.sampled_from(["online", "offline", "stopped"]), maybe(instants),
       maybe(st.sampled_from(["cabinet", "door", "annunciator"])))
def test_a_status_the_station_writes_is_the_hubs_bytes(site, station, state, at, kind):
    mine = wire.dumps(wire.Status(site=site, station=station, state=state, at=at, kind=kind))
    hubs = protocol.Status(site=site, station=station, state=state, at=at, kind=kind)
    assert mine == protocol.dumps(hubs)
    assert protocol.parse_station_payload(site, station, "status", mine) == hubs


@SLOW
@given(st.uuids().map(str), st.from_regex(KIND_PATTERN, fullmatch=True).filter(lambda k: len(k) <= 64),
       st.from_regex(ERROR_CODE_PATTERN, fullmatch=True), maybe(st.text(max_size=200)))
def test_snapshot_failed_data_is_what_the_hub_model_reads(event_id, for_kind, error, detail):
    data = wire.to_data(wire.SnapshotFailed(event_id=event_id, for_kind=for_kind, error=error, detail=detail))
    hubs = protocol.SnapshotFailed(event_id=event_id, for_kind=for_kind, error=error, detail=detail)
    assert data == hubs.model_dump(exclude_none=True)
    assert protocol.SnapshotFailed.model_validate(data) == hubs


def test_storage_corrupt_data_is_what_the_hub_model_reads():
    values = dict(store="outbox", moved_to=["outbox.sqlite.corrupt-20261206T041500Z"], error="file is not a database",
                  previous_incarnation=None, previous_next_seq=12, previous_highest_seq=11, previous_unsent=3)
    data = msgspec.to_builtins(wire.StorageCorrupt(**values))
    assert data == protocol.StorageCorrupt(**values).model_dump()
    assert json.dumps(data) == json.dumps(protocol.StorageCorrupt(**values).model_dump(mode="json"))


def test_floats_far_from_a_stations_range_are_written_in_other_digits_but_read_as_the_same_number():
    # msgspec writes 1e16 and 1e-05 where pydantic writes 1e+16 and 1e-5: the number is the same.
    at = datetime(2026, 12, 6, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    for value in (1e16, 1.5e300, 1e-5, 5e-324):
        fields = dict(site="ward-a", station="cabinet-1", kind="cabinet", at=at, uptime_s=value, next_seq=1,
                      outbox_depth=0, outbox_capacity=1)
        got = protocol.parse_station_payload("ward-a", "cabinet-1", "heartbeat", wire.dumps(wire.Heartbeat(**fields)))
        assert got == protocol.Heartbeat(**fields)


def test_the_revision_fields_are_left_out_when_none_and_other_nones_are_written_as_null():
    at = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
    event = json.loads(wire.dumps(wire.Event(id="01931b2a-0000-7000-8000-000000000000", seq=1, site="ward-a",
                                             station="cabinet-1", kind="door.opened", at=at)))
    assert list(event) == ["v", "id", "seq", "site", "station", "kind", "at", "badge", "person", "data"]
    assert event["badge"] is None and event["at"] == "2026-12-06T09:00:00Z"


def test_a_message_that_breaks_its_constraints_is_not_written():
    at = datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc)
    for bad in (
        wire.Event(id="not-a-uuid", seq=1, site="ward-a", station="cabinet-1", kind="door.opened", at=at),
        wire.Event(id="01931b2a-0000-7000-8000-000000000000", seq=0, site="ward-a", station="cabinet-1",
                   kind="door.opened", at=at),
        wire.Event(id="01931b2a-0000-7000-8000-000000000000", seq=1, site="ward/a", station="cabinet-1",
                   kind="door.opened", at=at),
        wire.Event(id="01931b2a-0000-7000-8000-000000000000", seq=1, site="ward-a", station="cabinet-1",
                   kind="door.opened", at=datetime(2026, 12, 6, 9, 0)),  # naive
        wire.Heartbeat(site="ward-a", station="cabinet-1", kind="cabinet", at=at, uptime_s=-1.0, next_seq=1,
                       outbox_depth=0, outbox_capacity=1),
    ):
        with pytest.raises(ValueError) as err:
            wire.dumps(bad)
        assert type(bad).__name__ in str(err.value)
    with pytest.raises(ValueError, match="clock_unsynced"):
        wire.Event(id="01931b2a-0000-7000-8000-000000000000", seq=1, site="ward-a", station="cabinet-1",
                   kind="door.opened", at=at, data={"clock_unsynced": False})


# ---- what the station receives ----------------------------------------------------------------


@SLOW
@given(ids, st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 100)), max_size=5),
       st.lists(st.uuids().map(str), max_size=4), maybe(uuid7))
def test_an_ack_the_hub_writes_reads_at_the_station_as_the_same_values(station, spans, snapshots, incarnation):
    seqs = [(lo, lo + n) for lo, n in spans]
    sent = protocol.Ack(station=station, seqs=seqs, snapshots=snapshots, incarnation=incarnation)
    got = wire.parse_hub_message(wire.Ack, protocol.dumps(sent))
    assert (got.station, got.seqs, got.snapshots, got.incarnation) == (station, seqs, snapshots, incarnation)
    assert got.seq_set() == sent.seq_set()
    assert wire.dumps(got) == protocol.dumps(sent)


@SLOW
@given(ids, instants, st.lists(st.integers(1, 2**40), max_size=200), st.integers(0, 1000))
def test_a_site_alarm_the_hub_writes_reads_at_the_station_as_the_same_values(site, at, alerts, extra):
    sent = protocol.SiteAlarm(site=site, at=at, count=len(alerts) + extra, alerts=alerts)
    got = wire.parse_hub_message(wire.SiteAlarm, protocol.dumps(sent), limit=MAX_ALARM_BYTES * 4)
    assert (got.site, got.at, got.count, got.alerts) == (site, at, sent.count, alerts)
    assert got.at.utcoffset() == at.utcoffset()
    assert wire.dumps(got) == protocol.dumps(sent)


entries = st.builds(
    protocol.PolicyEntry,
    person=maybe(st.text(max_size=20)), name=maybe(st.text(max_size=20)),
    decision=st.sampled_from(["allow", "allow_flag", "deny"]), reason=st.text(max_size=20),
    valid_from=maybe(instants), valid_until=maybe(instants), expiry_reason=st.sampled_from(["expired", "badge_expired"]),
    after_hours=st.sampled_from(["allow", "flag", "deny"]), print_user=maybe(st.text(min_size=1, max_size=64)))
hours = st.builds(protocol.Hours, days=st.lists(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]),
                                                 unique=True),
                  start=st.from_regex(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", fullmatch=True),
                  end=st.from_regex(r"^([01][0-9]|2[0-3]):[0-5][0-9]$", fullmatch=True))
rollcalls = st.builds(protocol.RollCall, session=st.integers(1, 10**6), title=st.text(max_size=128),
                      opens_at=instants, late_after=instants, expected=st.lists(st.text(min_size=1, max_size=8),
                                                                                   max_size=5))
policies = st.builds(
    protocol.Policy, version=st.integers(1, 2**50), issued_at=instants, site=ids, station=ids,
    time_zone=st.sampled_from(["Asia/Tokyo", "UTC", "Europe/Berlin", "America/St_Johns"]), hours=maybe(hours),
    holidays=st.lists(st.dates(date(2020, 1, 1), date(2040, 1, 1)), max_size=4),
    badges=st.dictionaries(st.from_regex(r"^[0-9A-F]{8}$", fullmatch=True), entries, max_size=4),
    expires_at=maybe(instants), rollcall=maybe(rollcalls))
KEY = signing.generate_private_key()


@SLOW
@given(policies, st.lists(st.tuples(st.from_regex(r"^[0-9A-F]{8}$", fullmatch=True), instants), max_size=6))
def test_a_signed_policy_reads_at_the_station_as_the_same_policy_and_decides_the_same(policy, taps):
    payload = signing.sign(policy, KEY)
    got = signing.Verifier(signing.public_key_b64(KEY), wire.read_policy).verify(payload)
    hubs = signing.verify(payload, signing.public_key_b64(KEY))  # the badges now in sorted order
    assert hubs == policy and wire.dumps(got) == protocol.dumps(hubs)
    for badge, at in [*taps, *((b, at) for b in policy.badges for _, at in taps[:2])]:
        assert wire.dumps(got.decide(badge, at)) == protocol.dumps(policy.decide(badge, at))
        assert got.in_hours(at) == policy.in_hours(at)
    if policy.rollcall is not None:
        for person in [None, *policy.rollcall.expected, "職員0012"]:
            for _, at in taps:
                assert got.rollcall is not None
                assert got.rollcall.answer(person, at) == policy.rollcall.answer(person, at)


@SLOW
@given(ids, ids, instants, st.from_regex(r"^[0-9a-f]{32}$", fullmatch=True))
def test_control_messages_the_hub_signs_read_at_the_station_as_the_same_values(site, station, at, nonce):
    new = signing.public_key_b64(signing.generate_private_key())
    for sent in (protocol.PolicyKeyChange(site=site, station=station, new_key=new, issued_at=at, nonce=nonce),
                 protocol.PolicyReset(site=site, station=station, issued_at=at, nonce=nonce)):
        payload = signing.sign_control(sent, KEY)
        got = signing.check_control(payload, KEY.public_key(), wire.read_control)
        assert got.type == sent.type
        assert wire.dumps(got) == protocol.dumps(sent)
        envelope = wire.loads(wire.SignedControl, payload)
        assert wire.dumps(envelope.control) == protocol.dumps(sent)


# ---- refusals ---------------------------------------------------------------------------------

ACK = {"v": 1, "station": "cabinet-1", "seqs": [[1, 3]], "snapshots": [], "incarnation": None}
ALARM = {"v": 1, "site": "ward-a", "at": "2026-12-06T09:00:00+09:00", "count": 2, "alerts": [4, 7]}


def _with(base: dict[str, Any], **changes: Any) -> bytes:
    return json.dumps({**base, **changes}).encode()


def _without(base: dict[str, Any], key: str) -> bytes:
    return json.dumps({k: v for k, v in base.items() if k != key}).encode()


REFUSED = [
    (wire.Ack, b"{not json"),
    (wire.Ack, b"\xff\xfe"),
    (wire.Ack, b"[1, 2]"),
    (wire.Ack, b'"ack"'),
    (wire.Ack, _without(ACK, "v")),
    (wire.Ack, _with(ACK, v=2)),
    (wire.Ack, _with(ACK, v=1.0)),
    (wire.Ack, _with(ACK, v=True)),
    (wire.Ack, _with(ACK, v="1")),
    (wire.Ack, _with(ACK, v=2, station="bad/id")),
    (wire.Ack, _with(ACK, station="bad/id")),
    (wire.Ack, _with(ACK, seqs=[[3, 1]])),
    (wire.Ack, _with(ACK, seqs=[[0, 1]])),
    (wire.Ack, _with(ACK, seqs=[[1, 2_000_000]])),
    (wire.Ack, _with(ACK, seqs=[[1, 1_000_001]])),  # one seq beyond MAX_ACK_SPAN
    (wire.Ack, _with(ACK, seqs=[[1, 500_000], [600_001, 1_100_001]])),  # beyond it over two ranges
    (wire.Ack, _with(ACK, seqs=[["1", 2]])),
    (wire.Ack, _with(ACK, seqs=[[1, 2, 3]])),
    (wire.Ack, _with(ACK, incarnation="not-one")),
    (wire.Ack, _with(ACK, extra=1)),
    (wire.Ack, b'{"v": 1, "station": "cabinet-1", "station": "cabinet-2"}'),
    (wire.Ack, b'{"v":1,"station":"cabinet-1","seqs":[[1,NaN]]}'),
    (wire.Ack, b'{"v":1,"station":"cabinet-1","seqs":[[1,Infinity]]}'),
    (wire.Ack, _with(ACK, seqs=[[1, 2]] * 2, snapshots=["a"] * 10)[:-1] + b' , "x": 1}'),
    (wire.SiteAlarm, _with(ALARM, count=1)),
    (wire.SiteAlarm, _with(ALARM, alerts=[0])),
    (wire.SiteAlarm, _with(ALARM, count=500, alerts=list(range(1, 202)))),
    (wire.SiteAlarm, _with(ALARM, count=-1, alerts=[])),
    (wire.SiteAlarm, _with(ALARM, at="2026-12-06T09:00:00")),
    (wire.SiteAlarm, _with(ALARM, at="2026-12-06T09:00:00+15:00")),
    (wire.SiteAlarm, _with(ALARM, at="0001-01-01T00:00:00+09:00")),
    (wire.SiteAlarm, _with(ALARM, at="yesterday")),
    (wire.SiteAlarm, _with(ALARM, at=1765000000)),
    (wire.SiteAlarm, _with(ALARM, count="2")),
    (wire.SiteAlarm, _with(ALARM, count=2.0)),
    (wire.SiteAlarm, _with(ALARM, site=None)),
    (wire.SiteAlarm, b'{"v":1,"site":"ward-a","at":"2026-12-06T09:00:00Z","count":1,"count":2}'),
]


@pytest.mark.parametrize(("kind", "payload"), REFUSED, ids=range(len(REFUSED)))
def test_what_the_hubs_reading_refuses_the_station_refuses_with_the_same_reason(kind, payload):
    hub_model = getattr(protocol, kind.__name__)
    with pytest.raises(ProtocolError) as hubs:
        protocol.parse_hub_message(hub_model, payload, limit=MAX_ALARM_BYTES)
    with pytest.raises(ProtocolError) as mine:
        wire.parse_hub_message(kind, payload, limit=MAX_ALARM_BYTES)
    assert mine.value.reason == hubs.value.reason, (mine.value, hubs.value)


def test_an_ack_of_exactly_the_most_seqs_an_ack_may_cover_is_read_at_the_station_as_at_the_hub():
    payload = _with(ACK, seqs=[[1, 500_000], [600_001, 1_100_000]])  # MAX_ACK_SPAN in all
    got = wire.parse_hub_message(wire.Ack, payload)
    assert got.seqs == protocol.parse_hub_message(protocol.Ack, payload).seqs == [(1, 500_000), (600_001, 1_100_000)]
    assert len(got.seq_set()) == MAX_ACK_SPAN


def test_an_oversized_hub_message_is_refused_before_it_is_read():
    with pytest.raises(ProtocolError) as err:
        wire.parse_hub_message(wire.SiteAlarm, b" " * (MAX_ALARM_BYTES + 1), limit=MAX_ALARM_BYTES)
    assert err.value.reason == "oversized"


def _policy_obj(**changes: Any) -> dict[str, Any]:
    obj = protocol.Policy(version=5, issued_at=datetime(2026, 12, 6, 9, 0, tzinfo=timezone.utc), site="ward-a",
                          station="cabinet-1", badges={"0123456789ABCDEF": protocol.PolicyEntry(
                              person="職員0012", decision="allow")}).model_dump(mode="json")
    obj.update(changes)
    return obj


@pytest.mark.parametrize("obj", [
    _policy_obj(version="5"), _policy_obj(version=0), _policy_obj(time_zone="Mars/Olympus"),
    _policy_obj(issued_at="2026-12-06T09:00:00"), _policy_obj(hours={"start": "25:00"}),
    _policy_obj(extra=True), _policy_obj(badges={"X": {"decision": "maybe"}}),
    _policy_obj(rollcall={"session": 1, "opens_at": "2026-12-06T09:00:00Z", "late_after": "2026-12-06T09:10:00Z",
                          "expected": [""]}),
    _policy_obj(holidays=["2026-13-01"]), _policy_obj(v=2),
])
def test_a_signed_object_that_is_not_a_policy_is_bad_schema_at_the_station_as_at_the_hub(obj):
    payload = signing.sign(obj, KEY)
    with pytest.raises(signing.PolicyRejected) as hubs:
        signing.verify(payload, signing.public_key_b64(KEY))
    with pytest.raises(signing.PolicyRejected) as mine:
        signing.Verifier(signing.public_key_b64(KEY), wire.read_policy).verify(payload)
    assert mine.value.reason == hubs.value.reason == "bad_schema"
    assert mine.value.offered_version == hubs.value.offered_version


@pytest.mark.parametrize("body", [
    {"type": "key_change", "site": "ward-a", "station": "cabinet-1", "new_key": "short",
     "issued_at": "2026-12-06T09:00:00Z", "nonce": "0" * 32},
    {"type": "policy_reset", "site": "ward-a", "station": "cabinet-1", "issued_at": "2026-12-06T09:00:00Z",
     "nonce": "xyz"},
    {"type": "policy_reset", "site": "ward-a", "station": "cabinet-1", "issued_at": "2026-12-06T09:00:00Z",
     "nonce": "0" * 32, "new_key": "A" * 44},
    {"type": "reboot", "site": "ward-a"},
    {"type": ["key_change"], "site": "ward-a"},
    {"site": "ward-a"},
])
def test_a_signed_control_body_that_is_not_one_is_bad_schema_at_the_station_as_at_the_hub(body):
    envelope = {"v": 1, "control": body, "key_id": signing.key_id(KEY),
                "signature": base64.b64encode(KEY.sign(protocol.canonical_json(body))).decode()}
    payload = json.dumps(envelope).encode()
    with pytest.raises(signing.PolicyRejected) as hubs:
        signing.verify_control(payload, KEY.public_key())
    with pytest.raises(signing.PolicyRejected) as mine:
        signing.check_control(payload, KEY.public_key(), wire.read_control)
    assert mine.value.reason == hubs.value.reason == "bad_schema"


# ---- no pydantic on the station's side --------------------------------------------------------

_NO_PYDANTIC = """
import json, sys, tempfile
from datetime import datetime, timezone
from pathlib import Path

from device import health, inbox, outbox, policy_cache, storage_check, wire
from kagiban import event_signing, signing

imported = "pydantic" in sys.modules
folder = Path(tempfile.mkdtemp())
key = signing.generate_private_key()
now = datetime.now(timezone.utc)
box = outbox.Outbox(folder / "o.sqlite", site="ward-a", station="cabinet-1",
                    signer=event_signing.EventSigner(event_signing.create_station_key(folder / "s.key")))
event = box.add("door.opened", now, data={"n": 1})
wire.parse_hub_message(wire.Ack, wire.dumps(wire.Ack(station="cabinet-1", seqs=[(1, 1)])))
cell = health.HealthCell("camera")
cell.failed("capture_timeout", "no frame")
policy = {"v": 1, "version": 7, "issued_at": now.isoformat(), "site": "ward-a", "station": "cabinet-1",
          "badges": {"0123456789ABCDEF": {"person": "職員0012", "decision": "allow", "after_hours": "allow"}}}
cache, damage = storage_check.open_policy(folder / "policy.json", site="ward-a", station="cabinet-1",
                                          public_key=signing.public_key_b64(key))
cache.offer(signing.sign(policy, key))
decided = cache.decide("0123456789ABCDEF", now).decision
print(json.dumps({"at import": imported, "after use": "pydantic" in sys.modules, "decided": decided,
                  "seq": event.seq}))
"""


def test_the_stations_wire_outbox_health_and_policy_cache_never_load_pydantic():
    done = subprocess.run([sys.executable, "-c", _NO_PYDANTIC], capture_output=True, text=True, timeout=60,
                          cwd=_ROOT)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"at import": False, "after use": False, "decided": "allow", "seq": 1}
