"""What an admin reads in the deployment broker config and ACL before installing them: every
listener authenticates and applies the ACL, the queue and size limits fit the protocol, and the
ACL grants each station exactly the channels the protocol gives it (kagiban.protocol)."""
from __future__ import annotations

import re

from kagiban import protocol
from tests.support.deployment import ACL_FILE, BROKER_CONF, uncomment_password_listener


def _settings(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.strip().partition(" ")
            out.append((key, value.strip()))
    return out


def _listeners(text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """(global settings, one dict per listener block)."""
    glob: dict[str, str] = {}
    blocks: list[dict[str, str]] = []
    for key, value in _settings(text):
        if key == "listener":
            blocks.append({"listener": value})
        elif blocks and key not in ("log_dest", "log_type"):
            blocks[-1][key] = value
        else:
            glob[key] = value
    return glob, blocks


def test_every_listener_authenticates_and_applies_the_acl():
    glob, blocks = _listeners(uncomment_password_listener(BROKER_CONF.read_text()))
    assert glob["per_listener_settings"] == "true"
    assert len(blocks) == 3
    for b in blocks:
        assert b.get("allow_anonymous") == "false", b
        assert b.get("acl_file") == "/etc/mosquitto/kagiban.acl", b
        tls = "certfile" in b
        if not tls:
            # A plain listener is acceptable only on loopback.
            assert b["listener"].split()[1:] == ["127.0.0.1"], b
        else:
            assert b.get("tls_version") == "tlsv1.2" and "cafile" in b and "keyfile" in b, b
        assert b.get("require_certificate") == "true" or "password_file" in b, b


def test_every_listener_binds_the_client_id_to_the_identity_and_has_its_own_password_file():
    _, blocks = _listeners(uncomment_password_listener(BROKER_CONF.read_text()))
    for b in blocks:
        assert b.get("use_username_as_clientid") == "true", b
    files = [b["password_file"] for b in blocks if "password_file" in b]
    assert len(files) == len(set(files)) == 2, files
    (local,) = [b for b in blocks if b["listener"] == "1883 127.0.0.1"]
    assert local["password_file"] == "/etc/mosquitto/kagiban-hub.passwd"


def test_certificate_listeners_check_the_revocation_list():
    _, blocks = _listeners(uncomment_password_listener(BROKER_CONF.read_text()))
    for b in blocks:
        if b.get("require_certificate") == "true":
            assert b.get("crlfile") == "/etc/mosquitto/certs/ca.crl", b


def test_certificate_listener_takes_the_name_from_the_certificate():
    _, blocks = _listeners(BROKER_CONF.read_text())
    (cert,) = [b for b in blocks if b["listener"] == "8883"]
    assert cert["require_certificate"] == "true"
    assert cert["use_identity_as_username"] == "true"
    assert "password_file" not in cert


def test_optional_password_listener_is_off_until_enabled():
    _, blocks = _listeners(BROKER_CONF.read_text())
    assert [b["listener"] for b in blocks] == ["1883 127.0.0.1", "8883"]
    _, enabled = _listeners(uncomment_password_listener(BROKER_CONF.read_text()))
    (pw,) = [b for b in enabled if b["listener"] == "8884"]
    assert pw["password_file"] == "/etc/mosquitto/kagiban-stations.passwd"
    assert pw["require_certificate"] == "false"


def test_queues_sizes_persistence_and_logging():
    glob, _ = _listeners(BROKER_CONF.read_text())
    # The default of 1000 silently drops QoS 1 for the hub's session (FIELD-NOTES).
    assert int(glob["max_queued_messages"]) >= 100_000
    # The largest protocol message (a 4 MiB snapshot) plus MQTT headers fits in a packet.
    assert int(glob["max_packet_size"]) >= protocol.MAX_SNAPSHOT_BYTES + 64 * 1024
    assert "message_size_limit" not in glob
    assert glob["persistence"] == "true"
    assert 0 < int(glob["autosave_interval"]) <= 300
    logs = [v for k, v in _settings(BROKER_CONF.read_text()) if k == "log_dest"]
    assert logs == ["stderr"]  # to the journal; stdout stays empty when redirected


def _acl_rules() -> dict[str | None, set[tuple[str, str]]]:
    """ACL lines grouped by user (None: pattern lines for every user)."""
    rules: dict[str | None, set[tuple[str, str]]] = {None: set()}
    user = "(anonymous)"
    for line in ACL_FILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kind, rest = line.split(None, 1)
        if kind == "user":
            user = rest
            rules.setdefault(user, set())
        elif kind in ("topic", "pattern"):
            access, topic = rest.split(None, 1) if rest.split()[0] in ("read", "write", "readwrite", "deny") else ("readwrite", rest)
            rules.setdefault(None if kind == "pattern" else user, set()).add((access, topic))
        else:
            raise AssertionError(f"unexpected ACL line: {line}")
    return rules


def test_acl_gives_each_station_exactly_its_protocol_channels():
    rules = _acl_rules()
    assert "(anonymous)" not in rules  # nothing granted before the first "user" line
    prefix = protocol.DEFAULT_PREFIX
    expected = {("write", f"{prefix}/+/%u/{ch}") for ch in protocol.STATION_CHANNELS}
    expected |= {("read", f"{prefix}/+/%u/{ch}") for ch in ("ack", "policy", "policy-control")}
    # Every station may read its site's alarm state (an annunciator follows it; alert ids and a count).
    expected.add(("read", f"{prefix}/+/alarm"))
    assert rules[None] == expected
    # The station's readable channels are ones the hub sends.
    assert {"ack", "policy", "policy-control"} <= set(protocol.HUB_CHANNELS)


def test_acl_gives_the_hub_the_prefix_and_no_more():
    rules = _acl_rules()
    assert set(rules) == {None, "kagiban-hub"}
    assert rules["kagiban-hub"] == {("readwrite", f"{protocol.DEFAULT_PREFIX}/#")}


def test_acl_patterns_pin_the_station_level():
    for access, topic in _acl_rules()[None]:
        if topic == f"{protocol.DEFAULT_PREFIX}/+/alarm":
            # The site's alarm state, read-only: the one pattern not tied to the station's own level.
            assert access == "read"
            continue
        levels = topic.split("/")
        assert levels[2] == "%u" and "#" not in levels and levels.count("+") == 1, topic
        assert re.fullmatch(r"[a-z]+(-[a-z]+)?", levels[3]), topic
