"""A station whose SD card damaged its files while it was stopped: it starts with fresh storage,
takes the hub's retained policy, grants a badge and reports a forced door; the hub stores the
new incarnation from seq 1 without quarantine, says which events may be lost, and the audit
trail still verifies. Real agent (mock pins, stand-in reader), real mosquitto, real hub."""
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from device import unit_file
from device.agent import Agent
from device.simulate import set_door
from hub import config as hub_config
from hub.service import Hub
from tests.support.mosquitto import wait_for
from tests.support.stack import (
    HOLDER,
    ROOT,
    UNKNOWN,
    hub_db,
    query,
    write_hub_config,
    write_unit_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LOCK_PIN = 27
PAGE = 4096


def lock_energised(agent) -> bool:
    return agent.pin_factory.pin(LOCK_PIN).state == 1


def kinds_in_outbox(agent) -> list[str]:
    return [e.kind for e in agent.call(lambda a: a.outbox.events())]


def lose_the_events_page(outbox: Path) -> bytes:
    """Overwrite the events table's root page, as a failing card loses a block; the new bytes."""
    con = sqlite3.connect(outbox)
    (root,) = con.execute("SELECT rootpage FROM sqlite_master WHERE name='events'").fetchone()
    con.close()
    raw = bytearray(outbox.read_bytes())
    at = (root - 1) * PAGE
    raw[at:at + PAGE] = bytes(b ^ 0xFF for b in raw[at:at + PAGE])
    outbox.write_bytes(raw)
    return bytes(raw)


def test_a_station_with_damaged_storage_starts_fresh_and_the_hub_names_what_may_be_lost(own_broker, prefix, tmp_path):
    broker = own_broker
    hubcfg = write_hub_config(tmp_path, broker.port, prefix)
    unit = write_unit_config(tmp_path, broker.port, prefix)
    data = unit.parent / "cabinet-1-data"
    db = hub_db(hubcfg)

    # 1. In service: a grant stored at the hub, then three denials the hub never gets.
    hub = Hub(hub_config.load(hubcfg))
    hub.start()
    agent = Agent(unit_file.load(unit)).start()
    try:
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the station")
        agent.reader.tap(HOLDER)
        wait_for(lambda: lock_energised(agent), timeout=5, what="first grant")
        wait_for(lambda: agent.call(lambda a: a.outbox.depth()) == 0, timeout=15, what="all acked")
        last_stored = agent.call(lambda a: a.outbox.next_seq()) - 1
        old_incarnation = agent.outbox.incarnation
        broker.stop()  # nothing more reaches the hub, not even through its broker session
        for _ in range(3):
            agent.reader.tap(UNKNOWN)
            time.sleep(0.1)
        wait_for(lambda: kinds_in_outbox(agent).count("badge.denied") == 3, timeout=5, what="3 unsent denials")
    finally:
        agent.stop()
        hub.stop()
    assert query(db, "SELECT max(seq) FROM events WHERE station='cabinet-1'") == [(last_stored,)]
    broker.start()

    # 2. Stopped, the card damages the outbox and the policy cache.
    damaged = lose_the_events_page(data / "outbox.sqlite")
    (data / "policy.json").write_bytes(b"\x00\xff" * 200)

    # 3. Started again.
    hub = Hub(hub_config.load(hubcfg))
    hub.start()
    agent = Agent(unit_file.load(unit))
    try:
        kept = sorted(p.name for p in data.iterdir() if ".corrupt-" in p.name)
        assert [n for n in kept if n.startswith("outbox.sqlite.corrupt-") and not n.endswith(("-wal", "-shm"))]
        [outbox_kept] = [data / n for n in kept if n.startswith("outbox") and not n.endswith(("-wal", "-shm"))]
        assert outbox_kept.read_bytes() == damaged
        assert any(n.startswith("policy.json.corrupt-") for n in kept)

        agent.start()
        new_incarnation = agent.outbox.incarnation
        assert new_incarnation not in (None, old_incarnation)
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="retained policy")
        set_door(agent, True)  # nobody tapped: forced
        time.sleep(0.3)
        set_door(agent, False)
        time.sleep(0.3)  # past the debounce: the door is shut again
        agent.reader.tap(HOLDER)
        wait_for(lambda: lock_energised(agent), timeout=5, what="grant from the retained policy")

        rows = wait_for(
            lambda: (r := query(db, "SELECT seq, kind, data FROM events WHERE incarnation=? ORDER BY seq",
                                new_incarnation)) and any(k == "badge.granted" for _s, k, _d in r) and r,
            timeout=20, what="the new incarnation's events at the hub")
        seqs, kinds = [r[0] for r in rows], [r[1] for r in rows]
        assert seqs == list(range(1, len(rows) + 1))
        assert kinds[:3] == ["storage.corrupt", "storage.corrupt", "station.started"]
        assert "door.forced" in kinds and "badge.granted" in kinds
        first = json.loads(rows[0][2])
        assert first["store"] == "outbox" and first["moved_to"][0] == outbox_kept.name
        assert first["previous_incarnation"] == old_incarnation
        assert first["previous_highest_seq"] == last_stored + 3
        assert query(db, "SELECT reason FROM quarantine") == []
        # The old incarnation's history is intact.
        assert query(db, "SELECT count(*), max(seq) FROM events WHERE incarnation=?", old_incarnation) == [
            (last_stored, last_stored)]

        alerts = wait_for(lambda: query(db, "SELECT severity, message, params FROM alerts WHERE rule='storage_corrupt'"
                                            " ORDER BY id") if len(query(db, "SELECT id FROM alerts WHERE "
                                            "rule='storage_corrupt'")) == 2 else None,
                          timeout=15, what="two storage_corrupt alerts")
        outbox_alert = [a for a in alerts if json.loads(a[2])["store"] == "outbox"][0]
        assert outbox_alert[0] == "critical"
        assert f"events after seq {last_stored} of the previous storage may be lost" in outbox_alert[1]
        assert f"seq {last_stored + 1}-{last_stored + 3} never reached the hub" in outbox_alert[1]
        assert query(db, "SELECT count(*) FROM alerts WHERE rule='forced'") == [(1,)]
    finally:
        agent.stop()
        hub.stop()

    done = subprocess.run([sys.executable, "-m", "kagiban.cli", "verify", "--db", str(db)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chain intact" in done.stdout
