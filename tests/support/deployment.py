"""The deployment broker on a test machine: the repository's own broker config and ACL, run by a
real mosquitto on loopback with a throwaway CA, certificates, CRL and password files made by
the admin script, and a paho client (Peer) that records what the broker tells it. Used by
tests/deploy and tests/security.

The deployment config (config/mosquitto/kagiban.conf) is used as written, with only what must
differ on a test machine rewritten: listener ports (bound to 127.0.0.1), file paths under
/etc/mosquitto and /var/lib/mosquitto, and the optional password listener un-commented. Each
rewrite must match exactly once, so a change to the deployment file that the test no longer
understands fails loudly instead of testing something else.
"""
from __future__ import annotations

import os
import re
import shutil
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from tests.support.mosquitto import Mosquitto, free_port, wait_for

REPO = Path(__file__).resolve().parents[2]
BROKER_CONF = REPO / "config" / "mosquitto" / "kagiban.conf"
ACL_FILE = REPO / "config" / "mosquitto" / "acl"
CREDENTIALS_SCRIPT = REPO / "scripts" / "kagiban-station-credentials"

WAIT_S = 10.0  # every wait for the broker is bounded by this


def run(cmd: list[str], *, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a command with a time limit, capturing its output as text."""
    done = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise AssertionError(f"{cmd[0]} exited {done.returncode}: {done.stderr.strip()[-1000:]}")
    return done


def make_ca(folder: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA (certificate, key) in ``folder``."""
    crt, key = folder / f"{name}.crt", folder / f"{name}.key"
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(crt), "-subj", f"/CN={name}", "-days", "2"])
    return crt, key


def make_broker_cert(folder: Path, ca_crt: Path, ca_key: Path) -> None:
    """broker.crt/broker.key for 127.0.0.1, signed by the CA (the names kagiban.conf expects)."""
    ext = folder / "broker.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", str(folder / "broker.key"), "-out", str(folder / "broker.csr"), "-subj", "/CN=localhost"])
    run(["openssl", "x509", "-req", "-in", str(folder / "broker.csr"), "-CA", str(ca_crt),
         "-CAkey", str(ca_key), "-set_serial", "1", "-days", "2", "-extfile", str(ext),
         "-out", str(folder / "broker.crt")])


def uncomment_password_listener(text: str) -> str:
    """Enable the optional password listener: drop the '#' of config lines between the markers."""
    out, inside, seen = [], False, 0
    for line in text.splitlines():
        if line.startswith("# --- BEGIN password listener"):
            inside, seen = True, seen + 1
            continue
        if line.startswith("# --- END password listener"):
            inside = False
            continue
        if inside and re.match(r"#\S", line):
            line = line[1:]
        out.append(line)
    assert seen == 1 and not inside, "kagiban.conf: password listener markers not found once"
    return "\n".join(out) + "\n"


def adapt_config(text: str, *, local_port: int, cert_port: int, pw_port: int, certs: Path,
                 acl: Path, hub_passwd: Path, stations_passwd: Path, persist: Path) -> str:
    """The deployment config with test ports and paths; every rewrite must match exactly once."""
    text = uncomment_password_listener(text)
    # Only settings are rewritten (comments keep naming the real paths).
    settings = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    rewrites = [
        ("listener 1883 127.0.0.1", f"listener {local_port} 127.0.0.1", 1),
        ("listener 8883", f"listener {cert_port} 127.0.0.1", 1),
        ("listener 8884", f"listener {pw_port} 127.0.0.1", 1),
        ("persistence_location /var/lib/mosquitto/", f"persistence_location {persist}/", 1),
        ("/etc/mosquitto/kagiban-hub.passwd", str(hub_passwd), 1),
        ("/etc/mosquitto/kagiban-stations.passwd", str(stations_passwd), 1),
        ("/etc/mosquitto/kagiban.acl", str(acl), 3),
        ("/etc/mosquitto/certs/", f"{certs}/", 7),
    ]
    for old, new, count in rewrites:
        found = sum(ln.count(old) for ln in settings)
        assert found == count, f"kagiban.conf: expected {old!r} {count} time(s), found {found}"
        settings = [ln.replace(old, new) for ln in settings]
    leftover = [ln for ln in settings if "/etc/" in ln or "/var/" in ln]
    assert not leftover, f"kagiban.conf: paths the test does not know how to move: {leftover}"
    text = "\n".join(settings) + "\n"
    if os.geteuid() == 0:
        # As root, mosquitto drops to user "mosquitto" before reading the ACL, the password file
        # and the keys, which that user cannot reach in a private temp folder.
        text = "user root\n" + text
    return text


