"""The station's copy of its access policy, kept on disk so decisions go on with the hub down.

The hub publishes each station's policy retained, signed with its Ed25519 key
(kagiban.signing). The station uses a policy only if it is signed with the key it has pinned
(the public key in its config, or the one a signed key change moved it to), is for this site
and station, is within bounds, and is not older than the one in force; anything else is
refused with a reason, and the last good policy stays in force and on disk.

Bounds (a wrong version pins a station: every later real policy would look older):

- ``version_ahead``: the version is beyond the policy's own issue time (hub versions are
  unix milliseconds at most a few counts past it) by more than the slack;
- ``issued_in_future``: the issue time is beyond this station's clock plus the slack;
- ``issued_too_old`` / ``expired``: issued longer ago than ``max_age`` or already past its
  ``expires_at`` (checked when offered; one held already becomes *expired* instead).

A held policy that is past its ``expires_at`` or older than ``max_age`` is *expired*: the
station keeps deciding and flags every allow (``when_expired="flag"``) or denies
(``"deny"``), and says so in its heartbeats.

Control messages (device.policy_state): a key change signed with the pinned key moves the pin
to a new key; a reset signed with it lets the next valid policy in whatever version is held.

The file on disk is the signed envelope as received, written atomically (temp file, fsync,
rename) so a power cut leaves either the old or the new file, never half of one. It is verified
again at start (signature, station, version against its issue time and this clock): a file
that cannot be read or is refused is not used (``load_error`` says why; device.storage_check
then moves it aside), as if there were none.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import msgspec

from device.policy_state import PolicyState, write_atomic
from device.wire import Policy, PolicyEntry, PolicyKeyChange, PolicyReset, read_control, read_policy
from kagiban.ed25519 import PublicKey
from kagiban.signing import PolicyRejected, Verifier, check_control, control_signer, parse_public_key

__all__ = ["NO_POLICY", "PolicyCache", "PolicyRejected"]

_LOG = logging.getLogger(__name__)

NO_POLICY = PolicyEntry(decision="deny", reason="no_policy")
EXPIRED_REASON = "policy_expired"
# Refusals that may pass once this clock is right or the key has changed: offered again later.
RETRY_REASONS = ("issued_in_future", "unknown_key")
RESET_WINDOW = timedelta(days=1)  # a reset issued longer ago than this is refused


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class PolicyCache:
    """The policy in force at this station."""

    def __init__(
        self,
        path: str | Path,
        *,
        site: str,
        station: str,
        public_key: str | PublicKey,
        clock: Callable[[], datetime] = _utc_now,
        slack_s: float = 3600.0,
        max_age_s: float = 14 * 86400.0,
        when_expired: Literal["flag", "deny"] = "flag",
    ):
        self.path = Path(path)
        self.site = site
        self.station = station
        self._now = clock  # this unit's wall clock (device.clock), aware
        self.slack = timedelta(seconds=slack_s)
        self.max_age = timedelta(seconds=max_age_s)
        self.when_expired = when_expired
        configured = parse_public_key(public_key) if isinstance(public_key, str) else public_key
        self.state = PolicyState.open(self.path.with_name(self.path.name + ".state"), configured)
        self._verifier = Verifier(self.state.pinned_key(), read_policy)
        self.current: Policy | None = None
        # Why the file on disk could not be used (None: it was, or there was none).
        self.load_error: str | None = None
        # Why the last offer was refused, until one is accepted (heartbeat policy_refused).
        self.refused: str | None = None
        # The last payload refused for a reason that may pass later (RETRY_REASONS).
        self._pending: bytes | None = None
        self._held: bytes | None = None  # the envelope on disk
        if self.path.exists():
            try:
                data = self.path.read_bytes()
                try:
                    self.current = self._check(data, self._verifier)
                except PolicyRejected as exc:
                    # Signed under the key a key change replaced: still the policy in force.
                    previous = self.state.previous_key()
                    if exc.reason != "unknown_key" or previous is None:
                        raise
                    self.current = self._check(data, Verifier(previous, read_policy))
                self._held = data
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

    def _check(self, payload: bytes, verifier: Verifier[Policy]) -> Policy:
        policy = verifier.verify(payload)
        if policy.site != self.site or policy.station != self.station:
            raise PolicyRejected(
                "wrong_station", f"policy is for {policy.site}/{policy.station}", policy.version
            )
        issued_ms = int(policy.issued_at.timestamp() * 1000)
        if policy.version > issued_ms + int(self.slack.total_seconds() * 1000):
            raise PolicyRejected(
                "version_ahead", f"version {policy.version} is beyond its issue time "
                f"{policy.issued_at.isoformat()} (unix ms {issued_ms})", policy.version)
        if policy.issued_at > self._now() + self.slack:
            raise PolicyRejected(
                "issued_in_future", f"issued {policy.issued_at.isoformat()}, this clock says "
                f"{self._now().isoformat()}", policy.version)
        return policy

    def offer(self, payload: bytes) -> bool:
        """Take a policy message from the hub; True if it replaced the one in force.

        Refused with PolicyRejected (reason unsigned, unknown_key, bad_signature, bad_schema,
        wrong_station, version_ahead, issued_in_future, issued_too_old, expired or
        older_version); the same version again (a retained message on reconnect) is accepted
        silently without rewriting the file.
        """
        try:
            accepted = self._offer(payload)
        except PolicyRejected as exc:
            self.refused = exc.reason
            self._pending = payload if exc.reason in RETRY_REASONS else None
            if exc.reason in ("version_ahead", "issued_in_future", "issued_too_old", "expired"):
                # Signed by the hub key, yet impossible: kept out, as a quarantine.
                _LOG.error("policy quarantined (%s): %s; version %s stays in force",
                           exc.reason, exc.detail, self.version)
            raise
        self.refused = None
        self._pending = None
        return accepted

    def _offer(self, payload: bytes) -> bool:
        policy = self._check(payload, self._verifier)
        now = self._now()
        if policy.expires_at is not None and policy.expires_at <= now:
            raise PolicyRejected("expired", f"expired at {policy.expires_at.isoformat()}", policy.version)
        if policy.issued_at < now - self.max_age:
            raise PolicyRejected("issued_too_old", f"issued {policy.issued_at.isoformat()}, more than "
                                 f"{self.max_age} ago", policy.version)
        if self.current is not None and not self.state.accept_any_version:
            if policy.version < self.current.version:
                raise PolicyRejected(
                    "older_version",
                    f"version {policy.version} is older than held version {self.current.version}",
                    policy.version,
                )
            if policy.version == self.current.version:
                if control_signer(self._held or b"") != self._verifier.key_id:
                    # The same policy signed again under a new key: the file is kept under it.
                    write_atomic(self.path, payload)
                    self._held = payload
                return False
        write_atomic(self.path, payload)
        if self.state.accept_any_version:
            _LOG.warning("policy version %d taken after a reset (held version was %s)",
                         policy.version, self.version)
            self.state.update(accept_any_version=False)
        self.current, self._held = policy, payload
        _LOG.info("policy version %d in force (%d badges)", policy.version, len(policy.badges))
        return True

    def retry_pending(self) -> bool:
        """Offer again the last policy refused for a reason that may have passed (this clock
        was behind, the key was about to change); True if it is now in force."""
        if self._pending is None:
            return False
        try:
            accepted = self._offer(self._pending)
        except PolicyRejected as exc:  # logged when it was first refused; not again each time
            self.refused = exc.reason
            if exc.reason not in RETRY_REASONS:
                self._pending = None
            return False
        self.refused, self._pending = None, None
        return accepted

    def control(self, payload: bytes) -> bool:
        """Take a key change or reset; True if it changed anything.

        PolicyRejected (reason unknown_key, bad_signature, bad_schema, wrong_station,
        issued_in_future, replayed, reset_too_old) if it is not taken.
        """
        pinned = self.state.pinned_key()
        try:
            msg = check_control(payload, pinned, read_control)
        except PolicyRejected:
            if self.state.already_applied(payload):
                return False  # the retained key change that moved us to the key we hold
            raise
        if msg.site != self.site or msg.station != self.station:
            raise PolicyRejected("wrong_station", f"control message is for {msg.site}/{msg.station}")
        now = self._now()
        if msg.issued_at > now + self.slack:
            raise PolicyRejected("issued_in_future", f"control issued {msg.issued_at.isoformat()}")
        if isinstance(msg, PolicyKeyChange):
            return self._key_change(msg, payload)
        return self._reset(msg, now)

    def _key_change(self, msg: PolicyKeyChange, payload: bytes) -> bool:
        if self.state.last_key_change is not None and msg.issued_at <= self.state.last_key_change:
            raise PolicyRejected("replayed", f"key change of {msg.issued_at.isoformat()} is not newer")
        new_key = parse_public_key(msg.new_key)
        self.state.change_key(new_key, msg.issued_at)
        self.state.note_applied(payload)
        old_id = self._verifier.key_id
        self._verifier = Verifier(new_key, read_policy)
        _LOG.warning("policy key changed from %s to %s (signed by the old key)", old_id, self._verifier.key_id)
        self.retry_pending()
        return True

    def _reset(self, msg: PolicyReset, now: datetime) -> bool:
        if msg.nonce in self.state.reset_nonces or (
                self.state.last_reset is not None and msg.issued_at <= self.state.last_reset):
            raise PolicyRejected("replayed", f"reset {msg.nonce} was taken already")
        if msg.issued_at < now - RESET_WINDOW:
            raise PolicyRejected("reset_too_old", f"reset issued {msg.issued_at.isoformat()}")
        self.state.reset(msg.nonce, msg.issued_at)
        _LOG.warning("policy reset %s taken: the next valid policy is used whatever its version "
                     "(held version %s)", msg.nonce, self.version)
        self.retry_pending()
        return True

    def expired(self, now: datetime | None = None) -> bool:
        """True if the policy in force is past its expiry or older than ``max_age``."""
        if self.current is None:
            return False
        now = now or self._now()
        if self.current.expires_at is not None and now >= self.current.expires_at:
            return True
        return now - self.current.issued_at > self.max_age

    def decide(self, badge: str, now: datetime) -> PolicyEntry:
        """What to do with a badge tapped at ``now`` (aware wall-clock time); with no policy at
        all, everyone is refused; with an expired one, an allow is flagged or denied."""
        if self.current is None:
            return NO_POLICY
        entry = self.current.decide(badge, now)
        if entry.decision != "deny" and self.expired(now):
            decision = "allow_flag" if self.when_expired == "flag" else "deny"
            return msgspec.structs.replace(entry, decision=decision, reason=EXPIRED_REASON)
        return entry
