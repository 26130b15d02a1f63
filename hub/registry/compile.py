"""Compile the registry into each station's access policy for one day.

A policy lists every registered badge with what the station does when it is tapped; the
station decides from it alone, with the hub or the network down, so it carries the times it
must judge itself: each entry's ``valid_from``/``valid_until`` (instants in the site's zone;
``valid_until`` is the first instant the entry no longer holds, ``expiry_reason`` says why)
and what to do outside business hours (``after_hours``), with the station's ``hours`` and the
site's days off (``holidays``: its national holidays and its own closed days, resolved by
hub.hours.site_holidays) from the day before D through :func:`holidays_ahead` days after D: the
policy's validity plus a margin, at least 60 days, so a station cut off from the hub over a
long holiday (年末年始) still judges those days right, with its policy expired too.

For a day D (the site's local date) and a station of kind K, a badge's entry is decided in
this order, the first that applies winning:

1. badge lost or revoked: deny ``revoked``;
2. person no longer active (``active_to`` before D): deny ``inactive``;
3. badge past its last valid day: deny ``badge_expired``;
4. for each training K requires, a session attended on or before D whose expiry is after D:
   one never attended: deny ``untrained``; one only expired: deny ``training_expired``;
4b. procedures (hub.procedures.rules): a document K requires whose audience includes the
   person, its current version not confirmed; or a version a required training requires read,
   not confirmed: deny ``unconfirmed_procedure``;
5. the kind's rule: cabinet - designated holder allow ``designated_holder``, stand-in allow
   ``stand_in``, others allow_flag (or deny, per the station's ``others``) ``not_designated``;
   shredder - on D's roster allow ``allowed``, others as at a cabinet; printer and door -
   allow ``allowed``.

An allowed entry ends (``valid_until``) at the earliest of: the end of the badge's last valid
day (``badge_expired``), the end of the person's last active day (``inactive``), the first day
a required training has expired (``training_expired``). It starts (``valid_from``) at the
later of the badge's first valid day and the person's first active day, if that is after D
(the station says ``not_yet_valid`` before it). ``after_hours`` is "allow" for people on the
station's after-hours list, else the station's ``after_hours`` setting ("deny" by default).

A station at which a roll call is open (hub.rollcall) also gets the session in ``rollcall``
(kagiban.protocol.RollCall, read by hub.rollcall.policy.open_sessions): opening and closing one
are registry changes, so its policy is compiled and published again at once.

The roster and D itself change daily, so the hub compiles again after each local midnight
(hub.registry.policy.PolicyPublisher does, with :func:`policy_source` as its compile step; it also
versions and signs what it publishes). :func:`compile_station` and :func:`compile_all` give
whole policies: one keeps the version and issue time stored in ``policies`` while its content
is unchanged; a change gets max(stored + 1, unix time in ms), as the publisher does.
"""
from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from hub.config import HubConfig
from hub.hours import site_holidays
from hub.procedures.rules import UNCONFIRMED, Readings, load_readings
from hub.registry.common import STATION_KINDS
from hub.registry.designations import DEFAULT_SETTINGS
from hub.registry.trainings import latest_attended, required_for, standing
from hub.rollcall.policy import open_sessions
from hub.store.schema import (
    after_hours_users,
    badges,
    designations,
    people,
    policies,
    shredder_roster,
    station_settings,
    stations,
    trainings,
)
from hub.store.timestamps import now_utc

_LOG = logging.getLogger(__name__)

DECISIONS = ("allow", "allow_flag", "deny")
ALLOW_REASONS = ("designated_holder", "stand_in", "allowed")
DENY_REASONS = ("not_designated", "untrained", "training_expired", "outside_hours", "revoked",
                "inactive", "unknown", "not_yet_valid", "badge_expired", UNCONFIRMED)
# The fields that are not content: a policy with the same content keeps them.
_NOT_CONTENT = ("version", "issued_at")
# How far ahead a policy carries the site's days off (see holidays_ahead).
HOLIDAYS_AHEAD_DAYS = 60
HOLIDAYS_MARGIN_DAYS = 14


@dataclass
class _Registry:
    """What the compile reads, loaded once per day compiled."""

    on: date
    people: dict[int, Any]
    badges: list[Any]
    trainings: list[dict[str, Any]]
    latest: dict[tuple[int, int], date]
    designations: dict[str, dict[int, str]]
    settings: dict[str, dict[str, str]]
    after_hours: dict[str, set[int]]
    roster: dict[str, set[int]]
    readings: Readings
    # Station -> the roll-call session open there (kagiban.protocol.RollCall as JSON).
    rollcall: dict[str, dict[str, Any]]


