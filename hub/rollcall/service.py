"""Roll-call sessions: open, the live roster, close.

A supervisor opens a session (:func:`open_session`): a training of the catalogue or a 朝礼
(morning meeting) with its topic, a start, a check-in window in minutes, who is expected (a
section's people, optionally of one employment type, and/or listed staff numbers) and the
stations people check in at (``rollcall`` units, or any station with a reader: there a tap
checks in instead of its usual use until the close). The open session goes out in their signed
policies (hub.rollcall.policy, hub.registry.compile); opening is a registry change, so the
policies are republished at once.

A tap is a ``rollcall.tap`` event, stored in the chain like any event. The hub decides what it
counts as from its time, not from what the unit showed (:func:`checkins`): the first tap of a
person at one of the session's units from the session's opening until its close checks them
in; ``present`` up to the start plus the window, ``late`` after; a person not expected is
``unexpected``; expected people with no tap are ``absent``.

Closing (:func:`close_session`) fixes the roster in ``rollcall_people``, writes each outcome to
the change log, records the attendance of everyone present or late at the training's registry
session (made for the start's local day if there is none), and, for a reading of a procedure
version (``procedure_version_id``), records that everyone present or late read and confirmed it
(hub.procedures, ``via`` rollcall), all in one transaction; after the commit the registry's
change signal makes the hub republish the policies, so a part-timer refused for lack of this training is allowed
within seconds. Opening, closing and each outcome are ``registry_log`` rows: in the change log
and in the ``registry`` side log that ``kagiban verify`` checks.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update

from hub.catalog import CodedError
from hub.config import HubConfig
from hub.procedures.service import find_version, record_confirmations
from hub.registry.log import writing
from hub.registry.people import is_active
from hub.registry.trainings import add_attendance_row, insert_session
from hub.rollcall.messages import ERRORS
from hub.rollcall.policy import instant, late_after, stations_of
from hub.store.db import inserted_id
from hub.store.schema import (
    EMPLOYMENT_TYPES,
    ROLLCALL_KINDS,
    events,
    people,
    rollcall_people,
    rollcall_sessions,
    stations,
    training_sessions,
    trainings,
)
from hub.store.timestamps import now_utc, utc_text
from kagiban.protocol import MAX_ROLLCALL_EXPECTED

_LOG = logging.getLogger(__name__)

TAP = "rollcall.tap"
MAX_TOPIC = 128
MAX_WINDOW_MIN = 24 * 60
STATUS_ORDER = ("present", "late", "unexpected", "absent")


class RollcallError(CodedError):
    """A roll-call step that cannot be done as asked (codes: hub.rollcall.messages.ERRORS)."""

    ERRORS = ERRORS


@dataclass(frozen=True)
class SessionClosed:
    """What closing a session did: staff numbers of those present (on time) and late (their
    attendance, and their confirmation of ``procedure_version_id`` if the session was its
    reading), who closed it and when."""

    session_id: int
    procedure_version_id: int | None
    present: tuple[str, ...]
    late: tuple[str, ...]
    closed_by: str
    closed_at: datetime


@dataclass(frozen=True)
class SessionInput:
    """What the open-session form gives (text as typed; checked by :func:`open_session`)."""

    kind: str
    topic: str = ""
    training: str | None = None
    starts_at: str | datetime = ""
    window_min: str | int = 10
    stations: tuple[str, ...] = ()
    section: str = ""
    employment: str = ""
    staff_numbers: tuple[str, ...] = ()
    procedure_version_id: str | int | None = None


@dataclass(frozen=True)
class Session:
    """One roll-call session as stored (times None where a stored value is no instant)."""

    id: int
    kind: str
    topic: str
    training: str | None
    training_session_id: int | None
    stations: tuple[str, ...]
    starts_at: datetime | None
    window_min: int
    opened_at: datetime | None
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    procedure_version_id: int | None

    @property
    def is_open(self) -> bool:
        return self.closed_by is None

    @property
    def late_after(self) -> datetime | None:
        """The last on-time instant: the start plus the window."""
        if self.starts_at is None:
            return None
        try:
            return self.starts_at + timedelta(minutes=self.window_min)
        except OverflowError:  # a stored start at the end of time
            return None


@dataclass(frozen=True)
class Tap:
    """A person's first tap in a session's time at one of its units."""

    staff_no: str
    at: str  # UTC text, as stored
    station: str
    event_id: str


@dataclass(frozen=True)
class RosterRow:
    """One person of a session's roster."""

    staff_no: str
    name: str
    kana: str
    section: str
    employment: str
    expected: bool
    status: str  # present, late, absent, unexpected
    tapped_at: datetime | None
    station: str | None


