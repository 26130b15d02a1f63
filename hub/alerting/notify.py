"""Supervisor notifications: every alert goes to each supervisor target of its site through
its sink (hub.alerting.sinks: Apprise for e-mail, Slack, LINE, json:// ...), with retries, on
threads of its own.

Each (alert, target) is an ``alert_deliveries`` row, created in the alert's own transaction
(see AlertCenter.raise_alert), so a notification that is due survives a hub restart. Rows
name the target by its label, never by its URL: URLs usually hold secrets and come from the
environment or a file at start. A failing target is tried again on ``notify.retry_s``
(pending with ``next_try_at``) and marked failed when the schedule is used up; it never
holds up ingest, the rules or the other targets.

Messages that are not alerts (the end-of-day close-out, hub.ledgers.closeout) go to a site's targets
through :meth:`Notifier.send_message`: the same targets, the same delivery and retry schedule,
but kept in memory (their sender stores what was delivered), so retries still due when the
hub stops are dropped. They may carry files (the monthly report's PDF, hub.alerting.sinks.Attachment).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from hub.alerting.wording import RULE_NAMES, SEVERITY_NAMES, alert_text, local_time_text
from hub.config import HubConfig, NotifyTarget
from hub.store.db import begin_write
from hub.store.schema import alert_deliveries, alerts
from hub.store.timestamps import now_utc, utc_text
from hub.alerting.sinks import AppriseSink, Attachment, Sink, SinkFactory
from hub.stations import directory
from kagiban.configfile import ConfigError, read_secret

_LOG = logging.getLogger(__name__)

_POLL_S = 1.0  # longest sleep between looks at the table (a wake() cuts it short)
_BATCH = 100  # due deliveries taken per look
_ERROR_MAX = 500
_GONE = "target no longer configured"


def target_label(target: NotifyTarget, index: int) -> str:
    """How a target is named in the store, logs and page: its label, else "target N" (1-based)."""
    return target.label or f"target {index}"


@dataclass
class _Target:
    """A resolved destination; its sink holds the URL, which is never logged."""

    site: str
    index: int
    label: str
    sink: Sink


@dataclass
class _Message:
    """An ad-hoc message to one target, waiting for its (next) try."""

    site: str
    label: str
    title: str
    body: str
    severity: str
    next_try: float  # time.monotonic()
    on_result: Callable[[str, str, int, str], None] | None
    attachments: tuple[Attachment, ...] = ()
    attempts: int = 0
    busy: bool = False


class Notifier:
    """Creates delivery rows for alerts and works them off in the background."""

    def __init__(self, engine: Engine, cfg: HubConfig, *, sink_factory: SinkFactory = AppriseSink):
        self.engine = engine
        self.cfg = cfg
        self._sink_factory = sink_factory
        # Labels need no secrets, so deliveries can be scheduled before start().
        self._labels: dict[str, list[str]] = {}
        for site_id, site in cfg.sites.items():
            labels = [target_label(t, i) for i, t in enumerate(site.supervisors, start=1)]
            if len(set(labels)) != len(labels):
                # Deliveries are matched to targets by label after a restart.
                raise ConfigError(f"sites.{site_id}.supervisors: labels must differ within a site")
            self._labels[site_id] = labels
        self._targets: dict[tuple[str, str], _Target] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._busy_ids: set[int] = set()
        self._busy_targets: set[tuple[str, str]] = set()
        # Finished since the last look: their new state may be newer than what that look read.
        self._done: set[int] = set()
        self._messages: list[_Message] = []
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.sent = 0
        self.failures = 0  # failed attempts, retried or not

    # --- configuration ---

    def _resolve(self) -> dict[tuple[str, str], _Target]:
        out: dict[tuple[str, str], _Target] = {}
        for site_id, site in self.cfg.sites.items():
            for index, target in enumerate(site.supervisors, start=1):
                label = target_label(target, index)
                what = f"sites.{site_id}.supervisors[{index}] ({label})"
                url = target.url or read_secret(target.url_env, target.url_file, what)
                if not url:
                    raise ConfigError(f"{what}: the URL is empty")
                sink = self._sink_factory(url, self.cfg.notify.timeout_s, what)
                out[(site_id, label)] = _Target(site_id, index, label, sink)
        return out

    def labels(self, site: str) -> list[str]:
        """The labels of a site's supervisor targets."""
        return list(self._labels.get(site, []))

    # --- lifecycle ---

    def start(self) -> "Notifier":
        """Resolve every target's URL (ConfigError names site and target), then start working."""
        self._targets = self._resolve()
        workers = max(1, min(8, len(self._targets)))
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kagiban-notify")
        self._thread = threading.Thread(target=self._run, name="kagiban-notifier", daemon=True)
        self._thread.start()
        _LOG.info("notifier started with %d target(s)", len(self._targets))
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop taking deliveries; those in flight finish (bounded by notify.timeout_s)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.cfg.notify.timeout_s + 5)
            self._thread = None
        if self._pool is not None:
            # Not yet started ones stay pending in the table for the next run.
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def wake(self) -> None:
        """Look for due deliveries now."""
        self._wake.set()

    def send_message(
        self,
        site: str,
        title: str,
        body: str,
        *,
        severity: str = "info",
        on_result: Callable[[str, str, int, str], None] | None = None,
        attachments: tuple[Attachment, ...] = (),
    ) -> list[str]:
        """Send a message that is not an alert to every supervisor target of ``site``, with
        the alerts' retry schedule and ``attachments`` (to the targets that take files); the
        labels of the targets it goes to. ``on_result(label,
        state, attempts, error)`` is called (on a worker thread) with "sent" or "failed" when a
        target is done, and with "pending" after each failed try that will be retried."""
        labels = self.labels(site)
        now = time.monotonic()
        with self._lock:
            self._messages.extend(_Message(site, label, title, body, severity, now, on_result, tuple(attachments))
                                  for label in labels)
        self.wake()
        return labels

    # --- scheduling (in the caller's transaction) ---

    def schedule(self, conn, alert_id: int, site: str, now_text: str) -> int:
        """Add a pending delivery per target of ``site`` for the alert; how many."""
        rows = [
            {"alert_id": alert_id, "target": label, "state": "pending", "attempts": 0,
             "next_try_at": now_text}
            for label in self._labels.get(site, [])
        ]
        if rows:
            conn.execute(insert(alert_deliveries), rows)
        return len(rows)

    # --- the dispatcher thread ---

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = _POLL_S
            try:
                wait = min(wait, self._dispatch_due())
            except Exception:
                # A database hiccup must not end notifications for good.
                _LOG.exception("looking for due notifications failed")
            self._wake.wait(max(wait, 0.01))
            self._wake.clear()

    def _dispatch_due(self) -> float:
        """Start the due deliveries; seconds until the next one is due (``_POLL_S`` if none)."""
        with self._lock:
            self._done.clear()
        now = utc_text(now_utc())
        query = (
            select(alert_deliveries.c.id, alert_deliveries.c.target, alert_deliveries.c.attempts,
                   alerts.c.id.label("alert_id"), alerts.c.site, alerts.c.station, alerts.c.rule,
                   alerts.c.severity, alerts.c.message, alerts.c.params, alerts.c.raised_at)
            .join(alerts, alerts.c.id == alert_deliveries.c.alert_id)
            .where(alert_deliveries.c.state == "pending", alert_deliveries.c.next_try_at <= now)
            .order_by(alert_deliveries.c.next_try_at, alert_deliveries.c.id)
            .limit(_BATCH)
        )
        with self.engine.connect() as conn:
            due = [dict(r._mapping) for r in conn.execute(query)]
            upcoming = conn.execute(
                select(func.min(alert_deliveries.c.next_try_at))
                .where(alert_deliveries.c.state == "pending", alert_deliveries.c.next_try_at > now)
            ).scalar()
        for row in due:
            if self._stop.is_set() or self._pool is None:
                return _POLL_S
            key = (row["site"], row["target"])
            target = self._targets.get(key)
            if target is None:
                self._record(row, ok=False, error=_GONE, final=True)
                continue
            with self._lock:
                # One delivery per target at a time keeps a target's messages in order.
                if row["id"] in self._busy_ids or row["id"] in self._done or key in self._busy_targets:
                    continue
                self._busy_ids.add(row["id"])
                self._busy_targets.add(key)
            self._pool.submit(self._deliver, row, target)
        wait = self._dispatch_messages()
        if upcoming is None:
            return wait
        when = datetime.fromisoformat(upcoming.replace("Z", "+00:00"))
        return min(wait, (when - now_utc()).total_seconds())

    def _dispatch_messages(self) -> float:
        """Start the ad-hoc messages that are due; seconds until the next one is."""
        now = time.monotonic()
        wait = _POLL_S
        due: list[tuple[_Message, _Target]] = []
        gone: list[_Message] = []
        with self._lock:
            for msg in self._messages:
                if msg.busy:
                    continue
                if msg.next_try > now:
                    wait = min(wait, msg.next_try - now)
                    continue
                key = (msg.site, msg.label)
                target = self._targets.get(key)
                if target is None:
                    gone.append(msg)
                elif key not in self._busy_targets and self._pool is not None and not self._stop.is_set():
                    msg.busy = True
                    self._busy_targets.add(key)
                    due.append((msg, target))
            for msg in gone:
                self._messages.remove(msg)
        for msg in gone:
            self._message_result(msg, "failed", _GONE)
        for msg, target in due:
            assert self._pool is not None  # due fills only while the pool runs
            self._pool.submit(self._deliver_message, msg, target)
        return wait

    def _deliver_message(self, msg: _Message, target: _Target) -> None:
        key = (target.site, target.label)
        state = "failed"
        error = ""
        try:
            ok, error = self._notify(target, msg.title, msg.body, msg.severity, msg.attachments)
            msg.attempts += 1
            schedule = self.cfg.notify.retry_s
            if ok:
                state = "sent"
                self.sent += 1
                _LOG.info("message %r sent to %s", msg.title, msg.label)
            else:
                self.failures += 1
                if msg.attempts <= len(schedule):
                    state = "pending"
                    delay = schedule[msg.attempts - 1]
                    msg.next_try = time.monotonic() + delay
                    _LOG.warning("message %r to %s failed (attempt %d: %s); next try in %.0f s",
                                 msg.title, msg.label, msg.attempts, error, delay)
                else:
                    _LOG.error("message %r to %s failed for good after %d attempt(s): %s",
                               msg.title, msg.label, msg.attempts, error)
        except Exception:
            _LOG.exception("delivering a message to %s failed", target.label)
        finally:
            with self._lock:
                msg.busy = False
                self._busy_targets.discard(key)
                if state != "pending" and msg in self._messages:
                    self._messages.remove(msg)
            self._wake.set()
        self._message_result(msg, state, error)

    @staticmethod
    def _message_result(msg: _Message, state: str, error: str) -> None:
        if msg.on_result is None:
            return
        try:
            msg.on_result(msg.label, state, msg.attempts, error[:_ERROR_MAX])
        except Exception:  # the sender's bookkeeping must not end the worker
            _LOG.exception("recording the delivery of a message to %s failed", msg.label)

    @staticmethod
    def _notify(target: _Target, title: str, body: str, severity: str,
                attachments: tuple[Attachment, ...] = ()) -> tuple[bool, str]:
        """One try through the target's sink: (accepted, error text)."""
        try:
            if attachments:
                return target.sink.send(title, body, severity, attachments)
            return target.sink.send(title, body, severity)
        except Exception as exc:  # a sink bug must not end the worker
            return False, f"{exc.__class__.__name__} in the notification sink"

    def _deliver(self, row: dict[str, Any], target: _Target) -> None:
        key = (target.site, target.label)
        try:
            title, body = compose(self.cfg, row)
            ok, error = self._notify(target, title, body, row["severity"])
            self._record(row, ok=ok, error=error)
        except Exception:
            _LOG.exception("recording the delivery of alert %s to %s failed", row["alert_id"], target.label)
        finally:
            with self._lock:
                self._busy_ids.discard(row["id"])
                self._done.add(row["id"])
                self._busy_targets.discard(key)
            self._wake.set()

    def _record(self, row: dict[str, Any], *, ok: bool, error: str = "", final: bool = False) -> None:
        now = now_utc()
        attempts = row["attempts"] + (0 if final else 1)
        values: dict[str, Any] = {"attempts": attempts}
        if ok:
            values.update(state="sent", delivered_at=utc_text(now), next_try_at=None, last_error=None)
            self.sent += 1
            _LOG.info("alert %d notified to %s", row["alert_id"], row["target"])
        else:
            schedule = self.cfg.notify.retry_s
            values["last_error"] = error[:_ERROR_MAX]
            if not final:
                self.failures += 1
            if not final and attempts <= len(schedule):
                delay = schedule[attempts - 1]
                values.update(state="pending", next_try_at=utc_text(now + timedelta(seconds=delay)))
                _LOG.warning("alert %d: notifying %s failed (attempt %d: %s); next try in %.0f s",
                             row["alert_id"], row["target"], attempts, error, delay)
            else:
                values.update(state="failed", next_try_at=None)
                _LOG.error("alert %d: notifying %s failed for good after %d attempt(s): %s",
                           row["alert_id"], row["target"], attempts, error)
        with begin_write(self.engine) as conn:
            conn.execute(update(alert_deliveries).where(
                alert_deliveries.c.id == row["id"], alert_deliveries.c.state == "pending").values(**values))


