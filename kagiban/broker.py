"""How a station or the hub reaches mosquitto: the shared ``broker:`` config section and a
paho-mqtt client built from it (MQTT v5, plain / username+password / TLS client certificates).

Secrets (the password, the private key's location is not a secret) come from the environment
or a file, never from YAML.
"""
from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path
from typing import Annotated

import msgspec
import paho.mqtt.client as mqtt
from msgspec import Meta

from kagiban.configfile import read_secret
from kagiban.wire import DEFAULT_PREFIX


class TLSConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """TLS to the broker; with cert_file/key_file the broker can take the identity as username."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")


class BrokerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``broker:`` section shared by station and hub configs (the hub's pydantic file holds
    this one definition: hub.config reads it with kagiban.configfile.convert)."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=1, le=65535)] = 1883
    prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")] = DEFAULT_PREFIX
    keepalive_s: Annotated[int, Meta(ge=2, le=3600)] = 15
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    tls: TLSConfig | None = None


def make_client(
    cfg: BrokerConfig,
    client_id: str,
) -> mqtt.Client:
    """A paho VERSION2 client speaking MQTT v5, with auth and TLS applied from ``cfg``."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
    )
    password = read_secret(cfg.password_env, cfg.password_file, "broker password")
    if cfg.username or password:
        client.username_pw_set(cfg.username, password)
    if cfg.tls is not None:
        # Paths may name systemd credentials: ${CREDENTIALS_DIRECTORY}/mqtt-key.
        def path(p: Path | None) -> str | None:
            return os.path.expandvars(str(p)) if p is not None else None

        client.tls_set(
            ca_certs=path(cfg.tls.ca_file),
            certfile=path(cfg.tls.cert_file),
            keyfile=path(cfg.tls.key_file),
            cert_reqs=ssl.CERT_REQUIRED,
        )
    # paho leaves Nagle's algorithm on: a small packet written right after another (a PUBACK,
    # then a PUBLISH) waits for the peer's delayed ACK, up to 40 ms on Linux (bench/alert_latency.py).
    client.on_socket_open = _no_delay
    # Unbounded in-flight queue inside paho: our own window limits what we hand it.
    client.max_inflight_messages_set(100)
    client.max_queued_messages_set(0)
    client.reconnect_delay_set(min_delay=1, max_delay=5)
    return client


def _no_delay(_client: mqtt.Client, _userdata, sock) -> None:
    """Set TCP_NODELAY on the broker connection as soon as paho opens it."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (OSError, AttributeError):  # not a TCP socket (e.g. a WebSocket wrapper): leave it
        pass


def connect_properties(persistent_session: bool) -> mqtt.Properties | None:
    """CONNECT properties: a persistent session keeps the hub's queue while it restarts.

    The deployment's broker keys every session by the client's user name
    (``use_username_as_clientid``), so the session is the hub account's whatever client id is
    configured, and no other account can take it."""
    if not persistent_session:
        return None
    from paho.mqtt.packettypes import PacketTypes

    props = mqtt.Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 7 * 24 * 3600
    return props
