"""The hub's alert rules over what ingest has stored: events, station presence, heartbeats.

Rules, one alert each:

- forced: a ``door.forced`` event (critical).
- intrusion: a ``door.intrusion`` event: a restricted door opened with no badge (critical).
- held_open: ``door.held_open`` (warning).
- denied: ``badge.denied`` (warning).
- after_hours: ``badge.granted`` or ``door.forced`` outside the station's business hours
  (hub.hours); a use is one tap or one forced door, so ``door.opened``/``key.used`` of the
  same use do not raise it again. At a restricted door the use is the opening
  (``door.opened``, authorised or not, or ``door.intrusion``), not the tap; at a shredder the
  session is judged instead (shred_flagged).
- flagged_use: ``badge.granted`` with ``flagged`` (allowed, but not a designated person);
  not at a shredder, where the session is judged instead.
- shred_flagged: ``shred.started`` with neither person on that day's roster, or outside
  business hours (hub.stations.shredding_flags, as the shredding ledger flags it).
- offline / online: a last will, or nothing heard for ``rules.offline_grace_s`` (then the
  station is marked offline in ``stations``); "back online" once when it reports again.
- seq_gap: a sequence number missing for longer than ``rules.gap_grace_s``; seqs count per
  outbox incarnation, so a station whose outbox was replaced starts a new count at 1. A
  heartbeat's ``next_seq`` beyond the highest stored seq of its incarnation opens a gap too
  (the events it numbered before it have not arrived), closed as they arrive.
- clock_skew: a heartbeat whose time is more than ``rules.clock_skew_s`` from when the hub
  received it (the station's clock is off); again only after the offset has come back under
  half that. clock_unsynced: a heartbeat saying the station's clock is not synchronised
  (a Pi without RTC after a power cut, before the network answers); again only after one
  says it is.
- outbox_filling: a heartbeat showing the outbox at ``rules.outbox_warn_ratio`` or fuller;
  again only after it has dropped below half that.
- storage_failed: a heartbeat saying the station cannot write its records (disk full) and keeps
  them in memory; or, when no such heartbeat got through, the station's ``storage.failed``
  event once it can write again.
- storage_corrupt: a ``storage.corrupt`` event: the station found its outbox (critical) or its
  policy cache (warning) unreadable at start and replaced it. For the outbox the alert names
  the last seq the hub stored from the previous incarnation: later events may be lost.
- camera_failed / camera_ok, reader_failed / reader_ok, pins_failed / pins_ok: a heartbeat
  whose ``peripherals`` say the camera, the badge reader or the GPIO pins are not ``ok``
  (failed or absent), once per outage; the ``_ok`` alert (info) once one says ``ok`` again
  (PERIPHERAL_RULES). The print server's outages are the cups_down / cups_up events below.
- tray_uncollected: ``tray.uncollected``: printouts left in a printer's tray (warning, to the
  site's supervisors); print_expired: ``print.expired``, held print jobs cancelled unprinted
  (info); cups_down / cups_up: a printer cannot reach its print server (warning), and again can
  (info). Jobs stay held meanwhile.
- policy_rejected: a ``policy.rejected`` event: the station refused a policy offered to it
  (critical when the signature is missing or wrong - someone else published on its topic -,
  else a warning; critical too for a hub-signed policy out of bounds, e.g. ``version_ahead``).
- bad_signature: a signed event the hub refused (``bad_signature``, ``unknown_key``,
  ``retired_key``, ``unsigned`` from an enrolled station; hub.ingest.refusals), critical: someone may
  be publishing on the station's topic, or the unit's key is not the registered one. Raised the
  first time, and again only after that alert was acknowledged; the station's resends of the
  same event are counted in quarantine, never alerted again.
- policy_expired: a heartbeat saying the station's policy is past its expiry (it flags or
  denies every decision meanwhile); once, until a heartbeat says otherwise.
- policy_stale: a station that keeps reporting (in its heartbeats) an older policy version
  than the hub's latest for ``POLICY_STALE_S`` seconds while online; once per station and
  latest version. The grace counts from when the rules first see it behind, so a station that
  reconnects and takes the retained policy within its first heartbeats raises nothing.

``on_committed`` runs on the ingest writer thread, so it only queues; a thread of our own
applies the rules and calls ``tick`` every second (which also tells open status pages when an
office went stale or was heard again: hub.stations.offices.OfficeWatch, no alert). The
exception is the urgent events whose rules need only the row and the config (AT_COMMIT_KINDS:
a forced door, an intrusion, a rejected policy): ``alerts_in_transaction`` judges them on the writer thread and stores their
critical alerts in the events' own transaction (one commit instead of two), and they are
published as soon as it commits; the rules thread then skips them (``Committed.judged``), or,
for an event that also calls for a warning (after_hours at night), judges it again after the
commit and raises only the warning (the critical alert is found stored). State kept in memory (outages, the
highest contiguous seq per station, open gaps) is rebuilt from the store at start, and the
recent events are run through the event rules again (alerts are idempotent per event and
rule), so a restart neither repeats nor forgets an alert.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update
from sqlalchemy.orm import aliased

from hub.alerting.alerts import AlertCenter, Stored
from hub.alerting.wording import alert_text
from hub.config import HubConfig
from hub.store.db import begin_write
from hub.hours import days_off_around, is_business_time
from hub.ingest.writer import ClockReading, Committed, InTransaction
from hub.ingest.refusals import Refusal
from hub.store.schema import alerts, events, policies, station_log, stations
from hub.stations.offices import OfficeWatch
from hub.stations.shredding_flags import session_flags
from hub.store.timestamps import now_utc, utc_text
from hub.stations.directory import display_name, site_name
from kagiban import events as ev
from kagiban.protocol import Peripheral, PeripheralHealth

_LOG = logging.getLogger(__name__)

TICK_S = 1.0
# At start, events this recent go through the event rules again: an alert the previous run
# had not raised before it stopped is raised now.
RESCAN_S = 24 * 3600
# The kinds that may be a "use" after hours (after_hours; see Rules._after_hours_use).
AFTER_HOURS_KINDS = (ev.BadgeGranted.KIND, ev.DoorForced.KIND, ev.DoorIntrusion.KIND, ev.DoorOpened.KIND)
# A station gets a new policy within a second or two of its publication (retained, QoS 1);
# a minute behind means it is not taking policies (wrong key, full disk, a broken link): a
# revoked badge may still open it. The status page marks such a station with the same grace.
POLICY_STALE_S = 60.0
# Refusals that mean someone other than the hub published on the station's policy topic.
_FORGED_REASONS = ("unsigned", "unknown_key", "bad_signature")
# Signed with the hub's key, yet impossible (a version or time out of bounds): a hub fault or a
# leaked key.
_BOUND_REASONS = ("version_ahead", "issued_in_future", "issued_too_old", "expired", "replayed")
# Heartbeat peripheral -> (rule while it is not ok, rule once it is ok again, severity).
# GPIO pins down: the door is not watched and nothing is unlocked; a reader down: nobody gets
# in with a badge; a camera down: events are recorded without photos.
PERIPHERAL_RULES: dict[Peripheral, tuple[str, str, str]] = {
    "pins": ("pins_failed", "pins_ok", "critical"),
    "reader": ("reader_failed", "reader_ok", "warning"),
    "camera": ("camera_failed", "camera_ok", "warning"),
}
_STOP = object()


# An alert a rule finds: (rule, severity, params).
Found = tuple[str, str, dict[str, Any]]


@dataclass(frozen=True)
class _Seen:
    """One stored event as the event rules see it: its row, its time, its station and the
    params every alert about it starts from."""

    row: dict[str, Any]
    at: datetime
    station: str
    params: dict[str, Any]


@dataclass(frozen=True)
class _FollowUp:
    """Alerts published on the ingest writer thread whose follow-up (AlertCenter.follow_up)
    the rules thread does."""

    alerts: list[Stored]


class RulesError(Exception):
    """The rules cannot run (e.g. started twice)."""


@dataclass
class _Gap:
    """Sequence numbers lo..hi (inclusive) not stored yet for a station."""

    lo: int
    hi: int
    noticed: datetime
    reported: bool = False


@dataclass
class _Seqs:
    """What a station's stored sequence numbers look like: the highest, and the holes below."""

    max_seq: int = 0
    gaps: list[_Gap] = field(default_factory=list)

    def expect(self, next_seq: int, now: datetime) -> None:
        """A heartbeat says seqs below ``next_seq`` exist: the ones above max_seq are a gap
        (noticed now) until they arrive."""
        if next_seq - 1 > self.max_seq:
            self.gaps.append(_Gap(self.max_seq + 1, next_seq - 1, now))
            self.max_seq = next_seq - 1

    def add(self, seq: int, now: datetime) -> None:
        if seq > self.max_seq + 1:
            self.gaps.append(_Gap(self.max_seq + 1, seq - 1, now))
        if seq > self.max_seq:
            self.max_seq = seq
            return
        for i, gap in enumerate(self.gaps):
            if gap.lo <= seq <= gap.hi:
                # A late arrival splits its gap; the parts keep when they were noticed/reported.
                parts = [_Gap(gap.lo, seq - 1, gap.noticed, gap.reported),
                         _Gap(seq + 1, gap.hi, gap.noticed, gap.reported)]
                self.gaps[i:i + 1] = [p for p in parts if p.lo <= p.hi]
                return


