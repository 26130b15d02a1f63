"""An office's bridge credentials reach only that office's tree on the central broker (issue 16,
item 3), replayed against a real mosquitto running the shipped hub-host config with the
shipped office listener (config/mosquitto/offices.conf) and its ACL, the offices' blocks
written by scripts/kagiban-office-bridge and their certificates by
scripts/kagiban-station-credentials --office:

- with office A's certificate, a publish into office B's tree (event, status, heartbeat) is
  refused (MQTT v5 reason 135) and never reaches the hub, while A's own tree gets through;
- A's certificate reads none of what the hub sends B's stations;
- a station's certificate (same CA) can do nothing on the office listener;
- a real office broker bridged with A's certificate but B's topic mapping (a stolen office
  certificate in a misconfigured or hostile bridge) delivers nothing into B's tree.
"""
from __future__ import annotations

import json
import os
import time
import uuid

import paho.mqtt.client as mqtt
import pytest

from tests.support.deployment import WAIT_S, Peer, require_broker_tools, run
from tests.support.mosquitto import Mosquitto, wait_for
from tests.support.offices import BRIDGE_SCRIPT, Central, start_central

A, B = "site-a", "site-b"
NOT_AUTHORIZED = 135
QUIET_S = 1.5  # how long a client that must receive nothing is watched


@pytest.fixture(scope="module")
def central(tmp_path_factory) -> Central:
    require_broker_tools()
    c = start_central(tmp_path_factory.mktemp("offices-acl"))
    c.add_office(A)
    c.add_office(B)
    yield c
    c.broker.stop()


@pytest.fixture
def peers(central):
    made: list[Peer] = []

    def make(name: str, cert=None, **kw) -> Peer:
        p = Peer(central.dep, name=name, cert=cert, **kw)
        if cert is not None:
            p.port = central.office_port  # the office listener
        made.append(p)
        return p.connect()

    yield make
    for p in made:
        p.close()


@pytest.fixture
def hub(peers, central) -> Peer:
    """The hub as it listens: every station topic, on its loopback listener."""
    h = peers("kagiban-hub", password=central.dep.passwords["kagiban-hub"], listener="local")
    h.subscribe("kagiban/#")
    return h


def _payload() -> bytes:
    return json.dumps({"test": "office", "nonce": uuid.uuid4().hex}).encode()


@pytest.fixture(scope="module")
def office_a_cert(central):
    return central.issue_office_cert(A)


def test_office_a_publishes_into_its_own_tree_only(central, peers, hub, office_a_cert):
    bridge_a = peers("bridge-a", cert=office_a_cert)
    own, own_topic = _payload(), f"kagiban/{A}/cab-a1/event"
    assert bridge_a.publish(own_topic, own) == 0
    hub.wait_message(own_topic, own)

    forged = {f"kagiban/{B}/cab-b1/{channel}": _payload() for channel in ("event", "status", "heartbeat")}
    forged[f"kagiban/{B}/alarm"] = _payload()
    for topic, payload in forged.items():
        assert bridge_a.publish(topic, payload).value == NOT_AUTHORIZED, topic
    time.sleep(QUIET_S)
    assert not any(hub.received(topic) for topic in forged)


def test_office_a_reads_nothing_the_hub_sends_office_b(central, peers, hub, office_a_cert):
    bridge_a = peers("bridge-a", cert=office_a_cert)
    for pattern in (f"kagiban/{A}/+/ack", f"kagiban/{B}/+/ack", f"kagiban/{B}/+/policy", f"kagiban/{B}/alarm"):
        bridge_a.subscribe(pattern)
    to_a, to_b = _payload(), _payload()
    hub.publish(f"kagiban/{B}/cab-b1/ack", to_b)
    hub.publish(f"kagiban/{B}/cab-b1/policy", to_b, retain=True)
    hub.publish(f"kagiban/{B}/alarm", to_b, retain=True)
    hub.publish(f"kagiban/{A}/cab-a1/ack", to_a)
    bridge_a.wait_message(f"kagiban/{A}/cab-a1/ack", to_a)
    time.sleep(QUIET_S)
    assert all(not t.startswith(f"kagiban/{B}/") for t, _p, _r in bridge_a.messages)


def test_a_station_certificate_can_do_nothing_on_the_office_listener(central, peers, hub):
    station = peers("cabinet-1", cert=central.dep.certs["cabinet-1"])
    for topic in (f"kagiban/{A}/cabinet-1/event", f"kagiban/{B}/cab-b1/event", "kagiban/cabinet-1/x/event"):
        assert station.publish(topic, _payload()).value == NOT_AUTHORIZED, topic


def test_a_bridge_with_office_a_credentials_and_office_b_mapping_delivers_nothing(central, hub, office_a_cert,
                                                                                 tmp_path):
    # What a stolen office A certificate in a bridge aimed at B's tree would do: B's mapping
    # written by the shipped command, A's certificate and key.
    crt, key = office_a_cert
    bridge = tmp_path / "bridge.conf"
    run([str(BRIDGE_SCRIPT), B, "--central", f"127.0.0.1:{central.office_port}", "--out", str(bridge),
         "--ca-file", str(central.dep.ca), "--cert-file", str(crt.resolve()), "--key-file", str(key.resolve()),
         "--keepalive", "5", "--retry", "1", "2"])
    log_before = central.broker.log.read_text()
    # As root, mosquitto would drop to user "mosquitto", who cannot read the key in a temp folder.
    run_as = "user root\n" if os.geteuid() == 0 else ""
    office = Mosquitto(tmp_path / "office", extra_config=run_as + bridge.read_text()).start()
    try:
        # The central broker names the bridge by its certificate: A, whatever it maps.
        wait_for(lambda: "New bridge connected from 127.0.0.1" in central.broker.log.read_text()[len(log_before):]
                 and f"u'{A}'" in central.broker.log.read_text()[len(log_before):],
                 timeout=WAIT_S, what="the bridge connected under A's name")
        local = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        local.connect("127.0.0.1", office.port)
        local.loop_start()
        try:
            topics = [f"kagiban/{B}/cab-b1/event", f"kagiban/{B}/cab-b1/status"]
            for topic in topics:
                local.publish(topic, _payload(), qos=1).wait_for_publish(WAIT_S)
            time.sleep(QUIET_S * 2)
        finally:
            local.disconnect()
            local.loop_stop()
        assert not any(hub.received(t) for t in topics)
    finally:
        office.stop()
