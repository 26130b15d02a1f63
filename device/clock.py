"""The station's clock: the time events and heartbeats carry, and whether it can be trusted.

A Raspberry Pi has no real-time clock: after a power cut it starts from the last time
systemd-timesyncd saved and stays there until the network time server answers. The kernel
knows: until a time service has set the clock, adjtimex(2) reports ``TIME_ERROR`` and the
``STA_UNSYNC`` status bit (systemd-timesyncd clears both once it has synchronised). The
agent asks through a ``ClockSource``: ``SystemClock`` (the default, the machine's clock and the
kernel's word on it) or ``StandinClock`` (tests: an offset and a synchronised state set by
hand).
"""
from __future__ import annotations

import functools
import logging
import threading
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

_LOG = logging.getLogger(__name__)

TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
STA_UNSYNC = 0x0040  # timex.status: the clock is not synchronised


class ClockSource(Protocol):
    """Where the agent gets its time and whether that time is synchronised."""

    def now(self, tz: tzinfo) -> datetime:
        """The current time, aware, in ``tz``."""

    def synchronised(self) -> bool | None:
        """True if a time service keeps the clock right, False if not, None if unknown."""


@functools.cache
def _timex_type() -> type:
    """struct timex (linux/timex.h); only ``modes`` (0: read only) and ``status`` are used.

    Made at the first adjtimex call: ctypes is loaded only by a unit that asks the kernel (a
    simulated unit's stand-in clock never does), which keeps it off the station's start."""
    import ctypes

    class _Timex(ctypes.Structure):
        _fields_ = [
            ("modes", ctypes.c_uint),
            ("offset", ctypes.c_long),
            ("freq", ctypes.c_long),
            ("maxerror", ctypes.c_long),
            ("esterror", ctypes.c_long),
            ("status", ctypes.c_int),
            ("constant", ctypes.c_long),
            ("precision", ctypes.c_long),
            ("tolerance", ctypes.c_long),
            ("time_sec", ctypes.c_long),
            ("time_usec", ctypes.c_long),
            ("tick", ctypes.c_long),
            ("ppsfreq", ctypes.c_long),
            ("jitter", ctypes.c_long),
            ("shift", ctypes.c_int),
            ("stabil", ctypes.c_long),
            ("jitcnt", ctypes.c_long),
            ("calcnt", ctypes.c_long),
            ("errcnt", ctypes.c_long),
            ("stbcnt", ctypes.c_long),
            ("tai", ctypes.c_int),
            # The kernel's padding, and room to spare for an ABI with a 64-bit time_t.
            ("_reserved", ctypes.c_int * 32),
        ]

    return _Timex


def adjtimex_state() -> tuple[int, int] | None:
    """(return value, status bits) of a read-only adjtimex(2); None where there is none."""
    import ctypes

    timex = _timex_type()
    try:
        # The C library already loaded into this process (CDLL(None)): no search for its file,
        # which ctypes.util.find_library does by running ldconfig in a subprocess.
        libc = ctypes.CDLL(None, use_errno=True)
        call = libc.adjtimex
    except (OSError, AttributeError, TypeError):
        return None
    call.argtypes = [ctypes.POINTER(timex)]
    call.restype = ctypes.c_int
    tx = timex()  # modes 0: only read
    result = call(ctypes.byref(tx))
    if result < 0:
        _LOG.debug("adjtimex failed: errno %d", ctypes.get_errno())
        return None
    return result, tx.status


class SystemClock:
    """The machine's clock; synchronised as the kernel says (adjtimex), asked at most once a
    second (events and heartbeats both ask)."""

    def __init__(self, state=adjtimex_state, refresh_s: float = 1.0):
        self._state = state
        self._refresh_s = refresh_s
        self._lock = threading.Lock()
        self._checked: float | None = None
        self._synced: bool | None = None

    def now(self, tz: tzinfo) -> datetime:
        return datetime.now(tz)

    def synchronised(self) -> bool | None:
        import time

        mono = time.monotonic()
        with self._lock:
            if self._checked is None or mono - self._checked >= self._refresh_s:
                found = self._state()
                synced = None if found is None else (found[0] != TIME_ERROR and not found[1] & STA_UNSYNC)
                if synced is not self._synced:
                    _LOG.log(logging.WARNING if synced is False else logging.INFO,
                             "clock synchronised: %s", "unknown" if synced is None else synced)
                self._synced, self._checked = synced, mono
            return self._synced


class StandinClock:
    """A clock for tests and simulations: the machine's time moved by ``offset_s`` seconds, and a
    synchronised state set by hand (change both while the agent runs)."""

    def __init__(self, offset_s: float = 0.0, synced: bool | None = True):
        self.offset_s = offset_s
        self.synced = synced

    def now(self, tz: tzinfo) -> datetime:
        return datetime.now(tz) + timedelta(seconds=self.offset_s)

    def synchronised(self) -> bool | None:
        return self.synced
