"""The hub's ingest check of a station signature: libsodium and cryptography give the same
verdict on a good signature and on every kind of bad one."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hub.stations import ed25519_check
from kagiban.event_signing import SignatureError

KEY = Ed25519PrivateKey.generate()
RAW = KEY.public_key().public_bytes_raw()
MESSAGE = '{"v":1,"kind":"key.used","person":"staff-001","data":{"note":"鍵"}}'.encode()
GOOD = base64.b64encode(KEY.sign(MESSAGE)).decode()
BACKENDS = ["libsodium", "cryptography"]


def test_ingest_uses_libsodium_where_it_is_installed():
    assert ed25519_check.BACKEND == "libsodium"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_good_signature_passes(backend):
    ed25519_check.check(RAW, GOOD, MESSAGE, backend=backend)


def _other_signature() -> str:
    raw = bytearray(base64.b64decode(GOOD))
    raw[10] ^= 1
    return base64.b64encode(bytes(raw)).decode()


BAD = {
    "altered message": (RAW, GOOD, MESSAGE.replace(b"staff-001", b"staff-002")),
    "altered signature": (RAW, _other_signature(), MESSAGE),
    "another key": (Ed25519PrivateKey.generate().public_key().public_bytes_raw(), GOOD, MESSAGE),
    "not base64": (RAW, "not*base64", MESSAGE),
    "short signature": (RAW, base64.b64encode(base64.b64decode(GOOD)[:63]).decode(), MESSAGE),
    "signature with the message's first byte": (RAW, base64.b64encode(base64.b64decode(GOOD) + b"{").decode(),
                                                MESSAGE[1:]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_signature_is_refused_alike(backend, case):
    with pytest.raises(SignatureError) as err:
        ed25519_check.check(*BAD[case], backend=backend)
    assert err.value.reason == "bad_signature"
