"""What the station remembers about its policy key and resets, beside the policy file.

A small JSON file (``policy.json.state``), written atomically like the policy itself:

- the key the station pins now, if a signed key change moved it away from the configured one,
  with the configured key it started from (``root``): when the YAML file names another key
  (an admin's hand at the unit), the YAML file wins and the state starts over;
- the previous key (the policy on disk may still be signed with it), the time of the last key
  change and a digest of each key change taken (their retained copies come again at every
  reconnect and are ignored);
- the nonces and time of the resets taken (a copy of a reset is refused), and whether the next
  valid policy may be older than the one held.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from kagiban.ed25519 import PublicKey
from kagiban.signing import parse_public_key, public_key_b64

_LOG = logging.getLogger(__name__)

MAX_NONCES = 64  # resets remembered by nonce (time order refuses the older ones anyway)


def write_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so a power cut leaves the old or the new file (temp file,
    fsync, rename, fsync of the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass
class PolicyState:
    """The station's policy key pin and reset record (see the module docstring)."""

    path: Path
    root: str
    key: str
    previous: str | None = None
    last_key_change: datetime | None = None
    applied: list[str] = field(default_factory=list)
    last_reset: datetime | None = None
    reset_nonces: list[str] = field(default_factory=list)
    accept_any_version: bool = False

    @classmethod
    def open(cls, path: Path, configured: PublicKey) -> "PolicyState":
        """The state in ``path``; a fresh one if there is none, it is unreadable, or it grew
        from another configured key."""
        root = public_key_b64(configured)
        fresh = cls(path=path, root=root, key=root)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return fresh
        except (OSError, ValueError) as exc:
            _LOG.error("policy state %s unreadable (%s): the configured key is pinned", path, exc)
            return fresh
        try:
            state = cls(
                path=path, root=raw["root"], key=raw["key"], previous=raw.get("previous"),
                last_key_change=_time(raw.get("last_key_change")), applied=list(raw.get("applied", [])),
                last_reset=_time(raw.get("last_reset")), reset_nonces=list(raw.get("reset_nonces", [])),
                accept_any_version=bool(raw.get("accept_any_version", False)),
            )
            parse_public_key(state.key)
        except (KeyError, TypeError, ValueError) as exc:
            _LOG.error("policy state %s unusable (%s): the configured key is pinned", path, exc)
            return fresh
        if state.root != root:
            _LOG.warning("the configured policy key is not the one the key changes started from: "
                         "the configured key is pinned")
            return fresh
        return state

    def pinned_key(self) -> PublicKey:
        return parse_public_key(self.key)

    def previous_key(self) -> PublicKey | None:
        return parse_public_key(self.previous) if self.previous else None

    def already_applied(self, payload: bytes) -> bool:
        return hashlib.sha256(payload).hexdigest() in self.applied

    def change_key(self, new_key: PublicKey, at: datetime) -> None:
        self.previous, self.key, self.last_key_change = self.key, public_key_b64(new_key), at
        self._save()

    def note_applied(self, payload: bytes) -> None:
        self.applied = (self.applied + [hashlib.sha256(payload).hexdigest()])[-MAX_NONCES:]
        self._save()

    def reset(self, nonce: str, at: datetime) -> None:
        self.reset_nonces = (self.reset_nonces + [nonce])[-MAX_NONCES:]
        self.last_reset = at
        self.accept_any_version = True
        self._save()

    def update(self, *, accept_any_version: bool) -> None:
        self.accept_any_version = accept_any_version
        self._save()

    def _save(self) -> None:
        data = {
            "root": self.root, "key": self.key, "previous": self.previous,
            "last_key_change": self.last_key_change.isoformat() if self.last_key_change else None,
            "applied": self.applied,
            "last_reset": self.last_reset.isoformat() if self.last_reset else None,
            "reset_nonces": self.reset_nonces, "accept_any_version": self.accept_any_version,
        }
        write_atomic(self.path, json.dumps(data, indent=1).encode("utf-8"))


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