def _load(conn: Connection, on: date) -> _Registry:
    designated: dict[str, dict[int, str]] = {}
    for r in conn.execute(select(designations)):
        designated.setdefault(r.station, {})[r.person_id] = r.role
    after: dict[str, set[int]] = {}
    for r in conn.execute(select(after_hours_users)):
        after.setdefault(r.station, set()).add(r.person_id)
    rostered: dict[str, set[int]] = {}
    for r in conn.execute(select(shredder_roster).where(shredder_roster.c.day == on)):
        rostered.setdefault(r.station, set()).add(r.person_id)
    return _Registry(
        on=on,
        people={r.id: r for r in conn.execute(select(people))},
        badges=list(conn.execute(select(badges).order_by(badges.c.badge_id))),
        trainings=[{**dict(r._mapping), "station_kinds": json.loads(r.station_kinds)}
                   for r in conn.execute(select(trainings).order_by(trainings.c.id))],
        latest=latest_attended(conn, on),
        designations=designated,
        settings={r.station: {"others": r.others, "after_hours": r.after_hours}
                  for r in conn.execute(select(station_settings))},
        after_hours=after,
        roster=rostered,
        readings=load_readings(conn),
        rollcall=open_sessions(conn),
    )


def _start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone)


def _entry(reg: _Registry, badge: Any, station: str, kind: str | None, zone: ZoneInfo) -> dict[str, Any]:
    on = reg.on
    person = reg.people[badge.person_id]
    # expiry_reason is added only with a valid_until (the protocol's default stands otherwise).
    entry: dict[str, Any] = {"person": person.staff_no, "name": person.name, "decision": "deny",
                             "reason": "", "valid_from": None, "valid_until": None,
                             "after_hours": "deny"}

    def deny(reason: str) -> dict[str, Any]:
        entry["reason"] = reason
        return entry

    if badge.state in ("lost", "revoked"):
        return deny("revoked")
    if person.active_to is not None and person.active_to < on:
        return deny("inactive")
    if badge.valid_to is not None and badge.valid_to < on:
        return deny("badge_expired")
    required = required_for(reg.trainings, kind)
    status, trained_until, _details = standing(required, reg.latest, person.id, on)
    if status != "trained":
        return deny(status)
    if reg.readings.missing(person, kind, required):
        return deny(UNCONFIRMED)

    settings = reg.settings.get(station, DEFAULT_SETTINGS)
    others = "allow_flag" if settings["others"] == "flag" else "deny"
    if kind == "cabinet":
        role = reg.designations.get(station, {}).get(person.id, "")
        decision, reason = {"holder": ("allow", "designated_holder"),
                            "standin": ("allow", "stand_in")}.get(role, (others, "not_designated"))
    elif kind == "shredder":
        on_roster = person.id in reg.roster.get(station, set())
        decision, reason = ("allow", "allowed") if on_roster else (others, "not_designated")
    else:
        decision, reason = "allow", "allowed"
    entry["decision"], entry["reason"] = decision, reason
    if decision == "deny":
        return entry

    starts = [d for d in (badge.valid_from, person.active_from) if d is not None and d > on]
    if starts:
        entry["valid_from"] = _start(max(starts), zone).isoformat()
    ends = []  # (first day no longer valid, why); on a tie the first listed wins
    if person.active_to is not None:
        ends.append((person.active_to + timedelta(days=1), "inactive"))
    if badge.valid_to is not None:
        ends.append((badge.valid_to + timedelta(days=1), "badge_expired"))
    if trained_until is not None:
        ends.append((trained_until, "training_expired"))
    if ends:
        first_end = min(d for d, _why in ends)
        entry["valid_until"] = _start(first_end, zone).isoformat()
        entry["expiry_reason"] = next(why for d, why in ends if d == first_end)
    entry["after_hours"] = ("allow" if person.id in reg.after_hours.get(station, set())
                            else settings["after_hours"])
    if kind == "printer" and getattr(person, "print_user", None):
        # The print server knows this person by another name than the staff number.
        entry["print_user"] = person.print_user
    return entry


