"""Signed policy key changes and resets: made by the CLI, published by the running hub.

``kagiban hub policy-key rotate`` and ``kagiban hub policy-reset`` write each signed message as a
file in the hub's ``policy-control`` folder (``Config.policy_control_dir``); the hub's policy
publisher sends them on the station's ``policy-control`` topic:

- ``key-change-<station>.json``: published retained (a station that is offline during a rotation
  still takes it when it comes back); it is signed with the key being replaced, so a station
  takes it only from the key it holds.
- ``reset-<station>-<nonce>.json``: published once, not retained, then renamed ``*.sent``; a
  station takes a reset once (its nonce and time are remembered), and not a day after it was
  issued.

The messages are not secret (only signed); the folder needs no more protection than the store.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


from kagiban.ed25519 import PrivateKey
from kagiban.protocol import PolicyKeyChange, PolicyReset, topic
from kagiban.signing import (
    key_id, load_private_key, private_key_pem, public_key_b64, sign_control, write_private_file,
    generate_private_key,
)

_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControlFile:
    """One signed control message waiting in the folder."""

    path: Path
    site: str
    station: str
    retained: bool


def _write(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(payload)
    os.replace(tmp, path)


def issue_key_changes(folder: Path, old: PrivateKey, new: PrivateKey,
                      targets: dict[str, str], now: datetime) -> list[Path]:
    """One key change per target station (id -> site), signed with ``old``; the files written."""
    written = []
    for station, site in sorted(targets.items()):
        msg = PolicyKeyChange(site=site, station=station, new_key=public_key_b64(new), issued_at=now,
                              nonce=secrets.token_hex(16))
        path = folder / f"key-change-{station}.json"
        _write(path, f"{site}\n".encode() + sign_control(msg, old))
        written.append(path)
    return written


def issue_reset(folder: Path, key: PrivateKey, site: str, station: str, now: datetime) -> Path:
    """A reset for one station signed with ``key``; the file written."""
    msg = PolicyReset(site=site, station=station, issued_at=now, nonce=secrets.token_hex(16))
    path = folder / f"reset-{station}-{msg.nonce}.json"
    _write(path, f"{site}\n".encode() + sign_control(msg, key))
    return path


def rotate_key_file(path: Path) -> tuple[PrivateKey, PrivateKey, Path]:
    """Replace the key in ``path`` with a new one (mode 600); the old key is kept beside it as
    ``<name>.<old key id>.old`` (mode 600). Returns (old, new, where the old one went)."""
    old = load_private_key(path)
    new = generate_private_key()
    kept = path.with_name(f"{path.name}.{key_id(old.public_key())}.old")
    write_private_file(kept, private_key_pem(old))
    tmp = path.with_name(path.name + ".new")
    write_private_file(tmp, private_key_pem(new))
    os.replace(tmp, path)
    return old, new, kept


def pending(folder: Path | None) -> list[ControlFile]:
    """The control messages waiting to be published, oldest first."""
    if folder is None or not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns):
        name = path.name
        if name.startswith("key-change-"):
            station, retained = name[len("key-change-"):-len(".json")], True
        elif name.startswith("reset-"):
            station, retained = name[len("reset-"):-len(".json")].rsplit("-", 1)[0], False
        else:
            continue
        site = path.read_bytes().split(b"\n", 1)[0].decode("ascii", "replace")
        found.append(ControlFile(path=path, site=site, station=station, retained=retained))
    return found


def payload(control: ControlFile) -> bytes:
    """The signed message of a control file (after its first line, the site)."""
    return control.path.read_bytes().split(b"\n", 1)[1]


def _new_key(data: bytes) -> str | None:
    try:
        return json.loads(data)["control"]["new_key"]
    except (ValueError, KeyError, TypeError):
        return None


def publish_pending(folder: Path | None, prefix: str, *, retained, once, signing_key: str,
                    only_new: set[tuple[Path, int]] | None = None) -> int:
    """Publish the waiting control messages: key changes retained (``retained(topic,
    payload)``), resets once (``once``) and then renamed ``.sent``. A key change is sent only
    by a hub that signs with its new key (``signing_key``, base64): a hub still running with the
    old key would otherwise move the stations to a key it does not sign with. ``only_new``:
    key-change files already published (skipped, and the ones sent now are added). How many
    were sent."""
    sent = 0
    for control in pending(folder):
        name = topic(prefix, control.site, control.station, "policy-control")
        if control.retained and _new_key(payload(control)) != signing_key:
            continue
        if control.retained:
            stamp = (control.path, control.path.stat().st_mtime_ns)
            if only_new is not None and stamp in only_new:
                continue
            retained(name, payload(control))
            if only_new is not None:
                only_new.add(stamp)
        else:
            once(name, payload(control))
            control.path.rename(control.path.with_name(control.path.name + ".sent"))
        _LOG.info("published policy control %s for %s", control.path.name, control.station)
        sent += 1
    return sent