@dataclass(frozen=True)
class Roster:
    """A session and its people, in STATUS_ORDER then by staff number."""

    session: Session
    rows: list[RosterRow] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    def of(self, status: str) -> list[RosterRow]:
        return [r for r in self.rows if r.status == status]


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return instant(text)
    except (ValueError, OverflowError):
        return None


def _session(row: Any, training: str | None) -> Session:
    return Session(
        id=row.id, kind=row.kind, topic=row.topic, training=training, training_session_id=row.training_session_id,
        stations=tuple(stations_of(row.stations)), starts_at=_time(row.starts_at), window_min=int(row.window_min),
        opened_at=_time(row.opened_at), opened_by=row.opened_by, closed_at=_time(row.closed_at),
        closed_by=row.closed_by, procedure_version_id=row.procedure_version_id)


def _query():
    return (select(rollcall_sessions, trainings.c.name.label("training"))
            .outerjoin(trainings, trainings.c.id == rollcall_sessions.c.training_id))


def _row(conn: Connection, session_id: int) -> Any:
    row = conn.execute(_query().where(rollcall_sessions.c.id == session_id)).first()
    if row is None:
        raise RollcallError("rollcall.not_found", {"id": session_id})
    return row


def get_session(engine: Engine, session_id: int) -> Session:
    """One session; RollcallError ``rollcall.not_found`` if there is none."""
    with engine.connect() as conn:
        row = _row(conn, session_id)
    return _session(row, row.training)


def list_sessions(engine: Engine, *, open_only: bool = False, limit: int = 200) -> list[Session]:
    """Sessions, newest first (open ones only if asked)."""
    query = _query().order_by(rollcall_sessions.c.id.desc()).limit(limit)
    if open_only:
        query = query.where(rollcall_sessions.c.closed_by.is_(None))
    with engine.connect() as conn:
        return [_session(r, r.training) for r in conn.execute(query)]


# Kinds with a badge reader: where people can check in (an annunciator has none).
CHECK_IN_KINDS = ("rollcall", "cabinet", "door", "shredder", "printer")


def checkin_stations(engine: Engine, cfg: HubConfig) -> dict[str, str]:
    """Every known station people can check in at -> its kind: the hub config's and those heard
    from (the config's kind wins over a heartbeat's); roll-call units first, then the others."""
    with engine.connect() as conn:
        found = {r.station: r.kind for r in conn.execute(select(stations.c.station, stations.c.kind))}
    for entry in cfg.stations or []:
        found[entry.id] = entry.kind
    chosen = [(s, k) for s, k in found.items() if k in CHECK_IN_KINDS]
    return dict(sorted(chosen, key=lambda sk: (sk[1] != "rollcall", sk[0])))


# --- open ---


def _start(value: str | datetime, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise RollcallError("rollcall.bad_start", {"value": repr(value.isoformat())})
        return value
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise RollcallError("rollcall.bad_start", {"value": repr(value)}) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)


def _window(value: str | int) -> int:
    try:
        minutes = int(str(value).strip())
    except ValueError:
        raise RollcallError("rollcall.bad_window", {"value": repr(value), "n": MAX_WINDOW_MIN}) from None
    if not 1 <= minutes <= MAX_WINDOW_MIN:
        raise RollcallError("rollcall.bad_window", {"value": repr(value), "n": MAX_WINDOW_MIN})
    return minutes


