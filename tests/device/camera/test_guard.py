"""CameraGuard: a camera that is missing, raises or hangs costs the station a photo, never
its loop or its stop; a camera plugged in later is picked up (stand-in camera fault modes)."""
from __future__ import annotations

import threading
import time

import pytest

from device.camera.base import CameraUnavailable
from device.camera.guard import CameraGuard, SnapshotFailure
from device.camera.standin import StandInCamera


class _PluggedInLater:
    """Opens like a camera that is not attached the first ``missing`` times, then works."""

    def __init__(self, missing: int) -> None:
        self.missing = missing
        self.opened = 0

    def __call__(self) -> StandInCamera:
        self.opened += 1
        if self.opened <= self.missing:
            raise CameraUnavailable("no camera attached")
        return StandInCamera(160, 120, 70, "cabinet-1")


def test_a_camera_plugged_in_later_heals_the_station():
    opener = _PluggedInLater(missing=2)
    guard = CameraGuard(opener, capture_timeout_s=2.0, retry_min_s=0.1, retry_max_s=0.2)
    guard.maintain()
    assert guard.health.get().state == "absent"
    with pytest.raises(SnapshotFailure) as caught:
        guard.capture("door.forced")
    assert caught.value.code == "camera_absent"
    deadline = time.monotonic() + 5
    while guard.health.get().state != "ok" and time.monotonic() < deadline:
        time.sleep(min(guard.maintain(), 0.05))
    assert guard.health.get().state == "ok" and opener.opened == 3
    assert guard.capture("door.forced")[:2] == b"\xff\xd8"
    guard.close()


def test_retries_of_a_missing_camera_back_off_to_the_limit():
    opener = _PluggedInLater(missing=10**6)
    guard = CameraGuard(opener, retry_min_s=0.05, retry_max_s=0.2)
    waits = []
    for _ in range(6):
        guard._next_open = 0.0  # due now: only the wait it plans next matters here
        waits.append(round(guard.maintain(), 2))
    assert waits[:3] == [0.05, 0.1, 0.2] and max(waits) <= 0.2


def test_hung_captures_are_bounded_and_then_fail_at_once():
    camera = StandInCamera(160, 120, 70, "cabinet-1", fault="hang")
    guard = CameraGuard(lambda: camera, capture_timeout_s=0.2, retry_min_s=0.01, max_hung=2)
    codes = []
    for _ in range(2):
        time.sleep(0.05)  # past the retry pause: the camera is opened again
        with pytest.raises(SnapshotFailure) as caught:
            guard.capture("door.forced")
        codes.append(caught.value.code)
    # The second: the reopened camera's test frame hung too, so there was no camera to use.
    assert codes == ["capture_timeout", "camera_failed"] and guard.hung_calls == 2
    began = time.monotonic()
    with pytest.raises(SnapshotFailure) as caught:
        guard.capture("door.forced")
    assert caught.value.code == "camera_hung" and time.monotonic() - began < 0.1
    assert guard.health.get().state == "failed"
    camera.unhang()  # the stuck driver comes back: its threads end
    deadline = time.monotonic() + 2
    while guard.hung_calls and time.monotonic() < deadline:
        time.sleep(0.01)
    assert guard.hung_calls == 0
    guard.close()


def test_close_makes_a_capture_in_progress_give_up_at_once():
    camera = StandInCamera(160, 120, 70, "cabinet-1", fault="hang")
    guard = CameraGuard(lambda: camera, capture_timeout_s=30.0)
    guard.maintain()
    failures: list[SnapshotFailure] = []

    def shoot():
        try:
            guard.capture("door.forced")
        except SnapshotFailure as exc:
            failures.append(exc)

    worker = threading.Thread(target=shoot)
    worker.start()
    time.sleep(0.2)
    began = time.monotonic()
    guard.close(timeout=1.0)
    worker.join(2.0)
    assert not worker.is_alive() and time.monotonic() - began < 0.5
    assert failures[0].code == "capture_timeout"
    camera.unhang()


def test_a_camera_that_raises_is_failed_with_its_words():
    guard = CameraGuard(lambda: StandInCamera(160, 120, 70, "cabinet-1", fault="raise"))
    with pytest.raises(SnapshotFailure) as caught:
        guard.capture("badge.denied")
    assert caught.value.code == "capture_failed" and "fault: raise" in caught.value.detail
    health = guard.health.get()
    assert (health.state, health.error) == ("failed", "capture_failed")
    guard.close()
