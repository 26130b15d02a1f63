"""The close-out and the monthly report each run by themselves on a thread of their own
(hub.audit.jobs.Periodic): the first look at once, then every ``poll_s``; a failing run is
logged and tried again at the next look, and stop() ends the thread."""
from __future__ import annotations

import threading
from datetime import datetime

from hub.ledgers import closeout
from hub.ledgers.monthly_schedule import MonthlyScheduler
from tests.hub.helpers import SITE
from tests.support.alert_stack import Stack
from tests.support.mosquitto import wait_for
from tests.support.workday import STATIONS, ZONE


def _threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == name]


class _Messages:
    """A notifier that keeps what it was asked to send."""

    def __init__(self):
        self.sent: list[str] = []

    def send_message(self, site, title, body, severity="info", **_kw):
        self.sent.append(title)

    def schedule_closeout(self, *args, **kwargs):  # not asked for by these runs
        return 0


def test_the_close_out_runs_on_its_own_thread_and_stops(tmp_path, store):
    s = Stack(tmp_path, stations=STATIONS, sites={SITE: {"name": "Ward A", "closeout": {"at": "18:00"}}})
    looks: list[int] = []

    def clock() -> datetime:
        looks.append(1)
        if len(looks) == 1:
            raise RuntimeError("the clock failed once")  # logged; the thread goes on
        return datetime(2025, 4, 1, 18, 0, 30, tzinfo=ZONE)

    runs = closeout.CloseoutScheduler(s.engine, s.cfg, None, clock=clock, poll_s=0.05).start()
    try:
        made = wait_for(lambda: closeout.stored(s.engine, SITE, datetime(2025, 4, 1).date()), timeout=10,
                        what="the close-out made by the scheduler's thread")
        assert made.site == SITE and runs.made == 1 and len(_threads("kagiban-closeout")) == 1
        wait_for(lambda: len(looks) >= 4, timeout=5, what="later looks")
        assert runs.made == 1  # made once, however often it looks
    finally:
        runs.stop()
        s.close()
    assert _threads("kagiban-closeout") == []


def test_the_monthly_report_runs_on_its_own_thread_and_stops(tmp_path, store):
    s = Stack(tmp_path, stations=STATIONS, sites={SITE: {
        "name": "Ward A", "supervisors": [{"url": "json://127.0.0.1:9/hook", "label": "chat"}]}})
    notifier = _Messages()
    runs = MonthlyScheduler(s.engine, s.cfg, notifier, clock=lambda: datetime(2025, 5, 1, 6, 0, 30, tzinfo=ZONE),
                            poll_s=0.05).start()
    try:
        wait_for(lambda: notifier.sent, timeout=30, what="the report sent by the scheduler's thread")
        assert len(_threads("kagiban-monthly")) == 1
    finally:
        runs.stop()
        s.close()
    assert len(notifier.sent) == 1 and "2025-04" in notifier.sent[0]
    assert _threads("kagiban-monthly") == []
