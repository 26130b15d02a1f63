"""What station logic asks the agent to do; the logic itself touches no hardware or I/O.

Keeping the logic pure (inputs with their times in, effects out) makes every rule testable
without pins, threads or clocks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True)
class Emit:
    """Record an audit event (committed to the outbox before anything is sent)."""

    kind: str
    at: datetime
    badge: str | None = None
    person: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    snapshot: bool = False


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


Effect = Emit | Unlock | Lock | Feedback
