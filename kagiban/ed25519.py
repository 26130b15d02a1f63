"""Ed25519 keys over libsodium (PyNaCl): what stations and the hub sign and check with.

A station signs every event and checks every policy; ``cryptography`` keeps its own copy of
OpenSSL resident (~8 MiB in a fresh Python against ~2 MiB for PyNaCl, docs/performance.md,
"Station footprint"), so the keys both sides pass around are these small classes over
``nacl.bindings``. Ed25519 signatures are deterministic: the same key signs the same bytes to
the same signature with either library, so what the hub checked before still checks.

The method names are cryptography's (``sign``, ``verify``, ``public_key``, ``public_bytes_raw``,
``private_bytes_raw``), so code written against those keys reads the same. ``verify`` raises
:class:`InvalidSignature` (this module's). libsodium is the stricter checker (it also refuses
small-order keys and a small-order R), as the hub's ingest check always was
(hub/stations/ed25519_check.py).

PKCS#8 PEM of a private key is written and read here without cryptography's serialization
package: it is a fixed 16-byte prefix and the 32-byte seed.
"""
from __future__ import annotations

import base64
import binascii
import os

from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError

SEED_BYTES = 32
PUBLIC_BYTES = 32
SIGNATURE_BYTES = 64

# PKCS#8 DER of an Ed25519 private key: this prefix, then the 32-byte seed (RFC 8410).
PKCS8_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
PEM_BEGIN, PEM_END = b"-----BEGIN PRIVATE KEY-----", b"-----END PRIVATE KEY-----"


class InvalidSignature(ValueError):
    """A signature that does not match the key and the bytes."""


class PublicKey:
    """An Ed25519 public key (32 raw bytes)."""

    __slots__ = ("_raw",)

    def __init__(self, raw: bytes):
        if type(raw) is not bytes or len(raw) != PUBLIC_BYTES:
            raise ValueError(f"an Ed25519 public key is {PUBLIC_BYTES} bytes")
        self._raw = raw

    @classmethod
    def from_public_bytes(cls, raw: bytes) -> "PublicKey":
        return cls(bytes(raw))

    def public_bytes_raw(self) -> bytes:
        return self._raw

    def verify(self, signature: bytes, data: bytes) -> None:
        """Return if ``signature`` is this key's over ``data``, else raise InvalidSignature."""
        if len(signature) != SIGNATURE_BYTES:
            raise InvalidSignature("a signature is 64 bytes")
        try:
            crypto_sign_open(bytes(signature) + bytes(data), self._raw)  # signed = sig || message
        except (BadSignatureError, ValueError) as exc:  # ValueError: a key libsodium refuses
            raise InvalidSignature(str(exc)) from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other._raw == self._raw

    def __hash__(self) -> int:
        return hash(self._raw)

    def __repr__(self) -> str:
        return f"PublicKey({base64.b64encode(self._raw).decode()})"


def parse_public_key(value: str) -> PublicKey:
    """The public key from its base64 form; ValueError saying what is wrong."""
    if not isinstance(value, str):
        raise ValueError("a public key is base64 text")
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64: {exc}") from exc
    if len(raw) != PUBLIC_BYTES:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_BYTES} bytes, this is {len(raw)}")
    return PublicKey.from_public_bytes(raw)


class PrivateKey:
    """An Ed25519 private key, kept as its 32-byte seed and libsodium's 64-byte secret key."""

    __slots__ = ("_seed", "_secret", "_public")

    def __init__(self, seed: bytes):
        if type(seed) is not bytes or len(seed) != SEED_BYTES:
            raise ValueError(f"an Ed25519 private key is a {SEED_BYTES}-byte seed")
        public, secret = crypto_sign_seed_keypair(seed)
        self._seed, self._secret, self._public = seed, secret, PublicKey(public)

    @classmethod
    def generate(cls) -> "PrivateKey":
        return cls(os.urandom(SEED_BYTES))

    @classmethod
    def from_private_bytes(cls, seed: bytes) -> "PrivateKey":
        return cls(bytes(seed))

    def private_bytes_raw(self) -> bytes:
        return self._seed

    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        """The 64-byte signature over ``data``."""
        return crypto_sign(bytes(data), self._secret)[:SIGNATURE_BYTES]

    def __repr__(self) -> str:  # never the seed
        return f"PrivateKey(public={base64.b64encode(self._public.public_bytes_raw()).decode()})"


def private_key_pem(key: PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (what ``openssl pkey`` and cryptography read too)."""
    body = base64.b64encode(PKCS8_PREFIX + key.private_bytes_raw())
    return PEM_BEGIN + b"\n" + body + b"\n" + PEM_END + b"\n"


def private_key_from_pem(data: bytes, source: str) -> PrivateKey:
    """The key in PKCS#8 PEM ``data``; ValueError naming ``source`` if it is not one."""
    data = data.strip()
    if not (data.startswith(PEM_BEGIN) and data.endswith(PEM_END)):
        raise ValueError(f"{source}: not a PEM private key")
    try:
        der = base64.b64decode(b"".join(data[len(PEM_BEGIN):-len(PEM_END)].split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{source}: not a PEM private key: {exc}") from exc
    if len(der) != len(PKCS8_PREFIX) + SEED_BYTES or not der.startswith(PKCS8_PREFIX):
        raise ValueError(f"{source}: not an Ed25519 private key")
    return PrivateKey(der[len(PKCS8_PREFIX):])
