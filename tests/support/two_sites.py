"""Two offices on one hub, for the tests of who sees which site (hub.accounts.sites, hub.web.scope):
ward-a and ward-b, each with a cabinet, a shredder, a printer and a roll-call unit. Site A's
events are 職員0012's, site B's 職員0034's, so a row of B shows by its person as well as by its
station."""
from __future__ import annotations

from typing import Any

from tests.hub.helpers import event, snapshot
from tests.support.key_uses import at, forced, use

SITE_A, SITE_B = "ward-a", "ward-b"
PERSON_A, PERSON_B = "0012", "0034"
NAME_A, NAME_B = "職員0012", "職員0034"
BADGE_A, BADGE_B = "0123456789ABCDEF", "1111222233334444"
STAFF = {
    "people": [
        {"id": PERSON_A, "name": NAME_A, "badges": [BADGE_A], "stations": ["*"], "decision": "allow"},
        {"id": PERSON_B, "name": NAME_B, "badges": [BADGE_B], "stations": ["*"], "decision": "allow"},
        {"id": "0056", "name": "職員0056", "badges": ["5555666677778888"], "stations": ["*"], "decision": "allow"},
        {"id": "0078", "name": "職員0078", "badges": ["9999AAAABBBBCCCC"], "stations": ["*"], "decision": "allow"},
    ]
}
STATIONS = [
    {"id": f"{kind}-{w}", "site": site, "kind": kind, "name": f"{label} {w.upper()}"}
    for w, site in (("a", SITE_A), ("b", SITE_B))
    for kind, label in (("cabinet", "Cabinet"), ("shredder", "Shredder"), ("printer", "Printer"),
                        ("rollcall", "Rollcall unit"))
]
SITES = {SITE_A: {"name": "Ward A office"}, SITE_B: {"name": "Ward B office"}}
DAY = "2025-04-01"


def b_marks() -> tuple[str, ...]:
    """What must never show to a reader of site A only: B's site, stations and people."""
    return (SITE_B, "Ward B office", "cabinet-b", "Cabinet B", "shredder-b", "Shredder B", "printer-b", "Printer B", "rollcall-b", NAME_B,
            "職員0078")


def day_of_both() -> list[tuple[str, dict[str, Any]]]:
    """A key use and a forced door at each site on 2025-04-01, a print release and a shredding
    session at each (channel, payload), as the stations publish them."""
    out: list[tuple[str, dict[str, Any]]] = []
    for w, site, person, badge in (("a", SITE_A, PERSON_A, BADGE_A), ("b", SITE_B, PERSON_B, BADGE_B)):
        cabinet = f"cabinet-{w}"
        for channel, body in (*use(cabinet, 1, badge, person, "04-01", "09:00:00", "09:00:02", "09:00:30", 28.0),
                              *forced(cabinet, 5, "04-01", "11:00:00", "11:00:10", 10.0)):
            out.append((channel, {**body, "site": site}))
        stamp = lambda s: at("04-01", f"10:00:{s:02d}")  # noqa: E731
        out.append(("event", event(f"printer-{w}", 1, site=site, kind="print.released", person=person, badge=badge,
                                   at=stamp(0), data={"user": f"u{person}", "jobs": [
                                       {"id": 7, "title": f"doc of {person}", "pages": 1, "user": f"u{person}"}]})))
        pair = [person, "0056" if site == SITE_A else "0078"]
        out.append(("event", event(f"shredder-{w}", 1, site=site, kind="shred.started", person=person, at=stamp(1),
                                   data={"people": pair, "badges": [], "max_s": 600})))
        out.append(("event", event(f"shredder-{w}", 2, site=site, kind="shred.ended", person=person, at=stamp(6),
                                   data={"people": pair, "badges": [], "started_at": stamp(1), "ended_at": stamp(6),
                                         "duration_s": 5.0, "ended_by": "button"})))
    return out


def forced_ids(payloads: list[tuple[str, dict[str, Any]]]) -> dict[str, str]:
    """Site -> the event id of its forced door in ``payloads``."""
    return {body["site"]: body["id"] for _channel, body in payloads if body.get("kind") == "door.forced"}


def snapshots_of_both(event_ids: dict[str, str]) -> list[dict[str, Any]]:
    """A photo of each site's forced door (``event_ids``: site -> the door.forced event id)."""
    return [snapshot(f"cabinet-{site[-1]}", event_id, site=site) for site, event_id in event_ids.items()]
