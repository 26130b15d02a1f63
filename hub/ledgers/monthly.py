"""The monthly self-inspection report (自己点検報告): per site and month, the figures that answer
each finding of the audit, computed from the store (no web framework here; the rendering to
HTML, PDF and Excel is hub.ledgers.monthly_render):

- key use (the key ledger, every day of the month): uses by the designated holder, by a
  stand-in and by anyone else (the cabinet's designations as they were when the use began,
  replayed from the registry's change log: a holder replaced mid-month counts as holder for
  the uses before; a use the station flagged is "other" whoever made it), unlocks not opened, uses after hours (hub.hours,
  judged the same way as the shredding ledger), forced openings, doors held open, uses by hour;
- shredding sessions (the shredding ledger) and their flags;
- print releases (jobs and pages), jobs that expired unprinted, releases that failed and
  printouts left in a tray (``tray.uncollected`` events);
- training coverage of the people active on the month's last day, and what expires next month;
- alerts raised in the month (by week and rule) and those still open;
- each station's offline time in the month (station_log);
- the audit trail's verification, as of when the report is made: the month's rows and the chain
  through them from the hub's verified prefix (hub.audit.prefix), and every side log
  (hub.audit.verify); the whole chain is ``kagiban verify``'s;
- near-misses (ヒヤリハット) that occurred in the month at the site's stations or at a place
  (hub.nearmiss.service.count_at_site).

Times are taken in the site's zone; a month is ``YYYY-MM``.
"""
from __future__ import annotations

import json
import logging
from bisect import bisect_right
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from hub.alerting.alerts import list_alerts
from hub.alerting.wording import alert_text
from hub.audit import prefix, verify
from hub.config import HubConfig
from hub.ledgers.closeout import site_stations
from hub.ledgers.base import day_bounds, local_time, staff_names
from hub.ledgers.keys import key_ledger
from hub.ledgers.printing import release_log
from hub.ledgers.shredding import month_days, registry_names, sessions
from hub.nearmiss import service as nearmiss_service
from hub.registry.people import is_active
from hub.registry.trainings import latest_attended, list_trainings, required_for, standing
from hub.stations.directory import display_name, site_name, stations_of_kind
from hub.stations.shredding_flags import after_hours
from hub.store.schema import alerts, chain_head, designations, events, nearmiss_cases, people, registry_log, station_log
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

ALERT_LIMIT = 500  # open alerts listed in the report (the count is always complete)
TEXT_MAX = 300  # characters of one stored text (a name, an alert's sentence, a verify line) in the report


def _short(text: str) -> str:
    """A stored text cut to TEXT_MAX characters: a report page, not a dump (the ledgers have it all)."""
    return text if len(text) <= TEXT_MAX else text[:TEXT_MAX] + "…"


@dataclass(frozen=True)
class KeyFigures:
    """Key use in the month, every cabinet of the site together."""

    holder: int
    stand_in: int
    other: int
    not_opened: int
    after_hours: int
    forced: int
    held_open: int  # door.held_open events at the cabinets
    by_hour: tuple[int, ...]  # 24 counts of uses by the local hour the cabinet was unlocked
    by_person: tuple[tuple[str, str, str, int], ...]  # (person, name, role, uses), most first

    @property
    def uses(self) -> int:
        return self.holder + self.stand_in + self.other


@dataclass(frozen=True)
class ShredFigures:
    sessions: int
    flagged: int
    not_on_roster: int
    after_hours: int
    unended: int  # no end recorded, or cut short by a restart


@dataclass(frozen=True)
class PrintFigures:
    released_jobs: int
    released_pages: int
    expired: int
    failed: int
    uncollected: int


@dataclass(frozen=True)
class TrainingGap:
    staff_no: str
    name: str
    training: str
    expires_on: date | None


@dataclass(frozen=True)
class TrainingFigures:
    """Standing on the month's last day of the people active then."""

    people: int
    trained: int
    untrained: int
    expired: int
    expiring_next_month: tuple[TrainingGap, ...]


