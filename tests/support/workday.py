"""A day at the ward, fed through tests.support.alert_stack, for the close-out and checkpoint
tests: keys used and returned, one cabinet left open, a held print queue, a shredding pair off
the roster, and a station that went offline (Tuesday 2025-04-01, Asia/Tokyo)."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from hub import registry
from tests.hub.helpers import SITE, heartbeat, status
from tests.support.alert_stack import TUESDAY, Stack, ev

ZONE = ZoneInfo("Asia/Tokyo")
DAY = date(2025, 4, 1)
STATIONS = [
    {"id": "cabinet-1", "site": SITE, "kind": "cabinet", "name": "Key cabinet 1"},
    {"id": "cabinet-2", "site": SITE, "kind": "cabinet", "name": "Key cabinet 2"},
    {"id": "door-1", "site": SITE, "kind": "door", "name": "Back office door"},
    {"id": "shredder-1", "site": SITE, "kind": "shredder", "name": "Shredder 2F"},
    {"id": "printer-1", "site": SITE, "kind": "printer", "name": "Printer 2F"},
    {"id": "cabinet-9", "site": SITE, "kind": "cabinet", "name": "Spare cabinet"},
]


def beat(station: str, kind: str, door: str, locked: bool | None = True):
    """A heartbeat message of a station of ``kind`` with its door and lock as given."""
    body = heartbeat(station)
    body.update(kind=kind, door=door, locked=locked)
    return ("heartbeat", station, body)


def day_of_work(s: Stack) -> None:
    """A day at the ward: keys used and returned, one cabinet left open, a held print queue,
    a shredding pair off the roster, and a station that went offline."""
    registry.add_person(s.engine, "admin", "S001", "Staff 001")
    registry.add_person(s.engine, "admin", "S002", "Staff 002")
    at = f"{TUESDAY}T{{}}+09:00".format
    shred = {"people": ["S001", "S002"], "badges": ["0123456789ABCDEF", "1111222233334444"], "max_s": 600}
    s.feed(
        *(("status", st, {**status(st, "online"), "kind": None}) for st in
          ("cabinet-1", "cabinet-2", "door-1", "shredder-1", "printer-1")),
        ev("cabinet-1", 1, "key.used", at("12:00:00"), person="S001", data={
            "unlocked_at": at("11:58:00"), "opened_at": at("11:58:05"), "closed_at": at("12:00:00"),
            "duration_s": 115, "flagged": False, "reason": "designated_holder"}),
        ev("cabinet-1", 2, "door.closed", at("12:00:00"), data={"authorised": True, "open_s": 115}),
        beat("cabinet-1", "cabinet", "closed"),
        ev("cabinet-2", 1, "door.opened", at("17:40:00"), person="S002", data={"authorised": True}),
        ev("cabinet-2", 2, "door.held_open", at("17:45:00"), person="S002",
           data={"open_s": 300, "limit_s": 120, "authorised": True}),
        ev("door-1", 1, "door.closed", at("17:00:00"), person=None, badge=None, data={"authorised": True}),
        beat("door-1", "door", "closed"),
        ev("printer-1", 1, "print.queue", at("17:55:00"), person=None, badge=None, data={
            "held": 2, "oldest_s": 1800, "jobs": [
                {"id": 41, "title": "住民票 写し", "pages": 2, "user": "S001"},
                {"id": 42, "title": "Form B", "pages": 1, "user": "S002"}]}),
        ev("shredder-1", 1, "shred.started", at("15:00:00"), data=shred),
        ev("shredder-1", 2, "shred.ended", at("15:03:00"), data={
            **shred, "started_at": at("15:00:00"), "ended_at": at("15:03:00"), "duration_s": 180,
            "ended_by": "tap"}),
        ("status", "shredder-1", status("shredder-1", "offline")),
    )