def holidays_ahead(cfg: HubConfig) -> int:
    """How many days after the compile day a policy's ``holidays`` reach: at least
    HOLIDAYS_AHEAD_DAYS, and the policy's validity plus HOLIDAYS_MARGIN_DAYS if that is longer
    (a station keeps deciding from an expired policy, flagging its allows)."""
    return max(HOLIDAYS_AHEAD_DAYS, math.ceil(cfg.policy.validity_h / 24) + HOLIDAYS_MARGIN_DAYS)


def _content(cfg: HubConfig, reg: _Registry, station: str, site: str, kind: str | None) -> dict[str, Any]:
    zone = cfg.site_zone(site)
    hours = cfg.hours(station, site)
    days_off = site_holidays(cfg, site, reg.on - timedelta(days=1), reg.on + timedelta(days=holidays_ahead(cfg)))
    content = {
        "v": 1,
        "site": site,
        "station": station,
        "time_zone": zone.key,
        "hours": {"days": list(hours.days), "start": hours.start.strftime("%H:%M"),
                  "end": hours.end.strftime("%H:%M")},
        # From the day before: a window past midnight started then.
        "holidays": [d.isoformat() for d in sorted(days_off)],
        "badges": {b.badge_id: _entry(reg, b, station, kind, zone) for b in reg.badges},
    }
    if station in reg.rollcall:
        content["rollcall"] = reg.rollcall[station]
    return content


def content_of(policy: dict[str, Any]) -> dict[str, Any]:
    """A policy dict without its version and issue time: what it says."""
    return {k: v for k, v in policy.items() if k not in _NOT_CONTENT}


def _normal(content: dict[str, Any]) -> Any:
    """Content in one canonical form, so a stored payload compares with a fresh compile."""
    try:
        from kagiban.protocol import Policy

        model = Policy.model_validate({**content, "version": 1, "issued_at": "2000-01-01T00:00:00+00:00"})
        return content_of(model.model_dump(mode="json"))
    except Exception:  # an older payload, or the protocol not yet carrying every field
        return json.loads(json.dumps(content, sort_keys=True))


def _versioned(conn: Connection, content: dict[str, Any], zone: ZoneInfo, now: datetime) -> dict[str, Any]:
    row = conn.execute(select(policies.c.version, policies.c.payload)
                       .where(policies.c.station == content["station"])).first()
    if row is not None:
        try:
            stored = json.loads(row.payload)
        except ValueError:
            stored = {}
        if isinstance(stored, dict) and isinstance(stored.get("policy"), dict):
            stored = stored["policy"]  # the signed envelope the publisher stores
        if isinstance(stored, dict) and _normal(content_of(stored)) == _normal(content):
            return {**content, "version": row.version, "issued_at": stored.get("issued_at")}
    version = max(row.version + 1 if row is not None else 1, int(now.timestamp() * 1000))
    return {**content, "version": version, "issued_at": now.astimezone(zone).isoformat()}


def _today(cfg: HubConfig, site: str, now: datetime) -> date:
    return now.astimezone(cfg.site_zone(site)).date()


