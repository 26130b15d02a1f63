"""What the print server tells the printer station: held jobs and the outcome of each request.

Plain data only (no I/O), so the printer's station logic can take these as inputs and tests
can build them by hand. The CUPS adapter (:mod:`device.printing.cups`) and the stand-in
(:mod:`device.printing.standin`) both answer with these types.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

_LOG = logging.getLogger(__name__)

# IPP job-state values (RFC 8011 5.3.7).
PENDING, HELD, PROCESSING, STOPPED, CANCELED, ABORTED, COMPLETED = 3, 4, 5, 6, 7, 8, 9
FINISHED_STATES = {CANCELED: "canceled", ABORTED: "aborted", COMPLETED: "completed"}


class PrintServerError(Exception):
    """The print server refused or failed a request."""


class CupsUnavailable(PrintServerError):
    """The print server could not be reached (down, wrong address, timed out)."""


@dataclass(frozen=True)
class HeldJob:
    """One job waiting in the holding queue.

    ``created`` is the print server's Unix time of submission; ``pages`` is what the print
    server knows before printing (None when the client did not say: CUPS counts pages only
    while printing, see :class:`JobState`).
    """

    id: int
    user: str
    title: str
    created: float
    pages: int | None = None

    def summary(self) -> dict:
        """The job as it goes into events."""
        return {"id": self.id, "title": self.title, "pages": self.pages}


@dataclass(frozen=True)
class JobState:
    """A released job's state on the printer queue; ``pages`` counted by CUPS while printing."""

    id: int
    state: int
    pages: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class ReleaseResult:
    """The outcome of releasing one user's held jobs: what was moved to the printer queue,
    what could not be (still held), or that the print server could not be reached."""

    user: str
    released: tuple[HeldJob, ...] = ()
    failed: tuple[HeldJob, ...] = ()
    error: str | None = None  # "cups_down", or None


@dataclass(frozen=True)
class QueueResult:
    """The holding queue as found by a periodic check, and the states of watched released jobs."""

    held: tuple[HeldJob, ...] = ()
    watched: tuple[JobState, ...] = ()
    error: str | None = None  # "cups_down", or None
    server_time: float | None = None  # the print server's clock at the check (Unix time)


@dataclass(frozen=True)
class ExpireResult:
    """Held jobs cancelled because they waited longer than the limit."""

    cancelled: tuple[HeldJob, ...] = ()
    failed: tuple[HeldJob, ...] = field(default_factory=tuple)
    error: str | None = None
