"""The deployment ACL (config/mosquitto/acl) in a real mosquitto running the deployment config:
what an admin checks before trusting it - a station writes only its own records, reads only
what the hub sends it, cannot pass for another station, and a wrong password or a missing or
foreign certificate gets no connection.

Denied publishes are seen the way MQTT v5 reports them: PUBACK reason code 135 (Not authorized),
and the hub's subscriber never receives the message. "Never" is checked by a sentinel: a later
message from the same publisher that is allowed; once the hub has it, anything sent before it
would have arrived first.
"""
from __future__ import annotations

import json
import uuid

import pytest

from kagiban import protocol
from tests.support.deployment import WAIT_S, Peer
from tests.support.mosquitto import wait_for

NOT_AUTHORIZED = 135
BAD_USERNAME_OR_PASSWORD = 134


def _payload(what: str) -> bytes:
    return json.dumps({"test": what, "nonce": uuid.uuid4().hex}).encode()


@pytest.fixture
def hub(peers, deployment) -> Peer:
    """The hub as deployed (loopback listener, password), subscribed to everything under the prefix."""
    h = peers("kagiban-hub", password=deployment.passwords["kagiban-hub"], listener="local")
    assert not h.subscribe("kagiban/#")[0].is_failure
    return h


@pytest.fixture
def cabinet1(peers, deployment) -> Peer:
    return peers("cabinet-1", password=deployment.passwords["cabinet-1"])


def _assert_denied(station: Peer, hub: Peer, site: str, topic: str) -> None:
    """``station`` publishing to ``topic`` gets 135 and the hub never sees it."""
    denied = _payload("denied")
    rc = station.publish(topic, denied)
    assert rc.value == NOT_AUTHORIZED, f"publish to {topic}: expected 135 Not authorized, got {rc}"
    sentinel = _payload("sentinel")
    own = protocol.topic("kagiban", site, station.name, "event")
    assert not station.publish(own, sentinel).is_failure
    hub.wait_message(own, sentinel)
    assert denied not in hub.received(topic)


@pytest.mark.parametrize("channel", ["event", "snapshot", "status"])
def test_station_writes_its_own_channels(hub, cabinet1, site, channel):
    topic = protocol.topic("kagiban", site, "cabinet-1", channel)
    payload = _payload(channel)
    rc = cabinet1.publish(topic, payload, retain=(channel == "status"))
    assert not rc.is_failure, f"{topic}: {rc}"
    hub.wait_message(topic, payload)


def test_station_heartbeat_at_qos0_reaches_the_hub(hub, cabinet1, site):
    topic = protocol.topic("kagiban", site, "cabinet-1", "heartbeat")
    payload = _payload("heartbeat")
    cabinet1.publish(topic, payload, qos=0)
    hub.wait_message(topic, payload)


@pytest.mark.parametrize(
    "station,channel",
    [
        ("cabinet-2", "event"),      # another station's records
        ("cabinet-2", "snapshot"),
        ("cabinet-2", "status"),     # ...or its online/offline state
        ("cabinet-1", "ack"),        # forging the hub's acks to itself (would empty its outbox)
        ("cabinet-1", "policy"),     # ...or its own access policy
        ("cabinet-1", "policy-control"),  # ...or a key change or reset for itself
        ("cabinet-1", "alert"),      # ...or alerts
    ],
)
def test_station_cannot_write_what_is_not_its_own(hub, cabinet1, site, station, channel):
    _assert_denied(cabinet1, hub, site, protocol.topic("kagiban", site, station, channel))


@pytest.mark.parametrize("topic", ["kagiban/{site}/cabinet-1/other", "kagiban/{site}", "elsewhere/cabinet-1/event"])
def test_station_cannot_write_outside_its_channels(hub, cabinet1, site, topic):
    _assert_denied(cabinet1, hub, site, topic.format(site=site))


def test_station_reads_only_its_own_policy_and_ack(peers, hub, cabinet1, deployment, site):
    # Retained policies are waiting before the station subscribes, as after a reboot.
    policies = {s: _payload(f"policy-{s}") for s in ("cabinet-1", "cabinet-2")}
    for s, payload in policies.items():
        assert not hub.publish(protocol.topic("kagiban", site, s, "policy"), payload, retain=True).is_failure

    # A direct subscription to another station's policy: refused or silent, never delivered.
    cabinet1.subscribe(protocol.topic("kagiban", site, "cabinet-2", "policy"))
    for channel in ("policy", "ack", "event", "status"):
        cabinet1.subscribe(f"kagiban/{site}/+/{channel}")

    own_policy = protocol.topic("kagiban", site, "cabinet-1", "policy")
    cabinet1.wait_message(own_policy, policies["cabinet-1"])

    other_ack = _payload("ack-cabinet-2")
    hub.publish(protocol.topic("kagiban", site, "cabinet-2", "ack"), other_ack)
    cabinet2 = peers("cabinet-2", password=deployment.passwords["cabinet-2"])
    other_event = _payload("event-cabinet-2")
    cabinet2.publish(protocol.topic("kagiban", site, "cabinet-2", "event"), other_event)
    hub.wait_message(protocol.topic("kagiban", site, "cabinet-2", "event"), other_event)

    own_ack = protocol.topic("kagiban", site, "cabinet-1", "ack")
    sentinel = _payload("ack-cabinet-1")
    hub.publish(own_ack, sentinel)
    cabinet1.wait_message(own_ack, sentinel)

    seen = {t for t, _, _ in cabinet1.messages}
    assert seen == {own_policy, own_ack}, f"cabinet-1 read more than its own policy and ack: {seen}"