@dataclass(frozen=True)
class OpenAlert:
    id: int
    raised_at: datetime | None  # in the site's zone
    station: str
    rule: str
    severity: str
    text_ja: str
    text_en: str


@dataclass(frozen=True)
class AlertFigures:
    raised: int
    by_week: tuple[tuple[date, int], ...]  # (Monday of the week, alerts raised that week in the month)
    by_rule: tuple[tuple[str, int], ...]
    open_count: int
    open: tuple[OpenAlert, ...]


@dataclass(frozen=True)
class StationOffline:
    station: str
    name: str
    kind: str
    offline_s: float
    periods: int


@dataclass(frozen=True)
class Verification:
    ok: bool
    lines: tuple[str, ...]
    at: datetime


@dataclass(frozen=True)
class MonthlyReport:
    site: str
    site_name: str
    month: str  # YYYY-MM
    first: date
    last: date
    zone: str
    generated_at: datetime
    keys: KeyFigures
    shredding: ShredFigures
    printing: PrintFigures
    training: TrainingFigures
    alerts: AlertFigures
    offline: tuple[StationOffline, ...]
    verification: Verification
    near_misses: int | None = None  # None: the hub does not record near-misses yet
    notes: tuple[str, ...] = field(default_factory=tuple)


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True)
class RoleHistory:
    """Each (cabinet, staff number)'s designation over time: the UTC times (``utc_text``) at
    which it changed, in order, and the role from each on (None: not designated)."""

    changes: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str | None, ...]]]

    def at(self, station: str, staff_no: str, when_utc: str) -> str | None:
        """holder, standin or None at the instant ``when_utc``."""
        times, roles = self.changes.get((station, staff_no), ((), ()))
        i = bisect_right(times, when_utc) - 1
        return roles[i] if i >= 0 else None


def _roles(engine: Engine, cabinets: list[str]) -> RoleHistory:
    """The cabinets' designations over time, replayed from the registry's change log (every
    change of hub.registry.designations is recorded there with its time and the row before and
    after). A designation in the table the log never mentions (made before the log, or by hand)
    counts as having always been."""
    if not cabinets:
        return RoleHistory({})
    wanted = set(cabinets)
    timeline: dict[tuple[str, str], tuple[list[str], list[str | None]]] = {}
    with engine.connect() as conn:
        for entry in conn.execute(select(registry_log.c.at, registry_log.c.before, registry_log.c.after)
                                  .where(registry_log.c.entity == "designation")
                                  .order_by(registry_log.c.at, registry_log.c.id)):
            try:
                before, after = (json.loads(entry.before or "null"), json.loads(entry.after or "null"))
            except ValueError:  # a damaged entry: the trail's verification reports it
                continue
            row = after if isinstance(after, dict) else before
            if not isinstance(row, dict) or row.get("station") not in wanted:
                continue
            role = after.get("role") if isinstance(after, dict) else None
            times, roles = timeline.setdefault((str(row["station"]), str(row.get("staff_no"))), ([], []))
            times.append(entry.at)
            roles.append(role if role in ("holder", "standin") else None)
        current = conn.execute(select(designations.c.station, designations.c.role, people.c.staff_no)
                               .join(people, people.c.id == designations.c.person_id)
                               .where(designations.c.station.in_(cabinets)))
        for r in current:
            timeline.setdefault((r.station, r.staff_no), ([""], [r.role]))
    return RoleHistory({key: (tuple(times), tuple(roles)) for key, (times, roles) in timeline.items()})


