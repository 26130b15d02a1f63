"""Ed25519 signatures on station policies: the hub signs, the station verifies.

The broker is not trusted with access decisions: anyone who could publish on a station's policy
topic (a wrong ACL, a stolen hub credential, a retained message left by a test) could otherwise
hand the station a policy that opens the cabinet for everyone. So the hub signs each policy with
a private key only it holds, and each station is configured with the matching public key.

Envelope (``protocol.SignedPolicy``)::

    {"v": 1, "policy": {...}, "key_id": "<16 hex>", "signature": "<base64>"}

The signature is over ``canonical_json(policy)`` of the raw parsed ``policy`` object; the
station verifies that before it reads the object as a ``Policy``. ``key_id`` is the first 16
hex characters of sha256 of the 32 raw public-key bytes; a public key travels and is configured
as base64 of those 32 bytes.

Checking a signature needs no message model: the station reads the verified object with its own
types (device.wire, passed as ``read``), so it never loads pydantic; ``verify`` and
``verify_control`` read it with the hub's models (kagiban.protocol), imported when called.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generic, Protocol, TypeVar

from kagiban import ed25519
# parse_public_key lives with the keys (a station's unit file checks one without this module).
from kagiban.ed25519 import InvalidSignature, PrivateKey, PublicKey, parse_public_key
from kagiban.wire import VERSION, canonical_json

if TYPE_CHECKING:  # the hub's models: imported only where the hub reads with them
    from kagiban.protocol import Policy, PolicyKeyChange, PolicyReset

_LOG = logging.getLogger(__name__)

MAX_POLICY_BYTES = 4 * 1024 * 1024
REASONS = ("unsigned", "bad_signature", "unknown_key", "bad_schema")


class PolicyRejected(ValueError):
    """A policy the station will not use; ``reason`` is a short code, ``offered_version`` the
    version the payload claimed (None if it did not say)."""

    def __init__(self, reason: str, detail: str = "", offered_version: int | None = None):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.offered_version = offered_version


# ---- keys -----------------------------------------------------------------------------------


def generate_private_key() -> PrivateKey:
    """A new random signing key."""
    return PrivateKey.generate()


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted (the file's mode protects it)."""
    return ed25519.private_key_pem(key)


def load_private_key(path: str | os.PathLike) -> PrivateKey:
    """Read a PEM Ed25519 private key; ValueError if the file holds anything else.

    The hub's key files are the PKCS#8 form this module writes; any other PEM (an RSA key, an
    encrypted key) is read by cryptography, imported only then, to say what it is.
    """
    data = Path(path).read_bytes()
    try:
        return ed25519.private_key_from_pem(data, str(path))
    except ValueError:
        pass
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 key ({type(key).__name__})")
    return PrivateKey(key.private_bytes_raw())