def test_station_reads_its_sites_alarm_state_and_cannot_forge_it(hub, cabinet1, site):
    # The hub's retained open-critical state (annunciators follow it) waits before the subscription.
    topic = protocol.alarm_topic("kagiban", site)
    state = _payload("alarm")
    assert not hub.publish(topic, state, retain=True).is_failure
    cabinet1.subscribe(topic)
    cabinet1.wait_message(topic, state)
    _assert_denied(cabinet1, hub, site, topic)


def test_wrong_password_is_refused(peers, deployment):
    p = peers("cabinet-1", password=deployment.passwords["cabinet-1"] + "x", connect=False)
    assert not p.try_connect()
    assert p.connack is not None and p.connack.value in (BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED), p.connack


def test_unknown_user_and_anonymous_are_refused(peers):
    assert not peers("cabinet-9", password="no-such-station-password", connect=False).try_connect()
    assert not peers("anonymous", connect=False).try_connect()


def test_another_stations_password_does_not_open_its_account(peers, deployment):
    p = peers("cabinet-2", password=deployment.passwords["cabinet-1"], connect=False)
    assert not p.try_connect()


def test_loopback_listener_takes_the_hub_only(peers, hub, deployment):
    # The hub's plain loopback listener has its own password file: no anonymous clients, and a
    # station's valid password is refused there (tests/security/test_broker_identity.py too).
    assert not peers("anonymous", listener="local", connect=False).try_connect()
    cab = peers("cabinet-1", password=deployment.passwords["cabinet-1"], listener="local", connect=False)
    assert not cab.try_connect()
    assert cab.connack is not None and cab.connack.value in (BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED), cab.connack


# --- the certificate listener -------------------------------------------------------------------


def test_certificate_station_writes_its_own_event_only(peers, hub, deployment, site):
    cab = peers("cabinet-1", cert=deployment.certs["cabinet-1"])
    topic = protocol.topic("kagiban", site, "cabinet-1", "event")
    payload = _payload("cert-event")
    assert not cab.publish(topic, payload).is_failure
    hub.wait_message(topic, payload)
    _assert_denied(cab, hub, site, protocol.topic("kagiban", site, "cabinet-2", "event"))
    _assert_denied(cab, hub, site, protocol.topic("kagiban", site, "cabinet-1", "ack"))


def test_certificate_name_wins_over_the_username_a_client_claims(peers, hub, deployment, site):
    # use_identity_as_username: claiming to be the hub gets the certificate's rights, no more.
    cab = peers("cabinet-1", cert=deployment.certs["cabinet-1"], username="kagiban-hub", password="x")
    _assert_denied(cab, hub, site, protocol.topic("kagiban", site, "cabinet-2", "event"))
    _assert_denied(cab, hub, site, protocol.topic("kagiban", site, "cabinet-1", "policy"))


def test_certificate_listener_refuses_a_client_without_a_certificate(peers, deployment):
    p = peers("cabinet-1", connect=False, password=deployment.passwords["cabinet-1"])
    p.port = deployment.cert_port  # a password is not enough here
    assert not p.try_connect()


def test_certificate_listener_refuses_a_certificate_from_another_ca(peers, deployment):
    from tests.support.deployment import CREDENTIALS_SCRIPT, make_ca, run

    rogue = deployment.folder / "rogue"
    rogue.mkdir(exist_ok=True)
    ca_crt, ca_key = make_ca(rogue, "rogue-ca")
    out = rogue / uuid.uuid4().hex[:8]
    run([str(CREDENTIALS_SCRIPT), "cert", "cabinet-1", "--ca-cert", str(ca_crt), "--ca-key", str(ca_key),
         "--out", str(out), "--days", "2"])
    p = peers("cabinet-1", connect=False, cert=(out / "cabinet-1.crt", out / "cabinet-1.key"))
    assert not p.try_connect()


