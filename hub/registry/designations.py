"""Who is designated where: the cabinet's responsible holder (責任職) and stand-ins
(庶務担当 and others), the shredder's daily roster (rotation table), who may use a station
after hours, and how a station treats everyone else.

Designations and lists are per station id. At a cabinet, one holder and any number of
stand-ins; trained people who are neither are flagged (or denied, per ``others``). At a
shredder, the people on the day's roster are expected; others are flagged (or denied).
Outside business hours, people on the after-hours list are allowed; others are denied (or
flagged, per ``after_hours``).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from hub.config import WEEKDAYS
from hub.registry.common import day, person_row, row_dict, station_id
from hub.registry.log import RegistryError, writing
from hub.store.schema import (
    DESIGNATION_ROLES,
    OTHERS_DECISIONS,
    after_hours_users,
    designations,
    people,
    shredder_roster,
    station_settings,
)

_LOG = logging.getLogger(__name__)

ROLES = DESIGNATION_ROLES
DEFAULT_SETTINGS = {"others": "flag", "after_hours": "deny"}
_PERSON_COLUMNS = (people.c.staff_no, people.c.name, people.c.kana, people.c.section, people.c.role)


def _designation(station: str, person: Any, role: str) -> dict[str, Any]:
    return {"station": station, "staff_no": person.staff_no, "name": person.name, "role": role}


def _set_role(engine: Engine, actor: str, station: str, staff_number: str, role: str,
              now: datetime | None = None) -> bool:
    station = station_id(station)
    with writing(engine, actor, now=now) as rec:
        person = person_row(rec.conn, staff_number)
        current = {r.person_id: r.role for r in rec.conn.execute(
            select(designations).where(designations.c.station == station))}
        if current.get(person.id) == role:
            return False
        if role == "holder":
            # One responsible holder per station: the previous one steps down.
            for pid, old_role in current.items():
                if old_role == "holder" and pid != person.id:
                    old = rec.conn.execute(select(people).where(people.c.id == pid)).one()
                    rec.conn.execute(delete(designations).where(
                        designations.c.station == station, designations.c.person_id == pid))
                    rec.record("designation", f"{station}/{old.staff_no}", "delete",
                               _designation(station, old, "holder"), None)
        key = f"{station}/{person.staff_no}"
        if person.id in current:
            rec.conn.execute(update(designations).where(
                designations.c.station == station, designations.c.person_id == person.id).values(role=role))
            rec.record("designation", key, "update", _designation(station, person, current[person.id]),
                       _designation(station, person, role))
        else:
            rec.conn.execute(insert(designations).values(station=station, person_id=person.id, role=role))
            rec.record("designation", key, "add", None, _designation(station, person, role))
    return True


def set_holder(engine: Engine, actor: str, station: str, staff_number: str, *, now: datetime | None = None) -> bool:
    """Make a person the station's responsible holder (責任職), replacing any other holder;
    a stand-in becoming holder stops being a stand-in. True if anything changed."""
    return _set_role(engine, actor, station, staff_number, "holder", now)


def add_stand_in(engine: Engine, actor: str, station: str, staff_number: str, *, now: datetime | None = None) -> bool:
    """Designate a stand-in (庶務担当) at a station; the holder becoming one stops being holder."""
    return _set_role(engine, actor, station, staff_number, "standin", now)


def remove_designation(engine: Engine, actor: str, station: str, staff_number: str, *,
                       now: datetime | None = None) -> bool:
    """Take away a person's designation at a station; False if they had none."""
    station = station_id(station)
    with writing(engine, actor, now=now) as rec:
        person = person_row(rec.conn, staff_number)
        row = rec.conn.execute(select(designations).where(
            designations.c.station == station, designations.c.person_id == person.id)).first()
        if row is None:
            return False
        rec.conn.execute(delete(designations).where(
            designations.c.station == station, designations.c.person_id == person.id))
        rec.record("designation", f"{station}/{person.staff_no}", "delete",
                   _designation(station, person, row.role), None)
    return True


