"""A key cabinet end to end: mock pins and the stand-in reader in a real agent, a real
mosquitto, a real hub and its SQLite file."""
import json
import time

import pytest

from device import unit_file
from device.agent import Agent
from device.simulate import set_door
from hub import config as hub_config
from hub.service import Hub
from tests.support.mosquitto import wait_for
from tests.support.stack import (
    HOLDER,
    UNKNOWN,
    hub_db,
    query,
    stored,
    write_hub_config,
    write_unit_config,
)

pytestmark = pytest.mark.e2e
LOCK_PIN = 27
GREEN_LED_PIN, RED_LED_PIN = 22, 23  # tests.support.stack's unit config


@pytest.fixture
def stack(broker, prefix, tmp_path):
    """A running hub and one running cabinet agent with its policy received."""
    hub = Hub(hub_config.load(write_hub_config(tmp_path, broker.port, prefix)))
    hub.start()
    agent = Agent(unit_file.load(write_unit_config(tmp_path, broker.port, prefix)))
    agent.start()
    wait_for(lambda: agent.call(lambda a: a.policy.version), timeout=15, what="policy at the station")
    yield hub, agent, hub_db(tmp_path / "hub.yaml")
    agent.stop()
    hub.stop()


def lock_energised(agent) -> bool:
    return agent.pin_factory.pin(LOCK_PIN).state == 1


def ever_on(agent, pin: int) -> bool:
    """Whether the output on ``pin`` has been on at any time (the mock pin keeps its changes:
    a feedback blink or an unlock may be over by the time the test looks)."""
    return any(change.state for change in agent.pin_factory.pin(pin).states)


def test_authorised_use_is_stored_in_order_acked_and_outbox_empties(stack):
    hub, agent, db = stack
    assert not lock_energised(agent)
    agent.reader.tap(HOLDER)
    wait_for(lambda: lock_energised(agent), timeout=5, what="lock released")
    set_door(agent, True)
    time.sleep(0.2)
    set_door(agent, False)
    expected = ["station.started", "badge.granted", "door.opened", "door.closed", "key.used"]
    rows = wait_for(lambda: (r := stored(db, "cabinet-1")) and len(r) >= 5 and r, timeout=15, what="5 events")
    assert [r[2] for r in rows] == expected
    assert [r[1] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[-1][3] == "S001"
    wait_for(lambda: agent.call(lambda a: a.outbox.depth()) == 0, timeout=10, what="outbox emptied by acks")
    [(data,)] = query(db, "SELECT data FROM events WHERE kind='key.used'")
    assert '"duration_s"' in data


def test_forced_door_is_stored_with_its_snapshot(stack):
    hub, agent, db = stack
    set_door(agent, True)
    forced = wait_for(
        lambda: query(db, "SELECT event_id FROM events WHERE kind='door.forced'"), timeout=10, what="forced"
    )
    event_id = forced[0][0]
    snap = wait_for(
        lambda: query(db, "SELECT content_type, image FROM snapshots WHERE event_id=?", event_id),
        timeout=10,
        what="snapshot of the forced door",
    )
    assert snap[0][0] == "image/jpeg" and snap[0][1][:2] == b"\xff\xd8"
    wait_for(lambda: agent.call(lambda a: a.outbox.snapshot_depth()) == 0, timeout=10, what="snapshot acked")
    set_door(agent, False)


def test_unknown_badge_is_denied_and_lock_untouched(stack):
    hub, agent, db = stack
    agent.reader.tap(UNKNOWN)
    denied = wait_for(
        lambda: query(db, "SELECT badge, data FROM events WHERE kind='badge.denied'"), timeout=10, what="denied"
    )
    assert denied[0][0] == UNKNOWN and '"unknown"' in denied[0][1]
    assert not lock_energised(agent)
    # The red LED told the person at once (and the green one stayed dark).
    assert ever_on(agent, RED_LED_PIN)
    assert not ever_on(agent, GREEN_LED_PIN)


def test_hub_down_the_cabinet_still_decides_from_its_cache(stack):
    hub, agent, db = stack
    hub.stop()
    agent.reader.tap(HOLDER)
    wait_for(lambda: lock_energised(agent), timeout=5, what="unlock from cached policy")
    agent.reader.tap(UNKNOWN)
    time.sleep(0.3)
    kinds = [e.kind for e in agent.call(lambda a: a.outbox.events())]
    assert "badge.granted" in kinds and "badge.denied" in kinds


def test_a_station_that_cannot_record_unlocks_nothing_and_the_hub_raises_the_alarm(stack):
    """Disk full at the station: SQLite's own limit on the outbox's size makes every write fail
    with "database or disk is full", as a full SD card would."""
    hub, agent, db = stack

    def disk_full(a):
        # Unsigned fillers: the hub refuses them (the station is enrolled), so no ack frees
        # their space, and every signed record is larger than the smallest of them.
        signer, a.outbox.signer = a.outbox.signer, None
        a.outbox.limit_pages()
        # Fill what is left of the last pages, smaller records last, so the very next record
        # (a tap is larger than the smallest filler) cannot be written.
        for pad in (500, 100, 10):
            for _ in range(200):
                try:
                    a.outbox.add("test.filler", a.wall(), data={"pad": "x" * pad})
                except Exception:
                    break
        a.outbox.signer = signer

    agent.call(disk_full)
    agent.reader.tap(HOLDER)
    # The station's heartbeat tells the hub it keeps the tap in memory: a critical alert.
    alert = wait_for(
        lambda: query(db, "SELECT severity, params FROM alerts WHERE rule='storage_failed'"),
        timeout=15, what="storage_failed alert at the hub",
    )
    assert alert[0][0] == "critical" and json.loads(alert[0][1])["unrecorded"] >= 1
    assert not ever_on(agent, LOCK_PIN), "a grant that cannot be recorded must not unlock"

    agent.call(lambda a: a.outbox.lift_page_limit())
    # The kept tap is recorded, sent and stored once the outbox can be written again.
    rows = wait_for(lambda: query(db, "SELECT kind, badge FROM events WHERE kind='badge.granted'"),
                    timeout=15, what="the kept tap stored at the hub")
    assert rows[0][1] == HOLDER
