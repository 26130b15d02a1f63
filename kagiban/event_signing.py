"""Ed25519 signatures on what a station sends: its events and its snapshots' hashes.

Each station has its own key, made on the unit at enrollment (``kagiban device enroll``); the
hub holds the public keys (``station_keys``). The hub re-checks every stored signature later,
offline (``kagiban verify``), so it stores exactly what was signed.

Events: the station signs the exact bytes of the event's JSON object; the signature travels as
the object's last two members, so the wire payload is still one Event::

    signed  = b'{"v":1,"id":...,"data":{...}}'
    payload = signed[:-1] + b',"key_id":"<16 hex>","sig":"<base64>"}'

and the signed bytes come back from the payload by cutting that tail off and closing the
object again (``split_event``). Base64 and hex hold no quote, so the tail is unambiguous.

Snapshots: the image is large and the hub keeps it decoded, so the station signs a short
statement built from the fields the hub stores (``snapshot_statement``): the event id, the
station and the sha256 of the image bytes. Its signature and key id travel as the
snapshot's ``key_id`` and ``sig`` fields.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from kagiban.ed25519 import InvalidSignature, PrivateKey, PublicKey, private_key_from_pem, private_key_pem
from kagiban.wire import canonical_json
from kagiban.signing import key_id as _key_id
from kagiban.signing import write_private_file

_LOG = logging.getLogger(__name__)

# ,"key_id":"<16 hex>","sig":"<88 base64 chars of 64 bytes>"}  at the very end of a payload
_TAIL = re.compile(rb',"key_id":"([0-9a-f]{16})","sig":"([A-Za-z0-9+/]{86}==)"\}\Z')
SNAPSHOT_STATEMENT_TYPE = "kagiban.snapshot/1"


class SignatureError(ValueError):
    """A signature that cannot be checked or does not match; ``reason`` is the quarantine code
    (``bad_signature``)."""

    reason = "bad_signature"


@dataclass(frozen=True)
class SignedEvent:
    """An event payload split into the bytes the station signed and the signature."""

    signed: bytes
    key_id: str
    signature: str  # base64


class EventSigner:
    """Signs a station's events and snapshot statements with its private key."""

    def __init__(self, key: PrivateKey):
        self._key = key
        self.key_id = _key_id(key.public_key())
        self._tail = b',"key_id":"' + self.key_id.encode() + b'","sig":"'

    def sign_event(self, payload: bytes) -> bytes:
        """The wire payload: ``payload`` (one JSON object, as dumps() makes it) with its
        signature appended as the last members."""
        if not payload.endswith(b"}"):
            raise ValueError("an event payload is one JSON object")
        sig = base64.b64encode(self._key.sign(payload))
        return payload[:-1] + self._tail + sig + b'"}'

    def sign_snapshot(self, event_id: str, station: str, image_sha256: str) -> str:
        """Base64 signature of ``snapshot_statement(event_id, station, image_sha256)``."""
        statement = snapshot_statement(event_id, station, image_sha256)
        return base64.b64encode(self._key.sign(statement)).decode("ascii")


def split_event(payload: bytes) -> SignedEvent | None:
    """The signed bytes and signature of a signed event payload; None if it carries none in
    the signed form (a payload that names ``sig`` anywhere else is not signed correctly)."""
    found = _TAIL.search(payload, max(0, len(payload) - 140))
    if found is None:
        return None
    signed = payload[: found.start()] + b"}"
    return SignedEvent(signed, found.group(1).decode(), found.group(2).decode())


def snapshot_statement(event_id: str, station: str, image_sha256: str) -> bytes:
    """The bytes a snapshot's signature covers, built only from what the hub stores."""
    return canonical_json(
        {"event_id": event_id, "sha256": image_sha256, "station": station, "type": SNAPSHOT_STATEMENT_TYPE}
    )


def image_sha256(image: bytes) -> str:
    """Hex sha256 of the image bytes (what the hub stores in ``snapshots.sha256``)."""
    return hashlib.sha256(image).hexdigest()


def check(public_key: PublicKey, signature: str, message: bytes) -> None:
    """Raise SignatureError unless ``signature`` (base64) is ``public_key``'s over ``message``."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("the signature is not base64") from exc
    try:
        public_key.verify(raw, message)
    except InvalidSignature as exc:
        raise SignatureError("the signature does not match the signed bytes") from exc


# ---- the station's key file -----------------------------------------------------------------


def station_key_pem(key: PrivateKey) -> bytes:
    """The key as PKCS#8 PEM (what ``openssl pkey`` reads too)."""
    return private_key_pem(key)


def load_station_key(path: str | os.PathLike) -> PrivateKey:
    """The station's key from its PEM file; ValueError naming the file if it is not one."""
    return private_key_from_pem(Path(path).read_bytes(), str(path))


def create_station_key(path: str | os.PathLike) -> PrivateKey:
    """A new key written to ``path`` with mode 600; FileExistsError if the file exists (a key
    is replaced only on purpose: see ``kagiban device enroll --replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = PrivateKey.generate()
    write_private_file(path, station_key_pem(key), exclusive=True)
    _LOG.info("created station signing key %s (key id %s)", path, _key_id(key.public_key()))
    return key
