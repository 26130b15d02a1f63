"""The broker-session attacks of the outside check (issue 12), replayed against a real mosquitto
running the shipped configuration (config/mosquitto/kagiban.conf and acl, paths moved to a temp
folder as tests/deploy does):

- with cabinet-1's own credentials (password or certificate), connecting with client id
  ``kagiban-hub`` or cabinet-2's id knocks nobody off, and three QoS 1 events queued for the
  offline hub's persistent session are neither taken nor discarded: the real hub gets all three;
- a station's valid password is refused on the hub's loopback listener;
- after ``kagiban-station-credentials revoke``, the lost unit's certificate (and password) is
  refused, while another unit's certificate is still accepted.
"""
from __future__ import annotations

import json
import time
import uuid

import pytest

from kagiban import protocol
from tests.support.deployment import (
    WAIT_S,
    Deployment,
    Peer,
    peer_factory,
    require_broker_tools,
    start_deployment,
)
from tests.support.mosquitto import wait_for

HUB = "kagiban-hub"
NOT_AUTHORIZED, BAD_USERNAME_OR_PASSWORD = 135, 134
# The hub's session outlives its absence (the hub asks for 7 days: kagiban.broker).
SESSION_S = 3600
# How long a client that must receive nothing is watched after the broker had every chance.
QUIET_S = 1.0


@pytest.fixture(scope="module")
def deployment(tmp_path_factory) -> Deployment:
    """A broker of our own: these tests restart it and revoke certificates."""
    require_broker_tools()
    dep = start_deployment(tmp_path_factory.mktemp("identity"), stations=("cabinet-1", "cabinet-2", "cabinet-3"))
    yield dep
    dep.broker.stop()


@pytest.fixture
def clients(deployment):
    with peer_factory(deployment) as make:
        yield make


@pytest.fixture
def site() -> str:
    return "site-" + uuid.uuid4().hex[:10]


def _event(n: int) -> bytes:
    return json.dumps({"test": "queued", "n": n, "nonce": uuid.uuid4().hex}).encode()


def _real_hub(clients, deployment, *, clean_start: bool = True) -> Peer:
    """The hub as it runs: client id kagiban-hub, a persistent session, on its loopback listener."""
    return clients(HUB, password=deployment.passwords[HUB], listener="local", client_id=HUB,
                   clean_start=clean_start, session_expiry=SESSION_S)


def _intruder(clients, deployment, via: str, client_id: str, *, clean_start: bool) -> Peer:
    """cabinet-1's own credentials (what a stolen unit holds) under another client's id."""
    if via == "cert":
        return clients("cabinet-1", cert=deployment.certs["cabinet-1"], client_id=client_id,
                       clean_start=clean_start)
    return clients("cabinet-1", password=deployment.passwords["cabinet-1"], client_id=client_id,
                   clean_start=clean_start)


@pytest.mark.parametrize("via", ["password", "cert"])
def test_a_station_under_another_clients_id_knocks_nobody_off(clients, deployment, site, via):
    hub = _real_hub(clients, deployment)
    assert not hub.subscribe(f"kagiban/{site}/+/event")[0].is_failure
    cabinet2 = clients("cabinet-2", password=deployment.passwords["cabinet-2"], client_id="cabinet-2")

    for victim in (HUB, "cabinet-2", f"kagiban-{site}-cabinet-2"):  # the last: the id an agent sends
        intruder = _intruder(clients, deployment, via, victim, clean_start=True)
        intruder.close()

    # Both real clients kept their connections and still talk.
    assert not hub.disconnected.is_set(), f"the hub was knocked off: {hub.disconnect_reason}"
    assert not cabinet2.disconnected.is_set(), f"cabinet-2 was knocked off: {cabinet2.disconnect_reason}"
    topic = protocol.topic("kagiban", site, "cabinet-2", "event")
    payload = _event(0)
    assert not cabinet2.publish(topic, payload).is_failure
    hub.wait_message(topic, payload)