def station_designations(engine: Engine, station: str) -> dict[str, Any]:
    """``{"holder": person dict or None, "stand_ins": [person dicts]}`` of a station."""
    station = station_id(station)
    with engine.connect() as conn:
        rows = conn.execute(select(designations.c.role, *_PERSON_COLUMNS).join(
            people, people.c.id == designations.c.person_id).where(
            designations.c.station == station).order_by(people.c.staff_no)).all()
    holder = next((row_dict(r) for r in rows if r.role == "holder"), None)
    return {"holder": holder, "stand_ins": [row_dict(r) for r in rows if r.role == "standin"]}


def all_designations(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every station with designations: station -> as :func:`station_designations`."""
    with engine.connect() as conn:
        stations = sorted(conn.execute(select(designations.c.station).distinct()).scalars())
    return {s: station_designations(engine, s) for s in stations}


# --- station settings ---


def get_station_settings(engine: Engine, station: str) -> dict[str, str]:
    """How a station treats people who are not designated / not on the roster (``others``)
    and people not on its after-hours list (``after_hours``): "flag" or "deny"."""
    station = station_id(station)
    with engine.connect() as conn:
        row = conn.execute(select(station_settings).where(station_settings.c.station == station)).first()
    if row is None:
        return dict(DEFAULT_SETTINGS)
    return {"others": row.others, "after_hours": row.after_hours}


def set_station_settings(
    engine: Engine, actor: str, station: str, *, others: str | None = None, after_hours: str | None = None
) -> bool:
    """Set a station's ``others`` and/or ``after_hours`` ("flag" or "deny"); True if changed."""
    station = station_id(station)
    for what, value in (("others", others), ("after_hours", after_hours)):
        if value is not None and value not in OTHERS_DECISIONS:
            raise RegistryError("settings.bad_choice", {"what": what, "value": repr(value),
                                                         "choices": ", ".join(OTHERS_DECISIONS)})
    with writing(engine, actor) as rec:
        row = rec.conn.execute(select(station_settings).where(station_settings.c.station == station)).first()
        before = row_dict(row) if row is not None else None
        current = before or {"station": station, **DEFAULT_SETTINGS}
        after = dict(current)
        if others is not None:
            after["others"] = others
        if after_hours is not None:
            after["after_hours"] = after_hours
        if after == current:
            return False
        if before is None:
            rec.conn.execute(insert(station_settings).values(**after))
        else:
            rec.conn.execute(update(station_settings).where(station_settings.c.station == station).values(
                others=after["others"], after_hours=after["after_hours"]))
        rec.record("station_settings", station, "add" if before is None else "update", before, after)
    return True


# --- after-hours list ---


def add_after_hours_user(engine: Engine, actor: str, station: str, staff_number: str) -> bool:
    """Allow a person to use a station outside business hours; False if already listed."""
    station = station_id(station)
    with writing(engine, actor) as rec:
        person = person_row(rec.conn, staff_number)
        if rec.conn.execute(select(after_hours_users).where(
                after_hours_users.c.station == station, after_hours_users.c.person_id == person.id)).first():
            return False
        rec.conn.execute(insert(after_hours_users).values(station=station, person_id=person.id))
        rec.record("after_hours_user", f"{station}/{person.staff_no}", "add", None,
                   {"station": station, "staff_no": person.staff_no, "name": person.name})
    return True


def remove_after_hours_user(engine: Engine, actor: str, station: str, staff_number: str) -> bool:
    """Take a person off a station's after-hours list; False if not listed."""
    station = station_id(station)
    with writing(engine, actor) as rec:
        person = person_row(rec.conn, staff_number)
        gone = rec.conn.execute(delete(after_hours_users).where(
            after_hours_users.c.station == station, after_hours_users.c.person_id == person.id)).rowcount
        if not gone:
            return False
        rec.record("after_hours_user", f"{station}/{person.staff_no}", "delete",
                   {"station": station, "staff_no": person.staff_no, "name": person.name}, None)
    return True


def after_hours_list(engine: Engine, station: str) -> list[dict[str, Any]]:
    """The people who may use a station outside business hours, by staff number."""
    station = station_id(station)
    with engine.connect() as conn:
        return [row_dict(r) for r in conn.execute(select(*_PERSON_COLUMNS).join(
            after_hours_users, after_hours_users.c.person_id == people.c.id).where(
            after_hours_users.c.station == station).order_by(people.c.staff_no))]


# --- shredder roster ---


def _roster_numbers(conn: Any, station: str, on: date) -> list[str]:
    return sorted(conn.execute(select(people.c.staff_no).join(
        shredder_roster, shredder_roster.c.person_id == people.c.id).where(
        shredder_roster.c.station == station, shredder_roster.c.day == on)).scalars())


def _write_roster(rec: Any, station: str, on: date, numbers: Iterable[str]) -> bool:
    wanted = {}
    for number in numbers:
        person = person_row(rec.conn, number)
        wanted[person.staff_no] = person
    before = _roster_numbers(rec.conn, station, on)
    after = sorted(wanted)
    if before == after:
        return False
    rec.conn.execute(delete(shredder_roster).where(
        shredder_roster.c.station == station, shredder_roster.c.day == on))
    for person in wanted.values():
        rec.conn.execute(insert(shredder_roster).values(station=station, day=on, person_id=person.id))
    key = f"{station}/{on.isoformat()}"
    rec.record("roster", key, "update" if before and after else "add" if after else "delete",
               {"station": station, "day": on, "staff_nos": before} if before else None,
               {"station": station, "day": on, "staff_nos": after} if after else None)
    return True


def set_roster(engine: Engine, actor: str, station: str, on: date | str, staff_numbers: Iterable[str]) -> bool:
    """Set who is on a shredder's roster for one day (replacing that day's list; an empty
    list clears it). True if it changed."""
    station = station_id(station)
    on = day(on, "day", optional=False)
    numbers = [staff_numbers] if isinstance(staff_numbers, str) else list(staff_numbers)
    with writing(engine, actor) as rec:
        return _write_roster(rec, station, on, numbers)


def fill_rotation(
    engine: Engine,
    actor: str,
    station: str,
    first: date | str,
    last: date | str,
    teams: Sequence[Sequence[str]],
    *,
    days: Iterable[str] = WEEKDAYS[:5],
    skip: Iterable[date] = (),
) -> int:
    """Fill a roster from a rotation table: the ``teams`` take turns, one per working day
    (weekdays in ``days``, not in ``skip``, e.g. the site's holidays) from ``first`` to
    ``last``; other days in the range are cleared. How many days changed."""
    station = station_id(station)
    first, last = day(first, "first", optional=False), day(last, "last", optional=False)
    if last < first:
        raise RegistryError("dates.reversed", {"first": first, "last": last})
    if (last - first).days > 366:
        raise RegistryError("roster.too_long")
    if not teams or any(isinstance(t, str) or not t for t in teams):
        raise RegistryError("roster.no_teams")
    working = set(days)
    if not working <= set(WEEKDAYS):
        raise RegistryError("roster.bad_days", {"choices": ", ".join(WEEKDAYS)})
    off = set(skip)
    changed = 0
    turn = 0
    with writing(engine, actor) as rec:
        current = first
        while current <= last:
            if WEEKDAYS[current.weekday()] in working and current not in off:
                changed += _write_roster(rec, station, current, teams[turn % len(teams)])
                turn += 1
            else:
                changed += _write_roster(rec, station, current, [])
            current += timedelta(days=1)
    return changed


def roster(engine: Engine, station: str, on: date | str) -> list[dict[str, Any]]:
    """The people on a shredder's roster for one day, by staff number."""
    station = station_id(station)
    on = day(on, "day", optional=False)
    with engine.connect() as conn:
        return [row_dict(r) for r in conn.execute(select(*_PERSON_COLUMNS).join(
            shredder_roster, shredder_roster.c.person_id == people.c.id).where(
            shredder_roster.c.station == station, shredder_roster.c.day == on).order_by(people.c.staff_no))]


def roster_table(engine: Engine, station: str, first: date | str, last: date | str) -> dict[date, list[str]]:
    """A shredder's roster from ``first`` to ``last``: day -> staff numbers (listed days only)."""
    station = station_id(station)
    first, last = day(first, "first", optional=False), day(last, "last", optional=False)
    out: dict[date, list[str]] = {}
    with engine.connect() as conn:
        for r in conn.execute(select(shredder_roster.c.day, people.c.staff_no).join(
                people, people.c.id == shredder_roster.c.person_id).where(
                shredder_roster.c.station == station, shredder_roster.c.day >= first,
                shredder_roster.c.day <= last).order_by(shredder_roster.c.day, people.c.staff_no)):
            out.setdefault(r.day, []).append(r.staff_no)
    return out
