"""Many offices on one central hub (issue 16, item 3), on loopback with real parts: a central
mosquitto running the shipped hub-host config with the shipped office listener and ACL, two
office mosquittos bridged to it over TLS (bridge config by scripts/kagiban-office-bridge,
certificates by scripts/kagiban-station-credentials), the hub in-process against the central
broker, and a real agent (mock pins, the stand-in reader) at each office on its own broker.

Office A's uplink is blackholed (a pulled cable: nothing closes) while badges are tapped in
both offices: A's station goes on deciding and keeping its events; the central status page
shows A stale and B reachable, in Japanese and in English; B's events keep arriving. When the
link is back, everything A recorded is stored exactly once, A is reachable again, and the
trail verifies. A message on A's tree claiming to be one of B's stations is quarantined.
"""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from device import unit_file
from bench.common import PartitionProxy
from device.agent import Agent
from hub import config as hub_config
from hub.accounts.users import add_user
from hub.audit import verify
from hub.service import Hub
from hub.stations.keys import enroll_local_unit
from hub.store.schema import events, quarantine
from tests.hub.helpers import encode, event
from tests.support.deployment import Deployment, Peer
from tests.support.mosquitto import wait_for
from tests.support.offices import start_central, start_office
from tests.support.stack import (
    UNKNOWN,
    policy_public_key,
    station_key_path,
    write_hub_config,
    write_unit_config,
)
from tests.support.web_app import PASSWORD, login

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PREFIX = "kagiban"  # the shipped ACLs are written for it
STALE_S = 8.0
A, B = "site-a", "site-b"
STATION_A, STATION_B = "cab-a1", "cab-b1"
_ROW = re.compile(r'<tr data-site="([^"]+)" data-state="([^"]+)"[^>]*>\s*<td>[^<]*</td>\s*'
                  r'<td><span class="pill state" data-state="[^"]+">([^<]+)</span>')


def office_rows(client) -> dict[str, tuple[str, str]]:
    """site -> (state, its word) from the central status page's offices table."""
    html = client.get("/").get_data(as_text=True)
    return {site: (state, word.strip()) for site, state, word in _ROW.findall(html)}


def write_hub(tmp: Path, port: int, password_file: Path) -> Path:
    """The central hub: both offices' stations listed per site, on the central broker's hub
    listener with its password, sites stale after STALE_S."""
    path = write_hub_config(tmp, port, PREFIX)
    body = yaml.safe_load(path.read_text())
    body["broker"].update(username="kagiban-hub", password_file=str(password_file))
    body["stations"] = [{"id": STATION_A, "site": A, "kind": "cabinet"},
                        {"id": STATION_B, "site": B, "kind": "cabinet"}]
    body["sites"] = {A: {"name": "A支所"}, B: {"name": "B支所"}}
    body["rules"] = {"site_stale_after_s": STALE_S}
    from tests.support.postgres import database_section

    body.update(database_section(tmp))
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    return path


def write_unit(tmp: Path, office: Deployment, station: str, site: str, hub_folder: Path) -> Path:
    """A simulated cabinet at an office, on that office's own broker (its password listener,
    TLS, as docs/install-pi.md sets a unit up), taking the hub's policies."""
    path = write_unit_config(tmp, office.pw_port, PREFIX, station=station)
    secret = tmp / f"{station}.password"
    secret.write_text(office.passwords[station])
    secret.chmod(0o600)
    body = yaml.safe_load(path.read_text())
    body["site"] = site
    body["broker"].update(username=station, password_file=str(secret), tls={"ca_file": str(office.ca)})
    body["reader"]["repeat_s"] = 0  # every tap is an event, however close to the last one
    body["policy"]["public_key"] = policy_public_key(hub_folder)
    path.write_text(yaml.safe_dump(body))
    return path


def tap(agent: Agent) -> None:
    agent.reader.tap(UNKNOWN)  # refused at the door, recorded: one event each


def last_seq(agent: Agent) -> int:
    return agent.call(lambda a: a.outbox.next_seq()) - 1


def stored_seqs(engine, station: str) -> list[int]:
    with engine.connect() as conn:
        return [r.seq for r in conn.execute(select(events.c.seq).where(events.c.station == station)
                                            .order_by(events.c.seq))]


