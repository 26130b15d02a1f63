"""What the hub believes about a station's door, from its last heartbeat and its last door
event: one rule shared by the status page and the end-of-day close-out; which stations have a
door and a lock to show at all, and the lock's state as the station reported it."""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Mapping

# Door events and the state they leave the door in.
DOOR_KINDS = {"door.opened": "open", "door.forced": "open", "door.intrusion": "open", "door.closed": "closed"}

# Station kinds whose door a supervisor watches: a key cabinet's door and a restricted room's
# door. A shredder's bin door is not one (it has its own bin.opened/bin.closed events) and a
# printer has none, although their heartbeats say "closed".
DOOR_STATION_KINDS = frozenset({"cabinet", "door"})


def has_door(kind: str | None) -> bool:
    """Whether a station of ``kind`` has a door to show (a kind not known yet: shown)."""
    return kind is None or kind in DOOR_STATION_KINDS


def lock_state(kind: str | None, heartbeat: Mapping[str, Any]) -> str | None:
    """The lock as the station's last heartbeat reported it: "locked", "unlocked", "unknown"
    (a cabinet, which always has a lock, not heard from yet) or None (no lock: a door without
    a lock relay, a shredder, a printer)."""
    locked = heartbeat.get("locked")
    if isinstance(locked, bool) and has_door(kind):
        return "locked" if locked else "unlocked"
    # Older agents reported a shredder's or a printer's LED outputs as "locked": not a lock.
    return "unknown" if kind == "cabinet" else None


# What an event says of the lock (device/stations/cabinet.py, door.py): an allowed tap unlocks;
# an opening, authorised or not, relocks at once (the latch holds when the door shuts); an unlock
# window that ran out relocks. A window taken over by another tap (unlock.ended) stays unlocked.
LOCK_EVENTS = {"badge.granted": "unlocked", "door.opened": "locked", "door.forced": "locked",
               "door.intrusion": "locked", "unlock.expired": "locked"}


def lock_after(kind: str | None, event_kind: str, door: str | None) -> str | None:
    """The lock of a station of ``kind`` right after an event of ``event_kind``, its door being
    ``door`` ("open", "closed", "unknown"); None if the event says nothing of the lock, or the
    station has no lock to show. A tap while the door is open unlocks nothing: it joins the
    opening."""
    lock = LOCK_EVENTS.get(event_kind)
    if lock is None or not has_door(kind):
        return None
    if lock == "unlocked" and door == "open":
        return None
    return lock


def parse_time(value: Any) -> datetime | None:
    """A stored instant (UTC text or ISO 8601 with an offset) as an aware datetime."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def last_heartbeat(text: str | None) -> dict[str, Any]:
    """The stored JSON of a station's last heartbeat ({} if none or unreadable)."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def door_state(heartbeat: Mapping[str, Any], door_event: Mapping[str, Any] | None) -> tuple[str, datetime | None]:
    """("open" | "closed" | "unknown", since when) from whichever is newer: the last door event
    (immediate) or the heartbeat (periodic, but it covers a door found open at start)."""
    door, since = "unknown", None
    if heartbeat.get("door") in ("open", "closed"):
        door, since = heartbeat["door"], parse_time(heartbeat.get("at"))
    ev_door = DOOR_KINDS.get(door_event["kind"]) if door_event else None
    ev_at = parse_time(door_event["at_utc"]) if door_event and ev_door else None
    if ev_door is not None and ev_at is not None and (since is None or ev_at >= since):
        door, since = ev_door, ev_at
    return door, since
