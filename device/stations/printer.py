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

from typing import Any

import logging
from datetime import datetime

from device import event_data as ev
from device.printing.jobs import FINISHED_STATES, ExpireResult, QueueResult, ReleaseResult
from device.stations.base import StationBase, StationUnit
from device.stations.effects import CheckQueue, Effect, Emit, ExpireJobs, Feedback, ReleaseJobs, Work
from device.stations.repeat import RepeatWindow
from device.wire import PolicyEntry

_LOG = logging.getLogger(__name__)

# How often released jobs are looked at until printed, and for how long at most.
WATCH_S = 3.0
WATCH_MAX_S = 3600.0
# An events' job list is cut here (an event must stay under the protocol's size limit).
MAX_JOBS_LISTED = 50
TITLE_MAX = 120


def _jobs(jobs, limit: int = MAX_JOBS_LISTED) -> list[ev.PrintJob]:
    return [ev.PrintJob(**{**j.summary(), "title": j.title[:TITLE_MAX]}) for j in list(jobs)[:limit]]


class PrinterLogic(StationBase):
    """State of one printer station."""

    door_open = False  # a printer has no door; the heartbeat reports it closed

    def __init__(
        self,
        *,
        hold_max_s: float,
        tray_alert_s: float,
        check_s: float = 60.0,
        tray_clear_s: float = 2.0,
        watch_s: float = WATCH_S,
        repeat_s: float = 0.0,
    ):
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

    # --- the StationLogic interface (a printer has no door: StationBase's no-ops) ---

    @property
    def print_server_up(self) -> bool | None:
        """Whether the print server answered last time (None: not asked yet)."""
        return self.cups_up

    def badge(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        """A badge was tapped and the policy answered ``entry``: release that person's held
        jobs (the same badge again within the repeat window: its feedback again, nothing else)."""
        return self._repeats.tap(badge, now, lambda: self._answer(badge, entry, now, wall))

    def _answer(self, badge: str, entry: PolicyEntry, now: float, wall: datetime) -> list[Effect]:
        if entry.decision == "deny":
            return [Feedback("denied"),
                    Emit.of(ev.BadgeDenied(reason=entry.reason, decision=entry.decision), wall, badge, entry.person, snapshot=True)]
        user = entry.print_user or entry.person
        flagged = entry.decision == "allow_flag"
        granted = Emit.of(ev.BadgeGranted(reason=entry.reason, flagged=flagged, print_user=user,
                                            decision=entry.decision),
                          wall, badge, entry.person)
        if not user:
            return [Feedback("denied"), granted,
                    Emit.of(ev.PrintReleaseFailed(reason="no_print_user"), wall, badge, entry.person)]
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
            effects.append(Emit.of(ev.TrayUncollected(
                minutes=round((now - since) / 60.0, 1), since=self._occupied_wall,
                limit_s=self.tray_alert_s), wall, snapshot=True))
        if self._empty_since is not None and now - self._empty_since >= self.tray_clear_s:
            lay = round(self._empty_since - since, 1) if since is not None else None
            effects.append(Emit.of(ev.TrayCollected(lay_s=lay, after_alert=self._tray_alerted), wall))
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
            return [Emit.of(ev.CupsUp(), wall)]
        if not up and was is not False:
            return [Emit.of(ev.CupsDown(reason=error or "cups_down"), wall)]
        return []

    def _released(self, work: ReleaseJobs, result: ReleaseResult, now: float, wall: datetime) -> list[Effect]:
        self._releasing.discard(work.user)
        if result.error:
            effects: list[Effect] = [Feedback("denied")]
            if result.error == "cups_down":
                effects += self._cups(False, wall, result.error)
            failed = ev.PrintReleaseFailed(user=work.user, reason=result.error)
            effects.append(Emit.of(failed, wall, work.badge, work.person))
            return effects
        effects = self._cups(True, wall)
        if not result.released:
            failed = ev.PrintReleaseFailed(user=work.user, reason="no_jobs", still_held=len(result.failed))
            return effects + [Feedback("denied"), Emit.of(failed, wall, work.badge, work.person)]
        for job in result.released:
            self._watch[job.id] = now
        if self._watch:
            self._next_check = min(self._next_check, now + self.watch_s)
        released: dict[str, Any] = dict(user=work.user, jobs=_jobs(result.released), count=len(result.released))
        if result.failed:  # listed only when some stayed held
            released["not_released"] = _jobs(result.failed)
        return effects + [Feedback("granted"),
                          Emit.of(ev.PrintReleased(**released), wall, work.badge, work.person)]

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
                printed.append(ev.PrintedJob(id=state.id, state=FINISHED_STATES[state.state], pages=state.pages))
        if printed:
            effects.append(Emit.of(ev.PrintPrinted(jobs=printed, count=len(printed)), wall))
        server_now = result.server_time or wall.timestamp()
        held = result.held
        if now >= self._next_report:
            self._next_report = now + self.check_s
            oldest = round(server_now - min(j.created for j in held), 1) if held else None
            effects.append(Emit.of(ev.PrintQueue(held=len(held), oldest_s=oldest), wall))
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
        jobs = [ev.PrintJob(**{**j.summary(), "title": j.title[:TITLE_MAX], "user": j.user}) for j in result.cancelled]
        return [Emit.of(ev.PrintExpired(jobs=jobs[:MAX_JOBS_LISTED], count=len(jobs), limit_s=self.hold_max_s), wall)]



class PrinterUnit(StationUnit, kw_only=True):
    """A pull-printing station's unit file: no pin required (the tray sensor is optional)."""

    KIND = "printer"

    def make_logic(self) -> PrinterLogic:
        t = self.timings
        return PrinterLogic(hold_max_s=t.hold_max_s, tray_alert_s=t.tray_alert_s,
                            check_s=self.printer.check_s, repeat_s=self.reader.repeat_window_s)


UNIT = PrinterUnit