@pytest.mark.timeout(400)  # three brokers, their CAs and certificates, on a shared 2-core machine
def test_an_office_cut_off_is_shown_stale_keeps_working_and_loses_nothing(store, tmp_path):
    central = start_central(tmp_path / "central")
    central.add_office(A)
    central.add_office(B)
    uplink_a = PartitionProxy(central.office_port)  # an office's WAN link
    # Office A's admin has also given a unit B's station id (a mix-up, or a hostile insider).
    office_a = start_office(tmp_path / "office-a", A, central, uplink_a.port, (STATION_A, STATION_B))
    office_b = start_office(tmp_path / "office-b", B, central, central.office_port, (STATION_B,))
    hub_password = tmp_path / "hub.password"
    hub_password.write_text(central.dep.passwords["kagiban-hub"])
    hub = Hub(hub_config.load(write_hub(tmp_path / "hub", central.dep.local_port, hub_password)))
    agents: list[Agent] = []
    try:
        hub.start()
        assert hub.engine is not None and hub.web is not None
        units = {STATION_A: write_unit(tmp_path / "units-a", office_a, STATION_A, A, tmp_path / "hub"),
                 STATION_B: write_unit(tmp_path / "units-b", office_b, STATION_B, B, tmp_path / "hub")}
        for station, unit in units.items():
            enroll_local_unit(hub.engine, station, station_key_path(unit))
        agent_a = Agent(unit_file.load(units[STATION_A])).start()
        agent_b = Agent(unit_file.load(units[STATION_B])).start()
        agents += [agent_a, agent_b]
        add_user(hub.engine, "sup-01", PASSWORD, "supervisor", display_name="職員0012", language="ja")
        add_user(hub.engine, "sup-02", PASSWORD, "supervisor", display_name="職員0013", language="en")
        page_ja, page_en = hub.web.app.test_client(), hub.web.app.test_client()
        login(page_ja, "sup-01")
        login(page_en, "sup-02")

        # Both offices heard through their bridges.
        wait_for(lambda: office_rows(page_ja) == {A: ("fresh", "受信中"), B: ("fresh", "受信中")},
                 timeout=30, what="both offices reachable")
        for _ in range(5):
            tap(agent_a)
            tap(agent_b)
        wait_for(lambda: all(stored_seqs(hub.engine, s) == list(range(1, last_seq(a) + 1))
                             for s, a in ((STATION_A, agent_a), (STATION_B, agent_b))),
                 timeout=30, what="the first taps stored")

        log_at = len(office_a.broker.log.read_text())
        uplink_a.cut()
        b_before = len(stored_seqs(hub.engine, STATION_B))
        # Badges tapped in both offices throughout, until office A's broker has noticed the dead
        # uplink (1.5 keepalives; it keeps retrying) and the central page shows A stale.
        deadline, taps = time.monotonic() + 60, 0
        while (taps < 20 or "Connecting bridge" not in office_a.broker.log.read_text()[log_at:]
               or office_rows(page_ja).get(A, ("",))[0] != "stale"):
            assert time.monotonic() < deadline, "office A never shown stale"
            tap(agent_a)
            tap(agent_b)
            taps += 1
            time.sleep(0.2)
        rows_ja, rows_en = office_rows(page_ja), office_rows(page_en)
        assert rows_ja == {A: ("stale", "途絶"), B: ("fresh", "受信中")}
        assert rows_en == {A: ("stale", "No word (stale)"), B: ("fresh", "Reachable")}
        html = page_ja.get("/").get_data(as_text=True)
        assert "A支所 から受信がありません" in html and "B支所 から" not in html
        # Office B is unaffected: its taps made during the cut are stored and acknowledged.
        wait_for(lambda: len(stored_seqs(hub.engine, STATION_B)) == last_seq(agent_b) >= b_before + 20,
                 timeout=30, what="B's taps stored during A's cut")
        # Office A goes on deciding: what it recorded waits in its outbox, unacknowledged.
        assert agent_a.call(lambda a: a.outbox.depth()) > 0
        a_cut_seq = last_seq(agent_a)
        assert len(stored_seqs(hub.engine, STATION_A)) < a_cut_seq

        for _ in range(5):
            tap(agent_a)
        uplink_a.heal()
        n_a = last_seq(agent_a)
        wait_for(lambda: len(stored_seqs(hub.engine, STATION_A)) >= n_a, timeout=60,
                 what=f"A's {n_a} events stored after the uplink is back")
        wait_for(lambda: agent_a.call(lambda a: a.outbox.depth()) == 0, timeout=30, what="A's outbox empty")
        assert stored_seqs(hub.engine, STATION_A) == list(range(1, n_a + 1))  # each exactly once
        assert stored_seqs(hub.engine, STATION_B) == list(range(1, last_seq(agent_b) + 1))
        wait_for(lambda: office_rows(page_en) == {A: ("fresh", "Reachable"), B: ("fresh", "Reachable")},
                 timeout=30, what="office A reachable again")

        # A message on office A's tree claiming to be office B's station: bridged (it is A's
        # tree), then quarantined by the hub, not stored.
        forged = Peer(office_a, name=STATION_B, password=office_a.passwords[STATION_B]).connect()
        try:
            topic = f"{PREFIX}/{A}/{STATION_B}/event"
            assert forged.publish(topic, encode(event(STATION_B, 999, site=A))) == 0  # the office's ACL lets it
        finally:
            forged.close()

        def quarantined():
            with hub.engine.connect() as conn:
                return conn.execute(select(quarantine.c.reason, quarantine.c.detail)
                                    .where(quarantine.c.topic == topic)).all()
        rows = wait_for(quarantined, timeout=20, what="the forged message quarantined")
        assert [r.reason for r in rows] == ["unknown_station"]
        assert f"listed in site {B}" in rows[0].detail
        with hub.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(events)
                                .where(events.c.seq == 999)).scalar() == 0

        out = io.StringIO()
        assert verify.run(hub.cfg.db_url(), out) == 0, out.getvalue()
    finally:
        for agent in agents:
            agent.stop()
        hub.stop()
        uplink_a.close()
        office_a.broker.stop()
        office_b.broker.stop()
        central.broker.stop()
