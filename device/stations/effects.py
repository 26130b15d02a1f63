"""What station logic asks the agent to do; the logic itself touches no hardware or I/O.

Keeping the logic pure (inputs with their times in, effects out) makes every rule testable
without pins, threads or clocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from device.event_data import EventData


@dataclass(frozen=True)
class Emit:
    """Record an audit event (committed to the outbox before anything is sent).

    Station logics make one with :meth:`of` from the kind's typed data (device.event_data, the
    station's form of kagiban.events); ``data`` is what that writes, the object that travels
    in ``Event.data``.
    """

    kind: str
    at: datetime
    badge: str | None = None
    person: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    snapshot: bool = False

    @classmethod
    def of(cls, event: EventData, at: datetime, badge: str | None = None, person: str | None = None,
           *, snapshot: bool = False) -> "Emit":
        """The Emit of a typed event: its kind, and its data as ``event.data()`` writes them."""
        return cls(event.kind, at, badge, person, event.data(), snapshot)


@dataclass(frozen=True)
class Unlock:
    """Energise the lock relay (the logic relocks with Lock when its window ends)."""


@dataclass(frozen=True)
class Lock:
    """Release the lock relay: fail-secure."""


@dataclass(frozen=True)
class Feedback:
    """Tell the person at the station at once: green and a beep, or red and three beeps."""

    result: Literal["granted", "denied"]


@dataclass(frozen=True)
class PowerOn:
    """Energise the power relay (the shredder runs); the logic switches it off with PowerOff."""


@dataclass(frozen=True)
class PowerOff:
    """Release the power relay: the shredder stops (also what the unit does at start and stop)."""


@dataclass(frozen=True)
class Signal:
    """Set an annunciator's lamp and buzzer (the buzzer sounds only with the lamp lit)."""

    lamp: bool
    sound: bool


@dataclass(frozen=True)
class Answer:
    """Tell the person at a roll-call unit what their tap was (LED and buzzer patterns:
    device.outputs.Outputs.answer)."""

    result: Literal["present", "late", "unexpected", "no_session"]


class Work:
    """A slow request to another system (e.g. the print server). The agent runs it on a worker
    thread, so the station keeps deciding meanwhile, and hands the result back to the logic's
    ``work_done(effect, result, now, wall)``."""


@dataclass(frozen=True)
class ReleaseJobs(Work):
    """Release ``user``'s held print jobs to the printer (a badge tap at a printer)."""

    user: str
    person: str | None = None
    badge: str | None = None


@dataclass(frozen=True)
class CheckQueue(Work):
    """Look at the holding queue, and at the states of released jobs in ``watch``."""

    watch: tuple[int, ...] = ()


@dataclass(frozen=True)
class ExpireJobs(Work):
    """Cancel held print jobs that waited too long (``jobs``: device.printing.jobs.HeldJob)."""

    jobs: tuple[Any, ...] = ()


Effect = (Emit | Unlock | Lock | Feedback | PowerOn | PowerOff | Signal | Answer | ReleaseJobs | CheckQueue
          | ExpireJobs)
