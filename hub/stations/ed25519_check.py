"""The Ed25519 check ingest makes on every signed event and snapshot.

The check is most of what a signed event costs the hub (bench/ingest.py), so ingest uses
libsodium (PyNaCl) where it is installed: on the bench machine it checked a ~400-byte event in
~105 us against ~175 us for OpenSSL through ``cryptography``; ingest runs it in verifier
processes (hub/ingest/verify_workers.py), so it uses the second core. Without PyNaCl the check falls back to
``cryptography``, which accepts every signature libsodium accepts.

libsodium is the stricter of the two (it also refuses small-order keys and a small-order R).
``kagiban verify`` checks with libsodium too (kagiban.ed25519, the keys stations and the hub
share), so it accepts exactly what ingest stored.
"""
from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from kagiban.event_signing import SignatureError

_LOG = logging.getLogger(__name__)

_sodium_open: Callable[[bytes, bytes], bytes] | None
_SodiumBad: type[Exception]
try:
    from nacl.bindings import crypto_sign_open as _sodium_open
    from nacl.exceptions import BadSignatureError as _SodiumBad
except ImportError:  # pragma: no cover - PyNaCl is a dependency; the fallback keeps ingest working
    _sodium_open = None
    _SodiumBad = ValueError
    _LOG.warning("PyNaCl is not installed: signatures are checked with cryptography (slower)")

BACKEND = "libsodium" if _sodium_open is not None else "cryptography"
_SIGNATURE_BYTES = 64


def check(public_raw: bytes, signature: str, message: bytes, *, backend: str = BACKEND) -> None:
    """Raise SignatureError unless ``signature`` (base64) is the key ``public_raw`` (32 raw
    bytes)'s over ``message``. ``backend``: "libsodium" or "cryptography" (the tests compare them)."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("the signature is not base64") from exc
    if len(raw) != _SIGNATURE_BYTES:
        raise SignatureError("the signature does not match the signed bytes")
    if backend == "libsodium" and _sodium_open is not None:
        try:
            _sodium_open(raw + message, public_raw)  # signed message = signature || message
        except (_SodiumBad, ValueError) as exc:
            raise SignatureError("the signature does not match the signed bytes") from exc
        return
    try:
        _public(public_raw).verify(raw, message)
    except InvalidSignature as exc:
        raise SignatureError("the signature does not match the signed bytes") from exc


@lru_cache(maxsize=4096)
def _public(public_raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(public_raw)
