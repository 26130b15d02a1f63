"""A failover pair of real ``kagiban hub`` processes on one PostgreSQL store, as deployed: two hub
files that differ only in the hub's name, data folder and web port; each hub's role read from its
/healthz; the store read back for the accounting (every seq once, alerts once).

Used by tests/hub/test_service_failover.py and bench/faults/failover.py. The processes are
started through ``spawn(argv, log)`` so the caller's clean-up (a test's, a bench run's) owns them.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from bench.common import outbox_file_state
from demo.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
Spawn = Callable[[list[str], Path], subprocess.Popen]
NAMES = ("hub-a", "hub-b")


@dataclass
class PairHub:
    """One hub of the pair: its file, web port, log and process."""

    name: str
    config: Path
    web_port: int
    log: Path
    proc: subprocess.Popen | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def health(self) -> dict[str, Any] | None:
        """Its /healthz body, or None while it does not answer."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 503: the store does not answer; still a body
            try:
                return json.loads(exc.read())
            except ValueError:
                return None
        except (OSError, ValueError):
            return None

    def role(self) -> str | None:
        body = self.health()
        return None if body is None else body.get("hub", {}).get("role")


@dataclass
class HubPair:
    """Two hubs (hub-a, hub-b) on the store at ``url``, one broker, one topic prefix."""

    folder: Path
    broker_port: int
    prefix: str
    url: str
    spawn: Spawn
    staff: dict[str, Any]
    policy_key: Path
    poll_s: float = 1.0
    hubs: dict[str, PairHub] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in NAMES:
            folder = self.folder / name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "staff.yaml").write_text(yaml.safe_dump(self.staff, allow_unicode=True))
            port = free_port()
            # Each hub's own connections named, so a test can end exactly this hub's sessions.
            db_url = make_url(self.url).update_query_dict({"application_name": f"kagiban-{name}"})
            body = {
                "broker": {"host": "127.0.0.1", "port": self.broker_port, "prefix": self.prefix, "keepalive_s": 5},
                "data_dir": "data",
                "staff_file": "staff.yaml",
                "database": {"url": db_url.render_as_string(hide_password=False)},
                # No client_id: each hub's is kagiban-hub-<hub_name>.
                "web": {"enabled": True, "port": port},
                # One pair, one key for policies and one for checkpoints (the stations trust one).
                "policy": {"signing_key_file": str(self.policy_key)},
                "audit": {"signing_key_file": str(self.folder / "audit-signing.key")},
                "failover": {"enabled": True, "hub_name": name, "poll_s": self.poll_s,
                             "web_url": f"http://127.0.0.1:{port}"},
            }
            config = folder / "hub.yaml"
            config.write_text(yaml.safe_dump(body, allow_unicode=True))
            self.hubs[name] = PairHub(name, config, port, folder / "hub.log")

    def start(self, name: str) -> PairHub:
        hub = self.hubs[name]
        hub.proc = self.spawn([sys.executable, "-m", "kagiban.cli", "hub", "--config", str(hub.config)], hub.log)
        hub.starts += 1
        return hub

    def other(self, name: str) -> str:
        return NAMES[1 - NAMES.index(name)]

    def wait_role(self, name: str, role: str, timeout: float) -> float:
        """Seconds until hub ``name`` says it is ``role``; TimeoutError (with its log) if not."""
        hub = self.hubs[name]
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if hub.role() == role:
                return time.monotonic() - t0
            if not hub.alive():
                raise RuntimeError(f"{name} exited ({hub.proc.returncode if hub.proc else None}): {self.tail(name)}")
            time.sleep(0.1)
        raise TimeoutError(f"{name} not {role} within {timeout:.0f} s: {self.tail(name)}")

    def active(self) -> str | None:
        """The hub that took the lease last, as the store says (its newest ``hub_leases`` row)."""
        rows = store_query(self.url, "SELECT hub FROM hub_leases ORDER BY epoch DESC LIMIT 1")
        return rows[0][0] if rows else None

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            return "\n".join(self.hubs[name].log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def store_query(url: str, sql: str, **params: Any) -> list[tuple]:
    """Rows of ``sql`` on the store at ``url`` (a connection of its own, closed after)."""
    engine = create_engine(make_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]
    finally:
        engine.dispose()


@dataclass(frozen=True)
class StationCount:
    """One station's events in the store against the seqs its outbox allocated."""

    station: str
    generated: int
    stored: int
    duplicated: int
    lost: list[int]


def count_station(url: str, station: str, generated: int) -> StationCount:
    seqs = [s for (s,) in store_query(url, "SELECT seq FROM events WHERE station = :s", s=station)]
    return StationCount(station, generated, len(seqs), len(seqs) - len(set(seqs)),
                        sorted(set(range(1, generated + 1)) - set(seqs)))


def alert_counts(url: str) -> tuple[int, int, int]:
    """(badge.denied events stored, denied alerts raised, (event, rule) pairs raised twice or more)."""
    denied_events = store_query(url, "SELECT count(*) FROM events WHERE kind = 'badge.denied'")[0][0]
    denied_alerts = store_query(url, "SELECT count(*) FROM alerts WHERE rule = 'denied'")[0][0]
    twice = store_query(url, "SELECT count(*) FROM (SELECT event_id, rule FROM alerts WHERE event_id IS NOT NULL "
                             "GROUP BY event_id, rule HAVING count(*) > 1) AS d")[0][0]
    return denied_events, denied_alerts, twice


def verify(url: str) -> tuple[int, str]:
    """``kagiban verify --db URL``: (exit code, output)."""
    out = subprocess.run([sys.executable, "-m", "kagiban.cli", "verify", "--db", url],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    return out.returncode, (out.stdout + out.stderr).strip()


def outbox_state(data_dir: Path) -> tuple[int, int]:
    """(events waiting, last seq allocated) of the outbox in a unit's data folder."""
    return outbox_file_state(data_dir / "outbox.sqlite")