@pytest.mark.parametrize("via", ["password", "cert"])
def test_a_station_cannot_take_or_discard_the_offline_hubs_queued_events(clients, deployment, site, via):
    hub = _real_hub(clients, deployment)
    assert not hub.subscribe(f"kagiban/{site}/+/event")[0].is_failure
    hub.close()  # the hub restarts: its session stays, and the broker queues for it

    cabinet2 = clients("cabinet-2", password=deployment.passwords["cabinet-2"], client_id="cabinet-2")
    topic = protocol.topic("kagiban", site, "cabinet-2", "event")
    queued = [_event(n) for n in (1, 2, 3)]
    for payload in queued:
        assert not cabinet2.publish(topic, payload).is_failure  # PUBACK: the broker holds it

    # Taking the session (clean_start=False would hand over what is queued) and discarding it
    # (clean_start=True would throw the queue away), under the hub's id.
    taker = _intruder(clients, deployment, via, HUB, clean_start=False)
    time.sleep(QUIET_S)
    assert taker.messages == [], "the intruder received the hub's queued events"
    taker.close()
    discarder = _intruder(clients, deployment, via, HUB, clean_start=True)
    discarder.close()

    back = _real_hub(clients, deployment, clean_start=False)
    assert back.session_present is True  # the broker kept the hub's session
    for payload in queued:
        back.wait_message(topic, payload)
    assert back.received(topic) == queued  # all three, once each, in order
    assert not cabinet2.disconnected.is_set()


def test_a_station_password_is_refused_on_the_hubs_listener(clients, deployment):
    for station in ("cabinet-1", "cabinet-2"):
        for username in (station, HUB):
            p = clients(station, username=username, password=deployment.passwords[station],
                        listener="local", client_id=HUB, connect=False)
            assert not p.try_connect(), f"{station}'s password opened the hub's listener as {username}"
            assert p.connack is not None and p.connack.value in (BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED)
    # ...which still takes the hub itself.
    _real_hub(clients, deployment)


def test_a_revoked_certificate_is_refused_and_the_others_are_not(clients, deployment, site):
    lost = deployment.certs["cabinet-3"]
    other = deployment.certs["cabinet-2"]
    hub = _real_hub(clients, deployment)
    hub.subscribe(f"kagiban/{site}/+/event")
    clients("cabinet-3", cert=lost).close()  # accepted before the revocation
    still_open = clients("cabinet-3", cert=lost, client_id="cabinet-3")

    done = deployment.script("revoke", "cabinet-3", *deployment.ca_args(),
                             "--passwd-file", str(deployment.stations_passwd),
                             "--broker-pid", str(deployment.broker.proc.pid))
    assert done.returncode == 0, done.stderr
    assert "Revoked certificate" in done.stdout and "Removed 'cabinet-3'" in done.stdout

    # Both of the unit's credentials are refused from now on; the reload closed the password one.
    wait_for(lambda: not clients("cabinet-3", cert=lost, connect=False).try_connect(),
             timeout=WAIT_S, what="the revoked certificate refused after the reload")
    assert not clients("cabinet-3", password=deployment.passwords["cabinet-3"], connect=False).try_connect()
    # Another unit's certificate still works, and so does the hub.
    cab2 = clients("cabinet-2", cert=other)
    topic = protocol.topic("kagiban", site, "cabinet-2", "event")
    payload = _event(4)
    assert not cab2.publish(topic, payload).is_failure
    hub.wait_message(topic, payload)

    # A certificate connection already open survives a reload (what the script warns about);
    # the restart it advises closes it, and the unit cannot come back.
    assert not still_open.disconnected.is_set()
    deployment.restart()
    assert still_open.disconnected.wait(WAIT_S)
    assert not clients("cabinet-3", cert=lost, connect=False).try_connect()
    clients("cabinet-2", cert=other)  # connects (asserted)


def test_revoking_a_password_unit_closes_its_open_connection(clients, deployment):
    password = uuid.uuid4().hex
    done = deployment.script("password", "door-9", "--passwd-file", str(deployment.stations_passwd), "--stdin",
                             input=password + "\n")
    assert done.returncode == 0, done.stderr
    deployment.broker.proc.send_signal(1)  # SIGHUP: systemctl reload mosquitto
    unit = wait_for(lambda: (p := clients("door-9", password=password, connect=False)).try_connect() and p,
                    timeout=WAIT_S, what="door-9 accepted after the reload")

    done = deployment.script("revoke", "door-9", "--passwd-file", str(deployment.stations_passwd),
                             "--broker-pid", str(deployment.broker.proc.pid))
    assert done.returncode == 0, done.stderr
    assert unit.disconnected.wait(WAIT_S), "the reload left the revoked unit connected"
    assert not clients("door-9", password=password, connect=False).try_connect()


def test_revoke_refuses_an_unknown_unit_and_the_hub_without_the_flag(deployment):
    done = deployment.script("revoke", "cabinet-99", *deployment.ca_args(),
                             "--passwd-file", str(deployment.stations_passwd), "--no-reload")
    assert done.returncode != 0 and "nothing to revoke" in done.stderr
    done = deployment.script("revoke", HUB, *deployment.ca_args(), "--no-reload")
    assert done.returncode != 0 and "--hub" in done.stderr
