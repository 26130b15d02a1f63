"""People (staff) and their badges.

A person is known by their staff number (職員番号), which is also the ``person`` the
stations' policies and the audit events name. People are never deleted: leaving staff get an
``active_to`` date (their last active day), so the ledger can always say who someone was.

A person can have several badges, each with its own valid dates. A badge reported lost or
revoked is denied at every station from the next policy publication (the registry's change
hook triggers it at once). Badge ids are never reused: a revoked badge stays on record.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import Engine, insert, or_, select, update

from hub.registry.common import badge_id as _badge_id
from hub.registry.common import day, fold, person_row, row_dict, staff_no, text
from hub.registry.log import NotFound, RegistryError, writing
from hub.store.db import inserted_id
from hub.store.schema import BADGE_STATES, EMPLOYMENT_TYPES, badges, people
from hub.store.timestamps import utc_text

_LOG = logging.getLogger(__name__)

EMPLOYMENTS = EMPLOYMENT_TYPES
BADGE_STATE_NAMES = BADGE_STATES
PERSON_FIELDS = ("name", "kana", "section", "employment", "role", "active_from", "active_to", "print_user")
_LIMITS = {"name": 128, "kana": 128, "section": 128, "role": 64}


def _person_values(values: dict[str, Any]) -> dict[str, Any]:
    """Check and normalise person fields (only those present in ``values``)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in PERSON_FIELDS:
            raise RegistryError("person.unknown_field", {"field": repr(key)})
        if key in _LIMITS:
            out[key] = text(value, key, _LIMITS[key], required=key == "name")
        elif key == "print_user":
            # The job owner name at the print server; empty: the staff number is used.
            out[key] = text(value, key, 64) or None
        elif key == "employment":
            if value not in EMPLOYMENTS:
                raise RegistryError("person.bad_employment", {"what": "employment", "value": repr(value),
                                                               "choices": ", ".join(EMPLOYMENTS)})
            out[key] = value
        else:
            out[key] = day(value, key)
    return out


def _check_dates(first: date | None, last: date | None, what: str) -> None:
    if first is not None and last is not None and last < first:
        raise RegistryError("dates.reversed", {"what": what, "first": first, "last": last})


def add_person(
    engine: Engine,
    actor: str,
    staff_number: str,
    name: str,
    *,
    kana: str = "",
    section: str = "",
    employment: str = "regular",
    role: str = "",
    active_from: date | str | None = None,
    active_to: date | str | None = None,
    print_user: str | None = None,
) -> int:
    """Add a person; return their id. RegistryError for bad fields or a taken staff number."""
    number = staff_no(staff_number)
    values = _person_values({"name": name, "kana": kana, "section": section, "employment": employment,
                             "role": role, "active_from": active_from, "active_to": active_to,
                             "print_user": print_user})
    _check_dates(values["active_from"], values["active_to"], "active dates")
    with writing(engine, actor) as rec:
        taken = rec.conn.execute(select(people.c.id).where(people.c.staff_no == number)).first()
        if taken is not None:
            raise RegistryError("person.exists", {"number": number})
        new_id = inserted_id(rec.conn.execute(insert(people).values(staff_no=number, **values)))
        rec.record("person", number, "add", None, {"id": new_id, "staff_no": number, **values})
    return int(new_id)


def update_person(engine: Engine, actor: str, staff_number: str, **changes: Any) -> bool:
    """Change some of a person's fields (name, kana, section, employment, role, active_from,
    active_to); True if anything changed."""
    values = _person_values(changes)
    with writing(engine, actor) as rec:
        row = person_row(rec.conn, staff_number)
        before = row_dict(row)
        after = {**before, **values}
        _check_dates(after["active_from"], after["active_to"], "active dates")
        if after == before:
            return False
        rec.conn.execute(update(people).where(people.c.id == row.id).values(**values))
        rec.record("person", row.staff_no, "update", before, after)
    return True


def deactivate_person(engine: Engine, actor: str, staff_number: str, last_day: date | str) -> bool:
    """End a person's activity: ``last_day`` is the last day their badges work anywhere."""
    return update_person(engine, actor, staff_number, active_to=day(last_day, "last_day", optional=False))


def get_person(engine: Engine, staff_number: str) -> dict[str, Any]:
    """A person's fields with their badges (``badges``: list of dicts); NotFound if unknown."""
    with engine.connect() as conn:
        row = person_row(conn, staff_number)
        out = row_dict(row)
        out["badges"] = [row_dict(b) for b in conn.execute(
            select(badges).where(badges.c.person_id == row.id).order_by(badges.c.badge_id))]
    return out


def is_active(person: dict[str, Any] | Any, on: date) -> bool:
    """Whether a person (row or dict) is active on ``on``."""
    get = person.get if isinstance(person, dict) else lambda k: getattr(person, k)
    first, last = get("active_from"), get("active_to")
    return (first is None or first <= on) and (last is None or on <= last)


