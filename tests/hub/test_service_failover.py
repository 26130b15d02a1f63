"""Two real ``kagiban hub`` processes on one PostgreSQL store and one mosquitto, a real agent
tapping badges (an allowed one, then an unknown one: each unknown tap is a ``denied`` alert).

The active hub is killed with -9, or the database ends all its sessions (pg_terminate_backend):
the standby takes over within 10 s, every event the agent made is stored exactly once, the
chain verifies, and every denied tap has exactly one alert. The standby's pages redirect to the
active hub; /healthz of each says which hub is active."""
from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
import yaml

from tests.support.failover import (
    HubPair,
    alert_counts,
    count_station,
    outbox_state,
    store_query,
    verify,
)
from tests.support.mosquitto import wait_for
from tests.support.postgres import Store
from tests.support.stack import HOLDER, STAFF, UNKNOWN, kill9, policy_key, spawn, terminate, write_unit_config

STATION = "cabinet-1"
TAKEOVER_S = 10.0


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def pair(tmp_path, broker, prefix, pg_cluster):
    made = Store("postgresql", pg_cluster)
    url = made.url(tmp_path / "store")
    procs = []

    def _spawn(argv, log):
        proc = spawn(argv[3:], log)  # stack.spawn runs ``python -m kagiban.cli`` itself
        procs.append(proc)
        return proc

    hubs = HubPair(tmp_path / "pair", broker.port, prefix, url, _spawn, STAFF, policy_key(tmp_path))
    yield hubs
    for proc in procs:
        terminate(proc)
    made.drop_all()


@pytest.fixture
def agent(tmp_path, broker, prefix):
    """Start the tapping agent (a real ``kagiban device`` process); stopped after the test."""
    unit = write_unit_config(tmp_path, broker.port, prefix, STATION, ack_timeout_s=1)
    scenario = tmp_path / "taps.yaml"
    scenario.write_text(yaml.safe_dump({"repeat": 0, "steps": [
        {"tap": HOLDER}, {"wait": 0.1}, {"tap": UNKNOWN}, {"wait": 0.1}]}))
    procs = []

    def _start(tapping: bool = True):
        args = ["device", "--config", str(unit)] + (["--scenario", str(scenario)] if tapping else [])
        procs.append(spawn(args, tmp_path / "agent.log"))
        return procs[-1]

    _start.data = tmp_path / f"{STATION}-data"  # type: ignore[attr-defined]
    yield _start
    for proc in procs:
        terminate(proc)


def _start_pair(pair: HubPair) -> None:
    pair.start("hub-a")
    pair.wait_role("hub-a", "active", 60)
    pair.start("hub-b")
    pair.wait_role("hub-b", "standby", 60)


def _stored(pair: HubPair) -> int:
    return store_query(pair.url, "SELECT count(*) FROM events WHERE station = :s", s=STATION)[0][0]


def _drain_and_check(pair: HubPair, agent, tapping, stored_before_takeover: int) -> None:
    """Stop tapping, let the agent send what is left, then: every seq once, chain intact,
    one alert per denied tap, and taps made after the takeover among them."""
    terminate(tapping)
    agent(tapping=False)

    def drained() -> bool:
        depth, generated = outbox_state(agent.data)
        return depth == 0 and count_station(pair.url, STATION, generated).lost == []

    wait_for(drained, timeout=60, what="the agent's outbox drained into the new active hub")
    generated = outbox_state(agent.data)[1]
    counted = count_station(pair.url, STATION, generated)
    assert generated > stored_before_takeover + 5
    assert (counted.stored, counted.duplicated, counted.lost) == (generated, 0, [])
    code, out = verify(pair.url)
    assert code == 0, out
    # hub-a's lease and hub-b's takeover, each in the trail with its row.
    assert "failover: OK: 2 entries (2 takeovers), log intact and matching the store" in out.splitlines(), out

    def alerted() -> bool:
        denied, alerts, _ = alert_counts(pair.url)
        return denied > 0 and alerts == denied

    wait_for(alerted, timeout=20, what="one denied alert per denied tap")
    assert alert_counts(pair.url)[2] == 0, "an alert was raised twice for one event"


def test_the_standby_takes_over_within_10_s_when_the_active_is_killed(pair, agent):
    _start_pair(pair)
    # The standby serves no page: it sends people to the active hub.
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as redirected:
        opener.open(pair.hubs["hub-b"].url + "/events?station=cabinet-1", timeout=5)
    assert redirected.value.code == 307
    assert redirected.value.headers["Location"] == pair.hubs["hub-a"].url + "/events?station=cabinet-1"
    health = pair.hubs["hub-b"].health()
    assert health["hub"]["role"] == "standby" and health["hub"]["active"] == "hub-a"

    tapping = agent()
    wait_for(lambda: _stored(pair) > 10, timeout=30, what="hub-a storing the agent's taps")
    before = _stored(pair)
    t0 = time.monotonic()
    kill9(pair.hubs["hub-a"].proc)
    pair.wait_role("hub-b", "active", TAKEOVER_S)
    # Storing again through hub-b, not just holding the lease.
    wait_for(lambda: _stored(pair) > before + 5, timeout=TAKEOVER_S, what="hub-b storing the agent's taps")
    took = time.monotonic() - t0
    assert took < TAKEOVER_S, f"takeover took {took:.1f} s"
    health = pair.hubs["hub-b"].health()
    assert (health["hub"]["name"], health["hub"]["active"]) == ("hub-b", "hub-b")
    # hub-a comes back as the standby (what systemd's restart does).
    pair.start("hub-a")
    pair.wait_role("hub-a", "standby", 60)
    _drain_and_check(pair, agent, tapping, before)
    assert [h for (h,) in store_query(pair.url, "SELECT hub FROM hub_leases ORDER BY epoch")] == ["hub-a", "hub-b"]


def test_an_active_whose_database_sessions_are_ended_stops_and_the_standby_takes_over(pair, agent, pg_cluster):
    _start_pair(pair)
    tapping = agent()
    wait_for(lambda: _stored(pair) > 10, timeout=30, what="hub-a storing the agent's taps")
    before = _stored(pair)
    t0 = time.monotonic()
    pg_cluster.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE application_name = 'kagiban-hub-a'")
    pair.wait_role("hub-b", "active", TAKEOVER_S)
    assert time.monotonic() - t0 < TAKEOVER_S
    # hub-a noticed its lease is gone: it stopped its work and exited for systemd to restart it.
    proc = pair.hubs["hub-a"].proc
    assert proc is not None
    assert proc.wait(30) == 75, pair.tail("hub-a")
    # The agent keeps tapping into hub-b (the old "> 20" counted taps, not the takeover).
    wait_for(lambda: _stored(pair) > before + 5, timeout=TAKEOVER_S, what="hub-b storing the agent's taps")
    _drain_and_check(pair, agent, tapping, before)