def _procedure(value: str | int | None) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise RollcallError("rollcall.bad_procedure", {"value": repr(value)}) from None
    if number < 1:
        raise RollcallError("rollcall.bad_procedure", {"value": repr(value)})
    return number


def _expected(conn: Connection, inp: SessionInput, on: date) -> list[str]:
    """The staff numbers expected: a section's active people (of one employment type if given)
    and the numbers listed."""
    chosen: set[str] = set()
    if inp.employment and inp.employment not in EMPLOYMENT_TYPES:
        raise RollcallError("rollcall.bad_employment", {"value": repr(inp.employment)})
    if inp.section.strip():
        query = select(people).where(people.c.section == inp.section.strip())
        if inp.employment:
            query = query.where(people.c.employment == inp.employment)
        chosen |= {p.staff_no for p in conn.execute(query) if is_active(p, on)}
    listed = [n.strip() for n in inp.staff_numbers if n and n.strip()]
    if listed:
        known = set(conn.execute(select(people.c.staff_no).where(people.c.staff_no.in_(listed))).scalars())
        for number in listed:
            if number not in known:
                raise RollcallError("rollcall.unknown_person", {"value": repr(number)})
        chosen |= known
    if not chosen:
        raise RollcallError("rollcall.nobody_expected")
    if len(chosen) > MAX_ROLLCALL_EXPECTED:
        raise RollcallError("rollcall.too_many", {"n": MAX_ROLLCALL_EXPECTED})
    return sorted(chosen)


def open_session(engine: Engine, cfg: HubConfig, actor: str, inp: SessionInput, *,
                 now: datetime | None = None) -> int:
    """Open a roll-call session; its id. RollcallError (nothing written) if anything is wrong."""
    now = now or now_utc()
    zone = cfg.zone()
    if inp.kind not in ROLLCALL_KINDS:
        raise RollcallError("rollcall.bad_kind", {"value": repr(inp.kind)})
    starts = _start(inp.starts_at, zone)
    window = _window(inp.window_min)
    procedure = _procedure(inp.procedure_version_id)
    units = checkin_stations(engine, cfg)
    chosen = sorted({s for s in inp.stations if s})
    if not chosen:
        raise RollcallError("rollcall.no_station")
    for station in chosen:
        if station not in units:
            raise RollcallError("rollcall.unknown_station", {"value": repr(station)})
    with writing(engine, actor, now=now) as rec:
        conn = rec.conn
        training_id = None
        topic = (inp.topic or "").strip()
        if inp.kind == "training":
            found = conn.execute(select(trainings.c.id, trainings.c.name).where(
                trainings.c.name == (inp.training or "").strip())).first()
            if found is None:
                raise RollcallError("rollcall.unknown_training", {"value": repr(inp.training or "")})
            training_id, topic = found.id, topic or found.name
        if not topic or len(topic) > MAX_TOPIC:
            raise RollcallError("rollcall.no_topic", {"n": MAX_TOPIC})
        if procedure is not None and find_version(conn, procedure) is None:
            raise RollcallError("rollcall.unknown_procedure", {"value": procedure})
        for session in list_open(conn):
            busy = set(stations_of(session.stations)) & set(chosen)
            if busy:
                raise RollcallError("rollcall.station_busy", {"station": min(busy), "id": session.id})
        expected = _expected(conn, inp, starts.astimezone(zone).date())
        values = {"kind": inp.kind, "topic": topic, "training_id": training_id, "stations": json.dumps(chosen),
                  "starts_at": utc_text(starts), "window_min": window, "opened_at": utc_text(now),
                  "opened_by": rec.actor, "procedure_version_id": procedure}
        session_id = int(inserted_id(conn.execute(insert(rollcall_sessions).values(**values))))
        conn.execute(insert(rollcall_people), [{"session_id": session_id, "staff_no": n, "expected": True}
                                               for n in expected])
        rec.record("rollcall", str(session_id), "open", None,
                   {**values, "id": session_id, "stations": chosen, "expected": expected})
    _LOG.info("roll call %d opened by %s at %s: %d expected", session_id, actor, ", ".join(chosen), len(expected))
    return session_id


