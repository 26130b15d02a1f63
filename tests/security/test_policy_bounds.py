"""Policy bounds, replayed against the real policy cache (real files; a restart is opening the
cache again) and once through a real mosquitto with the hub publishing.

The outside check of 2026-12-04: a hub-signed policy with version 10**30 was kept across a
restart and every later real policy was refused as older (a revoked badge stayed allowed); a
policy issued in 2000 was accepted. Here: both are refused, a held policy that grows old flags
(or denies), the policy key can be changed only under the key held, and a signed reset is
taken once.
"""
from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone

import pytest

from device import unit_file
from device.agent import Agent
from device.policy_cache import PolicyCache, PolicyRejected
from hub import config as hub_config
from hub.registry.policy_control import issue_key_changes, issue_reset, rotate_key_file
from hub.service import Hub
from kagiban import signing
from kagiban.protocol import Policy, PolicyEntry, PolicyKeyChange, PolicyReset
from tests.support.mosquitto import wait_for
from tests.support.stack import HOLDER, hub_db, query, sign_policy, write_hub_config, write_unit_config

HUB_KEY = signing.generate_private_key()
SITE, STATION = "ward-a", "cabinet-1"
BADGE = "AAAAAAAAAAAAAAAA"
ALLOW = PolicyEntry(person="S001", decision="allow", reason="allowed", after_hours="allow")


class Clock:
    """The station's wall clock, moved by hand."""

    def __init__(self):
        self.at = datetime.now(timezone.utc)

    def __call__(self) -> datetime:
        return self.at


def real_policy(at: datetime, badges=None, *, key=HUB_KEY, version=None, validity=timedelta(days=7)) -> bytes:
    """A policy as the hub issues it: version = unix ms of its issue time."""
    return signing.sign(Policy(
        version=version if version is not None else int(at.timestamp() * 1000), issued_at=at,
        expires_at=at + validity if validity else None, site=SITE, station=STATION,
        badges={BADGE: ALLOW} if badges is None else badges), key)


def open_cache(tmp_path, clock, key=HUB_KEY, **options) -> PolicyCache:
    return PolicyCache(tmp_path / "policy.json", site=SITE, station=STATION,
                       public_key=signing.public_key_b64(key), clock=clock, **options)


def refusal(cache: PolicyCache, payload: bytes, method: str = "offer") -> str:
    with pytest.raises(PolicyRejected) as err:
        getattr(cache, method)(payload)
    return err.value.reason


def test_a_version_of_10_30_is_refused_and_later_real_policies_still_taken(tmp_path, caplog):
    clock = Clock()
    cache = open_cache(tmp_path, clock)
    assert cache.offer(real_policy(clock.at))
    assert refusal(cache, real_policy(clock.at, version=10**30)) == "version_ahead"
    assert "policy quarantined (version_ahead)" in caplog.text
    assert cache.refused == "version_ahead"  # what the heartbeat tells the hub
    clock.at += timedelta(minutes=5)
    later = real_policy(clock.at)
    assert cache.offer(later) is True
    reopened = open_cache(tmp_path, clock)  # a restart
    assert reopened.version == int(clock.at.timestamp() * 1000)
    assert (tmp_path / "policy.json").read_bytes() == later


def test_a_revoked_badge_is_denied_after_the_next_real_policy(tmp_path):
    clock = Clock()
    cache = open_cache(tmp_path, clock)
    cache.offer(real_policy(clock.at))
    # The pinning attack: a far version, the badge allowed; then the hub revokes the badge.
    with pytest.raises(PolicyRejected):
        cache.offer(real_policy(clock.at, version=10**30))
    clock.at += timedelta(minutes=1)
    cache.offer(real_policy(clock.at, badges={}))
    assert open_cache(tmp_path, clock).decide(BADGE, clock.at).decision == "deny"


def test_a_station_pinned_before_this_fix_drops_the_bad_file_at_start(tmp_path):
    clock = Clock()
    (tmp_path / "policy.json").write_bytes(real_policy(clock.at, version=10**30))
    cache = open_cache(tmp_path, clock)
    assert cache.current is None and cache.load_error.startswith("version_ahead")
    assert cache.offer(real_policy(clock.at, badges={})) is True


