"""Many offices on loopback: a central broker running the shipped hub-host config with the
shipped office-bridge listener and ACL (config/mosquitto/kagiban.conf + offices.conf +
offices.acl), and office brokers bridged to it over TLS with the bridge config written by
scripts/kagiban-office-bridge and certificates made by scripts/kagiban-station-credentials;
and a TCP proxy that can blackhole an office's uplink. Used by tests/e2e/test_offices.py and
tests/security/test_office_bridge_acl.py.

As in tests/support/deployment.py, the shipped files are used as written; only ports and paths
are rewritten, each rewrite matching exactly the expected number of times.
"""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.deployment import CREDENTIALS_SCRIPT, REPO, WAIT_S, Deployment, run, start_deployment
from tests.support.mosquitto import Mosquitto, free_port, wait_for

OFFICES_CONF = REPO / "config" / "mosquitto" / "offices.conf"
OFFICES_ACL = REPO / "config" / "mosquitto" / "offices.acl"
BRIDGE_SCRIPT = REPO / "scripts" / "kagiban-office-bridge"


@dataclass
class Central:
    """The central broker: the deployment (hub listener, station listeners) plus the offices
    listener on ``office_port``."""

    dep: Deployment
    office_port: int
    acl: Path

    @property
    def broker(self) -> Mosquitto:
        return self.dep.broker

    def issue_office_cert(self, site: str) -> tuple[Path, Path]:
        """The office bridge's certificate (CN = site), made by the admin script with --office."""
        return self.dep.issue_cert(site, "--office")

    def add_office(self, site: str) -> None:
        """The office's block in the central ACL, by the bridge command; then a reload."""
        run([str(BRIDGE_SCRIPT), site, "--central", f"127.0.0.1:{self.office_port}",
             "--central-acl", str(self.acl)])
        self.dep.broker.proc.send_signal(1)  # SIGHUP: the ACL is read again
        time.sleep(0.3)


def adapt_offices_conf(text: str, *, port: int, certs: Path, acl: Path) -> str:
    """config/mosquitto/offices.conf with a test port and paths; every rewrite must match."""
    settings = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    rewrites = [
        ("listener 8885", f"listener {port} 127.0.0.1", 1),
        ("/etc/mosquitto/kagiban-offices.acl", str(acl), 1),
        ("/etc/mosquitto/certs/", f"{certs}/", 4),
    ]
    for old, new, count in rewrites:
        found = sum(ln.count(old) for ln in settings)
        assert found == count, f"offices.conf: expected {old!r} {count} time(s), found {found}"
        settings = [ln.replace(old, new) for ln in settings]
    leftover = [ln for ln in settings if "/etc/" in ln or "/var/" in ln]
    assert not leftover, f"offices.conf: paths the test does not know how to move: {leftover}"
    return "\n".join(settings) + "\n"


def start_central(d: Path) -> Central:
    """The hub host's broker with the offices listener appended, as docs/offices.md says."""
    dep = start_deployment(d)
    dep.broker.stop()
    acl = d / "kagiban-offices.acl"
    acl.write_bytes(OFFICES_ACL.read_bytes())
    acl.chmod(0o600)
    port = free_port()
    conf = dep.broker.conf
    conf.write_text(conf.read_text() + adapt_offices_conf(OFFICES_CONF.read_text(), port=port,
                                                          certs=d / "certs", acl=acl))
    dep.broker.start()
    dep.wait_listening()
    wait_for(lambda: _accepting(port), timeout=WAIT_S, what="the offices listener")
    return Central(dep, port, acl)


def start_office(d: Path, site: str, central: Central, uplink_port: int, stations: tuple[str, ...]) -> Deployment:
    """An office's broker as docs/offices.md sets it up: the shipped broker config
    (config/mosquitto/kagiban.conf and acl; its stations on the password and certificate
    listeners, persistence on) with the bridge config written by scripts/kagiban-office-bridge
    appended, reaching the central broker through ``uplink_port`` (the central offices
    listener, or a proxy to it). The office has its own CA for its stations; the bridge uses
    the office certificate the central CA issued."""
    office = start_deployment(d, stations=stations)
    office.broker.stop()
    crt, key = central.issue_office_cert(site)
    bridge = d / "kagiban-bridge.conf"
    run([str(BRIDGE_SCRIPT), site, "--central", f"127.0.0.1:{uplink_port}", "--out", str(bridge),
         "--ca-file", str(central.dep.ca), "--cert-file", str(crt.resolve()), "--key-file", str(key.resolve()),
         # Quick to notice a dead uplink (1.5 x 5 s, mosquitto's least) and to retry, for the test's time.
         "--keepalive", "5", "--retry", "1", "2"])
    conf = office.broker.conf
    conf.write_text(conf.read_text() + bridge.read_text())
    office.broker.start()
    office.wait_listening()
    return office


def _accepting(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Uplink:
    """A TCP proxy 127.0.0.1:port -> 127.0.0.1:target: an office's WAN link. ``cut()``
    blackholes it (bytes read and dropped both ways, nothing closed, new connections hang: a
    pulled cable as both ends see it); ``restore()`` closes the dead connections and forwards
    again. Every thread is a daemon and every wait is bounded."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="uplink", daemon=True).start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self.sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            while self._cut.is_set() and not self._stop.is_set():
                time.sleep(0.05)  # a dead link: the new connection hangs
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            src.settimeout(None)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self._cut.is_set():
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        self._cut.set()

    def restore(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                try:
                    s.close()
                except OSError:
                    pass
        self._cut.clear()

    def close(self) -> None:
        self._stop.set()
        self.restore()
        self.sock.close()


__all__ = ["CREDENTIALS_SCRIPT", "Central", "Uplink", "start_central", "start_office"]