def list_open(conn: Connection) -> list[Any]:
    """The open sessions' rows."""
    return list(conn.execute(select(rollcall_sessions).where(rollcall_sessions.c.closed_by.is_(None))))


# --- taps and roster ---


def checkins(conn: Connection, row: Any, until: datetime | None = None) -> dict[str, Tap]:
    """Each person's first tap at the session's units from its opening until ``until`` (the
    close; None: now and on), by staff number. Taps naming nobody are left out."""
    units = stations_of(row.stations)
    if not units:
        return {}
    query = (select(events.c.person, events.c.at_utc, events.c.station, events.c.event_id)
             .where(events.c.kind == TAP, events.c.station.in_(units), events.c.person.is_not(None),
                    events.c.at_utc >= row.opened_at)
             .order_by(events.c.at_utc, events.c.row_no))
    if until is not None:
        query = query.where(events.c.at_utc < utc_text(until))
    out: dict[str, Tap] = {}
    for tap in conn.execute(query):
        if tap.person not in out:
            out[tap.person] = Tap(tap.person, tap.at_utc, tap.station, tap.event_id)
    return out


def judge(expected: bool, tap: Tap | None, late_text: str) -> str:
    """A person's status from whether they were expected and their first tap."""
    if not expected:
        return "unexpected"
    if tap is None:
        return "absent"
    return "present" if tap.at <= late_text else "late"


def _late_text(row: Any) -> str:
    try:
        return utc_text(late_after(row.starts_at, row.window_min))
    except (ValueError, OverflowError):  # no start to judge by: every tap counts as on time
        return "9999"


def roster(engine: Engine, session_id: int) -> Roster:
    """A session's roster: fixed at the close, else as the taps stored so far say."""
    with engine.connect() as conn:
        row = _row(conn, session_id)
        session = _session(row, row.training)
        stored = {r.staff_no: r for r in conn.execute(
            select(rollcall_people).where(rollcall_people.c.session_id == session_id))}
        if session.is_open:
            taps = checkins(conn, row)
            late = _late_text(row)
            outcome = {n: (judge(r.expected, taps.get(n), late), taps.get(n)) for n, r in stored.items()}
            for number, tap in taps.items():
                if number not in outcome:
                    outcome[number] = ("unexpected", tap)
            found = {n: (status, _time(t.at) if t else None, t.station if t else None)
                     for n, (status, t) in outcome.items()}
        else:
            found = {n: (r.status or ("absent" if r.expected else "unexpected"), _time(r.tapped_at), r.station)
                     for n, r in stored.items()}
        who = {p.staff_no: p for p in conn.execute(select(people).where(people.c.staff_no.in_(list(found))))}
    rows = []
    for number, (status, at, station) in found.items():
        person = who.get(number)
        rows.append(RosterRow(
            staff_no=number, name=person.name if person else "", kana=person.kana if person else "",
            section=person.section if person else "", employment=person.employment if person else "",
            expected=number in stored and bool(stored[number].expected), status=status, tapped_at=at,
            station=station))
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    rows.sort(key=lambda r: (rank.get(r.status, len(rank)), r.staff_no))
    return Roster(session=session, rows=rows)


# --- close ---


@dataclass(frozen=True)
class _Held:
    """The registry training session attended (what trainings.add_attendance_row reads)."""

    id: int
    training: str
    held_on: date


