"""Trainings: the catalogue, the sessions held, and who attended each (研修の受講記録).

The catalogue says, per training, which station kinds require it and for how many days an
attendance stays valid (None: it never expires). A session is one training held on one day
(the office's files name a session by training and date); attendance is kept per session
(the roster) and so per person (their record).

An attendance at a session held on day H of a training valid for N days counts on day D if
H <= D < H + N: ``H + N`` is the day it has expired (:func:`expires_on`).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from hub.registry.common import STATION_KINDS, day, person_row, row_dict, text
from hub.registry.log import NotFound, RegistryError, writing
from hub.registry.people import is_active
from hub.store.db import inserted_id
from hub.store.schema import attendance, people, training_sessions, trainings

_LOG = logging.getLogger(__name__)

MAX_VALID_DAYS = 36600  # a century: anything longer is a typo; use None for "never expires"


# --- catalogue ---


def _kinds(value: Any) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise RegistryError("training.bad_kinds")
    kinds = sorted(set(value))
    bad = [k for k in kinds if k not in STATION_KINDS]
    if bad:
        raise RegistryError("training.unknown_kinds", {"kinds": ", ".join(map(str, bad)),
                                                       "choices": ", ".join(STATION_KINDS)})
    return kinds


def _valid_days(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_VALID_DAYS:
        raise RegistryError("training.bad_valid_days", {"n": MAX_VALID_DAYS})
    return value


def _training_dict(row: Any) -> dict[str, Any]:
    out = row_dict(row)
    try:
        kinds = json.loads(out["station_kinds"])
    except ValueError:
        kinds = []
    out["station_kinds"] = [k for k in kinds if isinstance(k, str)] if isinstance(kinds, list) else []
    return out


def _training_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(trainings).where(trainings.c.name == text(name, "training", 128))).first()
    if row is None:
        raise NotFound("training.not_found", {"name": repr(name)})
    return row


def add_training(
    engine: Engine, actor: str, name: str, station_kinds: Iterable[str], valid_days: int | str | None
) -> int:
    """Add a training to the catalogue; return its id."""
    values: dict[str, Any] = {"name": text(name, "training name", 128, required=True),
              "station_kinds": json.dumps(_kinds(station_kinds)), "valid_days": _valid_days(valid_days)}
    with writing(engine, actor) as rec:
        if rec.conn.execute(select(trainings.c.id).where(trainings.c.name == values["name"])).first():
            raise RegistryError("training.exists", {"name": repr(values["name"])})
        new_id = inserted_id(rec.conn.execute(insert(trainings).values(**values)))
        rec.record("training", values["name"], "add", None,
                   {**values, "id": new_id, "station_kinds": json.loads(values["station_kinds"])})
    return int(new_id)


def update_training(engine: Engine, actor: str, name: str, **changes: Any) -> bool:
    """Change a training's ``name``, ``station_kinds`` or ``valid_days``; True if anything changed."""
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "name":
            values[key] = text(value, "training name", 128, required=True)
        elif key == "station_kinds":
            values[key] = json.dumps(_kinds(value))
        elif key == "valid_days":
            values[key] = _valid_days(value)
        else:
            raise RegistryError("training.unknown_field", {"field": repr(key)})
    with writing(engine, actor) as rec:
        row = _training_row(rec.conn, name)
        before = row_dict(row)
        after = {**before, **values}
        if after == before:
            return False
        if after["name"] != before["name"] and rec.conn.execute(
                select(trainings.c.id).where(trainings.c.name == after["name"])).first():
            raise RegistryError("training.exists", {"name": repr(after["name"])})
        rec.conn.execute(update(trainings).where(trainings.c.id == row.id).values(**values))
        decode = lambda d: {**d, "station_kinds": json.loads(d["station_kinds"])}  # noqa: E731
        rec.record("training", before["name"], "update", decode(before), decode(after))
    return True


def list_trainings(engine: Engine) -> list[dict[str, Any]]:
    """The catalogue, by name; ``station_kinds`` decoded to a list."""
    with engine.connect() as conn:
        return [_training_dict(r) for r in conn.execute(select(trainings).order_by(trainings.c.name))]