def test_hub_certificate_reads_and_writes_everything(peers, deployment, site):
    hub = peers("kagiban-hub", cert=deployment.certs["kagiban-hub"])
    hub.subscribe("kagiban/#")
    cab = peers("cabinet-2", cert=deployment.certs["cabinet-2"])
    cab.subscribe(protocol.topic("kagiban", site, "cabinet-2", "policy"))
    event = _payload("event")
    cab.publish(protocol.topic("kagiban", site, "cabinet-2", "event"), event)
    hub.wait_message(protocol.topic("kagiban", site, "cabinet-2", "event"), event)
    policy = _payload("policy")
    assert not hub.publish(protocol.topic("kagiban", site, "cabinet-2", "policy"), policy, retain=True).is_failure
    cab.wait_message(protocol.topic("kagiban", site, "cabinet-2", "policy"), policy)


# --- last will and message size ------------------------------------------------------------------


def test_last_will_offline_status_is_retained_for_the_hub(peers, hub, deployment, site):
    status_topic = protocol.topic("kagiban", site, "cabinet-1", "status")
    offline = protocol.dumps(protocol.Status(site=site, station="cabinet-1", state="offline", kind="cabinet"))
    cab = peers("cabinet-1", connect=False, password=deployment.passwords["cabinet-1"])
    cab.client.will_set(status_topic, offline, qos=1, retain=True)
    cab.connect()
    # Disconnect "with will message" (MQTT v5 reason code 4), as if the unit lost power.
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    cab.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    hub.wait_message(status_topic, offline)
    # An admin's later look at the status topic finds it retained (the hub's identity again: the
    # first connection closes first, or the broker would close it for the second).
    hub.close()
    late = peers("kagiban-hub", password=deployment.passwords["kagiban-hub"], listener="local")
    late.subscribe(f"kagiban/{site}/+/status")
    late.wait_message(status_topic, offline)
    assert all(retained for t, _, retained in late.messages if t == status_topic)


def test_a_will_on_another_stations_topic_is_never_delivered(peers, hub, deployment, site):
    forged_topic = protocol.topic("kagiban", site, "cabinet-2", "status")
    forged = _payload("forged-will")
    cab = peers("cabinet-1", connect=False, password=deployment.passwords["cabinet-1"])
    cab.client.will_set(forged_topic, forged, qos=1, retain=True)
    if cab.try_connect():
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.reasoncodes import ReasonCode

        cab.client.disconnect(reasoncode=ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message"))
    sentinel_station = peers("cabinet-1", password=deployment.passwords["cabinet-1"])
    own = protocol.topic("kagiban", site, "cabinet-1", "event")
    sentinel = _payload("sentinel")
    sentinel_station.publish(own, sentinel)
    hub.wait_message(own, sentinel)
    assert forged not in hub.received(forged_topic)


def test_largest_protocol_message_passes_and_oversized_is_refused(hub, cabinet1, site):
    limit = _setting("max_packet_size")
    assert cabinet1.connack_properties.MaximumPacketSize == limit  # told to MQTT v5 clients

    topic = protocol.topic("kagiban", site, "cabinet-1", "snapshot")
    largest = b"{" + b" " * (protocol.MAX_SNAPSHOT_BYTES - 2) + b"}"
    assert not cabinet1.publish(topic, largest).is_failure
    hub.wait_message(topic, largest)

    oversized = b"x" * (limit + 1)
    cabinet1.client.publish(topic, oversized, qos=1)
    assert cabinet1.disconnected.wait(WAIT_S), "the broker kept a client that sent an oversized packet"
    # paho would reconnect and send the same packet again: this client stops here.
    cabinet1.client.loop_stop()
    # The reason code depends on who closes first (149 Packet too large, or 128 over TLS); the
    # broker's log says why, which is what an admin finds in the journal.
    assert cabinet1.disconnect_reason is not None and cabinet1.disconnect_reason.is_failure
    wait_for(lambda: "disconnected due to oversize packet" in cabinet1.dep.broker.log.read_text(),
             timeout=WAIT_S, what="the broker's log line about the oversized packet")

    again = Peer(cabinet1.dep, name="cabinet-1", password=cabinet1.dep.passwords["cabinet-1"]).connect()
    try:
        sentinel = _payload("after-oversized")
        assert not again.publish(topic, sentinel).is_failure
        hub.wait_message(topic, sentinel)
    finally:
        again.close()
    assert oversized not in hub.received(topic)


def _setting(name: str) -> int:
    from tests.support.deployment import BROKER_CONF

    values = [ln.split()[1] for ln in BROKER_CONF.read_text().splitlines() if ln.startswith(name + " ")]
    assert len(values) == 1, f"{name} set {len(values)} times"
    return int(values[0])
