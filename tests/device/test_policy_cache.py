"""The station keeps the newest valid signed policy on disk and decides from it; anything
unsigned, forged, for another station or older is refused and the last good one stays."""
import json
import logging
from datetime import datetime, timedelta, timezone

import pytest

from device.policy_cache import PolicyCache, PolicyRejected
from kagiban import signing
from kagiban.protocol import Policy, PolicyEntry, dumps

HUB_KEY = signing.generate_private_key()
PUBLIC = signing.public_key_b64(HUB_KEY)
NOW = datetime.now(timezone.utc)


def policy_model(version: int, station: str = "cabinet-1", **badges) -> Policy:
    return Policy(
        version=version,
        issued_at=datetime.now(timezone.utc),
        site="ward-a",
        station=station,
        badges={b: PolicyEntry(**e) for b, e in badges.items()},
    )


def policy(version: int, station: str = "cabinet-1", *, key=HUB_KEY, **badges) -> bytes:
    return signing.sign(policy_model(version, station, **badges), key)


def cache_at(path) -> PolicyCache:
    return PolicyCache(path, site="ward-a", station="cabinet-1", public_key=PUBLIC)


ALLOW = {"person": "S001", "decision": "allow", "reason": "designated_holder", "after_hours": "allow"}


def reason_of(cache: PolicyCache, payload: bytes) -> str:
    with pytest.raises(PolicyRejected) as err:
        cache.offer(payload)
    return err.value.reason


def test_without_policy_everyone_is_refused(tmp_path):
    cache = cache_at(tmp_path / "p.json")
    entry = cache.decide("0123456789ABCDEF", NOW)
    assert entry.decision == "deny" and entry.reason == "no_policy"


def test_policy_is_used_and_kept_across_restart(tmp_path):
    path = tmp_path / "p.json"
    cache = cache_at(path)
    assert cache.offer(policy(5, AAAAAAAAAAAAAAAA=ALLOW)) is True
    again = cache_at(path)
    assert again.version == 5
    assert again.decide("AAAAAAAAAAAAAAAA", NOW).decision == "allow"
    assert again.decide("BBBBBBBBBBBBBBBB", NOW).reason == "unknown"
    # What is on disk is the signed envelope as received.
    assert json.loads(path.read_bytes())["key_id"] == signing.key_id(HUB_KEY)


def test_older_policy_is_refused_and_the_newer_kept(tmp_path):
    path = tmp_path / "p.json"
    cache = cache_at(path)
    cache.offer(policy(7, AAAAAAAAAAAAAAAA=ALLOW))
    with pytest.raises(PolicyRejected, match="older") as err:
        cache.offer(policy(6))
    assert err.value.reason == "older_version" and err.value.offered_version == 6
    assert cache.version == 7 and cache_at(path).version == 7


def test_same_version_again_is_accepted_silently_without_rewriting(tmp_path):
    path = tmp_path / "p.json"
    cache = cache_at(path)
    first = policy(7, AAAAAAAAAAAAAAAA=ALLOW)
    cache.offer(first)
    stamp = path.stat().st_mtime_ns
    assert cache.offer(policy(7, AAAAAAAAAAAAAAAA=ALLOW)) is False  # retained copy again
    assert path.stat().st_mtime_ns == stamp and path.read_bytes() == first


@pytest.mark.parametrize("make, reason", [
    (lambda: dumps(policy_model(9, AAAAAAAAAAAAAAAA=ALLOW)), "unsigned"),
    (lambda: policy(9, key=signing.generate_private_key(), AAAAAAAAAAAAAAAA=ALLOW), "unknown_key"),
    (lambda: policy(9, AAAAAAAAAAAAAAAA=ALLOW).replace(b"AAAAAAAAAAAAAAAA", b"AAAAAAAAAAAAAAAB"),
     "bad_signature"),
    (lambda: policy(9, station="cabinet-2"), "wrong_station"),
    (lambda: b"{not json", "bad_schema"),
])
def test_refused_policies_leave_the_last_good_one_in_force_and_on_disk(tmp_path, make, reason):
    path = tmp_path / "p.json"
    cache = cache_at(path)
    good = policy(5, AAAAAAAAAAAAAAAA=ALLOW)
    cache.offer(good)
    assert reason_of(cache, make()) == reason
    assert cache.version == 5 and path.read_bytes() == good
    assert cache.decide("AAAAAAAAAAAAAAAA", NOW).decision == "allow"


