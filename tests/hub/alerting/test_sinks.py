"""Notification sinks: the notifier sends through one interface, whatever the destination.
With the stand-in sink an alert reaches the supervisor after a refused try, and the Apprise
sink refuses a URL it cannot use without showing it."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.alerting.notify import Notifier
from hub.alerting.sinks import AppriseSink, Attachment, MemorySink
from hub.store.schema import alert_deliveries
from kagiban.configfile import ConfigError
from tests.hub.helpers import SITE
from tests.support.alert_stack import TUESDAY, Stack, ev
from tests.support.mosquitto import wait_for


def test_an_alert_reaches_the_stand_in_sink_after_one_refused_try(tmp_path):
    sink = MemorySink(refuse=1)
    made: list[tuple[str, str]] = []

    def factory(url: str, timeout_s: float, what: str) -> MemorySink:
        made.append((url, what))
        return sink

    s = Stack(tmp_path, sites={SITE: {"name": "Ward A", "supervisors": [
        {"url": "memory://supervisors", "label": "desk"}]}}, notify={"retry_s": [0.2], "timeout_s": 1})
    notifier = Notifier(s.engine, s.cfg, sink_factory=factory).start()
    s.start_rules(notifier=notifier)
    try:
        s.feed(ev("cabinet-1", 1, "door.forced", f"{TUESDAY}T10:00:00+09:00", badge=None, person=None))
        def delivery():
            with s.engine.connect() as conn:
                return conn.execute(select(alert_deliveries)).one_or_none()

        wait_for(lambda: (row := delivery()) is not None and row.state == "sent", timeout=10,
                 what="the delivery recorded as sent")
        assert made == [("memory://supervisors", f"sites.{SITE}.supervisors[1] (desk)")]
        assert sink.tries == 2
        assert len(sink.sent) == 1
        sent = sink.sent[0]
        assert "扉のこじ開け" in sent.title and "Door forced" in sent.title and sent.severity == "critical"
        row = delivery()
        assert (row.target, row.state, row.attempts) == ("desk", "sent", 2)
    finally:
        s.stop_rules()
        notifier.stop()
        s.close()


def test_the_apprise_sink_refuses_a_url_it_cannot_use_without_showing_it():
    with pytest.raises(ConfigError) as refused:
        AppriseSink("nosuchscheme://user:hunter2@example.invalid", 1.0, "sites.ward-a.supervisors[1] (mail)")
    assert "sites.ward-a.supervisors[1] (mail)" in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_the_stand_in_sink_keeps_what_it_accepts_and_refuses_when_told():
    sink = MemorySink(refuse=2)
    assert sink.send("t", "b", "warning") == (False, "refused by the stand-in")
    assert sink.send("t", "b", "warning")[0] is False
    assert sink.send("title", "body", "info") == (True, "")
    assert [(m.title, m.body, m.severity) for m in sink.sent] == [("title", "body", "info")]


def test_a_file_goes_with_the_message_to_a_service_that_takes_files(tmp_path):
    from tests.support.sinks import HttpSink
    import base64

    hook = HttpSink()
    try:
        pdf = Attachment("report.pdf", b"%PDF-1.7 the report", "application/pdf")
        assert AppriseSink(f"json://127.0.0.1:{hook.port}/hook", 5.0, "desk").send("t", "b", "info", [pdf]) == (True, "")
        [body] = hook.bodies
        [sent] = body["attachments"]
        assert (sent["filename"], sent["mimetype"]) == ("report.pdf", "application/pdf")
        assert base64.b64decode(sent["base64"]) == b"%PDF-1.7 the report"
    finally:
        hook.close()


def test_the_stand_in_sink_keeps_the_files_it_is_given():
    sink = MemorySink()
    pdf = Attachment("report.pdf", b"%PDF", "application/pdf")
    assert sink.send("title", "body", "info", [pdf]) == (True, "")
    assert sink.sent[0].attachments == (pdf,)
