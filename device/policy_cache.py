"""The station's copy of its access policy, kept on disk so decisions go on with the hub down.

The hub publishes each station's policy retained, signed with its Ed25519 key
(kagiban.signing). The station uses a policy only if it is signed with the public key in its
config, is for this site and station, and is not older than the one in force; anything else is
refused with a reason, and the last good policy stays in force and on disk.

The file on disk is the signed envelope as received, written atomically (temp file, fsync,
rename) so a power cut leaves either the old or the new file, never half of one. It is verified
again at start: a file that cannot be read or is refused is not used (``load_error`` says why;
device.storage_check then moves it aside), as if there were none.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kagiban.protocol import Policy, PolicyEntry
from kagiban.signing import PolicyRejected, Verifier

__all__ = ["NO_POLICY", "PolicyCache", "PolicyRejected"]

_LOG = logging.getLogger(__name__)

NO_POLICY = PolicyEntry(decision="deny", reason="no_policy")


class PolicyCache:
    """The policy in force at this station."""

    def __init__(self, path: str | Path, *, site: str, station: str, public_key: str | Ed25519PublicKey):
        self.path = Path(path)
        self.site = site
        self.station = station
        self._verifier = Verifier(public_key)
        self.current: Policy | None = None
        # Why the file on disk could not be used (None: it was, or there was none).
        self.load_error: str | None = None
        if self.path.exists():
            try:
                self.current = self._check(self.path.read_bytes())
                _LOG.info("policy version %d loaded from %s", self.current.version, self.path)
            except PolicyRejected as exc:
                self.load_error = str(exc)
                _LOG.error("ignoring cached policy %s: %s", self.path, exc)
            except OSError as exc:  # an SD card that cannot read the file back
                self.load_error = f"{type(exc).__name__}: {exc}"
                _LOG.error("cannot read cached policy %s: %s", self.path, exc)

    @property
    def version(self) -> int | None:
        return self.current.version if self.current else None

    @property
    def key_id(self) -> str:
        """The id of the key policies must be signed with."""
        return self._verifier.key_id

    def _check(self, payload: bytes) -> Policy:
        policy = self._verifier.verify(payload)
        if policy.site != self.site or policy.station != self.station:
            raise PolicyRejected(
                "wrong_station", f"policy is for {policy.site}/{policy.station}", policy.version
            )
        return policy

    def offer(self, payload: bytes) -> bool:
        """Take a policy message from the hub; True if it replaced the one in force.

        Refused with PolicyRejected (reason unsigned, unknown_key, bad_signature, bad_schema,
        wrong_station or older_version); the same version again (a retained message on
        reconnect) is accepted silently without rewriting the file.
        """
        policy = self._check(payload)
        if self.current is not None:
            if policy.version < self.current.version:
                raise PolicyRejected(
                    "older_version",
                    f"version {policy.version} is older than held version {self.current.version}",
                    policy.version,
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

    def decide(self, badge: str, now: datetime) -> PolicyEntry:
        """What to do with a badge tapped at ``now`` (aware wall-clock time); with no policy at
        all, everyone is refused."""
        if self.current is None:
            return NO_POLICY
        return self.current.decide(badge, now)
