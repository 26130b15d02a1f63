"""The supervisor's desk in the demo: the afternoon's training roll call (demo.day.ROLL_CALL),
opened and closed at the hub on the day's clock, as a supervisor does on /rollcall/.

It runs in the demo's own process, beside the hub it started (hub.rollcall.service on the hub's
store): opened for the section's part-timers at the meeting room's unit, so her tap there
checks her in; closed half an office hour after the start, which records her training and
republishes the policies, so she is let in at the office's cabinet later in the day. With
``period_s`` it does the same each time the day starts again.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from demo import office
from demo.day import ROLL_CALL, Clock, roll_call_times

if TYPE_CHECKING:  # the hub the demo started, in this process
    from hub.service import Hub

_LOG = logging.getLogger(__name__)
ACTOR = "admin"  # the demo's one user of the web page


class RollCallDesk:
    """Plays the roll call of each day in a thread of its own; ``stop`` ends it."""

    def __init__(self, hub: Hub, clock: Clock, period_s: float | None = None):
        self.hub = hub
        self.clock = clock
        self.period_s = period_s
        self.opened: list[int] = []
        self.closed: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-rollcall-desk", daemon=True)

    def start(self) -> RollCallDesk:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _wait_until(self, at: float) -> bool:
        """False once stopped."""
        return not self._stop.wait(max(0.0, at - time.time()))

    def _run(self) -> None:
        from hub.rollcall import service

        engine = self.hub.engine
        assert engine is not None  # Hub.start() opened it before the desk was started
        opens, starts, closes = roll_call_times(self.clock)
        epoch = self.clock.epoch
        zone = self.hub.cfg.site_zone(office.SITE)
        # Bounded: one roll call a day, the days the demo runs (at most a year of them).
        for _ in range(366):
            if not self._wait_until(epoch + opens):
                return
            sid: int | None = None
            try:
                opened = service.open_session(engine, self.hub.cfg, ACTOR, service.SessionInput(
                    kind="training", training=office.TRAINING, starts_at=datetime.fromtimestamp(epoch + starts, zone),
                    window_min=ROLL_CALL.window_min, stations=(ROLL_CALL.unit,), section=office.SECTION,
                    employment="part_time"))
            except Exception:  # the demo goes on without its roll call; the hub's log says why
                _LOG.exception("demo: the roll call could not be opened")
            else:
                sid = opened
                self.opened.append(opened)
                _LOG.info("demo: roll call %d opened at %s for the section's part-timers", sid, ROLL_CALL.unit)
            if not self._wait_until(epoch + closes):
                return
            if sid is not None:
                try:
                    closed = service.close_session(engine, self.hub.cfg, ACTOR, sid)
                    self.closed.append(sid)
                    _LOG.info("demo: roll call %d closed: present %s, late %s", sid, closed.present, closed.late)
                except Exception:
                    _LOG.exception("demo: roll call %d could not be closed", sid)
            if self.period_s is None:
                return
            epoch += self.period_s
