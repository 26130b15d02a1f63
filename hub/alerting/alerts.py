"""Alerts: stored once, published to the broker and the live page, handed to the notifier,
acknowledged by a supervisor.

An alert row keeps an English ``message`` (logs, e-mail) and ``params``: JSON with what any
page needs to say the same in Japanese or English (``alert_text``). Alerts raised for a
stored event are idempotent on (event id, rule): the rules may run again over the same
events after a restart without raising anything twice.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, update

from hub.alerting.alarm import SiteAlarms
from hub.alerting.maintenance import in_maintenance
from hub.alerting.wording import alert_text
from hub.audit.entries import record_alert_acked, record_alert_closed, record_alert_raised
from hub.config import HubConfig
from hub.store.db import begin_write, inserted_id
from hub.live import LiveBus
from hub.store.schema import alerts
from hub.store.timestamps import now_utc, utc_text
from kagiban import protocol

if TYPE_CHECKING:
    from hub.alerting.notify import Notifier

_LOG = logging.getLogger(__name__)

SEVERITIES = ("info", "warning", "critical")
# An alert, critical too, is the hub doing its job, not a fault of the program: ERROR in the log
# is kept for what an operator must repair (broker refused, storage failed).
_LOG_LEVEL = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.WARNING}

Publish = Callable[[str, bytes], None]

# An informational alert that ends its own pair: when it is raised, the open alerts of these
# rules at the same station and the informational alert itself are closed by the hub (state
# "closed", with the reason), not left for a supervisor to acknowledge.
CLOSES_PAIR = {"online": (("offline",), "back_online")}
ACK_MANY_MAX = 500  # alerts acknowledged by one form

# Built once and executed with parameters, SQLAlchemy reuses their cache key and compiled form
# (as the ingest writer's statements): an urgent event's alert is stored on the writer's path
# (Rules.alerts_in_transaction), where each statement built anew was a fraction of a millisecond.
_RAISED = select(alerts.c.id).where(alerts.c.event_id == bindparam("b_event"), alerts.c.rule == bindparam("b_rule"))
_INSERT = insert(alerts)


def _row_dict(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    try:
        out["params"] = json.loads(out["params"])
    except ValueError:  # a hand-edited row must not break the page
        out["params"] = {}
    return out


@dataclass(frozen=True)
class Stored:
    """An alert row written in a transaction, to be passed on (``AlertCenter.announce``) once
    that transaction has committed; ``new`` False: the (event, rule) had its alert already."""

    alert_id: int
    row: dict[str, Any]
    params: dict[str, Any]
    when: datetime
    new: bool
    deliveries: int = 0
    closed: list[int] = field(default_factory=list)


class AlertCenter:
    """Stores, publishes and acknowledges alerts; safe to call from any thread."""

    def __init__(
        self,
        engine: Engine,
        cfg: HubConfig,
        *,
        publish: Publish | None = None,
        bus: LiveBus | None = None,
        notifier: "Notifier | None" = None,
        alarms: SiteAlarms | None = None,
    ):
        self.engine = engine
        self.cfg = cfg
        self.publish = publish
        self.bus = bus
        self.notifier = notifier
        # The sites' retained open-critical state for annunciators (hub.alerting.alarm).
        self.alarms = alarms
        self.raised = 0  # new alerts stored, for metrics

    def raise_alert(
        self,
        *,
        site: str,
        station: str,
        rule: str,
        severity: str,
        message: str,
        params: dict[str, Any],
        event_id: str | None = None,
        raised_at: datetime | None = None,
    ) -> int:
        """Store an open alert and pass it on; its id. Raised once per (event_id, rule)."""
        with begin_write(self.engine) as conn:
            stored = self.store(conn, site=site, station=station, rule=rule, severity=severity,
                                message=message, params=params, event_id=event_id, raised_at=raised_at)
        self.announce(stored)
        return stored.alert_id

    def store(
        self,
        conn: Connection,
        *,
        site: str,
        station: str,
        rule: str,
        severity: str,
        message: str,
        params: dict[str, Any],
        event_id: str | None = None,
        raised_at: datetime | None = None,
    ) -> "Stored":
        """Store an open alert in the caller's write transaction (the ingest writer's, for an
        urgent event: the event and its alert commit together). Nothing is published: the
        caller hands the result to ``announce`` once that transaction has committed, so no
        alert is ever seen before it is stored. Raised once per (event_id, rule)."""
        if severity not in SEVERITIES:
            raise ValueError(f"unknown severity {severity!r}")
        when = raised_at or now_utc()
        row: dict[str, Any] = {
            "site": site, "station": station, "rule": rule, "severity": severity,
            "message": message, "params": json.dumps(params, ensure_ascii=False, sort_keys=True, default=str),
            "event_id": event_id, "raised_at": utc_text(when), "state": "open",
        }
        if event_id is not None:
            existing = conn.execute(_RAISED, {"b_event": event_id, "b_rule": rule}).scalar()
            if existing is not None:
                _LOG.debug("alert %s for event %s already raised as %d", rule, event_id, existing)
                return Stored(existing, row, params, when, new=False)
        quiet = in_maintenance(conn, station, when)
        if quiet:  # stored and logged as in maintenance; nobody is notified (hub.alerting.maintenance)
            params = {**params, "maintenance": True}
            row["params"] = json.dumps(params, ensure_ascii=False, sort_keys=True, default=str)
        alert_id = inserted_id(conn.execute(_INSERT, row))
        record_alert_raised(conn, alert_id, row)
        deliveries = 0
        if self.notifier is not None and not quiet:
            # Same transaction: an alert stored is an alert whose notifications will be tried.
            deliveries = self.notifier.schedule(conn, alert_id, site, row["raised_at"])
        closed: list[int] = []
        if rule in CLOSES_PAIR:
            closed = self._close_pair(conn, alert_id, station, *CLOSES_PAIR[rule])
        return Stored(alert_id, row, params, when, new=True, deliveries=deliveries, closed=closed)

    def announce(self, stored: "Stored") -> None:
        """After the commit of ``store``'s transaction: ``publish_now``, then ``follow_up``."""
        self.publish_now(stored)
        self.follow_up(stored)

    def publish_now(self, stored: "Stored") -> None:
        """The critical path, after the commit: the broker first, then the live page and the
        notifier's wake-up. Never raises."""
        if stored.new:
            self.raised += 1
            self._pass_on(stored.alert_id, stored.row, stored.params, stored.when, stored.deliveries)

    def follow_up(self, stored: "Stored") -> None:
        """What may come a moment later (the log line, closed alerts on the page, the site's
        alarm state, which reads the store): off the ingest writer's path. Never raises."""
        if not stored.new:
            return
        row = stored.row
        _LOG.log(_LOG_LEVEL[row["severity"]], "alert %d %s (%s) at %s/%s, %d notification(s) due: %s",
                 stored.alert_id, row["rule"], row["severity"], row["site"], row["station"],
                 stored.deliveries, row["message"])
        for closed_id in stored.closed:
            self._tell_page(closed_id)
        if self.alarms is not None and (row["severity"] == "critical" or stored.closed):
            self.alarms.changed([row["site"]])

    def _close_pair(self, conn, alert_id: int, station: str, rules: tuple[str, ...], reason: str) -> list[int]:
        """Close the open alerts of ``rules`` at ``station`` and ``alert_id`` itself; their ids."""
        ids = conn.execute(select(alerts.c.id).where(
            alerts.c.station == station, alerts.c.rule.in_(rules), alerts.c.state == "open")
            .order_by(alerts.c.id).limit(ACK_MANY_MAX)).scalars().all()
        ids = [*ids, alert_id]
        closed_at = utc_text(now_utc())
        conn.execute(update(alerts).where(alerts.c.id.in_(ids), alerts.c.state == "open")
                     .values(state="closed", closed_at=closed_at, close_reason=reason))
        for closed_id in ids:
            record_alert_closed(conn, closed_id, {"closed_at": closed_at, "close_reason": reason})
        _LOG.info("alerts %s at %s closed by the hub (%s)", ids, station, reason)
        return ids

    def _tell_page(self, alert_id: int) -> None:
        """A changed alert to the live page (it re-reads the row)."""
        if self.bus is None:
            return
        try:
            self.bus.publish("alert_ack", {"id": alert_id})
        except Exception:
            _LOG.exception("publishing the change of alert %d failed", alert_id)

    def _pass_on(self, alert_id: int, row: dict[str, Any], params: dict[str, Any],
                 when: datetime, deliveries: int) -> None:
        """After the commit: broker, live page, notifier. None of them may fail the caller."""
        if self.publish is not None:
            # Read on site (an annunciator, the office's own display): the site's language and
            # its zone's offset, as its events carry.
            site = row["site"]
            try:
                message = alert_text(row["rule"], params, self.cfg.site_language(site)) if params else row["message"]
                at = when.astimezone(self.cfg.site_zone(site))
            except Exception:  # an odd params row: the stored English text, the time as raised
                _LOG.exception("wording alert %d for the broker failed", alert_id)
                message, at = row["message"], when
            payload = protocol.dumps(protocol.Alert(
                id=alert_id, site=site, station=row["station"], rule=row["rule"],
                severity=row["severity"], at=at, message=message, event_id=row["event_id"],
            ))
            try:
                self.publish(protocol.topic(self.cfg.broker.prefix, row["site"], row["station"], "alert"),
                             payload)
            except Exception:
                _LOG.exception("publishing alert %d to the broker failed", alert_id)
        if self.bus is not None:
            try:
                self.bus.publish("alert", {**row, "id": alert_id, "params": params})
            except Exception:
                _LOG.exception("publishing alert %d to the live page failed", alert_id)
        if self.notifier is not None and deliveries:
            self.notifier.wake()

    def acknowledge(self, alert_id: int, user: str, comment: str = "") -> bool:
        """Record who acknowledged an open alert, when and why; False if unknown or already done."""
        if not user:
            raise ValueError("an acknowledgement needs the user's name")
        acked_at = utc_text(now_utc())
        with begin_write(self.engine) as conn:
            result = conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id, alerts.c.state == "open")
                .values(state="acknowledged", acked_by=user[:64], acked_at=acked_at, ack_comment=comment)
            )
            if result.rowcount != 1:
                return False
            row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
            record_alert_acked(conn, alert_id, row._mapping)
        _LOG.info("alert %d acknowledged by %s", alert_id, user)
        if self.alarms is not None and row.severity == "critical":
            self.alarms.changed([row.site])
        if self.bus is not None:
            data = _row_dict(row)
            try:
                self.bus.publish("alert_ack", data)
            except Exception:
                _LOG.exception("publishing the acknowledgement of alert %d failed", alert_id)
        return True

    def acknowledge_many(self, alert_ids: list[int], user: str, comment: str) -> list[int]:
        """Acknowledge the open ones of ``alert_ids`` with one comment, in one transaction; each
        is recorded on its own (who, when, comment) in the alerts log. The ids acknowledged."""
        if not user:
            raise ValueError("an acknowledgement needs the user's name")
        wanted = sorted(set(alert_ids))[:ACK_MANY_MAX]
        if not wanted:
            return []
        acked_at = utc_text(now_utc())
        with begin_write(self.engine) as conn:
            found = conn.execute(select(alerts.c.id, alerts.c.site, alerts.c.severity)
                                 .where(alerts.c.id.in_(wanted), alerts.c.state == "open")
                                 .order_by(alerts.c.id)).all()
            ids = [r.id for r in found]
            if ids:
                conn.execute(update(alerts).where(alerts.c.id.in_(ids), alerts.c.state == "open")
                             .values(state="acknowledged", acked_by=user[:64], acked_at=acked_at,
                                     ack_comment=comment))
            for alert_id in ids:
                record_alert_acked(conn, alert_id, {"acked_by": user[:64], "acked_at": acked_at,
                                                    "ack_comment": comment})
        _LOG.info("%d alert(s) acknowledged by %s at once", len(ids), user)
        if self.alarms is not None:
            self.alarms.changed({r.site for r in found if r.severity == "critical"})
        for alert_id in ids:
            self._tell_page(alert_id)
        return list(ids)


