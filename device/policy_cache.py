"""The station's copy of its access policy, kept on disk so decisions go on with the hub down.

The hub publishes each station's policy retained; the station keeps the newest valid one it has
seen in a JSON file, written atomically (temp file, fsync, rename) so a power cut leaves either
the old or the new file, never half of one.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from kagiban.protocol import Policy, PolicyEntry, ProtocolError, parse_hub_message

_LOG = logging.getLogger(__name__)

NO_POLICY = PolicyEntry(decision="deny", reason="no_policy")


class PolicyRejected(ValueError):
    """A policy message the station will not use; the message says why."""


class PolicyCache:
    """The policy in force at this station."""

    def __init__(self, path: str | Path, *, site: str, station: str):
        self.path = Path(path)
        self.site = site
        self.station = station
        self.current: Policy | None = None
        if self.path.exists():
            try:
                self.current = self._check(self.path.read_bytes())
                _LOG.info("policy version %d loaded from %s", self.current.version, self.path)
            except PolicyRejected as exc:
                _LOG.error("ignoring cached policy %s: %s", self.path, exc)

    @property
    def version(self) -> int | None:
        return self.current.version if self.current else None

    def _check(self, payload: bytes) -> Policy:
        try:
            policy = parse_hub_message(Policy, payload)
        except ProtocolError as exc:
            raise PolicyRejected(f"not a valid policy: {str(exc)[:200]}") from exc
        if policy.site != self.site or policy.station != self.station:
            raise PolicyRejected(f"policy is for {policy.site}/{policy.station}")
        return policy

    def offer(self, payload: bytes) -> bool:
        """Take a policy message from the hub; True if it replaced the one in force.

        An older version than the one held is refused (PolicyRejected); the same version again
        (a retained message on reconnect) is accepted silently without rewriting the file.
        """
        policy = self._check(payload)
        if self.current is not None:
            if policy.version < self.current.version:
                raise PolicyRejected(
                    f"version {policy.version} is older than held version {self.current.version}"
                )
            if policy.version == self.current.version:
                return False
        self._write(payload)
        self.current = policy
        _LOG.info("policy version %d in force (%d badges)", policy.version, len(policy.badges))
        return True

    def _write(self, payload: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def decide(self, badge: str) -> PolicyEntry:
        """What to do with a tapped badge; with no policy at all, everyone is refused."""
        if self.current is None:
            return NO_POLICY
        return self.current.decide(badge)
