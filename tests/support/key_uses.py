"""Key uses as a cabinet sends them, for the key ledger's tests (hub and web): the tap, the door
opening and closing, the use; a forced opening; a purpose button; a site with its work list."""
from __future__ import annotations

from typing import Any

from tests.hub.helpers import event, snapshot

SITE_NAME = "戸籍住民課 窓口"
# The office's list of work done with a key (作業内容), as the hub file gives it.
KEY_WORK = [
    {"code": "register", "ja": "戸籍簿の出納", "en": "Family register files"},
    {"code": "card-safe", "ja": "カード保管庫の点検", "en": "Card safe check"},
]
SITES = {"ward-a": {"name": SITE_NAME, "key_work": KEY_WORK}}


def at(month_day: str, hms: str) -> str:
    """A time of 2025 at the site (JST): ``at("04-01", "08:45:00")``."""
    return f"2025-{month_day}T{hms}+09:00"


def use(station: str, seq: int, badge: str, person: str, day: str, unlocked: str, opened: str, closed: str,
        open_s: float, flagged: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """The four events of one key use (seq .. seq+3); the door.opened is seq+1."""
    common = {"badge": badge, "person": person}
    return [
        ("event", event(station, seq, kind="badge.granted", at=at(day, unlocked), **common,
                        data={"flagged": flagged, "reason": "", "unlock_s": 5})),
        ("event", event(station, seq + 1, kind="door.opened", at=at(day, opened), **common,
                        data={"authorised": True, "flagged": flagged})),
        ("event", event(station, seq + 2, kind="door.closed", at=at(day, closed), **common,
                        data={"authorised": True, "open_s": open_s})),
        ("event", event(station, seq + 3, kind="key.used", at=at(day, closed), **common, data={
            "unlocked_at": at(day, unlocked), "opened_at": at(day, opened), "closed_at": at(day, closed),
            "duration_s": open_s, "flagged": flagged, "reason": ""})),
    ]


def forced(station: str, seq: int, day: str, opened: str, closed: str, open_s: float) -> list[tuple[str, dict]]:
    """A door forced open and closed (seq, seq+1)."""
    return [
        ("event", event(station, seq, kind="door.forced", at=at(day, opened), badge=None, person=None, data={})),
        ("event", event(station, seq + 1, kind="door.closed", at=at(day, closed), badge=None, person=None,
                        data={"authorised": False, "open_s": open_s})),
    ]


def purpose(station: str, seq: int, badge: str, person: str, day: str, pressed: str, unlocked: str,
            code: str) -> tuple[str, dict]:
    """A purpose button pressed after the use unlocked at ``unlocked``."""
    return ("event", event(station, seq, kind="key.purpose", at=at(day, pressed), badge=badge, person=person,
                           data={"purpose": code, "unlocked_at": at(day, unlocked)}))


def april(holder: str, standin: str) -> tuple[list[tuple[str, dict]], list[dict]]:
    """Uses at cabinet-1 in April 2025 and the snapshots of two openings: the events (channel,
    payload) and the snapshot payloads.

    - 04-01 (Tue) 08:45 holder, in hours; a purpose button names it "register";
    - 04-01 18:00 forced open (after hours), with its photo;
    - 04-02 (Wed) 13:00 stand-in (flagged), in hours, with its photo; no work yet;
    - 04-05 (Sat) 10:00 holder: after hours (a Saturday), no work yet;
    - 05-01: another month.
    """
    payloads = [
        *use("cabinet-1", 1, holder, "S001", "04-01", "08:45:00", "08:45:02", "08:46:10", 68.0),
        purpose("cabinet-1", 5, holder, "S001", "04-01", "08:46:20", "08:45:00", "register"),
        *forced("cabinet-1", 6, "04-01", "18:00:00", "18:00:20", 20.0),
        *use("cabinet-1", 8, standin, "S002", "04-02", "13:00:00", "13:00:03", "13:05:03", 300.0, flagged=True),
        *use("cabinet-1", 12, holder, "S001", "04-05", "10:00:00", "10:00:02", "10:01:00", 58.0),
        *use("cabinet-1", 16, holder, "S001", "05-01", "09:00:00", "09:00:02", "09:00:30", 28.0),
    ]
    forced_id = payloads[5][1]["id"]
    opened_id = payloads[8][1]["id"]
    return payloads, [snapshot("cabinet-1", forced_id), snapshot("cabinet-1", opened_id)]