def compile_station(
    engine: Engine,
    cfg: HubConfig,
    station_id: str,
    site: str,
    kind: str | None,
    on: date | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The policy of one station for day ``on`` (default: today in the site's zone), as a
    JSON-ready dict shaped like kagiban.protocol.Policy (see :func:`to_policy`).

    ``kind`` None (a station that never said) requires every training any kind requires and
    allows like a door.
    """
    if kind is not None and kind not in STATION_KINDS:
        raise ValueError(f"unknown station kind {kind!r}")
    now = now or now_utc()
    on = on or _today(cfg, site, now)
    with engine.connect() as conn:
        reg = _load(conn, on)
        content = _content(cfg, reg, station_id, site, kind)
        return _versioned(conn, content, cfg.site_zone(site), now)


def _known_stations(engine: Engine, cfg: HubConfig) -> dict[str, tuple[str, str | None]]:
    """Every known station -> (site, kind as configured or heard); the hub config's entries win
    over what the ``stations`` table learnt from heartbeats."""
    with engine.connect() as conn:
        out = {r.station: (r.site, r.kind) for r in conn.execute(
            select(stations.c.station, stations.c.site, stations.c.kind))}
    for entry in cfg.stations or []:
        out[entry.id] = (entry.site, entry.kind)
    return dict(sorted(out.items()))


def stations_to_compile(engine: Engine, cfg: HubConfig) -> dict[str, tuple[str, str | None]]:
    """Every station that gets a policy: station -> (site, kind; None for a kind the registry's
    requirements do not name)."""
    return {s: (site, kind if kind in STATION_KINDS else None)
            for s, (site, kind) in _known_stations(engine, cfg).items()}


def _compile_contents(
    engine: Engine, cfg: HubConfig, on: date | None, now: datetime
) -> dict[str, tuple[str, dict[str, Any]]]:
    targets = stations_to_compile(engine, cfg)
    out: dict[str, tuple[str, dict[str, Any]]] = {}
    loaded: dict[date, _Registry] = {}
    with engine.connect() as conn:
        for station, (site, kind) in targets.items():
            day = on or _today(cfg, site, now)
            if day not in loaded:
                loaded[day] = _load(conn, day)
            out[station] = (site, _content(cfg, loaded[day], station, site, kind))
    return out


def compile_all(
    engine: Engine, cfg: HubConfig, on: date | None = None, *, now: datetime | None = None
) -> dict[str, tuple[str, dict[str, Any]]]:
    """The policy of every station (see :func:`stations_to_compile`): station -> (site, policy).

    ``on`` None: each station's today in its site's zone.
    """
    now = now or now_utc()
    contents = _compile_contents(engine, cfg, on, now)
    with engine.connect() as conn:
        out = {station: (site, _versioned(conn, content, cfg.site_zone(site), now))
               for station, (site, content) in contents.items()}
    _LOG.debug("compiled policies for %d station(s)", len(out))
    return out


@dataclass(frozen=True)
class StationDecision:
    """What one station decides for a badge at an instant, by the policy compiled for it."""

    station: str
    site: str
    kind: str | None
    decision: str  # one of DECISIONS
    reason: str  # one of ALLOW_REASONS, DENY_REASONS or the policy's own (expired, ...)


# Kinds whose taps grant nothing (a roll-call unit checks people in, an annunciator has no
# reader): the person page lists no decision of theirs.
NO_ACCESS_KINDS = frozenset({"rollcall", "annunciator"})


def badge_decisions(
    engine: Engine, cfg: HubConfig, badge_id: str, *, now: datetime | None = None
) -> list[StationDecision]:
    """The decision of every station (as :func:`stations_to_compile` sees it) for ``badge_id`` at
    ``now``: the policy each is sent, compiled as the publisher compiles it, asked as the
    station asks it (kagiban.protocol.Policy.decide: validity and business hours included).
    A badge the registry does not hold is refused everywhere as ``unknown``. Stations of
    :data:`NO_ACCESS_KINDS` are left out."""
    now = now or now_utc()
    out = []
    loaded: dict[date, _Registry] = {}
    with engine.connect() as conn:
        for station, (site, known) in _known_stations(engine, cfg).items():
            if known in NO_ACCESS_KINDS:
                continue
            kind = known if known in STATION_KINDS else None
            day = _today(cfg, site, now)
            if day not in loaded:
                reg = _load(conn, day)
                # Only this badge: the entry is compiled exactly as in the full policy.
                loaded[day] = replace(reg, badges=[b for b in reg.badges if b.badge_id == badge_id])
            content = _content(cfg, loaded[day], station, site, kind)
            policy = to_policy({**content, "version": 1, "issued_at": now.astimezone(cfg.site_zone(site)).isoformat()})
            entry = policy.decide(badge_id, now)
            out.append(StationDecision(station, site, kind, entry.decision, entry.reason))
    return out


# The Policy fields hub.registry.policy.PolicyPublisher takes from a compile step (it adds the rest).
SOURCE_FIELDS = ("site", "badges", "time_zone", "hours", "holidays", "rollcall")


def policy_source(engine: Engine, cfg: HubConfig) -> Callable[[datetime], dict[str, dict[str, Any]]]:
    """The registry as the compile step of hub.registry.policy.PolicyPublisher: ``fn(now)`` gives every
    station's policy content for its site's date at ``now`` (the publisher versions, signs and
    publishes it, and recompiles after each local midnight)::

        publisher.use_compile(registry.policy_source(engine, cfg))
        registry.changes(engine).connect(lambda _change: publisher.request_recompile())
    """

    def compile_now(now: datetime) -> dict[str, dict[str, Any]]:
        return {station: {k: content[k] for k in SOURCE_FIELDS if k in content}
                for station, (_site, content) in _compile_contents(engine, cfg, None, now).items()}

    return compile_now


def to_policy(policy: dict[str, Any]) -> Any:
    """The compiled dict as a kagiban.protocol.Policy (validated)."""
    from kagiban.protocol import Policy

    return Policy.model_validate(policy)
