"""What the hub reads of a station's lock from its events (hub.stations.state.lock_after): a
cabinet's allowed tap unlocks unless its door is already open; an opening, forced or not, and
an unlock window that ran out relock; other events, and stations without a lock, say nothing."""
from __future__ import annotations

import pytest

from hub.stations.state import lock_after


@pytest.mark.parametrize("event_kind, door, lock", [
    ("badge.granted", "closed", "unlocked"),
    ("badge.granted", "unknown", "unlocked"),
    ("badge.granted", "open", None),  # the tap joins the opening; nothing was unlocked
    ("door.opened", "open", "locked"),
    ("door.forced", "open", "locked"),
    ("unlock.expired", "closed", "locked"),
    ("unlock.ended", "closed", None),  # taken over by another tap: still unlocked
    ("badge.denied", "closed", None),
    ("door.closed", "closed", None),
    ("key.used", "closed", None),
])
def test_a_cabinets_lock_after_each_event(event_kind, door, lock):
    assert lock_after("cabinet", event_kind, door) == lock


def test_a_restricted_door_intrusion_relocks_and_stations_without_a_lock_say_nothing():
    assert lock_after("door", "door.intrusion", "open") == "locked"
    assert lock_after("shredder", "badge.granted", "closed") is None
    assert lock_after("printer", "badge.granted", "closed") is None
