"""What both sides share of the wire (kagiban.wire): a site or station id must be usable in an MQTT
topic; a topic is taken apart only when every part of it is one of ours; a key given twice is
refused naming that key; the signed form of a value is the byte form docs/protocol.md gives."""
from __future__ import annotations

import pytest

from kagiban.wire import ProtocolError, alarm_topic, canonical_json, check_id, parse_topic, strict_json

PREFIX = "kagiban"


@pytest.mark.parametrize("value", ["ward-a", "cabinet-1", "A", "x" * 64, "office_2.floor-3"])
def test_an_id_a_topic_can_carry_is_kept_as_it_is(value):
    assert check_id(value, "station") == value


@pytest.mark.parametrize("value", [
    "",                 # an empty topic level
    "ward/a",           # a topic separator: one id would read as two levels
    "ward+",            # MQTT wildcards
    "#",
    "-cabinet",         # must start with a letter or digit
    "cabinet 1",
    "x" * 65,           # longer than 64
    "キャビネット",
    7,                  # not text at all (a YAML number)
    None,
])
def test_an_id_that_would_break_a_topic_is_refused_naming_what_it_is(value):
    with pytest.raises(ValueError) as err:
        check_id(value, "site")  # type: ignore[arg-type]  # what a loosely typed file may hold
    assert str(err.value).startswith(f"site {value!r} must match")


def test_the_alarm_topic_of_a_site_id_that_would_break_a_topic_is_refused():
    assert alarm_topic(PREFIX, "ward-a") == "kagiban/ward-a/alarm"
    with pytest.raises(ValueError, match="site '\\+' must match"):
        alarm_topic(PREFIX, "+")


@pytest.mark.parametrize("value", [
    "kagiban/ward-a/cabinet-1/bogus",     # not a channel of the protocol
    "kagiban/ward a/cabinet-1/event",     # a site id no station can have
    "kagiban/ward-a/-cabinet-1/event",    # a station id no station can have
    "kagiban/ward-a/cabinet-1/event/x",   # one level too many
    "kagiban/ward-a/event",               # one level too few
    "kagibanx/ward-a/cabinet-1/event",    # another prefix
])
def test_a_topic_with_any_part_not_ours_is_a_bad_topic(value):
    with pytest.raises(ProtocolError) as err:
        parse_topic(PREFIX, value)
    assert (err.value.reason, err.value.detail) == ("bad_topic", value)


def test_a_topic_splits_into_site_station_and_channel_under_a_prefix_of_several_levels():
    assert parse_topic(PREFIX, "kagiban/ward-a/cabinet-1/heartbeat") == ("ward-a", "cabinet-1", "heartbeat")
    assert parse_topic("office/3f", "office/3f/ward-a/door-2/policy-control") == ("ward-a", "door-2", "policy-control")


@pytest.mark.parametrize("payload,key", [
    (b'{"v":1,"kind":"door.opened","kind":"door.forced"}', "kind"),
    (b'{"v":1,"data":{"a":1,"b":{"deep":"x","deep":"y"}}}', "deep"),
])
def test_a_key_named_twice_is_refused_naming_that_key(payload, key):
    # The refusal is kept with the quarantined message: it must point at the key to look for.
    with pytest.raises(ProtocolError) as err:
        strict_json(payload)
    assert err.value.reason == "duplicate_key"
    assert err.value.detail == f"key {key!r} appears twice in one object"


def test_the_signed_form_of_a_value_is_its_sorted_compact_utf8_json_as_documented():
    # docs/protocol.md, "Policy": a verifier written from the documentation, or a signature
    # stored years ago, checks these very bytes; Japanese text is UTF-8, never \u escapes.
    value = {"station": "cabinet-1", "name": "職員0012", "ledger": "鍵の使用簿",
             "badges": {"B": 1, "A": [1, 2.5]}}
    signed = '{"badges":{"A":[1,2.5],"B":1},"ledger":"鍵の使用簿","name":"職員0012","station":"cabinet-1"}'
    assert canonical_json(value) == signed.encode("utf-8")