def key_figures(engine: Engine, cfg: HubConfig, site: str, first: date, last: date,
                names: dict[str, str]) -> KeyFigures:
    cabinets = stations_of_kind(engine, cfg, "cabinet", site)
    roles = _roles(engine, cabinets)
    count: Counter[str] = Counter()
    by_hour = [0] * 24
    per_person: Counter[tuple[str, str, str]] = Counter()
    for station in cabinets:
        for day in _days(first, last):
            for row in key_ledger(engine, cfg, day, station=station, names=names):
                if row.entry == "forced":
                    count["forced"] += 1
                elif row.entry == "not_opened":
                    count["not_opened"] += 1
                else:
                    start = row.unlocked_at or row.opened_at
                    when = start or row.closed_at
                    held = roles.at(station, row.person or "", utc_text(when)) if when is not None else None
                    role = "other" if row.flagged else held or "other"
                    count[role] += 1
                    if start is not None:
                        by_hour[start.hour] += 1
                    per_person[(_short(row.person or "?"), _short(row.name or ""), role)] += 1
                    if after_hours(cfg, station, row.site or site, start, row.closed_at):
                        count["after_hours"] += 1
    # Every held-open door counts, with or without a key use around it (the ledger marks uses only).
    count["held_open"] = _count_events(engine, cfg, site, cabinets, "door.held_open", first, last)
    people_rows = tuple((p, n, r, c) for (p, n, r), c in sorted(per_person.items(), key=lambda kv: (-kv[1], kv[0])))
    return KeyFigures(holder=count["holder"], stand_in=count["standin"], other=count["other"],
                      not_opened=count["not_opened"], after_hours=count["after_hours"], forced=count["forced"],
                      held_open=count["held_open"], by_hour=tuple(by_hour), by_person=people_rows)


def shred_figures(engine: Engine, cfg: HubConfig, site: str, first: date, last: date,
                  names: dict[str, str]) -> ShredFigures:
    rows = sessions(engine, cfg, first, last, site=site, names=names)
    return ShredFigures(
        sessions=len(rows), flagged=sum(r.flagged for r in rows),
        not_on_roster=sum(r.not_on_roster for r in rows), after_hours=sum(r.after_hours for r in rows),
        unended=sum(r.ended_by in ("running", "station_restarted") for r in rows))


def print_figures(engine: Engine, cfg: HubConfig, site: str, first: date, last: date,
                  names: dict[str, str]) -> PrintFigures:
    printers = stations_of_kind(engine, cfg, "printer", site)
    entries: Counter[str] = Counter()
    pages = 0
    for station in printers:
        for day in _days(first, last):
            for row in release_log(engine, cfg, day, station=station, names=names):
                entries[row.entry] += 1
                if row.entry == "released" and row.pages:
                    pages += row.pages
    uncollected = _count_events(engine, cfg, site, printers, "tray.uncollected", first, last)
    return PrintFigures(released_jobs=entries["released"], released_pages=pages, expired=entries["expired"],
                        failed=entries["failed"], uncollected=uncollected)


def _count_events(engine: Engine, cfg: HubConfig, site: str, wanted: list[str], kind: str,
                  first: date, last: date) -> int:
    """Events of ``kind`` at the ``wanted`` stations in the period (by their UTC time)."""
    if not wanted:
        return 0
    lo, hi = _utc_bounds(first, last, cfg.site_zone(site))
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(events).where(
            events.c.kind == kind, events.c.station.in_(wanted), events.c.at_utc >= lo, events.c.at_utc < hi)).scalar_one()


def _bounds(first: date, last: date, zone) -> tuple[datetime, datetime]:
    """The first instant of ``first`` and of the day after ``last`` (9999-12-31: time's end)."""
    return day_bounds(first, zone)[0], day_bounds(last, zone)[1]


def _utc_bounds(first: date, last: date, zone) -> tuple[str, str]:
    start, end = _bounds(first, last, zone)
    return utc_text(start), utc_text(end)