def required_for(all_trainings: Iterable[dict[str, Any]], kind: str | None) -> list[dict[str, Any]]:
    """The trainings a station kind requires; for an unknown kind (None), every training
    that any kind requires (the strictest reading)."""
    if kind is None:
        return [t for t in all_trainings if t["station_kinds"]]
    return [t for t in all_trainings if kind in t["station_kinds"]]


def expires_on(held_on: date, valid_days: int | None) -> date | None:
    """The first day an attendance on ``held_on`` no longer counts; None: never."""
    if valid_days is None:
        return None
    try:
        return held_on + timedelta(days=valid_days)
    except OverflowError:  # valid past the last day there is: never expires
        return None


# --- sessions ---


def _session_row(conn: Connection, session_id: int) -> Any:
    row = conn.execute(select(training_sessions, trainings.c.name.label("training")).join(
        trainings, trainings.c.id == training_sessions.c.training_id).where(
        training_sessions.c.id == session_id)).first()
    if row is None:
        raise NotFound("session.not_found", {"id": session_id})
    return row


def find_session(engine: Engine, training: str, held_on: date | str) -> int | None:
    """The id of the session of ``training`` held on ``held_on``, if there is one."""
    held = day(held_on, "held_on", optional=False)
    with engine.connect() as conn:
        tid = _training_row(conn, training).id
        return conn.execute(select(training_sessions.c.id).where(
            training_sessions.c.training_id == tid, training_sessions.c.held_on == held)).scalar()


def insert_session(rec: Any, training_row: Any, held: date, place: str, notes: str) -> int:
    """Insert a session inside an open registry transaction (used by the importer too)."""
    values = {"training_id": training_row.id, "held_on": held, "place": place, "notes": notes}
    new_id = inserted_id(rec.conn.execute(insert(training_sessions).values(**values)))
    rec.record("session", str(new_id), "add", None, {**values, "id": new_id, "training": training_row.name})
    return new_id


def add_session(
    engine: Engine, actor: str, training: str, held_on: date | str, *, place: str = "", notes: str = ""
) -> int:
    """Record that a training was held on a day; return the session's id.

    RegistryError if that training already has a session on that day.
    """
    held = day(held_on, "held_on", optional=False)
    place, notes = text(place, "place", 128), text(notes, "notes", 4000)
    with writing(engine, actor) as rec:
        trow = _training_row(rec.conn, training)
        if rec.conn.execute(select(training_sessions.c.id).where(
                training_sessions.c.training_id == trow.id, training_sessions.c.held_on == held)).first():
            raise RegistryError("session.exists", {"name": trow.name, "day": held})
        return insert_session(rec, trow, held, place, notes)


def update_session(engine: Engine, actor: str, session_id: int, **changes: Any) -> bool:
    """Change a session's ``held_on``, ``place`` or ``notes``; True if anything changed."""
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "held_on":
            values[key] = day(value, "held_on", optional=False)
        elif key == "place":
            values[key] = text(value, "place", 128)
        elif key == "notes":
            values[key] = text(value, "notes", 4000)
        else:
            raise RegistryError("session.unknown_field", {"field": repr(key)})
    with writing(engine, actor) as rec:
        row = _session_row(rec.conn, session_id)
        before = row_dict(row)
        after = {**before, **values}
        if after == before:
            return False
        if after["held_on"] != before["held_on"] and rec.conn.execute(select(training_sessions.c.id).where(
                training_sessions.c.training_id == row.training_id,
                training_sessions.c.held_on == after["held_on"])).first():
            raise RegistryError("session.exists", {"name": row.training, "day": after["held_on"]})
        rec.conn.execute(update(training_sessions).where(training_sessions.c.id == session_id).values(**values))
        rec.record("session", str(session_id), "update", before, after)
    return True


