"""Supervisor notifications through Apprise to real sinks on loopback: an SMTP server
(aiosmtpd, mailto://) and an HTTP server (json://). A failing target is retried on its
schedule and gives up, without holding up ingest or the other targets; a pending delivery
survives a restart; URLs (secrets) never reach the store or the logs."""
from __future__ import annotations

import email
import email.header
import json
import logging
import socket
import time
from typing import Any

import pytest
from sqlalchemy import select

from hub.alerting.notify import Notifier
from hub.store.schema import alert_deliveries
from kagiban.configfile import ConfigError
from tests.hub.helpers import SITE
from tests.support.alert_stack import TUESDAY, Stack, ev
from tests.support.mosquitto import free_port, wait_for
from tests.support.sinks import HttpSink, SmtpSink


@pytest.fixture
def smtp():
    sink = SmtpSink()
    yield sink
    sink.close()


@pytest.fixture
def http():
    sink = HttpSink()
    yield sink
    sink.close()


@pytest.fixture
def stacks():
    made: list[tuple[Stack, list[Notifier]]] = []

    def _make(tmp_path, supervisors: list[dict[str, Any]], **cfg: Any) -> tuple[Stack, Notifier]:
        s = Stack(tmp_path, sites={SITE: {"name": "Ward A", "supervisors": supervisors}}, **cfg)
        notifier = Notifier(s.engine, s.cfg).start()
        s.start_rules(notifier=notifier)
        made.append((s, [notifier]))
        return s, notifier

    yield _make
    for s, notifiers in made:
        s.stop_rules()
        for n in notifiers:
            n.stop()
        s.close()


def deliveries(stack: Stack) -> dict[str, dict[str, Any]]:
    with stack.engine.connect() as conn:
        return {r.target: dict(r._mapping) for r in conn.execute(select(alert_deliveries))}


def forced(seq: int = 1):
    return ev("cabinet-1", seq, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None)


def test_an_alert_is_mailed_and_posted_to_every_supervisor_target(tmp_path, store, smtp, http, stacks,
                                                                   monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="hub")
    mail_url = (f"mailto://127.0.0.1:{smtp.port}?from=kagiban@ward-a.example&to=supervisors@ward-a.example"
                "&mode=insecure")
    monkeypatch.setenv("KAGIBAN_TEST_MAIL_URL", mail_url)
    url_file = tmp_path / "chat-url"
    url_file.write_text(f"json://127.0.0.1:{http.port}/hook\n")
    s, _ = stacks(tmp_path / "hub", [{"url_env": "KAGIBAN_TEST_MAIL_URL", "label": "mail"},
                                     {"url_file": str(url_file)}])
    s.feed(forced())

    wait_for(lambda: smtp.messages and http.bodies, timeout=15, what="mail and JSON delivered")
    mail = smtp.messages[0]
    subject = str(email.header.make_header(email.header.decode_header(mail["Subject"])))
    assert "扉のこじ開け" in subject and "Door forced" in subject and "Key cabinet 1" in subject
    assert mail["To"] == "supervisors@ward-a.example"
    text = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    lines = text.get_payload(decode=True).decode("utf-8").splitlines()
    assert lines[0] == "Key cabinet 1で扉がこじ開けられました（2025-04-01 10:00:00）。"
    assert lines[1] == "Door forced open at Key cabinet 1 at 2025-04-01 10:00:00."
    assert "端末 / Station: Key cabinet 1 (cabinet-1)" in lines
    assert "規則 / Rule: 扉のこじ開け / Door forced open (forced)" in lines
    assert "日時 / Time: 2025-04-01 10:00:00 (Asia/Tokyo)" in lines

    [posted] = http.bodies
    assert "Door forced" in posted["title"] and posted["type"] == "failure"
    assert posted["message"].splitlines()[:2] == lines[:2]

    wait_for(lambda: all(d["state"] == "sent" for d in deliveries(s).values()), timeout=5,
             what="deliveries recorded as sent")
    rows = deliveries(s)
    assert set(rows) == {"mail", "target 2"}  # labels, never URLs
    assert all(r["attempts"] == 1 and r["delivered_at"] for r in rows.values())
    stored = json.dumps(list(rows.values()))
    hub_logs = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("hub"))
    for secret in (str(smtp.port), str(http.port), "mailto:", "json:"):
        assert secret not in stored and secret not in hub_logs


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers: a hung receiver."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()