def test_a_policy_issued_far_in_the_future_is_refused_until_the_clock_gets_there(tmp_path):
    clock = Clock()
    cache = open_cache(tmp_path, clock)
    ahead = real_policy(clock.at + timedelta(hours=3))
    assert refusal(cache, ahead) == "issued_in_future"
    assert cache.retry_pending() is False
    clock.at += timedelta(hours=3)  # this unit's clock was behind and is now set right
    assert cache.retry_pending() is True and cache.refused is None


def test_a_policy_issued_in_2000_is_refused(tmp_path):
    clock = Clock()
    cache = open_cache(tmp_path, clock)
    y2000 = datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert refusal(cache, real_policy(y2000)) == "expired"
    assert refusal(cache, real_policy(y2000, validity=None)) == "issued_too_old"
    assert cache.current is None and not (tmp_path / "policy.json").exists()


@pytest.mark.parametrize("mode, decision", [("flag", "allow_flag"), ("deny", "deny")])
def test_a_held_policy_past_its_expiry_flags_or_denies_as_configured(tmp_path, mode, decision):
    clock = Clock()
    cache = open_cache(tmp_path, clock, when_expired=mode)
    cache.offer(real_policy(clock.at, validity=timedelta(days=2)))
    assert cache.decide(BADGE, clock.at).decision == "allow" and not cache.expired()
    clock.at += timedelta(days=2, seconds=1)
    reopened = open_cache(tmp_path, clock, when_expired=mode)  # survives a restart, and expires
    assert reopened.expired()
    entry = reopened.decide(BADGE, clock.at)
    assert (entry.decision, entry.reason) == (decision, "policy_expired")
    assert reopened.decide("BBBBBBBBBBBBBBBB", clock.at).decision == "deny"  # unknown stays denied


def test_a_policy_without_expiry_expires_at_the_stations_max_age(tmp_path):
    clock = Clock()
    cache = open_cache(tmp_path, clock, max_age_s=3600)
    cache.offer(real_policy(clock.at, validity=None))
    clock.at += timedelta(hours=2)
    assert cache.decide(BADGE, clock.at).decision == "allow_flag"


def key_change(old, new, at, station=STATION) -> bytes:
    return signing.sign_control(PolicyKeyChange(site=SITE, station=station, new_key=signing.public_key_b64(new),
                                                issued_at=at, nonce=secrets.token_hex(16)), old)


def test_the_policy_key_changes_only_under_the_key_held(tmp_path):
    clock = Clock()
    cache = open_cache(tmp_path, clock)
    cache.offer(real_policy(clock.at))
    new, thief = signing.generate_private_key(), signing.generate_private_key()
    # A key change signed by anyone else (here the announced key itself) is refused.
    assert refusal(cache, key_change(thief, thief, clock.at), "control") == "unknown_key"
    assert refusal(cache, key_change(new, new, clock.at), "control") == "unknown_key"
    # A policy under the new key before the change: refused, then taken once the change comes.
    clock.at += timedelta(seconds=1)
    under_new = real_policy(clock.at, badges={}, key=new)
    assert refusal(cache, under_new) == "unknown_key"
    change = key_change(HUB_KEY, new, clock.at)
    assert cache.control(change) is True
    assert cache.version == int(clock.at.timestamp() * 1000) and cache.key_id == signing.key_id(new)
    # The retained key change comes again at each reconnect: nothing happens.
    assert cache.control(change) is False
    clock.at += timedelta(seconds=1)
    assert refusal(cache, real_policy(clock.at, key=HUB_KEY)) == "unknown_key"
    reopened = open_cache(tmp_path, clock)  # the pin survives a restart
    assert reopened.key_id == signing.key_id(new) and reopened.version == cache.version


def test_after_a_key_change_the_policy_signed_under_the_old_key_stays_in_force_across_restart(tmp_path):
    clock = Clock()
    cache = open_cache(tmp_path, clock)
    cache.offer(real_policy(clock.at))
    new = signing.generate_private_key()
    cache.control(key_change(HUB_KEY, new, clock.at))
    reopened = open_cache(tmp_path, clock)
    assert reopened.load_error is None and reopened.decide(BADGE, clock.at).decision == "allow"


