"""Signed events end to end: a real agent enrolled at a real hub over a real mosquitto signs
every event and photo, ``kagiban verify`` checks them; the unit is then swapped for a new one
(a new key, a fresh outbox) and the trail keeps both."""
import shutil
import time
import subprocess
import sys

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
    hub_db,
    query,
    station_key_path,
    write_hub_config,
    write_unit_config,
)

pytestmark = pytest.mark.e2e


def _verify(db):
    return subprocess.run([sys.executable, "-m", "kagiban.cli", "verify", "--db", str(db)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_unit_signs_everything_and_its_replacement_starts_a_new_incarnation(broker, prefix, tmp_path):
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    db = hub_db(tmp_path / "hub.yaml")
    unit = write_unit_config(tmp_path, broker.port, prefix)  # enrolled by the stack
    try:
        agent = Agent(unit_file.load(unit)).start()
        wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the station")
        agent.reader.tap(HOLDER)
        wait_for(lambda: agent.pin_factory.pin(27).state == 1, timeout=5, what="lock released")
        set_door(agent, True)
        time.sleep(0.2)
        set_door(agent, False)
        wait_for(lambda: query(db, "SELECT 1 FROM events WHERE kind='key.used'"), timeout=15, what="key.used")
        wait_for(lambda: query(db, "SELECT 1 FROM snapshots"), timeout=15, what="a snapshot of the door")
        wait_for(lambda: agent.call(lambda a: a.outbox.depth()) == 0, timeout=10, what="outbox emptied")
        old_incarnation = agent.outbox.incarnation
        agent.stop()
        rows = query(db, "SELECT key_id, length(signature), incarnation FROM events")
        assert {r[0] for r in rows} == {agent.signer.key_id} and {r[1] for r in rows} == {88}
        assert query(db, "SELECT key_id FROM snapshots") == [(agent.signer.key_id,)]
        assert query(db, "SELECT count(*) FROM quarantine") == [(0,)]

        # The unit is swapped: new storage (a fresh outbox), a new key made on it and
        # registered with --replace (the CLI, as the install guide says).
        shutil.rmtree(station_key_path(unit).parent)
        done = subprocess.run([sys.executable, "-m", "kagiban.cli", "device", "enroll", "--config", str(unit)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT)
        line = next(x for x in done.stdout.splitlines() if "station-key add" in x).split()
        line[line.index("--config") + 1] = str(tmp_path / "hub.yaml")
        # A new unit does not know it replaces one: the admin adds --replace at the hub.
        added = subprocess.run([sys.executable, "-m", "kagiban.cli", *line[1:], "--replace"],
                               capture_output=True, text=True, timeout=60, cwd=ROOT)
        assert added.returncode == 0, added.stderr
        new = Agent(unit_file.load(unit)).start()
        try:
            assert new.outbox.incarnation != old_incarnation and new.signer.key_id != agent.signer.key_id
            wait_for(lambda: new.call(lambda a: a.policy.version), timeout=15, what="policy at the new unit")
            new.reader.tap(HOLDER)
            wait_for(lambda: query(db, "SELECT seq FROM events WHERE incarnation=? AND kind='badge.granted'",
                                   new.outbox.incarnation), timeout=15, what="the new unit's tap stored")
            wait_for(lambda: new.call(lambda a: a.outbox.depth()) == 0, timeout=10, what="new outbox emptied")
        finally:
            new.stop()
        first = query(db, "SELECT seq, key_id FROM events WHERE incarnation=? ORDER BY seq LIMIT 1",
                      new.outbox.incarnation)
        assert first == [(1, new.signer.key_id)]
    finally:
        hub.stop()
    result = _verify(db)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[1].startswith("signatures: OK: ")
    assert "against 2 station keys" in result.stdout
