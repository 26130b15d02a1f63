"""What the hub flags about a shredding session, judged the same by the alert rules and the
shredding ledger: who of the two was on the shredder's roster for the day (hub.registry) and
whether the session ran outside the station's business hours (hub.hours).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select

from hub.config import HubConfig
from hub.hours import days_off_around, is_business_time
from hub.store.schema import people, shredder_roster


def after_hours(cfg: HubConfig, station: str, site: str, *moments: datetime | None) -> bool:
    """True if any of ``moments`` falls outside the station's business hours."""
    hours = cfg.hours(station, site)
    zone = cfg.site_zone(site)
    return any(m is not None and not is_business_time(m, hours, days_off_around(cfg, site, m), zone)
               for m in moments)


def rostered(engine: Engine, station: str, first: date, last: date) -> dict[date, set[str]]:
    """Staff numbers on a shredder's roster, per day from ``first`` to ``last``."""
    out: dict[date, set[str]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(shredder_roster.c.day, people.c.staff_no).join(
                people, people.c.id == shredder_roster.c.person_id).where(
                shredder_roster.c.station == station, shredder_roster.c.day >= first,
                shredder_roster.c.day <= last)):
            out.setdefault(r.day, set()).add(r.staff_no)
    return out


def session_flags(
    engine: Engine, cfg: HubConfig, site: str, station: str, people_ids: Sequence[str | None],
    started: datetime, ended: datetime | None = None,
) -> dict[str, Any]:
    """What the hub flags about one session: who of the two was on the day's roster,
    ``not_on_roster`` (neither was) and ``after_hours``. The alert rules use it."""
    day = started.astimezone(cfg.site_zone(site)).date()
    roster = rostered(engine, station, day, day).get(day, set())
    on = [p is not None and p in roster for p in people_ids]
    return {"on_roster": on, "not_on_roster": not any(on),
            "after_hours": after_hours(cfg, station, site, started, ended)}