@dataclass
class Deployment:
    """A running broker from the deployment config, and what clients need to reach it."""

    broker: Mosquitto
    local_port: int
    cert_port: int
    pw_port: int
    ca: Path
    folder: Path
    passwords: dict[str, str]
    certs: dict[str, tuple[Path, Path]]
    ca_key: Path
    crl: Path
    hub_passwd: Path
    stations_passwd: Path

    def wait_listening(self) -> None:
        for port in (self.local_port, self.cert_port, self.pw_port):
            wait_for(lambda: accepting(port), timeout=WAIT_S, what=f"listener on {port}")

    def restart(self) -> None:
        """systemctl restart mosquitto: a clean stop (its state saved) and a start."""
        self.broker.restart()
        self.wait_listening()

    def script(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """scripts/kagiban-station-credentials with this deployment's CA and CRL, not checked."""
        return run([str(CREDENTIALS_SCRIPT), *args], input=input, check=False)

    def ca_args(self) -> list[str]:
        return ["--ca-cert", str(self.ca), "--ca-key", str(self.ca_key), "--crl", str(self.crl)]

    def issue_cert(self, name: str, *extra: str) -> tuple[Path, Path]:
        """A client certificate for ``name`` made by the admin script (recorded in the CA database)."""
        out = self.folder / "clients" / uuid.uuid4().hex[:8]
        done = self.script("cert", name, "--ca-cert", str(self.ca), "--ca-key", str(self.ca_key),
                           "--out", str(out), "--days", "2", *extra)
        assert done.returncode == 0, done.stderr
        return out / f"{name}.crt", out / f"{name}.key"


STATIONS = ("cabinet-1", "cabinet-2")


def start_deployment(d: Path, stations: tuple[str, ...] = STATIONS) -> Deployment:
    """mosquitto running config/mosquitto/kagiban.conf with config/mosquitto/acl in folder ``d``:
    the hub and ``stations`` each with a password and a certificate. Stop it with
    ``.broker.stop()``."""
    certs = d / "certs"
    certs.mkdir(parents=True)
    ca_crt, ca_key = make_ca(certs, "ca")
    make_broker_cert(certs, ca_crt, ca_key)
    crl = certs / "ca.crl"

    # The first, empty CRL and the client certificates made by the admin script, as an admin would.
    run([str(CREDENTIALS_SCRIPT), "crl", "--ca-cert", str(ca_crt), "--ca-key", str(ca_key), "--crl", str(crl)])
    client_certs: dict[str, tuple[Path, Path]] = {}
    for name in (*stations, "kagiban-hub"):
        extra = ["--hub"] if name == "kagiban-hub" else []
        run([str(CREDENTIALS_SCRIPT), "cert", name, "--ca-cert", str(ca_crt), "--ca-key", str(ca_key),
             "--out", str(d / "clients"), "--days", "2", *extra])
        client_certs[name] = (d / "clients" / f"{name}.crt", d / "clients" / f"{name}.key")

    # The password files: the hub's with mosquitto_passwd itself, the stations' with the script.
    hub_passwd, stations_passwd = d / "kagiban-hub.passwd", d / "kagiban-stations.passwd"
    passwords = {name: uuid.uuid4().hex for name in ("kagiban-hub", *stations)}
    run(["mosquitto_passwd", "-c", "-b", str(hub_passwd), "kagiban-hub", passwords["kagiban-hub"]])
    for name in stations:
        run([str(CREDENTIALS_SCRIPT), "password", name, "--passwd-file", str(stations_passwd), "--stdin"],
            input=passwords[name] + "\n")

    acl = d / "kagiban.acl"
    acl.write_bytes(ACL_FILE.read_bytes())
    for f in (acl, hub_passwd, stations_passwd):
        f.chmod(0o600)
    persist = d / "persist"
    persist.mkdir()

    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port not in ports:
            ports.append(port)
    local_port, cert_port, pw_port = ports
    broker = Mosquitto(d / "broker", port=local_port)
    broker.conf.write_text(
        adapt_config(BROKER_CONF.read_text(), local_port=local_port, cert_port=cert_port, pw_port=pw_port,
                     certs=certs, acl=acl, hub_passwd=hub_passwd, stations_passwd=stations_passwd,
                     persist=persist)
    )
    dep = Deployment(broker, local_port, cert_port, pw_port, ca_crt, d, passwords, client_certs,
                     ca_key, crl, hub_passwd, stations_passwd)
    broker.start()
    dep.wait_listening()
    return dep


def accepting(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Peer:
    """A paho MQTT v5 client that records what the broker tells it.

    Listener: "local" (loopback, plain, the hub's), "password" (TLS + password, stations
    without a certificate; the default) or "cert" (TLS + client certificate; implied by cert=).
    The client id is a random one unless given; ``session_expiry`` (seconds) asks for a
    persistent session, ``clean_start=False`` resumes one.
    """

    def __init__(self, dep: Deployment, *, name: str, password: str | None = None,
                 cert: tuple[Path, Path] | None = None, ca: Path | None = None,
                 username: str | None = None, listener: str | None = None,
                 client_id: str | None = None, clean_start: bool = True, session_expiry: int | None = None):
        self.name = name
        self.dep = dep
        listener = listener or ("cert" if cert else "password")
        self.port = {"local": dep.local_port, "cert": dep.cert_port, "password": dep.pw_port}[listener]
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-{name}-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        # A client the broker closes stays closed for the test (FIELD-NOTES: two clients under
        # one identity would otherwise knock each other off in a loop).
        self.client.reconnect_delay_set(120, 120)
        self.clean_start = clean_start
        self.session_expiry = session_expiry
        if listener != "local":
            self.client.tls_set(
                ca_certs=str(ca or dep.ca),
                certfile=str(cert[0]) if cert else None,
                keyfile=str(cert[1]) if cert else None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        if password is not None or username is not None:
            self.client.username_pw_set(username if username is not None else name, password)
        self._lock = threading.Lock()
        self.connack: mqtt.ReasonCode | None = None
        self.connack_properties = None
        self.session_present: bool | None = None
        self.disconnected = threading.Event()
        self.disconnect_reason: mqtt.ReasonCode | None = None
        self.pubacks: dict[int, mqtt.ReasonCode] = {}
        self.subacks: dict[int, list] = {}
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        self.connack = reason_code
        self.session_present = bool(flags.session_present)
        self.connack_properties = properties

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        if not self.disconnected.is_set():
            self.disconnect_reason = reason_code
        self.disconnected.set()

    def _on_publish(self, client, userdata, mid, reason_code, properties):
        with self._lock:
            self.pubacks[mid] = reason_code

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        with self._lock:
            self.subacks[mid] = list(reason_codes)

    def _on_message(self, client, userdata, message):
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def try_connect(self, timeout: float = WAIT_S) -> bool:
        """True if the broker accepted the connection; False if it refused or hung up."""
        try:
            properties = None
            if self.session_expiry is not None:
                from paho.mqtt.packettypes import PacketTypes

                properties = mqtt.Properties(PacketTypes.CONNECT)
                properties.SessionExpiryInterval = self.session_expiry
            self.client.connect("127.0.0.1", self.port, keepalive=10, clean_start=self.clean_start,
                                properties=properties)
        except (OSError, ssl.SSLError):
            return False
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connack is not None:
                return not self.connack.is_failure
            if self.disconnected.is_set():
                return False
            time.sleep(0.02)
        return False

    def connect(self) -> "Peer":
        assert self.try_connect(), f"{self.name} could not connect: {self.connack}"
        return self

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> mqtt.ReasonCode | None:
        """Publish and, for QoS 1, wait for the broker's PUBACK and return its reason code."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        assert info.rc == mqtt.MQTT_ERR_SUCCESS, f"paho refused to send: {info.rc}"
        if qos == 0:
            return None
        return wait_for(lambda: self.pubacks.get(info.mid), timeout=WAIT_S, what=f"PUBACK for {topic}")

    def subscribe(self, topic: str) -> list:
        """Subscribe at QoS 1 and return the SUBACK reason codes."""
        _, mid = self.client.subscribe(topic, qos=1)
        return wait_for(lambda: self.subacks.get(mid), timeout=WAIT_S, what=f"SUBACK for {topic}")

    def received(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t == topic]

    def wait_message(self, topic: str, payload: bytes) -> None:
        wait_for(lambda: payload in self.received(topic), timeout=WAIT_S, what=f"{payload!r} on {topic}")

    def close(self) -> None:
        try:
            self.client.disconnect()
        finally:
            self.client.loop_stop()




def require_broker_tools() -> None:
    """Fail loudly (never skip) when the parts the deployment runs are missing: the test
    command installs them (scripts/install-deps)."""
    missing = [t for t in ("mosquitto", "mosquitto_passwd", "openssl") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(f"not installed: {', '.join(missing)} (scripts/install-deps --test installs them)")


@contextmanager
def peer_factory(dep: Deployment) -> Iterator[Callable[..., Peer]]:
    """``make(name, connect=True, **kw)`` makes clients of ``dep``; all are closed afterwards."""
    made: list[Peer] = []

    def make(name: str, *, connect: bool = True, **kw) -> Peer:
        p = Peer(dep, name=name, **kw)
        made.append(p)
        return p.connect() if connect else p

    try:
        yield make
    finally:
        for p in made:
            p.close()
