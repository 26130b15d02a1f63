"""A print server kept in memory, for tests and simulated units that have no CUPS.

It behaves like the real holding queue as the station sees it: jobs wait until their owner's
release moves them to the printer, an expiry cancels them, and ``up = False`` makes every
request fail as an unreachable CUPS does (nothing is released or lost meanwhile).
"""
from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterable, Sequence

from device.printing.jobs import (
    CANCELED,
    COMPLETED,
    PENDING,
    ExpireResult,
    HeldJob,
    JobState,
    QueueResult,
    ReleaseResult,
)

_LOG = logging.getLogger(__name__)


class StandInPrintServer:
    """Held jobs in a list; released ones print at once (``printed`` keeps them in order)."""

    def __init__(self, clock=time.time):
        self.up = True
        self._clock = clock
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._held: list[HeldJob] = []
        self._states: dict[int, JobState] = {}
        self._pages: dict[int, int] = {}
        self.printed: list[HeldJob] = []

    def submit(self, user: str, title: str, pages: int = 1, *, age_s: float = 0.0) -> HeldJob:
        """A terminal prints to the holding queue (``age_s``: submitted that long ago)."""
        with self._lock:
            job = HeldJob(next(self._ids), user, title, self._clock() - age_s, None)
            self._held.append(job)
            self._states[job.id] = JobState(job.id, PENDING, None)
            self._pages[job.id] = pages
            return job

    def held_jobs(self) -> list[HeldJob]:
        """Every held job, oldest first."""
        with self._lock:
            return sorted(self._held, key=lambda j: (j.created, j.id))

    def check(self, watch: Sequence[int] = ()) -> QueueResult:
        """The holding queue and the watched jobs' states (or cups_down)."""
        if not self.up:
            return QueueResult(error="cups_down")
        held = tuple(self.held_jobs())
        with self._lock:
            watched = tuple(self._states[i] for i in watch if i in self._states)
        return QueueResult(held=held, watched=watched, server_time=self._clock())

    def job_states(self, ids: Iterable[int]) -> list[JobState]:
        with self._lock:
            return [self._states[i] for i in ids if i in self._states]

    def release(self, user: str) -> ReleaseResult:
        """Print ``user``'s held jobs; the others stay held."""
        if not self.up:
            return ReleaseResult(user=user, error="cups_down")
        with self._lock:
            mine = [j for j in self._held if j.user == user]
            self._held = [j for j in self._held if j.user != user]
            for job in mine:
                self.printed.append(job)
                self._states[job.id] = JobState(job.id, COMPLETED, self._pages.get(job.id))
        return ReleaseResult(user=user, released=tuple(mine))

    def cancel(self, jobs: Sequence[HeldJob]) -> ExpireResult:
        """Cancel held jobs (an expiry)."""
        if not self.up:
            return ExpireResult(error="cups_down")
        with self._lock:
            ids = {j.id for j in jobs}
            found = [j for j in self._held if j.id in ids]
            self._held = [j for j in self._held if j.id not in ids]
            for job in found:
                self._states[job.id] = JobState(job.id, CANCELED, None)
        return ExpireResult(cancelled=tuple(found))

    def close(self) -> None:
        """Nothing to release."""
