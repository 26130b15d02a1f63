"""The local broker with users (what the demo runs): only the listed users get in, with their own
password; anonymous clients and wrong passwords are refused; a user's name is its client id, so
a second client claiming another's id knocks nobody off; the passwords live in private files."""
from __future__ import annotations

import stat
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from demo.broker import Mosquitto, generate_credentials
from tests.support.mosquitto import wait_for

WAIT_S = 10.0


class _Client:
    def __init__(self, port: int, username: str | None, password: str | None, client_id: str | None = None):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5,
                                  client_id=client_id or f"t-{uuid.uuid4().hex[:8]}")
        self.client.reconnect_delay_set(120, 120)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.connack = None
        self.closed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: setattr(self, "connack", rc)
        self.client.on_disconnect = lambda c, u, f, rc, p: self.closed.set()
        self.client.connect("127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def accepted(self) -> bool:
        wait_for(lambda: self.connack is not None or self.closed.is_set(), timeout=WAIT_S, what="CONNACK")
        return self.connack is not None and not self.connack.is_failure

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured(tmp_path):
    creds = generate_credentials(tmp_path / "credentials", ["kagiban-hub", "cabinet-1"])
    broker = Mosquitto(tmp_path / "mosquitto", users=creds).start()
    made: list[_Client] = []

    def client(*args, **kw) -> _Client:
        made.append(_Client(broker.port, *args, **kw))
        return made[-1]

    yield creds, client
    for c in made:
        c.close()
    broker.stop()


def _password(creds, name: str) -> str:
    return creds[name].read_text().strip()


def test_only_listed_users_with_their_own_password_get_in(secured):
    creds, client = secured
    assert client("kagiban-hub", _password(creds, "kagiban-hub")).accepted()
    assert client("cabinet-1", _password(creds, "cabinet-1")).accepted()
    assert not client(None, None).accepted()  # anonymous
    assert not client("cabinet-1", _password(creds, "kagiban-hub")).accepted()
    assert not client("cabinet-9", "guessed-password-123").accepted()


def test_another_users_client_id_knocks_nobody_off(secured):
    creds, client = secured
    hub = client("kagiban-hub", _password(creds, "kagiban-hub"), client_id="kagiban-hub")
    assert hub.accepted()
    intruder = client("cabinet-1", _password(creds, "cabinet-1"), client_id="kagiban-hub")
    assert intruder.accepted()
    assert not hub.closed.wait(1.0), "the hub was knocked off by a client claiming its id"


def test_passwords_are_fresh_private_files(tmp_path):
    first = generate_credentials(tmp_path / "c", ["kagiban-hub", "door-1"])
    values = {name: path.read_text() for name, path in first.items()}
    assert len(set(values.values())) == 2 and all(len(v) >= 32 for v in values.values())
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700
    for path in first.values():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = generate_credentials(tmp_path / "c", ["kagiban-hub", "door-1"])
    assert all(again[name].read_text() != values[name] for name in values)