def list_people(
    engine: Engine, *, active_on: date | None = None, section: str | None = None
) -> list[dict[str, Any]]:
    """People by staff number, optionally only those active on a day or of a section."""
    query = select(people).order_by(people.c.staff_no)
    if section is not None:
        query = query.where(people.c.section == section)
    if active_on is not None:
        query = query.where(or_(people.c.active_from.is_(None), people.c.active_from <= active_on),
                            or_(people.c.active_to.is_(None), people.c.active_to >= active_on))
    with engine.connect() as conn:
        return [row_dict(r) for r in conn.execute(query)]


def search_people(engine: Engine, query: str, *, active_on: date | None = None) -> list[dict[str, Any]]:
    """People whose staff number, name, reading, section or badge id contains ``query``
    (full-/half-width, hiragana/katakana and spaces do not matter)."""
    needle = fold(query)
    found = []
    with engine.connect() as conn:
        badge_map: dict[int, list[str]] = {}
        for b in conn.execute(select(badges.c.person_id, badges.c.badge_id)):
            badge_map.setdefault(b.person_id, []).append(b.badge_id)
    for person in list_people(engine, active_on=active_on):
        fields = (person["staff_no"], person["name"], person["kana"], person["section"],
                  *badge_map.get(person["id"], []))
        if any(needle in fold(f) for f in fields):
            found.append(person)
    return found


# --- badges ---


def add_badge(
    engine: Engine,
    actor: str,
    staff_number: str,
    badge: str,
    *,
    valid_from: date | str | None = None,
    valid_to: date | str | None = None,
) -> str:
    """Give a person a badge (valid from/to the given days, inclusive); return the badge id.

    RegistryError if the badge id is already registered to anyone, even revoked.
    """
    bid = _badge_id(badge)
    first, last = day(valid_from, "valid_from"), day(valid_to, "valid_to")
    _check_dates(first, last, "badge dates")
    with writing(engine, actor) as rec:
        person = person_row(rec.conn, staff_number)
        old = rec.conn.execute(select(badges.c.person_id, people.c.staff_no).join(
            people, people.c.id == badges.c.person_id).where(badges.c.badge_id == bid)).first()
        if old is not None:
            raise RegistryError("badge.taken", {"badge": bid, "number": old.staff_no})
        values = {"badge_id": bid, "person_id": person.id, "valid_from": first, "valid_to": last,
                  "state": "active", "state_changed_at": utc_text(rec.at)}
        rec.conn.execute(insert(badges).values(**values))
        rec.record("badge", bid, "add", None, {**values, "staff_no": person.staff_no})
    return bid


def _badge_change(engine: Engine, actor: str, badge: str, action: str, **values: Any) -> bool:
    bid = _badge_id(badge)
    with writing(engine, actor) as rec:
        row = rec.conn.execute(select(badges, people.c.staff_no).join(
            people, people.c.id == badges.c.person_id).where(badges.c.badge_id == bid)).first()
        if row is None:
            raise NotFound("badge.not_found", {"badge": bid})
        before = row_dict(row)
        after = {**before, **values}
        _check_dates(after["valid_from"], after["valid_to"], "badge dates")
        if all(after[k] == before[k] for k in values):
            return False
        if "state" in values:
            after["state_changed_at"] = values["state_changed_at"] = utc_text(rec.at)
        rec.conn.execute(update(badges).where(badges.c.badge_id == bid).values(**values))
        rec.record("badge", bid, action, before, after)
    return True


def set_badge_dates(
    engine: Engine, actor: str, badge: str, valid_from: date | str | None, valid_to: date | str | None
) -> bool:
    """Set a badge's first and last valid days (None: open); True if they changed."""
    return _badge_change(engine, actor, badge, "update",
                         valid_from=day(valid_from, "valid_from"), valid_to=day(valid_to, "valid_to"))


def revoke_badge(engine: Engine, actor: str, badge: str) -> bool:
    """Revoke a badge: every station denies it from the next policy (published at once)."""
    return _badge_change(engine, actor, badge, "revoke", state="revoked")


def mark_badge_lost(engine: Engine, actor: str, badge: str) -> bool:
    """Report a badge lost: denied everywhere like a revoked one; the ledger says lost."""
    return _badge_change(engine, actor, badge, "lose", state="lost")


def reinstate_badge(engine: Engine, actor: str, badge: str) -> bool:
    """Make a lost or revoked badge active again (e.g. found, or revoked by mistake)."""
    return _badge_change(engine, actor, badge, "reinstate", state="active")


def find_badge(engine: Engine, badge: str) -> dict[str, Any]:
    """A badge's row with its holder's staff number and name; NotFound if unknown."""
    bid = _badge_id(badge)
    with engine.connect() as conn:
        row = conn.execute(select(badges, people.c.staff_no, people.c.name).join(
            people, people.c.id == badges.c.person_id).where(badges.c.badge_id == bid)).first()
    if row is None:
        raise NotFound("badge.not_found", {"badge": bid})
    return row_dict(row)