def _training_session(rec: Any, row: Any, zone: tzinfo) -> _Held:
    """The registry session of the roll call's training on its start's local day (made if none)."""
    conn = rec.conn
    trow = conn.execute(select(trainings).where(trainings.c.id == row.training_id)).first()
    if trow is None:
        raise RollcallError("rollcall.unknown_training", {"value": repr(row.training_id)})
    held = instant(row.starts_at).astimezone(zone).date()
    found = conn.execute(select(training_sessions.c.id).where(
        training_sessions.c.training_id == trow.id, training_sessions.c.held_on == held)).scalar()
    if found is None:
        found = insert_session(rec, trow, held, ", ".join(stations_of(row.stations))[:128],
                               f"roll call {row.id}")
    return _Held(int(found), trow.name, held)


def close_session(engine: Engine, cfg: HubConfig, actor: str, session_id: int, *,
                  now: datetime | None = None) -> SessionClosed:
    """Close a session: fix its roster, record attendance (a training), log each outcome, call
    the reading's confirmations; after the commit the policies are republished (registry change)."""
    now = now or now_utc()
    with writing(engine, actor, now=now) as rec:
        conn = rec.conn
        row = _row(conn, session_id)
        if row.closed_by is not None:
            raise RollcallError("rollcall.closed", {"id": session_id})
        taps = checkins(conn, row, until=now)
        late = _late_text(row)
        expected = {n for n, e in conn.execute(select(rollcall_people.c.staff_no, rollcall_people.c.expected).where(
            rollcall_people.c.session_id == session_id)) if e}
        outcome: dict[str, str] = {n: judge(True, taps.get(n), late) for n in expected}
        outcome.update({n: "unexpected" for n in taps if n not in expected})
        for number, status in sorted(outcome.items()):
            tap = taps.get(number)
            values = {"status": status, "tapped_at": tap.at if tap else None, "station": tap.station if tap else None,
                      "event_id": tap.event_id if tap else None}
            if number in expected:
                conn.execute(update(rollcall_people).where(rollcall_people.c.session_id == session_id,
                                                           rollcall_people.c.staff_no == number).values(**values))
            else:
                conn.execute(insert(rollcall_people).values(session_id=session_id, staff_no=number, expected=False,
                                                            **values))
            rec.record("rollcall_checkin", f"{session_id}/{number}", status, None,
                       {"session_id": session_id, "staff_no": number, **values})
        present = tuple(sorted(n for n, s in outcome.items() if s == "present"))
        late_ones = tuple(sorted(n for n, s in outcome.items() if s == "late"))
        held_id = None
        if row.kind == "training":
            held = _training_session(rec, row, cfg.zone())
            held_id = held.id
            attendees = conn.execute(select(people).where(people.c.staff_no.in_(present + late_ones))).all()
            for person in attendees:
                add_attendance_row(rec, held, person)
        closed = {"closed_at": utc_text(now), "closed_by": rec.actor, "training_session_id": held_id}
        conn.execute(update(rollcall_sessions).where(rollcall_sessions.c.id == session_id).values(**closed))
        counts = {s: sum(1 for v in outcome.values() if v == s) for s in STATUS_ORDER}
        rec.record("rollcall", str(session_id), "close", {"closed_at": None},
                   {**closed, "id": session_id, "counts": counts})
        result = SessionClosed(session_id=session_id, procedure_version_id=row.procedure_version_id,
                               present=present, late=late_ones, closed_by=rec.actor, closed_at=now)
        if row.procedure_version_id is not None and present + late_ones:
            # A reading session: attending it is reading and confirming that version.
            record_confirmations(conn, row.procedure_version_id, present + late_ones, via="rollcall",
                                 actor=rec.actor, at=now, session_id=session_id)
    _LOG.info("roll call %d closed by %s: %s", session_id, actor, counts)
    return result


def staff_numbers(text: str) -> tuple[str, ...]:
    """Staff numbers typed one per line, or separated by commas or spaces."""
    return tuple(n for n in text.replace(",", " ").replace("、", " ").split() if n)


def sections(engine: Engine) -> list[str]:
    """The sections people belong to (for the form)."""
    with engine.connect() as conn:
        return sorted(s for s in conn.execute(select(people.c.section).distinct()).scalars() if s)