def test_a_failing_target_is_retried_on_schedule_then_failed_while_everything_else_goes_on(
        tmp_path, http, stacks, silent_port, caplog):
    caplog.set_level(logging.INFO, logger="hub")
    s, notifier = stacks(
        tmp_path / "hub",
        [{"url": f"json://127.0.0.1:{silent_port}/hook", "label": "broken"},
         {"url": f"json://127.0.0.1:{http.port}/hook", "label": "chat"}],
        notify={"retry_s": [0.3, 0.3], "timeout_s": 1.5},
    )
    started = time.monotonic()
    s.feed(forced(1))
    # While the first try to "broken" hangs, ingest stores and the other target is served.
    s.feed(*(ev("cabinet-1", n, "door.closed", f"{TUESDAY}T10:00:{n:02d}+09:00") for n in range(2, 30)))
    with s.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM events").scalar() == 29
    wait_for(lambda: http.bodies, timeout=10, what="the working target delivered")
    assert deliveries(s)["broken"]["attempts"] == 0  # still in its first try

    wait_for(lambda: deliveries(s)["broken"]["state"] == "failed", timeout=20, what="broken target given up")
    elapsed = time.monotonic() - started
    rows = deliveries(s)
    assert rows["broken"]["attempts"] == 3  # the first try and one per retry_s entry
    assert rows["broken"]["last_error"] and rows["broken"]["next_try_at"] is None
    assert elapsed >= 3 * 1.5 + 0.6 - 0.5  # three timed-out tries and the schedule between them
    assert rows["chat"]["state"] == "sent" and rows["chat"]["attempts"] == 1
    assert len(http.bodies) == 1
    assert notifier.failures == 3
    messages = [r.getMessage() for r in caplog.records if r.name == "hub.alerting.notify"]
    assert sum("notifying broken failed (attempt" in m for m in messages) == 2
    assert any("notifying broken failed for good after 3 attempt(s)" in m for m in messages)
    assert not any(str(silent_port) in m for m in messages)


def test_a_pending_delivery_survives_a_restart(tmp_path, store, stacks):
    port = free_port()  # the receiver is down at first
    s, notifier = stacks(tmp_path / "hub", [{"url": f"json://127.0.0.1:{port}/", "label": "chat"}],
                         notify={"retry_s": [0.5, 60], "timeout_s": 2})
    s.feed(forced())
    wait_for(lambda: deliveries(s).get("chat", {}).get("attempts") == 1, timeout=10, what="first failed try")
    notifier.stop()  # the hub stops with the delivery pending
    assert deliveries(s)["chat"]["state"] == "pending"

    sink = HttpSink(port)  # the receiver is back
    try:
        again = Notifier(s.engine, s.cfg).start()
        try:
            wait_for(lambda: deliveries(s)["chat"]["state"] == "sent", timeout=10, what="delivered after restart")
        finally:
            again.stop()
        assert deliveries(s)["chat"]["attempts"] == 2
        assert len(sink.bodies) == 1 and "Door forced" in sink.bodies[0]["title"]
    finally:
        sink.close()


def test_a_missing_secret_names_the_site_and_target(tmp_path, store, monkeypatch):
    monkeypatch.delenv("KAGIBAN_NO_SUCH_URL", raising=False)
    s = Stack(tmp_path, sites={SITE: {"supervisors": [
        {"url": "json://127.0.0.1:9/"}, {"url_env": "KAGIBAN_NO_SUCH_URL"}]}})
    try:
        with pytest.raises(ConfigError) as err:
            Notifier(s.engine, s.cfg).start()
        assert f"sites.{SITE}.supervisors[2]" in str(err.value)
        assert "KAGIBAN_NO_SUCH_URL" in str(err.value)
    finally:
        s.close()


def test_an_unusable_url_is_refused_without_showing_it(tmp_path, store, monkeypatch):
    monkeypatch.setenv("KAGIBAN_BAD_URL", "nosuchservice://user:hunter2@example.invalid/")
    s = Stack(tmp_path, sites={SITE: {"supervisors": [{"url_env": "KAGIBAN_BAD_URL", "label": "pager"}]}})
    try:
        with pytest.raises(ConfigError) as err:
            Notifier(s.engine, s.cfg).start()
        assert "pager" in str(err.value) and "hunter2" not in str(err.value)
    finally:
        s.close()


def test_labels_must_differ_within_a_site(tmp_path, store):
    s = Stack(tmp_path, sites={SITE: {"supervisors": [
        {"url": "json://127.0.0.1:9/", "label": "desk"}, {"url": "json://127.0.0.1:10/", "label": "desk"}]}})
    try:
        with pytest.raises(ConfigError, match="labels"):
            Notifier(s.engine, s.cfg)
    finally:
        s.close()
