"""Critical alerts of urgent events: the event and its alert are stored in one transaction
(one commit), and the alert is published only once both rows are committed; if storing the
alert there fails, the event is still stored and the rules raise the alert after it."""
from __future__ import annotations

import threading
import time

from sqlalchemy import event as sa_event, select

from hub.alerting.alerts import AlertCenter
from hub.alerting.rules import Rules
from hub.ingest.writer import Ingest
from hub.store.db import make_engine
from hub.store.schema import alerts, events, quarantine
from kagiban.protocol import Alert
from tests.hub.helpers import SITE, encode
from tests.support.alert_stack import PREFIX, TUESDAY, ev
from tests.support.mosquitto import wait_for


def _topic(station: str) -> str:
    return f"{PREFIX}/{SITE}/{station}/event"


def _stored(reader, event_id: str) -> tuple[bool, list[str]]:
    """Whether another connection sees the event, and the rules of the alerts it sees for it."""
    with reader.connect() as conn:
        stored = conn.execute(select(events.c.event_id).where(events.c.event_id == event_id)).first()
        rules = conn.execute(select(alerts.c.rule).where(alerts.c.event_id == event_id)).scalars().all()
    return stored is not None, sorted(rules)


class _Commits:
    """Write transactions committed on the store, and by which thread (SQLAlchemy's commit event)."""

    def __init__(self, engine):
        self.threads: list[str] = []
        self._engine = engine
        sa_event.listen(engine, "commit", self._on)

    def _on(self, _conn) -> None:
        self.threads.append(threading.current_thread().name)

    def close(self) -> None:
        sa_event.remove(self._engine, "commit", self._on)


def test_a_forced_door_and_its_alert_commit_together_and_the_alert_goes_out_after(make_stack):
    s = make_stack()
    reader = make_engine(s.cfg.db_url())
    seen_at_publish: list[tuple[bool, list[str]]] = []
    published: list[Alert] = []

    def publish(_topic_name: str, payload: bytes) -> None:
        # What a supervisor's client would find in the store the moment the alert goes out.
        alert = Alert.model_validate_json(payload)
        seen_at_publish.append(_stored(reader, alert.event_id or ""))
        published.append(alert)

    rules = s.start_rules(publish=publish)
    ingest = Ingest(s.engine, prefix=PREFIX, batch_wait_s=30.0, on_committed=rules.on_committed,
                    in_transaction=rules.alerts_in_transaction).start()
    commits = _Commits(s.engine)
    try:
        _, _, body = ev("cabinet-1", 1, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None)
        ingest.submit(_topic("cabinet-1"), encode(body))
        wait_for(lambda: published, timeout=10, what="the alert published")
        assert rules.flush(10)
    finally:
        ingest.stop()
        commits.close()
        reader.dispose()

    # One write transaction held the event and its alert (the writer's); the rules thread wrote nothing.
    assert commits.threads == ["kagiban-ingest"]
    # Published once, after that commit: both rows were already there for anyone to read.
    assert [(a.rule, a.severity, a.event_id) for a in published] == [("forced", "critical", body["id"])]
    assert seen_at_publish == [(True, ["forced"])]
    assert [a["rule"] for a in s.alerts()] == ["forced"]
    assert s.bus.published == 1  # the live page was told too (no page open: nothing encoded)


def test_after_hours_the_intrusion_is_stored_with_the_event_and_the_warning_comes_after(make_stack):
    s = make_stack(stations=[{"id": "door-1", "site": SITE, "kind": "door", "name": "Back office door"}])
    rules = s.start_rules()
    commits = _Commits(s.engine)
    try:
        # 23:00 on a working day: outside the default business hours.
        s.feed(ev("door-1", 1, "door.intrusion", f"{TUESDAY}T23:00:00+09:00", badge=None, person=None))
    finally:
        commits.close()
    assert s.rules_of("door-1") == ["after_hours", "intrusion"]
    # The critical alert commits with its event; the after_hours warning, not on the critical
    # path, in the rules thread's own transaction after it.
    assert commits.threads == ["kagiban-ingest", "kagiban-rules"]
    assert rules.errors == 0
    published = [Alert.model_validate_json(p) for _t, p in s.published]
    assert [a.rule for a in published] == ["intrusion", "after_hours"]
    assert len({a.id for a in published}) == 2  # each raised once


def test_an_ordinary_event_waits_for_its_batch_and_its_alert_for_the_rules_thread(make_stack):
    s = make_stack()
    rules = s.start_rules()
    commits = _Commits(s.engine)
    try:
        # A denied badge raises a warning: not urgent, judged on the rules thread after the commit.
        s.feed(ev("cabinet-1", 1, "badge.denied", f"{TUESDAY}T10:00:00+09:00", data={"reason": "unknown_badge"}))
    finally:
        commits.close()
    assert s.rules_of("cabinet-1") == ["denied"]
    assert commits.threads.count("kagiban-ingest") == 1
    assert commits.threads.count("kagiban-rules") == 1  # the alert's own transaction, after it
    assert rules.errors == 0


def test_when_the_alert_cannot_be_stored_with_it_the_event_is_kept_and_alerted_after(make_stack, monkeypatch):
    s = make_stack()
    s.start_rules()
    calls: list[int] = []
    real_store = AlertCenter.store

    def store_failing_once(self, conn, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("alert row refused")  # e.g. a constraint the store adds later
        return real_store(self, conn, **kw)

    monkeypatch.setattr(AlertCenter, "store", store_failing_once)
    _, _, body = ev("cabinet-1", 1, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None)
    s.feed(("event", "cabinet-1", body))

    with s.engine.connect() as conn:
        stored = conn.execute(select(events.c.event_id)).scalars().all()
        held = conn.execute(select(quarantine.c.reason)).scalars().all()
    assert stored == [body["id"]] and held == []  # nothing lost, nothing quarantined
    assert [(a["rule"], a["event_id"]) for a in s.alerts()] == [("forced", body["id"])]
    assert [Alert.model_validate_json(p).rule for _t, p in s.published] == ["forced"]


def test_a_restart_does_not_raise_an_alert_stored_with_its_event_again(make_stack):
    s = make_stack()
    s.start_rules()
    s.feed(ev("cabinet-1", 1, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None))
    s.stop_rules()
    again = Rules(s.engine, s.cfg, AlertCenter(s.engine, s.cfg, publish=lambda t, p: s.published.append((t, p))))
    again.start()  # re-runs the last day's events through the event rules
    try:
        time.sleep(0.2)
        assert again.flush(10)
    finally:
        again.stop()
    assert [a["rule"] for a in s.alerts()] == ["forced"]
    assert len(s.published) == 1
