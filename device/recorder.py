"""The recorder: commits the station's events and photos to the outbox, and keeps them in
memory, in order, while the disk does not take them (full, I/O error).

What happened is never dropped: an event that cannot be written is kept, and nothing written
later overtakes it. :meth:`Recorder.retry` writes what was kept, oldest first, as soon as the
disk takes it again, then records the outage itself as ``storage.failed`` (since, how many were
kept, the error), so the hub learns of it even if no heartbeat reached it. Until a heartbeat has
reported it (:meth:`Recorder.reported`), ``error`` stays set: that is the hub's live alarm.
Runs on the agent's loop thread only.
"""
from __future__ import annotations

import logging
import sqlite3
from datetime import datetime
from typing import Any, Callable

from device import event_data as ev
from device.outbox import Outbox
from device.stations.effects import Emit
from device import wire

_LOG = logging.getLogger(__name__)

# What a full or failing disk raises when the outbox writes.
STORAGE_ERRORS = (sqlite3.Error, OSError)


class Recorder:
    """Writes events and snapshots to ``outbox``; keeps them in memory while it cannot.

    ``annotate(data)`` adds what every event says about the station at the time it is
    recorded (offline, policy version, clock); ``recorded(event, emit)`` is told of each
    event committed (the agent asks the camera for the photo it wants); ``wall()`` is the
    station's time now.
    """

    def __init__(
        self,
        outbox: Outbox,
        *,
        annotate: Callable[[dict[str, Any]], None],
        recorded: Callable[[wire.Event, Emit], None],
        wall: Callable[[], datetime],
    ) -> None:
        self.outbox = outbox
        self._annotate = annotate
        self._recorded = recorded
        self._wall = wall
        # Events and snapshots that happened but could not be committed, oldest first.
        self._events: list[Emit] = []
        self._snapshots: list[wire.Snapshot] = []
        self.error: str | None = None
        self._failed_since: datetime | None = None
        self._kept_max = 0

    @property
    def kept(self) -> int:
        """Events and snapshots waiting in memory for the disk."""
        return len(self._events) + len(self._snapshots)

    def commit(self, emit: Emit) -> wire.Event:
        """Write one event now; a storage error is raised to the caller (see :meth:`record`)."""
        data = dict(emit.data)
        self._annotate(data)
        event = self.outbox.add(emit.kind, emit.at, badge=emit.badge, person=emit.person, data=data)
        _LOG.info("event %d %s badge=%s person=%s", event.seq, event.kind, event.badge, event.person)
        self._recorded(event, emit)
        return event

    def record(self, emits: list[Emit]) -> bool:
        """Commit ``emits`` in order; False if any had to be kept in memory instead."""
        ok = True
        for emit in emits:
            if self._events:
                # Keep the order: nothing overtakes an event still waiting for the disk.
                self._events.append(emit)
                ok = False
                continue
            try:
                self.commit(emit)
            except STORAGE_ERRORS as exc:
                _LOG.error("cannot record %s (%s); kept in memory until storage works again", emit.kind, exc)
                self._events.append(emit)
                self._failed(exc)
                ok = False
        return ok

    def add_snapshot(self, snap: wire.Snapshot) -> None:
        """Keep a photo to write (written at once if the disk takes it)."""
        self._snapshots.append(snap)
        self.retry()

    def retry(self) -> None:
        """Write what could not be recorded, oldest first, as far as the disk takes it."""
        while self._snapshots:
            try:
                self.outbox.add_snapshot(self._snapshots[0])
            except STORAGE_ERRORS as exc:
                _LOG.error("cannot record a snapshot (%s); kept in memory", exc)
                self._failed(exc)
                return
            self._snapshots.pop(0)
        if not self._events:
            return
        while self._events:
            try:
                self.commit(self._events[0])
            except STORAGE_ERRORS as exc:
                self._failed(exc)
                return
            self._events.pop(0)
        _LOG.warning("storage works again; every kept event is recorded")
        if self._failed_since is not None:
            since, kept = self._failed_since, self._kept_max
            self._failed_since, self._kept_max = None, 0
            try:
                self.commit(Emit.of(ev.StorageFailed(since=since, kept=kept, error=self.error or ""),
                                    self._wall()))
            except STORAGE_ERRORS as exc:
                self._failed(exc)

    def reported(self) -> None:
        """A heartbeat has carried ``error``: forget it once nothing is kept any more."""
        if not self.kept:
            self.error = None

    def _failed(self, exc: Exception) -> None:
        self.error = f"{type(exc).__name__}: {exc}"[:300]
        if self._failed_since is None:
            self._failed_since = self._wall()
        self._kept_max = max(self._kept_max, self.kept)