@dataclass
class _Station:
    """Presence as the rules see it; ``outage`` is true from an offline alert to its online one."""

    site: str
    last_seen: datetime | None = None
    outage: bool = False
    stopped: bool = False  # said "stopped" (a clean stop): its silence is no outage
    filling: bool = False  # an outbox_filling alert is out and the outbox has not drained since
    storage_failed: bool = False  # a storage_failed alert is out and the station has not recovered
    heard: bool = False  # a heartbeat has been seen, so policy_version is what the station holds
    policy_version: int | None = None  # as its last heartbeat reported it
    behind_since: datetime | None = None  # first seen holding an older policy than the latest
    stale_alerted: int | None = None  # the latest version a policy_stale alert was raised for
    # Peripherals (PERIPHERAL_RULES) with a *_failed alert out and no *_ok since.
    failing: set[str] = field(default_factory=set)
    skewed: bool = False  # a clock_skew alert is out and the offset has not come back since
    unsynced: bool = False  # a clock_unsynced alert is out and no heartbeat said synced since
    expired: bool = False  # a policy_expired alert is out and no heartbeat said otherwise since


def _parse_utc(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Rules:
    """Applies the alert rules; ``on_committed`` from ingest, ``tick`` every second."""

    def __init__(self, engine: Engine, cfg: HubConfig, alerts_center: AlertCenter):
        self.engine = engine
        self.cfg = cfg
        self.alerts = alerts_center
        self._queue: queue.Queue = queue.Queue()
        # Rules stored with their event (alerts_in_transaction) per event id, until process()
        # judges that event's warnings: the rules thread's only, so no lock.
        self._stored_with: dict[str, set[str]] = {}
        # process() and tick() change the same state; tests may call tick() themselves.
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._stations: dict[str, _Station] = {}
        # Per (station, incarnation): seqs count within one outbox of the station.
        self._seqs: dict[tuple[str, str], _Seqs] = {}
        self.policy_stale_s = POLICY_STALE_S  # tests shorten it
        # The offices' states for open status pages: judged by the clock, like silence.
        self.offices = OfficeWatch(engine, cfg, alerts_center.bus) if alerts_center.bus is not None else None
        self.errors = 0  # rule failures logged, for metrics

    # --- lifecycle ---

    def start(self) -> "Rules":
        """Rebuild state from the store, re-run recent events, then start the rules thread."""
        if self._thread is not None:
            raise RulesError("rules already started")
        with self._lock:
            self._load(now_utc())
            self._rescan(now_utc())
        self._thread = threading.Thread(target=self._run, name="kagiban-rules", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Apply what was queued, then end the thread."""
        self._stop.set()
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                _LOG.error("rules thread did not finish within %.0f s", timeout)
            self._thread = None

    def on_committed(self, committed: Committed) -> None:
        """Ingest's after-commit hook: queue the batch; never raises into ingest."""
        try:
            self._queue.put(committed)
        except Exception:
            _LOG.exception("cannot queue a committed batch for the rules")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far has gone through the rules; False on timeout."""
        if self._thread is None or not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        next_tick = time.monotonic() + TICK_S
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                return
            if isinstance(item, Committed):
                self._guard(self.process, item)
            elif isinstance(item, _FollowUp):
                for one in item.alerts:
                    self._stored_with.setdefault(one.row["event_id"], set()).add(one.row["rule"])
                    self._guard(self.alerts.follow_up, one)
            elif isinstance(item, threading.Event):
                item.set()
            if time.monotonic() >= next_tick and not self._stop.is_set():
                self._guard(self.tick, now_utc())
                next_tick = time.monotonic() + TICK_S

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            self.errors += 1
            _LOG.exception("alert rules failed in %s", fn.__name__)

    # --- state from the store ---

    def _load(self, now: datetime) -> None:
        """Outages, outbox warnings and seq gaps as the store has them."""
        with self.engine.connect() as conn:
            station_rows = conn.execute(select(
                stations.c.station, stations.c.site, stations.c.state, stations.c.state_since,
                stations.c.last_seen, stations.c.last_heartbeat, stations.c.policy_version,
                stations.c.clock_offset_s)).all()
            stale_rows = conn.execute(select(alerts.c.station, alerts.c.params).where(
                alerts.c.id.in_(select(func.max(alerts.c.id)).where(alerts.c.rule == "policy_stale")
                                .group_by(alerts.c.station)))).all()
            latest = {(r.station, r.rule): r.id for r in conn.execute(
                select(alerts.c.station, alerts.c.rule, func.max(alerts.c.id).label("id"))
                .where(alerts.c.rule.in_(("offline", "online", "outbox_filling", "clock_skew", "clock_unsynced", "policy_expired",
                                          *(r for rules in PERIPHERAL_RULES.values() for r in rules[:2]))))
                .group_by(alerts.c.station, alerts.c.rule))}
            # One query for every station: count == max (and min == 1) means no holes.
            counts = conn.execute(
                select(events.c.station, events.c.incarnation, func.max(events.c.site), func.count(),
                       func.min(events.c.seq), func.max(events.c.seq))
                .group_by(events.c.station, events.c.incarnation)).all()
            reported = [
                (r.station, json.loads(r.params)) for r in conn.execute(
                    select(alerts.c.station, alerts.c.params).where(alerts.c.rule == "seq_gap"))
            ]
            gap_rows: dict[tuple[str, str], list[tuple[int, int]]] = {}
            for station_id, inc, _site, count, lo, hi in counts:
                if count != hi or lo != 1:
                    gap_rows[(station_id, inc)] = self._gaps_in_store(conn, station_id, inc, lo, hi)

        for row in station_rows:
            seen = _parse_utc(row.last_seen)
            # A hub that was down heard nothing: every station gets a fresh grace period.
            st = _Station(site=row.site, last_seen=max(seen, now) if seen else None)
            st.heard = row.last_heartbeat is not None
            st.policy_version = row.policy_version
            self._stations[row.station] = st
            offline_alert = latest.get((row.station, "offline"), 0)
            alerted = offline_alert > latest.get((row.station, "online"), 0)
            st.outage = alerted
            st.stopped = row.state == "stopped"
            if row.state == "offline" and not alerted:
                # Went offline while no rules were running: raise it now, once.
                self._raise_offline(row.station, st, cause="last_will",
                                    at=_parse_utc(row.state_since) or now, silent_s=None)
            elif row.state == "online" and alerted:
                # Came back while no rules were running.
                self._raise_online(row.station, st, _parse_utc(row.state_since) or now)
            # A peripheral alert out stays out across a restart; the next heartbeat clears it.
            st.failing = {name for name, (bad, good, _sev) in PERIPHERAL_RULES.items()
                          if latest.get((row.station, bad), 0) > latest.get((row.station, good), 0)}
            # A clock alert out stays out while the last heartbeat still showed the problem.
            st.skewed = ((row.station, "clock_skew") in latest and row.clock_offset_s is not None
                         and abs(row.clock_offset_s) >= self.cfg.rules.clock_skew_s / 2)
            st.unsynced = ((row.station, "clock_unsynced") in latest
                           and '"clock_synced":false' in (row.last_heartbeat or ""))
            st.expired = ((row.station, "policy_expired") in latest
                          and '"policy_expired":true' in (row.last_heartbeat or ""))
            if row.last_heartbeat:
                try:
                    hb = json.loads(row.last_heartbeat)
                    ratio = hb["outbox_depth"] / hb["outbox_capacity"]
                except (ValueError, KeyError, TypeError, ZeroDivisionError):
                    continue
                warned = (row.station, "outbox_filling") in latest
                if ratio >= self.cfg.rules.outbox_warn_ratio / 2 and warned:
                    st.filling = True
                elif ratio >= self.cfg.rules.outbox_warn_ratio:
                    self._outbox(row.station, st, hb["outbox_depth"], hb["outbox_capacity"], now)

        for stale in stale_rows:
            if stale.station in self._stations:
                try:
                    # Not raised again for the same latest version after a restart.
                    self._stations[stale.station].stale_alerted = json.loads(stale.params).get("latest_version")
                except ValueError:
                    pass

        for station_id, inc, site, count, lo, hi in counts:
            seqs = _Seqs(max_seq=hi)
            for a, b in gap_rows.get((station_id, inc), []):
                gap = _Gap(a, b, now)
                for st_id, params in reported:
                    if (st_id == station_id and params.get("incarnation", "") == inc
                            and params.get("missing_from", 0) <= b and params.get("missing_to", 0) >= a):
                        gap.reported = True
                seqs.gaps.append(gap)
            self._seqs[(station_id, inc)] = seqs
            self._stations.setdefault(station_id, _Station(site=site))
        _LOG.info("rules: %d station(s), %d in outage, %d seq gap(s) open",
                  len(self._stations), sum(s.outage for s in self._stations.values()),
                  sum(not g.reported for s in self._seqs.values() for g in s.gaps))

    @staticmethod
    def _gaps_in_store(conn, station_id: str, inc: str, lo: int, hi: int) -> list[tuple[int, int]]:
        """The holes in a station incarnation's stored seqs, found by the (station, incarnation,
        seq) index."""
        nxt = aliased(events)
        later = aliased(events)
        starts = conn.execute(
            select(events.c.seq).where(
                events.c.station == station_id, events.c.incarnation == inc, events.c.seq < hi,
                ~select(nxt.c.seq).where(nxt.c.station == station_id, nxt.c.incarnation == inc,
                                         nxt.c.seq == events.c.seq + 1).exists(),
            )
        ).scalars().all()
        out = [(1, lo - 1)] if lo > 1 else []
        for seq in starts:
            following = conn.execute(select(func.min(later.c.seq)).where(
                later.c.station == station_id, later.c.incarnation == inc, later.c.seq > seq)).scalar_one()
            out.append((seq + 1, following - 1))
        return out

    def _rescan(self, now: datetime) -> None:
        """Run the event rules over recent events; ones already alerted are skipped."""
        since = utc_text(now - timedelta(seconds=RESCAN_S))
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(
                select(events).where(events.c.kind.in_(_EVENT_KINDS), events.c.at_utc >= since)
                .order_by(events.c.row_no))]
            done = {(r.event_id, r.rule) for r in conn.execute(
                select(alerts.c.event_id, alerts.c.rule).where(
                    alerts.c.event_id.is_not(None), alerts.c.raised_at >= since))}
        for row in rows:
            self._event_rules(row, skip=done)

    # --- after each commit ---

    def process(self, c: Committed) -> None:
        """Apply the rules to one committed batch (the rules thread calls this)."""
        with self._lock:
            now = now_utc()
            for row in c.events:
                st = self._station(row["station"], row["site"])
                st.last_seen = _later(st.last_seen, _parse_utc(row["received_at"]))
                key = (row["station"], row.get("incarnation") or "")
                self._seqs.setdefault(key, _Seqs()).add(row["seq"], now)
                stored_with = self._stored_with.pop(row["event_id"], set())
                if row["event_id"] in c.judged:
                    continue  # its alerts were stored with it (alerts_in_transaction)
                try:
                    self._event_rules(row, skip={(row["event_id"], rule) for rule in stored_with})
                except Exception:
                    self.errors += 1
                    _LOG.exception("event rules failed for event %s", row.get("event_id"))
            for row in c.presence:
                st = self._station(row["station"], row["site"])
                st.last_seen = _later(st.last_seen, _parse_utc(row["received_at"]))
                st.stopped = row["state"] == "stopped"
                if row["state"] == "offline" and not st.outage:
                    self._raise_offline(row["station"], st, cause="last_will",
                                        at=_parse_utc(row["at"]) or now, silent_s=None)
                elif row["state"] == "online" and st.outage:
                    self._raise_online(row["station"], st, _parse_utc(row["at"]) or now)
            for hb in c.heartbeats:
                st = self._station(hb.station, hb.site)
                st.last_seen = _later(st.last_seen, now)
                st.heard, st.policy_version, st.stopped = True, hb.policy_version, False
                self._outbox(hb.station, st, hb.outbox_depth, hb.outbox_capacity, now)
                self._storage(hb.station, st, hb.unrecorded, hb.storage_error, now)
                self._policy_expired(hb.station, st, bool(hb.policy_expired), hb.policy_version, now)
                if hb.peripherals is not None:
                    self._peripherals(hb.station, st, hb.peripherals)
                # Events numbered before this heartbeat that are not stored yet: a gap until
                # they arrive (reported after gap_grace_s, like any other).
                self._seqs.setdefault((hb.station, hb.incarnation or ""), _Seqs()).expect(hb.next_seq, now)
            for reading in c.clocks:
                self._clock(self._station(reading.station, reading.site), reading)
            for refusal in c.refused:
                self._refused(refusal)

    def _station(self, station_id: str, site: str) -> _Station:
        st = self._stations.get(station_id)
        if st is None:
            st = self._stations[station_id] = _Station(site=site)
        st.site = site
        return st

    def _base_params(self, site: str, station_id: str, at: datetime | None) -> dict[str, Any]:
        zone = self.cfg.site_zone(site)
        return {
            "site": site,
            "site_name": site_name(self.cfg, site),
            "station": station_id,
            "station_name": display_name(self.cfg, station_id),
            "at": _in_zone(at, zone) if at else None,
            "zone": zone.key,
        }

    def _raise(self, rule: str, severity: str, params: dict[str, Any], event_id: str | None = None) -> int:
        return self.alerts.raise_alert(
            site=params["site"], station=params["station"], rule=rule, severity=severity,
            message=alert_text(rule, params, "en"), params=params, event_id=event_id,
        )

    def _event_rules(self, row: dict[str, Any], skip: set[tuple[str, str]] | None = None) -> None:
        for rule_name, severity, p in self._judge(row):
            if skip is not None and (row["event_id"], rule_name) in skip:
                continue
            try:
                self._raise(rule_name, severity, p, event_id=row["event_id"])
            except Exception:
                self.errors += 1
                _LOG.exception("raising %s for event %s failed", rule_name, row["event_id"])

    def alerts_in_transaction(self, conn: Connection, rows: list[dict[str, Any]]) -> InTransaction | None:
        """The ingest writer's in-transaction hook: the critical alerts of the new events of a
        kind in AT_COMMIT_KINDS, stored in ``conn`` (the transaction that stores the events: one commit,
        one fsync, where the rules thread's alert took a second transaction after it), and
        published once it commits. Runs on the writer thread while it holds the store's write
        lock, so it takes no lock of the rules (their thread may be waiting for that write lock)
        and only judges what needs nothing but the row and the config. An error fails the
        batch; the writer then stores its events without this hook and the rules thread raises
        their alerts as before."""
        urgent = [row for row in rows if row["kind"] in AT_COMMIT_KINDS]
        if not urgent:
            return None
        stored: list[Stored] = []
        later: set[str] = set()
        for row in urgent:
            for rule_name, severity, p in self._judge(row):
                if severity != "critical":
                    # Off the critical alert's path (each alert is ~1 ms of statements here): the
                    # event is left unjudged, so the rules thread judges it after the commit,
                    # finds its critical alert stored and raises the rest (after_hours at night).
                    later.add(row["event_id"])
                    continue
                stored.append(self.alerts.store(
                    conn, site=p["site"], station=p["station"], rule=rule_name, severity=severity,
                    message=alert_text(rule_name, p, "en"), params=p, event_id=row["event_id"]))

        def announce() -> None:
            for one in stored:
                self.alerts.publish_now(one)
            self._queue.put(_FollowUp(stored))  # the rest on the rules thread

        return InTransaction({row["event_id"] for row in urgent} - later, announce)

    def _judge(self, row: dict[str, Any]) -> list[Found]:
        """The alerts a stored event calls for (event rules and after_hours), not yet raised."""
        kind = row["kind"]
        rule = EVENT_RULES.get(kind)
        if rule is None and kind not in AFTER_HOURS_KINDS:
            return []
        raw = json.loads(row["data"]) if isinstance(row["data"], str) else dict(row["data"])
        event = ev.read(kind, raw)  # never fails: values that do not fit are left out
        at = datetime.fromisoformat(row["at"])
        site, station_id = row["site"], row["station"]
        params = self._base_params(site, station_id, at)
        params.update({
            "kind": kind, "person": row.get("person"), "badge": row.get("badge"), "seq": row["seq"],
            "policy_version": event.policy_version, "decided_offline": bool(event.offline),
        })
        seen = _Seen(row=row, at=at, station=station_id, params=params)
        found = rule(self, seen, event) if rule is not None else []
        # A time ahead of its receipt (ingest's time_flag "future") says nothing about business
        # hours; one long before it may be an outbox replayed after an outage, judged as usual.
        if kind in AFTER_HOURS_KINDS and row.get("time_flag") != "future":
            hours = self.cfg.hours(station_id, site)
            holidays = days_off_around(self.cfg, site, at)
            if (not is_business_time(at, hours, holidays, self.cfg.site_zone(site))
                    and self._after_hours_use(kind, station_id)):
                local_day = at.astimezone(self.cfg.site_zone(site)).date()
                found.append(("after_hours", "warning", {
                    **params, "hours": f"{hours.start:%H:%M}-{hours.end:%H:%M}",
                    "days": list(hours.days), "holiday": local_day in holidays}))
        return found

    def _storage_corrupt(self, row: dict[str, Any], params: dict[str, Any],
                         info: ev.StorageCorrupt) -> Found:
        """storage_corrupt: what was replaced and, for an outbox, the last seq the hub stored from
        the previous incarnation (what the station may have lost comes after it)."""
        params = {**params, "store": info.store, "error": info.error[:300], "kept": ", ".join(info.moved_to[:1]),
                  "old_highest": info.previous_highest_seq, "old_unsent": info.previous_unsent}
        if info.store == "policy":
            return ("storage_corrupt", "warning", {**params, "cause": "policy"})
        prev_inc, last = self._previous_storage(row, info.previous_incarnation)
        params.update({"previous_incarnation": prev_inc, "last_stored": last,
                       "incarnation": row.get("incarnation") or ""})
        if last is None:
            params["cause"] = "outbox_nothing"
        elif info.previous_highest_seq is not None and info.previous_highest_seq > last:
            params.update({"cause": "outbox_range", "lost_from": last + 1, "lost_to": info.previous_highest_seq})
        else:
            params["cause"] = "outbox"
        return ("storage_corrupt", "critical", params)

    def _previous_storage(self, row: dict[str, Any], named: str | None) -> tuple[str | None, int | None]:
        """(incarnation, highest stored seq) of the station's storage before this event's: the one
        the station could still name, else the one of its latest stored event of another
        incarnation; (None, None) if the hub holds nothing from before."""
        station_id, inc = row["station"], row.get("incarnation") or ""
        with self.engine.connect() as conn:
            prev = None
            if named and named != inc:
                prev = conn.execute(select(func.max(events.c.seq)).where(
                    events.c.station == station_id, events.c.incarnation == named)).scalar()
                if prev is not None:
                    return named, prev
            before = conn.execute(select(events.c.incarnation).where(
                events.c.station == station_id, events.c.incarnation != inc,
                events.c.row_no < row["row_no"]).order_by(events.c.row_no.desc()).limit(1)).scalar()
            if before is None:
                return None, None
            prev = conn.execute(select(func.max(events.c.seq)).where(
                events.c.station == station_id, events.c.incarnation == before)).scalar()
            return before, prev

    def _alerted_since(self, station_id: str, rule: str, since: datetime | None) -> bool:
        """Whether ``rule`` was raised for the station at or after ``since``."""
        if since is None:
            return False
        try:
            start = utc_text(since)
        except (OverflowError, ValueError):
            return False
        with self.engine.connect() as conn:
            return conn.execute(select(alerts.c.id).where(
                alerts.c.station == station_id, alerts.c.rule == rule, alerts.c.raised_at >= start,
            ).limit(1)).first() is not None

    def _station_kind(self, station_id: str) -> str | None:
        """A station's kind: as listed in the config, else as it reported itself."""
        entry = self.cfg.station(station_id)
        if entry is not None:
            return entry.kind
        with self.engine.connect() as conn:
            return conn.execute(select(stations.c.kind).where(stations.c.station == station_id)).scalar()

    def _after_hours_use(self, kind: str, station_id: str) -> bool:
        """Whether the event is the one "use" after_hours is raised for: a forced door or an
        intrusion anywhere; the opening at a restricted door (a tap that opens nothing lets
        nobody in); the tap elsewhere, except at a shredder (its session is judged instead)."""
        if kind in (ev.DoorForced.KIND, ev.DoorIntrusion.KIND):
            return True
        station_kind = self._station_kind(station_id)
        if kind == ev.DoorOpened.KIND:
            return station_kind == "door"
        return station_kind not in ("door", "shredder")

    def _shred_rules(self, params: dict[str, Any], people: list[str | None], at: datetime) -> list[Found]:
        """shred_flagged for a session whose pair is off the day's roster, or after hours."""
        flags = session_flags(self.engine, self.cfg, params["site"], params["station"], people, at)
        reasons = [f for f in ("not_on_roster", "after_hours") if flags[f]]
        if not reasons:
            return []
        return [("shred_flagged", "warning", {
            **params, "people": people, "person": ", ".join(p or "?" for p in people),
            "flags": reasons, "on_roster": flags["on_roster"]})]

    def _raise_offline(self, station_id: str, st: _Station, *, cause: str, at: datetime,
                       silent_s: float | None) -> None:
        params = self._base_params(st.site, station_id, at)
        params["cause"] = cause
        if silent_s is not None:
            params["silent_s"] = _whole(silent_s)
        self._raise("offline", "warning", params)
        st.outage = True

    def _raise_online(self, station_id: str, st: _Station, at: datetime) -> None:
        self._raise("online", "info", self._base_params(st.site, station_id, at))
        st.outage = False

    def _outbox(self, station_id: str, st: _Station, depth: int, capacity: int, now: datetime) -> None:
        ratio = depth / capacity
        warn = self.cfg.rules.outbox_warn_ratio
        if ratio >= warn and not st.filling:
            params = self._base_params(st.site, station_id, now)
            params.update({"depth": depth, "capacity": capacity, "ratio": round(ratio, 3)})
            self._raise("outbox_filling", "warning", params)
            st.filling = True
        elif ratio < warn / 2 and st.filling:
            st.filling = False

    def _clock(self, st: _Station, reading: ClockReading) -> None:
        """clock_skew past the threshold (once, until it is back under half of it) and
        clock_unsynced when the station says so (once, until it says synced)."""
        limit = self.cfg.rules.clock_skew_s
        offset = reading.offset_s
        base = self._base_params(st.site, reading.station, reading.received_at)
        if abs(offset) > limit and not st.skewed:
            self._raise("clock_skew", "warning", {
                **base, "offset_s": _whole(offset), "offset_abs_s": _whole(abs(offset)), "limit_s": _whole(limit),
                "cause": "ahead" if offset > 0 else "behind", "synced": reading.synced})
            st.skewed = True
        elif abs(offset) < limit / 2 and st.skewed:
            st.skewed = False
        if reading.synced is False and not st.unsynced:
            self._raise("clock_unsynced", "warning", {**base, "offset_s": _whole(offset)})
            st.unsynced = True
        elif reading.synced is True and st.unsynced:
            st.unsynced = False

    def _refused(self, refusal: Refusal) -> None:
        """bad_signature, unless one for the station is still open (not yet acknowledged)."""
        with self.engine.connect() as conn:
            open_one = conn.execute(select(alerts.c.id).where(
                alerts.c.station == refusal.station, alerts.c.rule == "bad_signature",
                alerts.c.state == "open").limit(1)).first()
        if open_one is not None:
            return
        site = refusal.site or self._station(refusal.station, refusal.site).site
        base = self._base_params(site, refusal.station, _parse_utc(refusal.received_at))
        self._raise("bad_signature", "critical", {
            **base, "reason": refusal.reason, "seq": refusal.seq, "incarnation": refusal.incarnation,
            "detail": refusal.detail[:200]})

    def _policy_expired(self, station_id: str, st: _Station, expired: bool, version: int | None,
                        now: datetime) -> None:
        # The station decides from a policy past its expiry (flagging or denying, as its YAML
        # says): the hub's policies are not reaching it. Once, until a heartbeat says otherwise.
        if expired and not st.expired:
            self._raise("policy_expired", "warning", {
                **self._base_params(st.site, station_id, now), "held_version": version})
            st.expired = True
        elif not expired and st.expired:
            st.expired = False

    def _storage(self, station_id: str, st: _Station, unrecorded: int, error: str | None,
                 now: datetime) -> None:
        # The station cannot write its records (disk full) and keeps what happened in memory,
        # which a power cut would lose; it refuses grants meanwhile. A heartbeat that still names
        # the error with nothing kept is from a station that has recovered: its storage.failed
        # event (QoS 1, from the outbox) tells of that outage even if no heartbeat got through.
        failing = bool(unrecorded)
        if failing and not st.storage_failed:
            params = self._base_params(st.site, station_id, now)
            params.update({"unrecorded": unrecorded, "error": error or ""})
            self._raise("storage_failed", "critical", params)
            st.storage_failed = True
        elif not failing and st.storage_failed:
            st.storage_failed = False

    def _peripherals(self, station_id: str, st: _Station, health: dict[Peripheral, PeripheralHealth]) -> None:
        """*_failed when a peripheral stops being ok, *_ok when it is ok again; once each."""
        for name, (bad, good, severity) in PERIPHERAL_RULES.items():
            h = health.get(name)
            if h is None:
                continue
            failing = h.state != "ok"
            if failing == (name in st.failing):
                continue
            params = self._base_params(st.site, station_id, h.since)
            params.update({"peripheral": name, "state": h.state, "error_code": h.error, "detail": h.detail})
            try:
                self._raise(bad if failing else good, severity if failing else "info", params)
            except Exception:
                self.errors += 1
                _LOG.exception("raising %s for %s failed", bad if failing else good, station_id)
                continue
            if failing:
                st.failing.add(name)
            else:
                st.failing.discard(name)

    # --- every second ---

    def tick(self, now: datetime | None = None) -> None:
        """Time-based rules: stations gone silent, gaps that stayed open past their grace; and
        the offices' states for open status pages (hub.stations.offices.OfficeWatch)."""
        now = now or now_utc()
        with self._lock:
            self._check_silence(now)
            self._check_gaps(now)
            self._check_policies(now)
        if self.offices is not None:  # no rule state: outside the lock
            try:
                self.offices.check(now)
            except Exception:
                self.errors += 1
                _LOG.exception("checking the offices' states failed")

    def _check_silence(self, now: datetime) -> None:
        grace = self.cfg.rules.offline_grace_s
        cutoff = now - timedelta(seconds=grace)
        for station_id, st in list(self._stations.items()):
            if st.outage or st.stopped or st.last_seen is None or st.last_seen > cutoff:
                continue
            try:
                self._went_silent(station_id, st, now, cutoff)
            except Exception:
                self.errors += 1
                _LOG.exception("checking whether %s went offline failed", station_id)

    def _went_silent(self, station_id: str, st: _Station, now: datetime, cutoff: datetime) -> None:
        now_text = utc_text(now)
        with begin_write(self.engine) as conn:
            row = conn.execute(select(stations).where(stations.c.station == station_id)).first()
            if row is None:
                return
            seen = _parse_utc(row.last_seen)
            if row.state == "stopped":  # a clean stop stored but not processed yet
                st.stopped = True
                return
            if row.state == "offline":
                # Ingest stored a last will we have not processed yet: that is this outage.
                cause, at, silent = "last_will", _parse_utc(row.state_since) or now, None
            elif seen is not None and seen > cutoff:
                # Heard from in a batch still queued for us.
                st.last_seen = seen
                return
            else:
                last_seen = st.last_seen
                assert last_seen is not None  # _check_silence() asks only about stations heard from
                cause, at, silent = "no_heartbeat", last_seen, (now - last_seen).total_seconds()
                conn.execute(update(stations).where(stations.c.station == station_id)
                             .values(state="offline", state_since=now_text))
                conn.execute(insert(station_log).values(
                    station=station_id, site=row.site, state="offline", at=now_text, received_at=now_text))
        if cause == "no_heartbeat" and self.alerts.bus is not None:
            self.alerts.bus.publish("station", {"site": st.site, "station": station_id,
                                                "state": "offline", "at": now_text})
        if silent is not None:
            _LOG.warning("station %s: nothing heard for %.0f s; marked offline", station_id, silent)
        self._raise_offline(station_id, st, cause=cause, at=at, silent_s=silent)

    def _check_gaps(self, now: datetime) -> None:
        grace = timedelta(seconds=self.cfg.rules.gap_grace_s)
        for (station_id, inc), seqs in self._seqs.items():
            for gap in seqs.gaps:
                if gap.reported or now - gap.noticed < grace:
                    continue
                st = self._stations.get(station_id)
                site = st.site if st else ""
                params = self._base_params(site, station_id, gap.noticed)
                params.update({"missing_from": gap.lo, "missing_to": gap.hi,
                               "count": gap.hi - gap.lo + 1, "grace_s": _whole(self.cfg.rules.gap_grace_s)})
                if inc:
                    params["incarnation"] = inc
                try:
                    self._raise("seq_gap", "warning", params)
                    gap.reported = True
                except Exception:
                    self.errors += 1
                    _LOG.exception("raising seq_gap for %s failed", station_id)


    def _check_policies(self, now: datetime) -> None:
        """policy_stale: online stations reporting an older policy than the latest for too long."""
        try:
            with self.engine.connect() as conn:
                latest = {r.station: r.version for r in conn.execute(select(policies.c.station, policies.c.version))}
        except Exception:
            self.errors += 1
            _LOG.exception("reading the published policy versions failed")
            return
        for station_id, st in self._stations.items():
            newest = latest.get(station_id)
            behind = (newest is not None and st.heard and not st.outage
                      and (st.policy_version is None or st.policy_version < newest))
            if not behind:
                st.behind_since = None
                continue
            if st.behind_since is None:
                st.behind_since = now
            waited = (now - st.behind_since).total_seconds()
            if waited < self.policy_stale_s or st.stale_alerted == newest:
                continue
            params = self._base_params(st.site, station_id, st.behind_since)
            params.update({"held_version": st.policy_version, "latest_version": newest,
                           "grace_s": _whole(self.policy_stale_s), "behind_s": _whole(waited)})
            try:
                self._raise("policy_stale", "warning", params)
                st.stale_alerted = newest
            except Exception:
                self.errors += 1
                _LOG.exception("raising policy_stale for %s failed", station_id)


def _in_zone(at: datetime, zone) -> str:
    """``at`` in ``zone`` as ISO text; as it is when the zone cannot hold it (year 9999)."""
    try:
        return at.astimezone(zone).isoformat()
    except OverflowError:
        return at.isoformat()


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _whole(value: Any) -> Any:
    """Seconds as shown to people: whole numbers where they are whole enough."""
    if isinstance(value, (int, float)):
        return int(round(value))
    return value


# --- the event rules: one function per event kind, (rules, seen event, typed data) -> alerts ---

def _forced(rules: Rules, seen: _Seen, event: ev.DoorForced) -> list[Found]:
    return [("forced", "critical", seen.params)]


def _intrusion(rules: Rules, seen: _Seen, event: ev.DoorIntrusion) -> list[Found]:
    return [("intrusion", "critical", seen.params)]


def _shred_started(rules: Rules, seen: _Seen, event: ev.ShredStarted) -> list[Found]:
    return rules._shred_rules(seen.params, event.people, seen.at)


def _held_open(rules: Rules, seen: _Seen, event: ev.DoorHeldOpen) -> list[Found]:
    return [("held_open", "warning", {
        **seen.params, "open_s": _whole(event.open_s), "limit_s": _whole(event.limit_s),
        "authorised": event.authorised})]


def _denied(rules: Rules, seen: _Seen, event: ev.BadgeDenied) -> list[Found]:
    return [("denied", "warning", {**seen.params, "reason": event.reason})]


def _granted(rules: Rules, seen: _Seen, event: ev.BadgeGranted) -> list[Found]:
    # At a shredder the session is judged instead (shred_flagged).
    if not event.flagged or rules._station_kind(seen.station) == "shredder":
        return []
    return [("flagged_use", "warning", {**seen.params, "reason": event.reason})]


def _tray_uncollected(rules: Rules, seen: _Seen, event: ev.TrayUncollected) -> list[Found]:
    return [("tray_uncollected", "warning", {**seen.params, "minutes": event.minutes})]


def _print_expired(rules: Rules, seen: _Seen, event: ev.PrintExpired) -> list[Found]:
    return [("print_expired", "info", {
        **seen.params, "count": event.count, "limit_min": round((event.limit_s or 0) / 60),
        "users": sorted({j.user for j in event.jobs if j.user})})]


def _storage_failed(rules: Rules, seen: _Seen, event: ev.StorageFailed) -> list[Found]:
    # Unless a heartbeat already raised it during this outage (the live alarm).
    if rules._alerted_since(seen.station, "storage_failed", event.since):
        return []
    return [("storage_failed", "critical", {**seen.params, "unrecorded": event.kept, "error": event.error})]


def _storage_corrupt(rules: Rules, seen: _Seen, event: ev.StorageCorrupt) -> list[Found]:
    return [rules._storage_corrupt(seen.row, seen.params, event)]


def _cups_down(rules: Rules, seen: _Seen, event: ev.CupsDown) -> list[Found]:
    return [("cups_down", "warning", seen.params)]


def _cups_up(rules: Rules, seen: _Seen, event: ev.CupsUp) -> list[Found]:
    return [("cups_up", "info", seen.params)]


def _policy_rejected(rules: Rules, seen: _Seen, event: ev.PolicyRejected) -> list[Found]:
    critical = event.reason in _FORGED_REASONS or event.reason in _BOUND_REASONS
    return [("policy_rejected", "critical" if critical else "warning", {
        **seen.params, "reason": event.reason, "offered_version": event.offered_version,
        "held_version": event.held_version})]


EventRule = Callable[[Rules, _Seen, Any], list[Found]]
# Event kind -> its rule. after_hours is judged besides, for AFTER_HOURS_KINDS.
EVENT_RULES: dict[str, EventRule] = {
    ev.DoorForced.KIND: _forced,
    ev.DoorIntrusion.KIND: _intrusion,
    ev.ShredStarted.KIND: _shred_started,
    ev.DoorHeldOpen.KIND: _held_open,
    ev.BadgeDenied.KIND: _denied,
    ev.BadgeGranted.KIND: _granted,
    ev.TrayUncollected.KIND: _tray_uncollected,
    ev.PrintExpired.KIND: _print_expired,
    # A station that could not write its records, told once it can again (QoS 1, from its outbox).
    ev.StorageFailed.KIND: _storage_failed,
    # A station that had to replace a damaged outbox or policy cache at start.
    ev.StorageCorrupt.KIND: _storage_corrupt,
    ev.CupsDown.KIND: _cups_down,
    ev.CupsUp.KIND: _cups_up,
    ev.PolicyRejected.KIND: _policy_rejected,
}
# Urgent kinds (hub.ingest.writer.URGENT_KINDS) whose rules read only the row and the config:
# their alerts are stored in the event's own transaction (Rules.alerts_in_transaction). The
# storage kinds' rules query the store and stay on the rules thread.
AT_COMMIT_KINDS = frozenset({ev.DoorForced.KIND, ev.DoorIntrusion.KIND, ev.PolicyRejected.KIND})
# Every kind an event rule looks at (the restart's rescan reads these).
_EVENT_KINDS = tuple(EVENT_RULES) + tuple(k for k in AFTER_HOURS_KINDS if k not in EVENT_RULES)
