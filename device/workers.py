"""The agent's two worker threads: the camera (photos events ask for) and the print server
(slow requests, device.stations.effects.Work). Each takes jobs from its own queue, one at a
time, and posts what came of them to the agent's inbox, so the loop never waits for either.
"""
from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from datetime import tzinfo
from typing import Any, Callable

from device import inbox
from device.camera.guard import CameraGuard, SnapshotFailure
from device.camera.shrink import fit_jpeg
from device.clock import ClockSource
from device.stations.effects import Work
from device import wire
from kagiban.wire import MAX_HEALTH_DETAIL

_LOG = logging.getLogger(__name__)


class SnapshotWorker:
    """Takes the photos events ask for and keeps the camera open: a camera missing or failed
    is tried again when its retry is due (CameraGuard.maintain)."""

    def __init__(self, camera: CameraGuard, *, post: Callable[[inbox.Message], None], site: str,
                 station: str, clock: ClockSource, tz: tzinfo, stopping: threading.Event) -> None:
        self.camera = camera
        self._post = post
        self._site, self._station = site, station
        self._clock, self._tz = clock, tz
        self._stopping = stopping
        self._jobs: queue.Queue[tuple[str, str] | None] = queue.Queue()

    def ask(self, event_id: str, label: str) -> None:
        """A photo for event ``event_id`` (``label``: its kind)."""
        self._jobs.put((event_id, label))

    def close(self) -> None:
        """The worker ends after the job it is on."""
        self._jobs.put(None)

    def run(self) -> None:
        camera = self.camera
        while not self._stopping.is_set():
            try:
                job = self._jobs.get(timeout=camera.maintain())
            except queue.Empty:
                continue
            if job is None:
                return
            event_id, label = job
            code: str | None
            detail: str | None
            try:
                jpeg = fit_jpeg(camera.capture(label))
            except SnapshotFailure as exc:
                code, detail = exc.code, exc.detail
            except Exception as exc:  # a frame that cannot be made to fit
                _LOG.exception("snapshot for %s failed", event_id)
                code, detail = "bad_frame", f"{type(exc).__name__}: {exc}"
            else:
                code = detail = None
            if code is not None:
                if self._stopping.is_set():
                    return  # stopping: the capture was given up, not failed
                _LOG.warning("no snapshot for %s %s: %s (%s)", label, event_id, code, detail)
                self._post(inbox.SnapshotMissed(wire.SnapshotFailed(
                    event_id=event_id, for_kind=label, error=code,
                    detail=(detail or "")[:MAX_HEALTH_DETAIL] or None), time.monotonic()))
                continue
            self._post(inbox.SnapshotTaken(wire.Snapshot(
                event_id=event_id,
                site=self._site,
                station=self._station,
                # The station's clock, as its events carry (not the camera's, nor the bare system's).
                taken_at=self._clock.now(self._tz),
                image=base64.b64encode(jpeg).decode(),
                clock_unsynced=True if self._clock.synchronised() is False else None,
            )))


class WorkWorker:
    """Runs Work effects one at a time; a slow print server never holds up the loop."""

    def __init__(self, print_server: Any, *, post: Callable[[inbox.Message], None]) -> None:
        self.print_server = print_server
        self._post = post
        self._jobs: queue.Queue[Work | None] = queue.Queue()

    def ask(self, work: Work) -> None:
        self._jobs.put(work)

    def close(self) -> None:
        self._jobs.put(None)

    def run(self) -> None:
        from device.printing import execute

        while True:
            work = self._jobs.get()
            if work is None:
                return
            result = execute(self.print_server, work)
            self._post(inbox.WorkDone(work, result, time.monotonic()))
