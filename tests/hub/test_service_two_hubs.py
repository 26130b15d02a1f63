"""Two hubs in one process (as in tests and benches), each with its own store and topic prefix
on one mosquitto: a registry change at one hub recompiles and republishes that hub's policies
and leaves the other hub's alone."""
from __future__ import annotations

import time

import pytest

from hub import registry
from hub.config import load
from hub.service import Hub
from kagiban import signing
from kagiban.protocol import Policy
from tests.support.mosquitto import wait_for
from tests.support.registry_stack import ACTOR, seed_store, write_registry_hub_config
from tests.support.stack import HOLDER, policy_public_key
from tests.support.watcher import Watcher

SITE, STATION = "ward-a", "cabinet-1"
# Longer than the publisher's coalescing interval (0.5 s): a recompile asked for would be done.
QUIET_S = 2.0


class PolicyWatcher:
    """A station's-eye view: the policies of cabinet-1 published under one prefix, each checked
    against that hub's signing key."""

    def __init__(self, port: int, prefix: str, public_key: str):
        self.topic = f"{prefix}/{SITE}/{STATION}/policy"
        self._key = public_key
        self._watcher = Watcher(port, self.topic)

    def policies(self) -> list[Policy]:
        # signing.verify raises for a policy this hub did not sign.
        return [signing.verify(payload, self._key) for payload in self._watcher.on(self.topic)]

    def decision(self) -> str | None:
        """The holder's decision in the newest policy received."""
        found = self.policies()
        return found[-1].badges[HOLDER].decision if found and HOLDER in found[-1].badges else None

    def close(self) -> None:
        self._watcher.close()


class CountedCompile:
    """The hub's own registry compile, counted: each call is one recompile of its policies."""

    def __init__(self, hub: Hub):
        self._compile = registry.policy_source(hub.engine, hub.cfg)
        self.calls = 0

    def __call__(self, now):
        self.calls += 1
        return self._compile(now)


@pytest.fixture
def two_hubs(broker, prefix, tmp_path):
    """Hubs a and b on the session broker, each with its registry-seeded store and own prefix."""
    hubs, watchers, compiles = {}, {}, {}
    try:
        for name, pfx in (("a", prefix), ("b", f"{prefix}b")):
            folder = tmp_path / name
            path = write_registry_hub_config(folder, broker.port, pfx)
            seed_store(path)
            hub = hubs[name] = Hub(load(path))
            hub.start()
            wait_for(hub.connected.is_set, timeout=10, what=f"hub {name} subscribed")
            watchers[name] = PolicyWatcher(broker.port, pfx, policy_public_key(folder))
            compiles[name] = CountedCompile(hub)
            hub.policies.use_compile(compiles[name])
        for name in hubs:
            wait_for(lambda: compiles[name].calls >= 1, timeout=10, what=f"hub {name} compiled")
            wait_for(lambda: watchers[name].decision() == "allow", timeout=10,
                     what=f"hub {name}'s policy allowing the holder")
        yield hubs, watchers, compiles
    finally:
        for watcher in watchers.values():
            watcher.close()
        for hub in hubs.values():
            hub.stop()


@pytest.mark.parametrize("changed, other", [("a", "b"), ("b", "a")])
def test_a_registry_change_recompiles_only_its_own_hubs_policies(two_hubs, changed, other):
    hubs, watchers, compiles = two_hubs
    time.sleep(QUIET_S)  # start-up compiles and publishes settle
    before = {name: (compiles[name].calls, len(watchers[name].policies())) for name in hubs}

    assert registry.revoke_badge(hubs[changed].engine, ACTOR, HOLDER) is True

    wait_for(lambda: watchers[changed].decision() == "deny", timeout=10,
             what=f"hub {changed} republishing cabinet-1's policy with the badge revoked")
    time.sleep(QUIET_S)
    assert compiles[changed].calls > before[changed][0]
    assert watchers[changed].policies()[-1].badges[HOLDER].reason == "revoked"
    # The other hub neither compiled nor published anything, and its station still lets the holder in.
    assert compiles[other].calls == before[other][0]
    assert len(watchers[other].policies()) == before[other][1]
    assert watchers[other].decision() == "allow"
