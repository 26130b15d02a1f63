"""The station keeps the newest valid policy on disk and decides from it."""
import json
from datetime import datetime, timezone

import pytest

from device.policy_cache import PolicyCache, PolicyRejected
from kagiban.protocol import Policy, PolicyEntry, dumps


def policy(version: int, station: str = "cabinet-1", **badges) -> bytes:
    return dumps(
        Policy(
            version=version,
            issued_at=datetime.now(timezone.utc),
            site="ward-a",
            station=station,
            badges={b: PolicyEntry(**e) for b, e in badges.items()},
        )
    )


ALLOW = {"person": "S001", "decision": "allow", "reason": "designated"}


def test_without_policy_everyone_is_refused(tmp_path):
    cache = PolicyCache(tmp_path / "p.json", site="ward-a", station="cabinet-1")
    entry = cache.decide("0123456789ABCDEF")
    assert entry.decision == "deny" and entry.reason == "no_policy"


def test_policy_is_used_and_kept_across_restart(tmp_path):
    path = tmp_path / "p.json"
    cache = PolicyCache(path, site="ward-a", station="cabinet-1")
    assert cache.offer(policy(5, AAAAAAAAAAAAAAAA=ALLOW)) is True
    again = PolicyCache(path, site="ward-a", station="cabinet-1")
    assert again.version == 5
    assert again.decide("AAAAAAAAAAAAAAAA").decision == "allow"
    assert again.decide("BBBBBBBBBBBBBBBB").reason == "unknown"


def test_older_policy_is_refused_and_the_newer_kept(tmp_path):
    cache = PolicyCache(tmp_path / "p.json", site="ward-a", station="cabinet-1")
    cache.offer(policy(7, AAAAAAAAAAAAAAAA=ALLOW))
    with pytest.raises(PolicyRejected, match="older"):
        cache.offer(policy(6))
    assert cache.version == 7
    assert cache.offer(policy(7, AAAAAAAAAAAAAAAA=ALLOW)) is False  # retained copy again


def test_policy_for_another_station_or_garbage_is_refused(tmp_path):
    path = tmp_path / "p.json"
    cache = PolicyCache(path, site="ward-a", station="cabinet-1")
    with pytest.raises(PolicyRejected, match="cabinet-2"):
        cache.offer(policy(1, station="cabinet-2"))
    with pytest.raises(PolicyRejected):
        cache.offer(b"{not json")
    assert cache.version is None and not path.exists()


def test_corrupt_file_on_disk_is_ignored_not_fatal(tmp_path):
    path = tmp_path / "p.json"
    path.write_text("{half a file")
    cache = PolicyCache(path, site="ward-a", station="cabinet-1")
    assert cache.version is None
    assert cache.decide("AAAAAAAAAAAAAAAA").decision == "deny"
