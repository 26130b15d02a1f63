"""Policies signed by the hub's Ed25519 key: what verifies, and why everything else is refused."""
from __future__ import annotations

import base64
import json
import os
import stat
from datetime import datetime, timezone

import pytest

from kagiban import signing
from kagiban.protocol import Policy, PolicyEntry, SignedPolicy, canonical_json, dumps
from kagiban.signing import PolicyRejected

BADGE = "0123456789ABCDEF"


def policy(version: int = 5, **extra) -> Policy:
    return Policy(
        version=version,
        issued_at=datetime(2025, 4, 1, 9, 0, tzinfo=timezone.utc),
        site="ward-a",
        station="cabinet-1",
        badges={BADGE: PolicyEntry(person="S001", name="鍵番 太郎", decision="allow", reason="designated_holder")},
        **extra,
    )


@pytest.fixture
def key():
    return signing.generate_private_key()


def test_round_trip(key):
    payload = signing.sign(policy(), key)
    got = signing.verify(payload, signing.public_key_b64(key))
    assert got == policy()
    envelope = SignedPolicy.model_validate_json(payload)
    assert envelope.key_id == signing.key_id(key.public_key()) and len(envelope.key_id) == 16
    assert envelope.policy == policy()


def test_signature_is_over_the_canonical_policy_object(key):
    envelope = json.loads(signing.sign(policy(), key))
    raw_sig = base64.b64decode(envelope["signature"])
    key.public_key().verify(raw_sig, canonical_json(envelope["policy"]))  # raises if not
    # Key order and spacing on the wire do not matter: the object is what is signed.
    envelope["policy"] = dict(reversed(list(envelope["policy"].items())))
    spaced = json.dumps(envelope, indent=2, ensure_ascii=True).encode()
    assert signing.verify(spaced, signing.public_key_b64(key)) == policy()


def test_key_id_is_sha256_of_the_raw_public_key(key):
    import hashlib

    raw = base64.b64decode(signing.public_key_b64(key))
    assert len(raw) == 32
    assert signing.key_id(key) == hashlib.sha256(raw).hexdigest()[:16]
    assert signing.key_id(signing.public_key_b64(key)) == signing.key_id(key)


def test_one_byte_changed_in_a_badge_is_refused(key):
    payload = signing.sign(policy(), key)
    tampered = payload.replace(BADGE.encode(), b"0123456789ABCDEE")
    assert tampered != payload
    with pytest.raises(PolicyRejected) as err:
        signing.verify(tampered, signing.public_key_b64(key))
    assert err.value.reason == "bad_signature" and err.value.offered_version == 5


def test_a_changed_decision_is_refused(key):
    envelope = json.loads(signing.sign(policy(), key))
    envelope["policy"]["badges"][BADGE]["after_hours"] = "allow"
    with pytest.raises(PolicyRejected) as err:
        signing.verify(json.dumps(envelope).encode(), signing.public_key_b64(key))
    assert err.value.reason == "bad_signature"


def test_unsigned_policy_is_refused(key):
    with pytest.raises(PolicyRejected) as err:
        signing.verify(dumps(policy(9)), signing.public_key_b64(key))
    assert err.value.reason == "unsigned" and err.value.offered_version == 9


def test_policy_signed_by_another_key_is_refused(key):
    other = signing.generate_private_key()
    payload = signing.sign(policy(), other)
    with pytest.raises(PolicyRejected) as err:
        signing.verify(payload, signing.public_key_b64(key))
    assert err.value.reason == "unknown_key"
    # Even claiming our key id does not help: the signature is still the other key's.
    envelope = json.loads(payload)
    envelope["key_id"] = signing.key_id(key)
    with pytest.raises(PolicyRejected) as err:
        signing.verify(json.dumps(envelope).encode(), signing.public_key_b64(key))
    assert err.value.reason == "bad_signature"


@pytest.mark.parametrize("payload", [
    b"{not json", b"[]", b'{"v": 1, "policy": {}, "key_id": "x", "signature": "y", "extra": 1}',
    b'{"v": 2, "policy": {}, "key_id": "x", "signature": "y"}',
])
def test_garbage_is_bad_schema(key, payload):
    with pytest.raises(PolicyRejected) as err:
        signing.verify(payload, signing.public_key_b64(key))
    assert err.value.reason == "bad_schema"


def test_a_signed_object_that_is_not_a_policy_is_bad_schema(key):
    obj = policy().model_dump(mode="json")
    obj["version"] = "5"  # strict: a string is not a version
    with pytest.raises(PolicyRejected) as err:
        signing.verify(signing.sign(obj, key), signing.public_key_b64(key))
    assert err.value.reason == "bad_schema"


def test_key_file_is_created_with_mode_600_and_reloaded(tmp_path):
    path = tmp_path / "keys" / "policy-signing.key"
    old = os.umask(0o022)
    try:
        key = signing.load_or_create_private_key(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    again = signing.load_or_create_private_key(path)
    assert signing.public_key_b64(again) == signing.public_key_b64(key)
    assert not list(path.parent.glob("*.tmp"))


def test_a_key_file_with_something_else_is_an_error(tmp_path):
    path = tmp_path / "k.pem"
    path.write_text("hello\n")
    with pytest.raises(ValueError, match="not a PEM private key"):
        signing.load_or_create_private_key(path)


@pytest.mark.parametrize("value, says", [
    ("not base64!", "not base64"),
    (base64.b64encode(b"x" * 31).decode(), "32 bytes"),
])
def test_malformed_public_key(value, says):
    with pytest.raises(ValueError, match=says):
        signing.parse_public_key(value)
