"""The station's clock seam: the kernel's word on synchronisation (adjtimex) read through ctypes,
and the stand-in the tests and simulated units use."""
from __future__ import annotations

from datetime import datetime, timezone

from device.clock import STA_UNSYNC, TIME_ERROR, StandinClock, SystemClock, adjtimex_state


def test_adjtimex_answers_on_linux_without_privileges():
    found = adjtimex_state()
    assert found is not None
    result, status = found
    assert 0 <= result <= TIME_ERROR and isinstance(status, int)


def test_the_system_clock_is_synchronised_only_without_time_error_and_sta_unsync():
    assert SystemClock(state=lambda: (0, 0)).synchronised() is True
    assert SystemClock(state=lambda: (TIME_ERROR, STA_UNSYNC)).synchronised() is False  # a Pi after a power cut
    assert SystemClock(state=lambda: (0, STA_UNSYNC)).synchronised() is False
    assert SystemClock(state=lambda: (TIME_ERROR, 0)).synchronised() is False
    assert SystemClock(state=lambda: None).synchronised() is None  # no adjtimex: cannot tell


def test_the_system_clock_asks_the_kernel_at_most_once_a_second():
    calls = []
    clock = SystemClock(state=lambda: calls.append(1) or (0, 0), refresh_s=60)
    for _ in range(100):
        clock.synchronised()
    assert len(calls) == 1


def test_this_machines_state_is_what_the_system_clock_reports():
    result, status = adjtimex_state()
    assert SystemClock().synchronised() is (result != TIME_ERROR and not status & STA_UNSYNC)


def test_the_standin_moves_time_and_says_what_it_is_told():
    clock = StandinClock(offset_s=600, synced=False)
    drift = (clock.now(timezone.utc) - datetime.now(timezone.utc)).total_seconds()
    assert 599 < drift < 601 and clock.synchronised() is False
    clock.offset_s, clock.synced = 0, True
    assert abs((clock.now(timezone.utc) - datetime.now(timezone.utc)).total_seconds()) < 1
    assert clock.synchronised() is True