def training_figures(engine: Engine, last: date) -> TrainingFigures:
    if last < date.max:
        following_first = last + timedelta(days=1)
        _f, following_last = month_days(_month_text(following_first))
    else:  # the last month there is: nothing expires after it
        following_first, following_last = date.max, date.min
    required = required_for(list_trainings(engine), None)
    counts: Counter[str] = Counter()
    gaps: list[TrainingGap] = []
    with engine.connect() as conn:
        latest = latest_attended(conn, last)
        everyone = conn.execute(select(people).order_by(people.c.staff_no)).all()
    for person in everyone:
        if not is_active(person, last):
            continue
        counts["people"] += 1
        status, _until, details = standing(required, latest, person.id, last)
        counts[status] += 1
        for training, st, _held, ends in details:
            if st == "trained" and ends is not None and following_first <= ends <= following_last:
                gaps.append(TrainingGap(_short(person.staff_no), _short(person.name), _short(training["name"]), ends))
    gaps.sort(key=lambda g: (g.expires_on or date.max, g.staff_no))
    return TrainingFigures(people=counts["people"], trained=counts["trained"], untrained=counts["untrained"],
                           expired=counts["training_expired"], expiring_next_month=tuple(gaps))


def alert_figures(engine: Engine, cfg: HubConfig, site: str, first: date, last: date) -> AlertFigures:
    zone = cfg.site_zone(site)
    lo, hi = _utc_bounds(first, last, zone)
    weeks: Counter[date] = Counter()
    rules: Counter[str] = Counter()
    with engine.connect() as conn:
        for raised, rule in conn.execute(select(alerts.c.raised_at, alerts.c.rule).where(
                alerts.c.site == site, alerts.c.raised_at >= lo, alerts.c.raised_at < hi)):
            when = local_time(raised, zone)
            if when is None:
                continue
            weeks[when.date() - timedelta(days=when.weekday())] += 1
            rules[str(rule)] += 1
    monday = first - timedelta(days=first.weekday())
    by_week = []
    while monday <= last:
        by_week.append((monday, weeks.get(monday, 0)))
        if monday > date.max - timedelta(days=7):
            break
        monday += timedelta(days=7)
    still_open = [a for a in list_alerts(engine, state="open", site=site, limit=100_000)
                  if isinstance(a.get("raised_at"), str) and a["raised_at"] < hi]
    listed = []
    for a in still_open[:ALERT_LIMIT]:
        params = a["params"] if isinstance(a.get("params"), dict) else {}
        listed.append(OpenAlert(id=a["id"], raised_at=local_time(a["raised_at"], zone), station=_short(a["station"]),
                                rule=a["rule"], severity=a["severity"], text_ja=_short(alert_text(a["rule"], params, "ja")),
                                text_en=_short(alert_text(a["rule"], params, "en"))))
    return AlertFigures(raised=sum(rules.values()), by_week=tuple(by_week),
                        by_rule=tuple(sorted(rules.items(), key=lambda kv: (-kv[1], kv[0]))),
                        open_count=len(still_open), open=tuple(listed))


def offline_figures(engine: Engine, cfg: HubConfig, site: str, first: date, last: date,
                    now: datetime) -> tuple[StationOffline, ...]:
    """Each station's time offline in the month (up to ``now`` for the month under way), from
    the state changes in station_log; the state before the month is its last change before."""
    zone = cfg.site_zone(site)
    start, end = _bounds(first, last, zone)
    end = min(end, now.astimezone(zone))
    out = []
    with engine.connect() as conn:
        for station, row in site_stations(engine, cfg, site).items():
            log = conn.execute(select(station_log.c.state, station_log.c.at)
                               .where(station_log.c.station == station, station_log.c.at < utc_text(end))
                               .order_by(station_log.c.at, station_log.c.id)).all()
            state, since, total, periods = None, start, 0.0, 0
            for entry in log:
                at = local_time(entry.at, zone)
                if at is None:
                    continue
                at = max(at, start)
                if state == "offline" and at > since:
                    total += (at - since).total_seconds()
                if entry.state == "offline" and state != "offline" and at < end:
                    periods += 1
                state, since = entry.state, at
            if state == "offline" and end > since:
                total += (end - since).total_seconds()
            out.append(StationOffline(station=_short(station), name=_short(display_name(cfg, station)),
                                      kind=row.get("kind") or "", offline_s=max(total, 0.0), periods=periods))
    return tuple(out)


