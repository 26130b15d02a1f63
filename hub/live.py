"""In-process publish/subscribe for the live web page: the writer thread and the rules
publish what just happened, each open page (a server-sent-events stream) has its own queue.

A slow or vanished page must never hold up ingest: each subscriber's queue is bounded and a
full one is dropped (the page reconnects and reloads its state).
"""
from __future__ import annotations

import json
import logging
import queue
import threading
from typing import Any

_LOG = logging.getLogger(__name__)


class LiveBus:
    """Fan-out of small JSON messages to live page subscribers."""

    def __init__(self, max_queue: int = 1000):
        self._subs: set[queue.Queue] = set()
        self._lock = threading.Lock()
        self._max = max_queue
        self.published = 0

    def subscribe(self) -> queue.Queue:
        """A new queue that receives (kind, json_text) tuples; None means: reconnect."""
        q: queue.Queue = queue.Queue(maxsize=self._max)
        with self._lock:
            self._subs.add(q)
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self._lock:
            self._subs.discard(q)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, kind: str, data: dict[str, Any]) -> None:
        """Send ``data`` (JSON-serialisable) as a message of type ``kind`` to every subscriber."""
        with self._lock:
            subs = list(self._subs)
        self.published += 1
        if not subs:
            return  # no page open: spare the writer thread the JSON (it calls this per event)
        text = json.dumps(data, ensure_ascii=False, default=str)
        for q in subs:
            try:
                q.put_nowait((kind, text))
            except queue.Full:
                _LOG.warning("live page subscriber too slow; dropping it")
                self.unsubscribe(q)
                try:
                    q.get_nowait()
                    q.put_nowait(None)
                except (queue.Empty, queue.Full):
                    pass