def reset(at, station=STATION, key=HUB_KEY, nonce=None) -> bytes:
    return signing.sign_control(PolicyReset(site=SITE, station=station, issued_at=at,
                                            nonce=nonce or secrets.token_hex(16)), key)


def test_a_signed_reset_is_taken_once_and_its_replay_refused(tmp_path):
    clock = Clock()
    cache = open_cache(tmp_path, clock)
    cache.offer(real_policy(clock.at, version=int(clock.at.timestamp() * 1000) + 3_000_000))  # within slack
    older = real_policy(clock.at, badges={})
    assert refusal(cache, older) == "older_version"
    assert refusal(cache, reset(clock.at, station="cabinet-2"), "control") == "wrong_station"
    assert refusal(cache, reset(clock.at, key=signing.generate_private_key()), "control") == "unknown_key"
    assert refusal(cache, reset(clock.at - timedelta(days=2)), "control") == "reset_too_old"
    message = reset(clock.at)
    assert cache.control(message) is True
    assert cache.offer(older) is True and cache.decide(BADGE, clock.at).decision == "deny"
    # A copy of the reset, now or after a restart: refused; versions are pinned again.
    assert refusal(cache, message, "control") == "replayed"
    assert refusal(open_cache(tmp_path, clock), message, "control") == "replayed"
    assert refusal(cache, real_policy(clock.at - timedelta(seconds=1))) == "older_version"


# ---- through a real mosquitto, the hub publishing ----------------------------------------------


@pytest.mark.e2e
def test_end_to_end_bad_version_refused_reset_and_rotation_through_the_hub(broker, prefix, tmp_path):
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    agent = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix))).start()
    db = hub_db(tmp_path / "hub.yaml")
    try:
        held = wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the station")
        wait_for(hub.connected.is_set, timeout=10, what="hub subscribed")
        genuine = json.loads((tmp_path / "cabinet-1-data" / "policy.json").read_bytes())["policy"]
        # A hub-signed policy with version 10**30 on the station's topic: refused and reported.
        hub._publish_retained(f"{prefix}/{SITE}/{STATION}/policy",
                              sign_policy(tmp_path, dict(genuine, version=10**30)))
        rows = wait_for(lambda: query(db, "SELECT data FROM events WHERE kind='policy.rejected'"),
                        timeout=15, what="policy.rejected stored at the hub")
        assert json.loads(rows[0][0])["reason"] == "version_ahead"
        assert agent.call(lambda a: a.policy.version) == held
        wait_for(lambda: query(db, "SELECT 1 FROM alerts WHERE rule='policy_rejected' AND severity='critical'"),
                 timeout=10, what="a critical alert")

        # A reset, issued as the CLI does, published by the running hub once.
        cfg = hub.cfg
        issue_reset(cfg.policy_control_dir(), signing.load_private_key(cfg.policy_key_path()), SITE, STATION,
                    datetime.now(timezone.utc))
        wait_for(lambda: agent.call(lambda a: a.policy.state.accept_any_version), timeout=15,
                 what="the reset taken")

        # Rotation: the key file replaced, key changes written, the hub restarted.
        old, new, _kept = rotate_key_file(cfg.policy_key_path())
        issue_key_changes(cfg.policy_control_dir(), old, new, {STATION: SITE}, datetime.now(timezone.utc))
        hub.stop()
        hub = Hub(hub_config.load(tmp_path / "hub.yaml"))
        hub.start()
        wait_for(lambda: agent.call(lambda a: a.policy.key_id) == signing.key_id(new), timeout=20,
                 what="the station pinned to the new key")
        wait_for(lambda: json.loads((tmp_path / "cabinet-1-data" / "policy.json").read_bytes())["key_id"]
                 == signing.key_id(new), timeout=15, what="the policy under the new key on disk")
        agent.reader.tap(HOLDER)
        wait_for(lambda: query(db, "SELECT 1 FROM events WHERE kind='badge.granted'"), timeout=10,
                 what="a grant under the new key's policy")
    finally:
        agent.stop()
        hub.stop()