# Left to the month's own check (hub.audit.prefix.check_month), or needing what the hub does not hold.
_NOT_WHOLE = (verify.check_events, verify.check_station_signatures, verify.check_checkpoints)


def verification(engine: Engine, start_utc: str, end_utc: str) -> Verification:
    """The trail as the month needs it: the month's rows (hashes, signatures, seqs) and the chain
    through them up to the hub's next verified mark, the verified prefix held against its row
    (hub.audit.prefix.check_month: the lines say which rows); every side log as ``kagiban
    verify`` checks it. Not the whole events chain (``kagiban verify`` does that), nor the
    off-hub checkpoints (the hub does not hold them)."""
    ctx = verify.Context(engine)
    lines: list[str] = []
    try:
        month = prefix.check_month(engine, start_utc, end_utc)
        lines += [_short(line) for line in month.lines]
        ok = month.ok
    except Exception as exc:  # reported, not fatal: the report still shows the month's figures
        _LOG.exception("the month's verification failed")
        lines.append(_short(f"events: ERROR: {exc}"))
        ok = False
    for part in verify.PARTS:
        if part in _NOT_WHOLE:
            continue
        try:
            result = part(ctx)
        except Exception as exc:  # a part that cannot be checked is reported, not fatal
            _LOG.exception("verification part %s failed", getattr(part, "__name__", part))
            lines.append(_short(f"{getattr(part, '__name__', 'part')}: ERROR: {exc}"))
            ok = False
            continue
        lines.append(_short(result.line))
        ok = ok and result.ok
    return Verification(ok=ok, lines=tuple(lines), at=now_utc())


def build(engine: Engine, cfg: HubConfig, site: str, month: str, *, now: datetime | None = None) -> MonthlyReport:
    """The report of ``site`` for ``month`` (``YYYY-MM``; ValueError if malformed)."""
    first, last = month_days(month)
    now = now or now_utc()
    zone = cfg.site_zone(site)
    names = {**staff_names(engine), **registry_names(engine)}
    return MonthlyReport(
        site=site, site_name=site_name(cfg, site), month=_month_text(first), first=first, last=last,
        zone=zone.key, generated_at=now,
        keys=key_figures(engine, cfg, site, first, last, names),
        shredding=shred_figures(engine, cfg, site, first, last, names),
        printing=print_figures(engine, cfg, site, first, last, names),
        training=training_figures(engine, last),
        alerts=alert_figures(engine, cfg, site, first, last),
        offline=offline_figures(engine, cfg, site, first, last, now),
        verification=verification(engine, *_utc_bounds(first, last, zone)),
        near_misses=nearmiss_service.count_at_site(engine, cfg, site, *_utc_bounds(first, last, zone)),
    )


def store_mark(engine: Engine) -> tuple[Any, ...]:
    """What changes whenever anything a report reads changes (events, alerts and their
    acknowledgements, the registry, station states): for caching a rendered report."""
    with engine.connect() as conn:
        return (conn.execute(select(chain_head.c.row_no)).scalar(),
                tuple(conn.execute(select(func.max(alerts.c.id), func.count(alerts.c.acked_at))).one()),
                conn.execute(select(func.max(registry_log.c.id))).scalar(),
                conn.execute(select(func.max(station_log.c.id))).scalar(),
                conn.execute(select(func.max(nearmiss_cases.c.id))).scalar())


def previous_month(today: date) -> str:
    """``YYYY-MM`` of the month before ``today``'s."""
    return _month_text(today.replace(day=1) - timedelta(days=1))


def _month_text(day: date) -> str:
    # Not strftime("%Y-%m"): the C library writes the year 1 as "1".
    return f"{day.year:04d}-{day.month:02d}"


def as_dict(report: MonthlyReport) -> dict[str, Any]:
    """The figures as plain values (for JSON)."""
    out = asdict(report)
    out["keys"]["uses"] = report.keys.uses
    return out
