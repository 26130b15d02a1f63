"""Which refused policies the station records as ``policy.rejected``: once per reason and
offered version, and at most ``per_hour`` an hour, so a retained bad policy does not add an
event at every reconnect and a flood of forged versions is only logged. Pure: times passed in.
"""
from __future__ import annotations

import logging
from collections import OrderedDict

_LOG = logging.getLogger(__name__)

# How many refused policy versions are remembered as reported, and how many are recorded per
# hour at most.
REJECTED_MEMORY = 64
REJECTED_PER_HOUR = 20


class RejectionLimit:
    """Remembers the (reason, offered version) pairs already reported."""

    def __init__(self, memory: int = REJECTED_MEMORY, per_hour: int = REJECTED_PER_HOUR) -> None:
        self.memory = memory
        self.per_hour = per_hour
        self._reported: OrderedDict[tuple[str, int | None], None] = OrderedDict()
        self._times: list[float] = []

    def allow(self, reason: str, offered: int | None, now: float) -> bool:
        """True if this refusal should be recorded (and counts it); False if already reported
        or over the hour's limit."""
        key = (reason, offered)
        if key in self._reported:
            return False
        self._times = [t for t in self._times if now - t < 3600.0]
        if len(self._times) >= self.per_hour:
            _LOG.warning("policy.rejected not recorded for version %s: %d this hour already",
                         offered, len(self._times))
            return False
        self._times.append(now)
        self._reported[key] = None
        while len(self._reported) > self.memory:
            self._reported.popitem(last=False)
        return True
