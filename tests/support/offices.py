"""Many offices on loopback: a central broker running the shipped hub-host config with the
shipped office-bridge listener and ACL (config/mosquitto/kagiban.conf + offices.conf +
offices.acl), and office brokers bridged to it over TLS with the bridge config written by
scripts/kagiban-office-bridge and certificates made by scripts/kagiban-station-credentials
(an office's uplink is cut with bench.common.PartitionProxy). Used by tests/e2e/test_offices.py and
tests/security/test_office_bridge_acl.py.

As in tests/support/deployment.py, the shipped files are used as written; only ports and paths
are rewritten, each rewrite matching exactly the expected number of times.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.deployment import CREDENTIALS_SCRIPT, REPO, WAIT_S, Deployment, accepting, run, start_deployment
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
    wait_for(lambda: accepting(port), timeout=WAIT_S, what="the offices listener")
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


__all__ = ["CREDENTIALS_SCRIPT", "Central", "start_central", "start_office"]