def compose(cfg: HubConfig, alert: dict[str, Any]) -> tuple[str, str]:
    """The title and body of an alert's notification: Japanese first, English second."""
    params = alert["params"] if isinstance(alert["params"], dict) else json.loads(alert["params"] or "{}")
    site, station, rule = alert["site"], alert["station"], alert["rule"]
    station_name = params.get("station_name") or directory.display_name(cfg, station)
    site_name = params.get("site_name") or directory.site_name(cfg, site)
    rule_ja, rule_en = RULE_NAMES.get(rule, (rule, rule))
    sev_ja, sev_en = SEVERITY_NAMES.get(alert["severity"], (alert["severity"], alert["severity"]))
    zone = cfg.site_zone(site).key
    when = local_time_text(params.get("at") or alert["raised_at"], zone)
    title = f"[kagiban] {sev_ja}: {rule_ja} - {station_name} / {sev_en}: {rule_en} - {station_name}"
    body = "\n".join([
        alert_text(rule, params, "ja"),
        alert_text(rule, params, "en") if params else alert["message"],
        "",
        f"拠点 / Site: {site_name} ({site})",
        f"端末 / Station: {station_name} ({station})",
        f"規則 / Rule: {rule_ja} / {rule_en} ({rule})",
        f"日時 / Time: {when} ({zone})",
        f"警報番号 / Alert no.: {alert['alert_id'] if 'alert_id' in alert else alert.get('id')}",
    ])
    return title, body
