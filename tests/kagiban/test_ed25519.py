"""The station's Ed25519 keys (libsodium through PyNaCl) give the same key file, the same public
key and the same signature bytes as the ``cryptography`` keys used before, so what a station
signs checks at the hub (both of its backends) and in ``kagiban verify`` as it did."""
from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature as CryptographyInvalid
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.stations import ed25519_check
from kagiban import ed25519, signing
from kagiban.event_signing import EventSigner, SignatureError, check, load_station_key, split_event, station_key_pem


@settings(max_examples=60, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=2048))
def test_the_same_seed_signs_the_same_bytes_as_cryptography_and_each_checks_the_other(seed, message):
    ours = ed25519.PrivateKey.from_private_bytes(seed)
    theirs = Ed25519PrivateKey.from_private_bytes(seed)
    assert ours.public_key().public_bytes_raw() == theirs.public_key().public_bytes_raw()
    signature = ours.sign(message)
    assert signature == theirs.sign(message)  # Ed25519 is deterministic
    theirs.public_key().verify(signature, message)
    ours.public_key().verify(theirs.sign(message), message)


def test_a_changed_byte_or_another_key_is_refused_by_both():
    key = ed25519.PrivateKey.generate()
    signature = key.sign(b"door.opened")
    with pytest.raises(ed25519.InvalidSignature):
        key.public_key().verify(signature, b"door.closed")
    with pytest.raises(ed25519.InvalidSignature):
        ed25519.PrivateKey.generate().public_key().verify(signature, b"door.opened")
    with pytest.raises(ed25519.InvalidSignature):
        key.public_key().verify(signature[:63], b"door.opened")
    with pytest.raises(CryptographyInvalid):
        Ed25519PublicKey.from_public_bytes(key.public_key().public_bytes_raw()).verify(signature, b"door.closed")


def test_the_key_file_is_the_pkcs8_pem_cryptography_writes_and_reads(tmp_path):
    key = ed25519.PrivateKey.generate()
    pem = station_key_pem(key)
    same = Ed25519PrivateKey.from_private_bytes(key.private_bytes_raw())
    assert pem == same.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    assert signing.private_key_pem(key) == pem
    read = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(read, Ed25519PrivateKey) and read.private_bytes_raw() == key.private_bytes_raw()
    (tmp_path / "station.key").write_bytes(pem)
    assert load_station_key(tmp_path / "station.key").private_bytes_raw() == key.private_bytes_raw()
    assert signing.load_private_key(tmp_path / "station.key").public_key() == key.public_key()


def test_a_hub_key_file_of_another_kind_is_refused_naming_the_file(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

    other = tmp_path / "policy-signing.key"
    other.write_bytes(generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ValueError, match=f"{other}: not an Ed25519 key"):
        signing.load_private_key(other)
    (tmp_path / "junk.key").write_bytes(b"not a key")
    with pytest.raises(ValueError, match="junk.key: not a PEM private key"):
        load_station_key(tmp_path / "junk.key")


def test_a_station_signed_event_checks_at_the_hub_with_both_backends():
    key = ed25519.PrivateKey.generate()
    payload = EventSigner(key).sign_event(b'{"v":1,"kind":"badge.granted","data":{}}')
    split = split_event(payload)
    assert split is not None
    raw = key.public_key().public_bytes_raw()
    for backend in ("libsodium", "cryptography"):
        ed25519_check.check(raw, split.signature, split.signed, backend=backend)
        with pytest.raises(SignatureError):
            ed25519_check.check(raw, split.signature, split.signed.replace(b"granted", b"denied_x"), backend=backend)
    check(key.public_key(), split.signature, split.signed)  # kagiban verify's check