def list_alerts(
    engine: Engine,
    *,
    state: str | None = None,
    site: str | None = None,
    station: str | None = None,
    limit: int = 200,
    sites: Iterable[str] | None = None,
) -> list[dict[str, Any]]:
    """Alerts, newest first, with ``params`` decoded; ``sites``: only those of these sites."""
    query = select(alerts).order_by(alerts.c.raised_at.desc(), alerts.c.id.desc()).limit(limit)
    if state is not None:
        query = query.where(alerts.c.state == state)
    if site is not None:
        query = query.where(alerts.c.site == site)
    if station is not None:
        query = query.where(alerts.c.station == station)
    if sites is not None:
        query = query.where(alerts.c.site.in_(sorted(sites)))
    with engine.connect() as conn:
        return [_row_dict(r) for r in conn.execute(query)]


def get_alert(engine: Engine, alert_id: int) -> dict[str, Any] | None:
    """One alert with ``params`` decoded, or None."""
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    return None if row is None else _row_dict(row)


def count_open(engine: Engine, sites: Iterable[str] | None = None) -> int:
    """How many alerts nobody has acknowledged yet (of ``sites`` only, if given)."""
    query = select(func.count()).select_from(alerts).where(alerts.c.state == "open")
    if sites is not None:
        query = query.where(alerts.c.site.in_(sorted(sites)))
    with engine.connect() as conn:
        return conn.execute(query).scalar_one()