def delete_session(engine: Engine, actor: str, session_id: int) -> int:
    """Delete a session recorded by mistake, with its attendance; how many attendances went."""
    with writing(engine, actor) as rec:
        row = _session_row(rec.conn, session_id)
        attendees = rec.conn.execute(select(people.c.id, people.c.staff_no).join(
            attendance, attendance.c.person_id == people.c.id).where(
            attendance.c.session_id == session_id).order_by(people.c.staff_no)).all()
        for person in attendees:
            rec.record("attendance", f"{session_id}/{person.staff_no}", "delete",
                       {"session_id": session_id, "staff_no": person.staff_no,
                        "training": row.training, "held_on": row.held_on}, None)
        rec.conn.execute(delete(attendance).where(attendance.c.session_id == session_id))
        rec.conn.execute(delete(training_sessions).where(training_sessions.c.id == session_id))
        rec.record("session", str(session_id), "delete", row_dict(row), None)
    return len(attendees)


def add_attendance_row(rec: Any, session: Any, person: Any) -> bool:
    """Record one attendance inside an open registry transaction; False if already there."""
    exists = rec.conn.execute(select(attendance.c.session_id).where(
        attendance.c.session_id == session.id, attendance.c.person_id == person.id)).first()
    if exists:
        return False
    rec.conn.execute(insert(attendance).values(session_id=session.id, person_id=person.id))
    rec.record("attendance", f"{session.id}/{person.staff_no}", "add", None,
               {"session_id": session.id, "staff_no": person.staff_no, "name": person.name,
                "training": session.training, "held_on": session.held_on})
    return True


def record_attendance(engine: Engine, actor: str, session_id: int, staff_numbers: Iterable[str]) -> int:
    """Record that these people attended a session; how many were new (repeats are skipped).

    NotFound (and nothing recorded) if the session or any staff number is unknown.
    """
    numbers = [staff_numbers] if isinstance(staff_numbers, str) else list(staff_numbers)
    with writing(engine, actor) as rec:
        session = _session_row(rec.conn, session_id)
        return sum(add_attendance_row(rec, session, person_row(rec.conn, n)) for n in numbers)


def remove_attendance(engine: Engine, actor: str, session_id: int, staff_number: str) -> bool:
    """Strike a person from a session's roster (recorded by mistake); False if not on it."""
    with writing(engine, actor) as rec:
        session = _session_row(rec.conn, session_id)
        person = person_row(rec.conn, staff_number)
        gone = rec.conn.execute(delete(attendance).where(
            attendance.c.session_id == session_id, attendance.c.person_id == person.id)).rowcount
        if not gone:
            return False
        rec.record("attendance", f"{session_id}/{person.staff_no}", "delete",
                   {"session_id": session_id, "staff_no": person.staff_no, "name": person.name,
                    "training": session.training, "held_on": session.held_on}, None)
    return True