def write_private_file(path: str | os.PathLike, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` (a private key) to ``path`` with mode 600 whatever the umask, and fsync it;
    ``exclusive``: FileExistsError rather than overwrite an existing file."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_or_create_private_key(path: str | os.PathLike) -> PrivateKey:
    """The key in ``path``; if the file does not exist, a new key written there with mode 600."""
    path = Path(path)
    if path.exists():
        return load_private_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = generate_private_key()
    tmp = path.with_name(path.name + ".tmp")
    write_private_file(tmp, private_key_pem(key))
    try:
        # link, not rename: if another process created the key meanwhile, theirs wins.
        os.link(tmp, path)
    except FileExistsError:
        return load_private_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    _LOG.info("created policy signing key %s (key id %s)", path, key_id(key.public_key()))
    return key


def public_key_b64(key: PrivateKey | PublicKey) -> str:
    """Base64 of the 32 raw public-key bytes (what a station's config holds)."""
    pub = key.public_key() if isinstance(key, PrivateKey) else key
    return base64.b64encode(pub.public_bytes_raw()).decode("ascii")


def key_id(key: PrivateKey | PublicKey | str) -> str:
    """First 16 hex characters of sha256 of the raw public key (a key or its base64 form)."""
    if isinstance(key, str):
        key = parse_public_key(key)
    pub = key.public_key() if isinstance(key, PrivateKey) else key
    return hashlib.sha256(pub.public_bytes_raw()).hexdigest()[:16]


# ---- signing and verifying ------------------------------------------------------------------


class _Model(Protocol):
    """A hub message model (pydantic): what ``sign`` and ``sign_control`` are given."""

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


P = TypeVar("P")
C = TypeVar("C")


def _policy_object(policy: _Model | dict[str, Any]) -> dict[str, Any]:
    if isinstance(policy, dict):
        return json.loads(canonical_json(policy))  # a plain JSON copy: what the station will parse
    return policy.model_dump(mode="json")


def sign(policy: Policy | dict[str, Any], key: PrivateKey) -> bytes:
    """The SignedPolicy JSON bytes for ``policy`` (a Policy or its JSON object)."""
    obj = _policy_object(policy)
    signature = key.sign(canonical_json(obj))
    envelope = {
        "v": VERSION,
        "policy": obj,
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _claimed_version(obj: Any) -> int | None:
    if isinstance(obj, dict):
        policy = obj.get("policy")
        inner = policy if isinstance(policy, dict) else obj
        version = inner.get("version")
        if type(version) is int:
            return version
    return None


def envelope_policy(payload: bytes) -> dict[str, Any] | None:
    """The unverified ``policy`` object of an envelope (or a bare policy object), else None.

    For the hub re-signing its own stored policies; a station must use ``verify``.
    """
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(obj, dict) and isinstance(obj.get("policy"), dict):
        return obj["policy"]
    return obj if isinstance(obj, dict) else None


class Verifier(Generic[P]):
    """Checks policies against one public key (the station's configured one) and reads the
    verified policy object with ``read`` (its JSON bytes in, a policy out; ValueError if the
    bytes are not a policy)."""

    def __init__(self, public_key: str | PublicKey, read: Callable[[bytes], P]):
        self.public_key = parse_public_key(public_key) if isinstance(public_key, str) else public_key
        self.key_id = key_id(self.public_key)
        self._read = read

    def verify(self, payload: bytes) -> P:
        """The policy in a signed envelope; PolicyRejected with reason unsigned, unknown_key,
        bad_signature or bad_schema."""
        if len(payload) > MAX_POLICY_BYTES:
            raise PolicyRejected("bad_schema", f"{len(payload)} bytes > {MAX_POLICY_BYTES}")
        try:
            obj = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PolicyRejected("bad_schema", f"not JSON: {str(exc)[:100]}") from exc
        offered = _claimed_version(obj)
        if not isinstance(obj, dict):
            raise PolicyRejected("bad_schema", "not a JSON object")
        if "signature" not in obj or "policy" not in obj:
            raise PolicyRejected("unsigned", "no signature envelope", offered)
        if set(obj) != {"v", "policy", "key_id", "signature"} or type(obj["v"]) is not int or obj["v"] != VERSION:
            raise PolicyRejected("bad_schema", f"envelope keys {sorted(obj)} v={obj.get('v')!r}", offered)
        policy_obj, kid, sig = obj["policy"], obj["key_id"], obj["signature"]
        if not isinstance(policy_obj, dict) or not isinstance(kid, str) or not isinstance(sig, str):
            raise PolicyRejected("bad_schema", "envelope field types", offered)
        if kid != self.key_id:
            raise PolicyRejected("unknown_key", f"signed by key {kid[:16]!r}, expected {self.key_id}", offered)
        try:
            raw_sig = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PolicyRejected("bad_signature", "signature is not base64", offered) from exc
        message = canonical_json(policy_obj)
        try:
            self.public_key.verify(raw_sig, message)
        except InvalidSignature as exc:
            raise PolicyRejected("bad_signature", "signature does not match the policy", offered) from exc
        try:
            return self._read(message)
        except ValueError as exc:
            raise PolicyRejected("bad_schema", str(exc)[:300], offered) from exc


def _hub_reader(model: Any) -> Callable[[bytes], Any]:
    """``model``'s strict JSON reading ("1" is not a version; ISO strings still parse as times
    and dates), its first error as a ValueError saying where."""
    from pydantic import ValidationError

    def read(message: bytes) -> Any:
        try:
            return model.model_validate_json(message, strict=True)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "policy"
            raise ValueError(f"{where}: {first['msg']}") from None

    return read


def verify(payload: bytes, public_key: str | PublicKey) -> Policy:
    """The hub's Policy (kagiban.protocol) in a signed envelope checked against ``public_key``
    (base64 or a key); a station uses a Verifier with its own reader instead."""
    from kagiban.protocol import Policy

    verifier: Verifier[Policy] = Verifier(public_key, _hub_reader(Policy))
    return verifier.verify(payload)


# ---- control messages: key changes and resets -------------------------------------------------

def sign_control(message: _Model, key: PrivateKey) -> bytes:
    """The envelope ``{"v", "control", "key_id", "signature"}`` of a key change or reset.

    The signed object carries ``type``, which a Policy never has (its schema forbids unknown
    keys): a policy's signature cannot be passed off as a control message, nor the reverse.
    """
    obj = message.model_dump(mode="json")
    envelope = {
        "v": VERSION,
        "control": obj,
        "key_id": key_id(key.public_key()),
        "signature": base64.b64encode(key.sign(canonical_json(obj))).decode("ascii"),
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def control_signer(payload: bytes) -> str | None:
    """The ``key_id`` an envelope (policy or control) claims, unverified; else None."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    kid = obj.get("key_id") if isinstance(obj, dict) else None
    return kid if isinstance(kid, str) else None


def check_control(payload: bytes, public_key: PublicKey, read: Callable[[str, bytes], C]) -> C:
    """The control message in an envelope checked against ``public_key``, read by
    ``read(type, JSON bytes)`` (which raises LookupError for a type it does not know and
    ValueError for an object not of that type's form); PolicyRejected with reason bad_schema,
    unknown_key or bad_signature."""
    if len(payload) > 16 * 1024:
        raise PolicyRejected("bad_schema", f"control message of {len(payload)} bytes")
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PolicyRejected("bad_schema", "control message is not JSON") from exc
    if not isinstance(obj, dict) or set(obj) != {"v", "control", "key_id", "signature"} or obj["v"] != VERSION:
        raise PolicyRejected("bad_schema", "not a control envelope")
    body, kid, sig = obj["control"], obj["key_id"], obj["signature"]
    if not isinstance(body, dict) or not isinstance(kid, str) or not isinstance(sig, str):
        raise PolicyRejected("bad_schema", "control envelope field types")
    if kid != key_id(public_key):
        raise PolicyRejected("unknown_key", f"control signed by key {kid[:16]!r}, expected {key_id(public_key)}")
    message = canonical_json(body)
    try:
        public_key.verify(base64.b64decode(sig, validate=True), message)
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise PolicyRejected("bad_signature", "control signature does not match") from exc
    kind = body.get("type", "")
    try:
        if not isinstance(kind, str):
            raise LookupError(kind)
        return read(kind, message)
    except LookupError:
        raise PolicyRejected("bad_schema", f"unknown control type {kind!r}") from None
    except ValueError as exc:
        raise PolicyRejected("bad_schema", f"control: {str(exc)[:300]}") from exc


def verify_control(payload: bytes, public_key: PublicKey) -> PolicyKeyChange | PolicyReset:
    """The hub's model (kagiban.protocol) of the control message in an envelope checked against
    ``public_key``; a station uses check_control with its own reader instead."""
    from kagiban.protocol import PolicyKeyChange, PolicyReset

    models = {"key_change": PolicyKeyChange, "policy_reset": PolicyReset}

    def read(kind: str, message: bytes) -> PolicyKeyChange | PolicyReset:
        found: PolicyKeyChange | PolicyReset = _hub_reader(models[kind])(message)
        return found

    return check_control(payload, public_key, read)
