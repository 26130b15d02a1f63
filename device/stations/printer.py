"""Printer logic (pull printing): badge taps, print-server answers and the tray sensor in,
audit events and print requests out.

- An allowed tap asks the agent to release that person's held jobs (``ReleaseJobs`` with the
  person's print user name: the policy's ``print_user``, else their staff number). The answer
  becomes ``print.released`` {person, user, jobs: [{id, title, pages}], count} with green
  feedback, or ``print.release_failed`` {reason: no_jobs | cups_down | cups_refused} with red.
  A refused badge is ``badge.denied``; nothing is asked of the print server.
- Every ``check_s`` the holding queue is looked at (``CheckQueue``): ``print.queue`` {held,
  oldest_s}; held jobs older than ``hold_max_s`` are cancelled (``ExpireJobs``) and reported as
  ``print.expired`` {jobs, count, limit_s} - never printed. Released jobs are watched (every
  few seconds) until CUPS has printed them: ``print.printed`` {jobs: [{id, state, pages}]}
  gives the pages CUPS counted, which it only knows once it has printed.
- The print server unreachable is ``cups.down`` (once), reachable again ``cups.up``; a tap
  meanwhile releases nothing and the jobs stay held.
- Paper in the tray for ``tray_alert_s`` is ``tray.uncollected`` {minutes} (once per stack);
  the tray empty for ``tray_clear_s`` after that is ``tray.collected`` (a flicker of the
  sensor while someone pulls the pages is not a collection).

Times: ``now`` is monotonic seconds, ``wall`` the aware wall-clock time of the event.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Callable

from device.printing.jobs import FINISHED_STATES, ExpireResult, QueueResult, ReleaseResult
from device.stations.effects import CheckQueue, Effect, Emit, ExpireJobs, Feedback, ReleaseJobs, Work
from device.stations.repeat import RepeatWindow
from kagiban.protocol import PolicyEntry

_LOG = logging.getLogger(__name__)

# How often released jobs are looked at until printed, and for how long at most.
WATCH_S = 3.0
WATCH_MAX_S = 3600.0
# An events' job list is cut here (an event must stay under the protocol's size limit).
MAX_JOBS_LISTED = 50
TITLE_MAX = 120


def _jobs(jobs, limit: int = MAX_JOBS_LISTED) -> list[dict]:
    return [{**j.summary(), "title": j.title[:TITLE_MAX]} for j in list(jobs)[:limit]]


class PrinterLogic:
    """State of one printer station."""

    door_open = False  # a printer has no door; the heartbeat reports it closed

    def __init__(
        self,
        *,
        decide: Callable[[str], PolicyEntry],
        hold_max_s: float,
        tray_alert_s: float,
        check_s: float = 60.0,
        tray_clear_s: float = 2.0,
        watch_s: float = WATCH_S,
        repeat_s: float = 0.0,
    ):
        self.decide = decide
        self._repeats = RepeatWindow(repeat_s)
        self.hold_max_s = hold_max_s
        self.tray_alert_s = tray_alert_s
        self.check_s = check_s
        self.tray_clear_s = tray_clear_s
        self.watch_s = watch_s
        self.cups_up: bool | None = None  # None: not known yet
        self._releasing: set[str] = set()  # users with a release on its way
        self._checking = False
        self._next_check = 0.0  # at once after start
        self._next_report = 0.0
        self._expiring: set[int] = set()
        self._watch: dict[int, float] = {}  # released job id -> when released (monotonic)
        self.tray_occupied = False
        self._occupied_since: float | None = None
        self._occupied_wall: datetime | None = None
        self._empty_since: float | None = None
        self._tray_alerted = False

    # --- the StationLogic interface ---

    def assume_door(self, is_open: bool, now: float, wall: datetime) -> None:
        """A printer has no door."""

    def door(self, is_open: bool, now: float, wall: datetime) -> list[Effect]:
        """A printer has no door."""
        return []

    def badge(self, badge: str, now: float, wall: datetime) -> list[Effect]:
        """A badge was tapped: release that person's held jobs (the same badge again within
        the repeat window: its feedback again, nothing else)."""
        return self._repeats.tap(badge, now, lambda: self._answer(badge, now, wall))

    def _answer(self, badge: str, now: float, wall: datetime) -> list[Effect]:
        entry = self.decide(badge)
        if entry.decision == "deny":
            return [Feedback("denied"),
                    Emit("badge.denied", wall, badge, entry.person, {"reason": entry.reason}, snapshot=True)]
        user = entry.print_user or entry.person
        flagged = entry.decision == "allow_flag"
        granted = Emit("badge.granted", wall, badge, entry.person,
                       {"reason": entry.reason, "flagged": flagged, "print_user": user})
        if not user:
            return [Feedback("denied"), granted,
                    Emit("print.release_failed", wall, badge, entry.person, {"reason": "no_print_user"})]
        if user in self._releasing:
            # A second tap while the first is being released: the first one answers.
            return [granted]
        self._releasing.add(user)
        return [granted, ReleaseJobs(user=user, person=entry.person, badge=badge)]

    def tray(self, occupied: bool, now: float, wall: datetime) -> list[Effect]:
        """The tray sensor changed."""
        if occupied == self.tray_occupied:
            return []
        self.tray_occupied = occupied
        if occupied:
            if self._occupied_since is None:
                self._occupied_since, self._occupied_wall = now, wall
            self._empty_since = None  # a flicker, or more paper on the stack: the same stack
        else:
            self._empty_since = now
        return []

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        """An extra input changed; a printer has one, ``tray`` (active: paper lies there)."""
        if name == "tray":
            return self.tray(active, now, wall)
        _LOG.debug("input %s is not used by a printer", name)
        return []

    def work_done(self, work: Work, result, now: float, wall: datetime) -> list[Effect]:
        """The print server answered a request made earlier."""
        if isinstance(work, ReleaseJobs):
            return self._released(work, result, now, wall)
        if isinstance(work, CheckQueue):
            return self._checked(result, now, wall)
        if isinstance(work, ExpireJobs):
            return self._expired(work, result, now, wall)
        return []

    def tick(self, now: float, wall: datetime) -> list[Effect]:
        """Time passed: look at the queue when due, watch the tray."""
        effects: list[Effect] = []
        if not self._checking and now >= self._next_check:
            self._checking = True
            for job_id, watched in list(self._watch.items()):
                if now - watched > WATCH_MAX_S:
                    del self._watch[job_id]  # CUPS never said it printed: stop asking
            effects.append(CheckQueue(watch=tuple(sorted(self._watch))))
        since, since_wall = self._occupied_since, self._occupied_wall  # set together (tray())
        if (since is not None and since_wall is not None and not self._tray_alerted and self.tray_occupied
                and now - since >= self.tray_alert_s):
            self._tray_alerted = True
            effects.append(Emit("tray.uncollected", wall, data={
                "minutes": round((now - since) / 60.0, 1), "since": since_wall.isoformat(),
                "limit_s": self.tray_alert_s}, snapshot=True))
        if self._empty_since is not None and now - self._empty_since >= self.tray_clear_s:
            lay = round(self._empty_since - since, 1) if since is not None else None
            effects.append(Emit("tray.collected", wall, data={
                "lay_s": lay, "after_alert": self._tray_alerted}))
            self._empty_since = self._occupied_since = self._occupied_wall = None
            self._tray_alerted = False
        return effects

    def next_deadline(self) -> float | None:
        """When tick() next has something to do (monotonic seconds)."""
        times = []
        if not self._checking:
            times.append(self._next_check)
        if self._occupied_since is not None and not self._tray_alerted and self.tray_occupied:
            times.append(self._occupied_since + self.tray_alert_s)
        if self._empty_since is not None:
            times.append(self._empty_since + self.tray_clear_s)
        return min(times) if times else None

    # --- answers from the print server ---

    def _cups(self, up: bool, wall: datetime, error: str | None = None) -> list[Effect]:
        """cups.down / cups.up on a change (the first answer after start only if down)."""
        was = self.cups_up
        self.cups_up = up
        if up and was is False:
            return [Emit("cups.up", wall, data={})]
        if not up and was is not False:
            return [Emit("cups.down", wall, data={"reason": error or "cups_down"})]
        return []

    def _released(self, work: ReleaseJobs, result: ReleaseResult, now: float, wall: datetime) -> list[Effect]:
        self._releasing.discard(work.user)
        base = {"user": work.user}
        if result.error:
            effects: list[Effect] = [Feedback("denied")]
            if result.error == "cups_down":
                effects += self._cups(False, wall, result.error)
            effects.append(Emit("print.release_failed", wall, work.badge, work.person,
                                {**base, "reason": result.error}))
            return effects
        effects = self._cups(True, wall)
        if not result.released:
            return effects + [Feedback("denied"), Emit("print.release_failed", wall, work.badge, work.person, {
                **base, "reason": "no_jobs", "still_held": len(result.failed)})]
        for job in result.released:
            self._watch[job.id] = now
        if self._watch:
            self._next_check = min(self._next_check, now + self.watch_s)
        data = {**base, "jobs": _jobs(result.released), "count": len(result.released)}
        if result.failed:
            data["not_released"] = _jobs(result.failed)
        return effects + [Feedback("granted"), Emit("print.released", wall, work.badge, work.person, data)]

    def _checked(self, result: QueueResult, now: float, wall: datetime) -> list[Effect]:
        self._checking = False
        self._next_check = now + (min(self.check_s, self.watch_s) if self._watch else self.check_s)
        if result.error:
            if result.error != "cups_down":
                return []  # refused: logged by the adapter; nothing is known about the queue
            return self._cups(False, wall, result.error)
        effects = self._cups(True, wall)
        printed = []
        for state in result.watched:
            if state.finished and state.id in self._watch:
                del self._watch[state.id]
                printed.append({"id": state.id, "state": FINISHED_STATES[state.state], "pages": state.pages})
        if printed:
            effects.append(Emit("print.printed", wall, data={"jobs": printed, "count": len(printed)}))
        server_now = result.server_time or wall.timestamp()
        held = result.held
        if now >= self._next_report:
            self._next_report = now + self.check_s
            oldest = round(server_now - min(j.created for j in held), 1) if held else None
            effects.append(Emit("print.queue", wall, data={"held": len(held), "oldest_s": oldest}))
        due = tuple(j for j in held if server_now - j.created >= self.hold_max_s and j.id not in self._expiring)
        if due:
            self._expiring.update(j.id for j in due)
            effects.append(ExpireJobs(jobs=due))
        if self._watch:
            self._next_check = min(self._next_check, now + self.watch_s)
        return effects

    def _expired(self, work: ExpireJobs, result: ExpireResult, now: float, wall: datetime) -> list[Effect]:
        self._expiring.difference_update(j.id for j in work.jobs)
        if result.error:
            return self._cups(False, wall, result.error) if result.error == "cups_down" else []
        if not result.cancelled:
            return []
        jobs = [{**j.summary(), "title": j.title[:TITLE_MAX], "user": j.user} for j in result.cancelled]
        return [Emit("print.expired", wall, data={
            "jobs": jobs[:MAX_JOBS_LISTED], "count": len(jobs), "limit_s": self.hold_max_s})]