def list_sessions(
    engine: Engine,
    *,
    training: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> list[dict[str, Any]]:
    """Sessions (newest first) with their training's name and the number of attendees."""
    count = (select(attendance.c.session_id, func.count().label("attendees"))
             .group_by(attendance.c.session_id).subquery())
    query = (select(training_sessions, trainings.c.name.label("training"),
                    func.coalesce(count.c.attendees, 0).label("attendees"))
             .join(trainings, trainings.c.id == training_sessions.c.training_id)
             .outerjoin(count, count.c.session_id == training_sessions.c.id)
             .order_by(training_sessions.c.held_on.desc(), trainings.c.name))
    if training is not None:
        query = query.where(trainings.c.name == training)
    if since is not None:
        query = query.where(training_sessions.c.held_on >= since)
    if until is not None:
        query = query.where(training_sessions.c.held_on <= until)
    with engine.connect() as conn:
        return [row_dict(r) for r in conn.execute(query)]


def session_roster(engine: Engine, session_id: int) -> dict[str, Any]:
    """A session and its attendees (``attendees``: staff_no, name, kana, section, employment)."""
    with engine.connect() as conn:
        out = row_dict(_session_row(conn, session_id))
        out["attendees"] = [row_dict(r) for r in conn.execute(
            select(people.c.staff_no, people.c.name, people.c.kana, people.c.section, people.c.employment)
            .join(attendance, attendance.c.person_id == people.c.id)
            .where(attendance.c.session_id == session_id).order_by(people.c.staff_no))]
    return out


def person_record(engine: Engine, staff_number: str) -> list[dict[str, Any]]:
    """A person's training record, newest first: session id, training, held_on, place and
    ``expires_on`` (the first day it no longer counts; None: never)."""
    with engine.connect() as conn:
        person = person_row(conn, staff_number)
        rows = conn.execute(
            select(training_sessions.c.id.label("session_id"), trainings.c.name.label("training"),
                   training_sessions.c.held_on, training_sessions.c.place, trainings.c.valid_days)
            .join(attendance, attendance.c.session_id == training_sessions.c.id)
            .join(trainings, trainings.c.id == training_sessions.c.training_id)
            .where(attendance.c.person_id == person.id)
            .order_by(training_sessions.c.held_on.desc(), trainings.c.name)).all()
    return [{**row_dict(r), "expires_on": expires_on(r.held_on, r.valid_days)} for r in rows]


def latest_attended(conn: Connection, on: date) -> dict[tuple[int, int], date]:
    """(person id, training id) -> the latest session day attended on or before ``on``."""
    rows = conn.execute(
        select(attendance.c.person_id, training_sessions.c.training_id,
               func.max(training_sessions.c.held_on).label("held_on"))
        .join(training_sessions, training_sessions.c.id == attendance.c.session_id)
        .where(training_sessions.c.held_on <= on)
        .group_by(attendance.c.person_id, training_sessions.c.training_id))
    return {(r.person_id, r.training_id): r.held_on for r in rows}


def standing(
    required: Iterable[dict[str, Any]], latest: dict[tuple[int, int], date], person_id: int, on: date
) -> tuple[str, date | None, list[tuple[dict[str, Any], str, date | None, date | None]]]:
    """How a person stands on ``on`` against the ``required`` trainings.

    Returns (status, until, details): status ``untrained`` if any training was never
    attended, else ``training_expired`` if any has expired, else ``trained``; ``until`` is
    the earliest expiry day among them (None: none expires); details per training are
    (training, status, last held_on, expires_on).
    """
    details: list[tuple[dict[str, Any], str, date | None, date | None]] = []
    for training in required:
        held = latest.get((person_id, training["id"]))
        if held is None:
            details.append((training, "untrained", None, None))
            continue
        ends = expires_on(held, training["valid_days"])
        details.append((training, "training_expired" if ends is not None and ends <= on else "trained",
                        held, ends))
    states = {d[1] for d in details}
    status = ("untrained" if "untrained" in states
              else "training_expired" if "training_expired" in states else "trained")
    expiries = [d[3] for d in details if d[3] is not None]
    return status, (min(expiries) if expiries else None), details


def training_gaps(
    engine: Engine, kind: str | None, on: date, *, within_days: int = 30
) -> list[dict[str, Any]]:
    """Who is not (or soon not) trained for a station kind: people active on ``on`` or
    starting later, with one row per required training that is ``untrained``, ``expired``
    or ``expiring`` (expires within ``within_days`` days of ``on``)."""
    if kind is not None and kind not in STATION_KINDS:
        raise RegistryError("station_kind.unknown", {"value": repr(kind)})
    horizon = on + timedelta(days=within_days)
    out = []
    with engine.connect() as conn:
        required = required_for([_training_dict(r) for r in conn.execute(select(trainings))], kind)
        latest = latest_attended(conn, on)
        everyone = conn.execute(select(people).order_by(people.c.staff_no)).all()
    for person in everyone:
        if not (is_active(person, on) or (person.active_from is not None and person.active_from > on)):
            continue
        _status, _until, details = standing(required, latest, person.id, on)
        for training, status, held, ends in details:
            if status == "trained":
                if ends is None or ends > horizon:
                    continue
                status = "expiring"
            elif status == "training_expired":
                status = "expired"
            out.append({"staff_no": person.staff_no, "name": person.name, "section": person.section,
                        "employment": person.employment, "active_from": person.active_from,
                        "training": training["name"], "status": status, "last_held_on": held,
                        "expires_on": ends})
    return out
