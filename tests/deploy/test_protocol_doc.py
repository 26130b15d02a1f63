"""docs/protocol.md against kagiban/protocol.py: every channel, field, limit and rejection
reason in the code is in the document, and every example there is a valid payload."""
from __future__ import annotations

import json
import re

import pytest

from kagiban import protocol
from tests.support.deployment import REPO

DOC = (REPO / "docs" / "protocol.md").read_text()

MODELS = {
    "event": protocol.Event,
    "snapshot": protocol.Snapshot,
    "status": protocol.Status,
    "heartbeat": protocol.Heartbeat,
    "ack": protocol.Ack,
    "policy": protocol.SignedPolicy,
    "alert": protocol.Alert,
    "policy-control": protocol.SignedControl,
}


def _section(channel: str) -> str:
    start = DOC.index(f"### `{channel}`")
    end = DOC.find("\n### ", start + 1)
    end = DOC.find("\n## ", start + 1) if end == -1 else min(end, DOC.find("\n## ", start + 1))
    return DOC[start:end]


def test_every_channel_is_in_the_topic_table():
    assert set(MODELS) == set(protocol.CHANNELS)
    for channel, model in MODELS.items():
        row = re.search(rf"^\| `{channel}` +\|.*\| `{model.__name__}` +\|", DOC, re.M)
        assert row, f"topic table has no row for {channel}"


@pytest.mark.parametrize("channel", sorted(MODELS))
def test_every_field_is_described(channel):
    text = _section(channel)
    for field in MODELS[channel].model_fields:
        assert f"`{field}`" in text, f"{channel}: field {field} not described"


def test_the_signed_policy_contents_are_described():
    text = _section("policy")
    for model in (protocol.Policy, protocol.PolicyEntry, protocol.Hours):
        for field in model.model_fields:
            assert f"`{field}`" in text, f"policy: {model.__name__}.{field} not described"


@pytest.mark.parametrize("channel", sorted(MODELS))
def test_examples_are_valid_payloads(channel):
    blocks = re.findall(r"```json\n(.*?)```", _section(channel), re.S)
    assert blocks, f"{channel}: no example"
    for block in blocks:
        MODELS[channel].model_validate(json.loads(block))


def test_limits_match_the_code():
    for name, value in [
        ("MAX_EVENT_BYTES", protocol.MAX_EVENT_BYTES),
        ("MAX_SNAPSHOT_BYTES", protocol.MAX_SNAPSHOT_BYTES),
        ("MAX_HEARTBEAT_BYTES", protocol.MAX_HEARTBEAT_BYTES),
        ("MAX_STATUS_BYTES", protocol.MAX_STATUS_BYTES),
    ]:
        row = re.search(rf"^\|.*\| ([0-9.,]+) ?([KM])iB.*`{name}`", DOC, re.M)
        assert row, f"limits table has no row for {name}"
        number = float(row.group(1).replace(",", ""))
        assert number * (1024 if row.group(2) == "K" else 1024 * 1024) == value, name
    assert protocol.ID_PATTERN.strip("^$") in DOC


def test_every_rejection_reason_is_documented():
    doc = protocol.parse_station_message.__doc__
    reasons = re.search(r"reasons: (.*?)\.", doc, re.S).group(1)
    for reason in [r.strip() for r in reasons.replace("\n", " ").split(",")]:
        assert re.search(rf"^\| `{reason}` ", DOC, re.M), f"reason {reason} not in the table"


def test_every_alert_rule_code_is_listed_and_no_other():
    from hub.alerting.wording import RULES

    table = DOC[DOC.index("#### Rule codes"):]
    table = table[table.index("|--"):table.find("\n## ")]  # the rows, after the header
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert len(listed) == len(set(listed)), "a rule listed twice"
    assert set(listed) == set(RULES)
    # The example payload names a rule that exists (it once said door_forced for forced).
    for example in re.findall(r"```json\n(.*?)\n```", _section("alert"), re.S):
        assert json.loads(example)["rule"] in RULES
