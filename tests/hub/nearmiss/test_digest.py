"""The monthly digest of shared near-misses: sent through a sink (MemorySink), once, with the
cases shared in that month and never a reporter's name; the scheduler sends the month before
on the first; through the hub's notifier it reaches a supervisor target (Apprise to a JSON
endpoint on loopback)."""
from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from hub.alerting.notify import Notifier
from hub.alerting.sinks import MemorySink
from hub.config import load
from hub.nearmiss import digest, service
from hub.nearmiss.model import CaseInput, NearMissError
from hub.store import migrate
from hub.store.db import make_engine
from tests.support.mosquitto import wait_for
from tests.support.sinks import HttpSink
from tests.support.web_app import write_config

JST = ZoneInfo("Asia/Tokyo")


def _shared(engine, cfg, what: str, shared_at: datetime, reporter: str = "staff-07") -> int:
    case_id = service.file_case(engine, cfg, CaseInput(
        occurred_at=datetime(2025, 3, 3, 9, 0, tzinfo=JST), category="shredder", what=what,
        why="the bin was full", severity="moderate", place="奥の事務室", anonymous=True), reporter,
        now=shared_at)
    service.review(engine, case_id, "Empty the bin every noon.", "sup-01", now=shared_at)
    service.share(engine, case_id, "sup-01", now=shared_at)
    return case_id


def test_the_digest_lists_the_months_shared_cases_once_without_names(engine, cfg):
    march = _shared(engine, cfg, "Papers stuck half shredded", datetime(2025, 3, 31, 14, 59, tzinfo=timezone.utc))
    _shared(engine, cfg, "Shared in April (JST)", datetime(2025, 3, 31, 15, 0, tzinfo=timezone.utc))
    service.file_case(engine, cfg, CaseInput(occurred_at=datetime(2025, 3, 5, 9, 0, tzinfo=JST), category="pc",
                                             what="Not shared yet", why="-", severity="minor", place="PC 1"),
                      "staff-08", now=datetime(2025, 3, 6, tzinfo=timezone.utc))
    sink = MemorySink()
    sent = digest.send(engine, cfg, "2025-03", [sink], now=datetime(2025, 4, 1, tzinfo=timezone.utc))
    assert sent.case_ids == (march,)
    [message] = sink.sent
    assert message.title.startswith("ヒヤリハット共有 2025-03（1件）")
    assert "Papers stuck half shredded" in message.body and "Empty the bin every noon." in message.body
    assert "シュレッダー" in message.body and "Shredder" in message.body  # Japanese first, English second
    assert message.body.index("シュレッダー") < message.body.index("Shredder")
    assert "Shared in April" not in message.body and "Not shared yet" not in message.body
    assert "staff-07" not in message.body
    with pytest.raises(NearMissError) as caught:
        digest.send(engine, cfg, "2025-03", [sink])
    assert caught.value.code == "nearmiss.digest_sent"
    assert len(sink.sent) == 1


def test_a_refusing_sink_does_not_stop_the_others(engine, cfg):
    refusing, working = MemorySink(refuse=1), MemorySink()
    digest.send(engine, cfg, "2025-02", [refusing, working])
    assert (refusing.tries, len(refusing.sent), len(working.sent)) == (1, 0, 1)


def test_the_scheduler_sends_the_month_before_on_the_first_after_the_hour(engine, cfg):
    _shared(engine, cfg, "Papers stuck", datetime(2025, 3, 10, tzinfo=timezone.utc))
    sink = MemorySink()
    scheduler = digest.DigestScheduler(engine, cfg, [sink])
    assert scheduler.run_due(datetime(2025, 3, 31, 21, 0, tzinfo=timezone.utc)) is None  # 06:00 JST: too early
    assert scheduler.run_due(datetime(2025, 3, 31, 22, 0, tzinfo=timezone.utc)).month == "2025-03"
    assert scheduler.run_due(datetime(2025, 3, 31, 23, 0, tzinfo=timezone.utc)) is None  # sent already
    assert scheduler.run_due(datetime(2025, 4, 2, 0, 0, tzinfo=timezone.utc)) is None  # not the first
    assert len(sink.sent) == 1


def test_a_bad_month_is_refused(engine, cfg):
    with pytest.raises(NearMissError) as caught:
        digest.send(engine, cfg, "2025-3", [MemorySink()])
    assert caught.value.code == "nearmiss.bad_month"


def test_through_the_hubs_notifier_the_digest_reaches_the_supervisor_target(tmp_path):
    """The hub's wiring: the notifier as one sink, Apprise posting to a JSON endpoint on loopback."""
    endpoint = HttpSink()
    cfg = load(write_config(tmp_path / "hub", sites={"ward-a": {"supervisors": [
        {"label": "office", "url": f"json://127.0.0.1:{endpoint.port}/"}]}}))
    engine = make_engine(cfg.db_url())
    migrate.upgrade(engine)
    notifier = Notifier(engine, cfg).start()
    try:
        _shared(engine, cfg, "Papers stuck", datetime(2025, 3, 10, tzinfo=timezone.utc))
        digest.send(engine, cfg, "2025-03", [digest.NotifierSinks(notifier, cfg)])
        [body] = wait_for(lambda: endpoint.bodies, timeout=10, what="the digest at the endpoint")
        assert body["title"].startswith("ヒヤリハット共有 2025-03") and "Papers stuck" in body["message"]
    finally:
        notifier.stop()
        endpoint.close()
        engine.dispose()
