"""Jobs the hub runs every so often, each set on one thread of its own: the audit jobs (a signed
checkpoint every ``audit.checkpoint_interval_s``, the chain's verified prefix moved on every
``audit.verify_interval_s`` (hub.audit.prefix), snapshot expiry every
``snapshots.expire_every_s``), the daily close-out and the monthly report (hub.ledgers).
A job that fails is logged and tried again at its next turn; it never ends the thread."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

_LOG = logging.getLogger(__name__)


class Periodic:
    """Calls each ``(name, interval_s, job)`` every interval_s seconds, the first time at once,
    on a thread named ``thread_name``."""

    def __init__(self, jobs: list[tuple[str, float, Callable[[], object]]], *,
                 thread_name: str = "kagiban-audit-jobs"):
        self.jobs = jobs
        self.thread_name = thread_name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Periodic":
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        due = {name: time.monotonic() for name, _i, _j in self.jobs}
        while not self._stop.is_set():
            now = time.monotonic()
            for name, interval, job in self.jobs:
                if now < due[name] or self._stop.is_set():
                    continue
                due[name] = now + interval
                try:
                    job()
                except Exception:
                    _LOG.exception("the periodic job %s failed; trying again in %.0f s", name, interval)
            self._stop.wait(max(0.05, min(due.values()) - time.monotonic()))