def test_refused_with_no_policy_held_writes_nothing(tmp_path):
    path = tmp_path / "p.json"
    cache = cache_at(path)
    assert reason_of(cache, policy(1, station="cabinet-2")) == "wrong_station"
    assert reason_of(cache, dumps(policy_model(1))) == "unsigned"
    assert cache.version is None and not path.exists()


def test_corrupt_file_on_disk_is_ignored_not_fatal(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{half a file")
    cache = cache_at(path)
    assert cache.version is None
    assert cache.decide("AAAAAAAAAAAAAAAA", NOW).decision == "deny"


def test_a_policy_altered_on_disk_is_ignored_and_logged(tmp_path, caplog):
    path = tmp_path / "p.json"
    cache_at(path).offer(policy(5, AAAAAAAAAAAAAAAA={**ALLOW, "decision": "allow_flag"}))
    # Someone with access to the SD card lets the flagged badge in unflagged.
    path.write_bytes(path.read_bytes().replace(b'"allow_flag"', b'"allow"'))
    with caplog.at_level(logging.ERROR, logger="device.policy_cache"):
        cache = cache_at(path)
    assert cache.version is None
    assert cache.decide("AAAAAAAAAAAAAAAA", NOW).reason == "no_policy"
    assert "ignoring cached policy" in caplog.text and "bad_signature" in caplog.text


def test_an_unsigned_file_on_disk_from_before_signing_is_ignored(tmp_path):
    path = tmp_path / "p.json"
    path.write_bytes(dumps(policy_model(5, AAAAAAAAAAAAAAAA=ALLOW)))
    cache = cache_at(path)
    assert cache.version is None
    # The hub's signed policy is then taken as usual.
    assert cache.offer(policy(5, AAAAAAAAAAAAAAAA=ALLOW)) is True


def test_decide_applies_the_time_rules_at_the_given_moment(tmp_path):
    cache = cache_at(tmp_path / "p.json")
    until = NOW + timedelta(hours=1)
    cache.offer(policy(3, AAAAAAAAAAAAAAAA={**ALLOW, "valid_until": until.isoformat(),
                                            "expiry_reason": "training_expired"}))
    assert cache.decide("AAAAAAAAAAAAAAAA", NOW).decision == "allow"
    late = cache.decide("AAAAAAAAAAAAAAAA", until + timedelta(seconds=1))
    assert (late.decision, late.reason) == ("deny", "training_expired")


def _key_change(old, new):
    import secrets

    from kagiban.protocol import PolicyKeyChange

    return signing.sign_control(PolicyKeyChange(site="ward-a", station="cabinet-1", new_key=signing.public_key_b64(new),
                                                issued_at=datetime.now(timezone.utc), nonce=secrets.token_hex(16)), old)


def test_a_key_written_into_the_yaml_file_wins_over_an_earlier_key_change(tmp_path):
    path = tmp_path / "p.json"
    cache = cache_at(path)
    cache.offer(policy(5, AAAAAAAAAAAAAAAA=ALLOW))
    moved_to = signing.generate_private_key()
    assert cache.control(_key_change(HUB_KEY, moved_to)) is True
    assert cache_at(path).key_id == signing.key_id(moved_to)  # the pin is kept across a restart
    # An admin at the unit writes another key into the YAML file: that key is pinned.
    chosen = signing.generate_private_key()
    by_admin = PolicyCache(path, site="ward-a", station="cabinet-1", public_key=signing.public_key_b64(chosen))
    assert by_admin.key_id == signing.key_id(chosen)


def test_an_unreadable_state_file_pins_the_configured_key(tmp_path):
    path = tmp_path / "p.json"
    cache_at(path).offer(policy(5, AAAAAAAAAAAAAAAA=ALLOW))
    (tmp_path / "p.json.state").write_text("{not json")
    again = cache_at(path)
    assert again.key_id == signing.key_id(HUB_KEY) and again.version == 5
