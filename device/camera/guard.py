"""A camera that can fail without taking the station with it.

:class:`CameraGuard` wraps whatever opens the unit's camera (the picamera2 adapter, the
stand-in) and keeps the station's snapshot worker from ever waiting on it for long:

- Opening and each capture run on a short-lived daemon thread and are given up after
  ``capture_timeout_s``. A hung call's thread is left behind (it cannot be killed; being a
  daemon it never holds up the agent's exit); while ``max_hung`` of them are still stuck, no
  further call is made and captures fail at once with ``camera_hung``.
- A camera that cannot be opened (missing at start), raises, or hangs is dropped and opened
  again after 2, 4, 8 ... up to ``retry_max_s`` seconds (:meth:`maintain`), so plugging it in
  or a driver that recovers heals the station without a restart. After a failure the camera
  counts as working again only once a test frame has been taken.
- :attr:`health` says how it is doing (ok / failed / absent, with an error code) for the
  heartbeat; :class:`SnapshotFailure` carries the code to the ``snapshot.failed`` event.

Only the snapshot worker calls :meth:`capture` and :meth:`maintain`; :meth:`close` may come
from another thread and makes a capture in progress give up at once.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from device.camera.base import Camera, CameraUnavailable
from device.health import HealthCell

_LOG = logging.getLogger(__name__)

_POLL_S = 0.05  # how often a wait on the camera looks at close()


class SnapshotFailure(Exception):
    """No photo: ``code`` is camera_absent (not found), camera_failed (failed earlier, not
    working since), capture_failed, capture_timeout or camera_hung."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class _Call:
    """One call to the camera on its own daemon thread, waited for at most a while."""

    def __init__(self, fn: Callable[[], Any], name: str) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), name=name, daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except BaseException as exc:  # handed to the waiting thread
            self.error = exc
        finally:
            self.done.set()

    def wait(self, timeout: float, closing: threading.Event) -> bool:
        """True once the call returned; False after ``timeout`` or when ``closing`` is set."""
        deadline = time.monotonic() + timeout
        while not self.done.wait(min(_POLL_S, max(0.0, deadline - time.monotonic()))):
            if closing.is_set() or time.monotonic() >= deadline:
                return False
        return True


class CameraGuard:
    """The unit's camera behind a time limit, with reopening and a health report."""

    def __init__(
        self,
        open_camera: Callable[[], Camera],
        *,
        capture_timeout_s: float = 5.0,
        retry_min_s: float = 2.0,
        retry_max_s: float = 60.0,
        max_hung: int = 2,
    ) -> None:
        self._open_camera = open_camera
        self._timeout = capture_timeout_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = max(retry_min_s, retry_max_s)
        self._max_hung = max_hung
        self.health = HealthCell("camera")
        self._camera: Camera | None = None
        self._next_open = 0.0  # monotonic; 0: at the first maintain()
        self._backoff = retry_min_s
        self._hung: list[threading.Thread] = []
        self._closing = threading.Event()

    # ---- what the snapshot worker calls -----------------------------------------------------

    def maintain(self) -> float:
        """Open the camera if it is closed and its retry is due; seconds until the next try
        (a long while if the camera is open)."""
        now = time.monotonic()
        if self._camera is None and not self._closing.is_set() and now >= self._next_open:
            self._try_open()
        if self._camera is not None:
            return 3600.0
        return max(0.05, self._next_open - time.monotonic())

    def capture(self, label: str) -> bytes:
        """A JPEG taken now; SnapshotFailure (with a code) if there is none to be had."""
        self._forget_finished()
        if self._hung and len(self._hung) >= self._max_hung:
            raise SnapshotFailure("camera_hung", f"{len(self._hung)} earlier camera calls never returned")
        if self._camera is None:
            self.maintain()
        camera = self._camera
        if camera is None:
            state = self.health.get()
            code = "camera_absent" if state.state == "absent" else "camera_failed"
            raise SnapshotFailure(code, state.detail or state.error or "no camera")
        return self._capture_with(camera, label)

    def close(self, timeout: float = 1.0) -> None:
        """Give up any wait on the camera, then release it (waiting at most ``timeout``)."""
        self._closing.set()
        camera, self._camera = self._camera, None
        self._forget_finished()
        if camera is None or self._hung:
            return  # a camera with a call stuck in it would only hang its close as well
        call = _Call(camera.close, "camera-close")
        if not call.wait(timeout, threading.Event()):
            _LOG.warning("camera did not close within %.1f s; left behind", timeout)

    @property
    def hung_calls(self) -> int:
        """Calls into the camera that timed out and have not returned since."""
        self._forget_finished()
        return len(self._hung)

    # ---- inside -----------------------------------------------------------------------------

    def _capture_with(self, camera: Camera, label: str) -> bytes:
        call = _Call(lambda: camera.capture(label), "camera-capture")
        if not call.wait(self._timeout, self._closing):
            self._hung.append(call.thread)
            if self._closing.is_set():
                raise SnapshotFailure("capture_timeout", "the agent stopped during the capture")
            detail = f"no frame within {self._timeout:g} s"
            self.health.failed("capture_timeout", detail)
            self._drop()
            raise SnapshotFailure("capture_timeout", detail)
        if call.error is not None:
            detail = f"{type(call.error).__name__}: {call.error}"
            self.health.failed("capture_failed", detail)
            self._drop(camera)
            raise SnapshotFailure("capture_failed", detail)
        self.health.ok()
        self._backoff = self._retry_min_s
        return call.value

    def _try_open(self) -> None:
        was_ok = self.health.is_ok
        call = _Call(self._open_camera, "camera-open")
        if not call.wait(self._timeout, self._closing):
            self._hung.append(call.thread)
            self.health.failed("open_timeout", f"opening took longer than {self._timeout:g} s")
            self._schedule_retry()
            return
        if call.error is not None:
            exc = call.error
            if isinstance(exc, CameraUnavailable):
                self.health.absent("not_found", str(exc))
            else:
                self.health.failed("open_failed", f"{type(exc).__name__}: {exc}")
            _LOG.info("camera not available (%s); next try in %.1f s", exc, self._backoff)
            self._schedule_retry()
            return
        self._camera = call.value
        if was_ok:
            return
        # After a failure, opened is not yet working: a test frame decides.
        try:
            self._capture_with(self._camera, "camera.check")
        except SnapshotFailure:
            return
        _LOG.info("camera opened again and took a test frame")

    def _drop(self, camera: Camera | None = None) -> None:
        """Forget the current camera (closing it in the background if given) and plan a reopen."""
        self._camera = None
        if camera is not None:
            _Call(camera.close, "camera-close")  # not waited for: it may hang as well
        self._schedule_retry()

    def _schedule_retry(self) -> None:
        self._next_open = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self._retry_max_s)

    def _forget_finished(self) -> None:
        self._hung = [th for th in self._hung if th.is_alive()]
