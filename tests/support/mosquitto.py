"""A real mosquitto on a free loopback port for tests (demo.broker), and bounded waiting.

No test depends on a broker that happens to be running: each one that needs a broker gets
one of these, which it can stop, kill and restart on the same port.
"""
from __future__ import annotations

import time

from demo.broker import Mosquitto, free_port

__all__ = ["Mosquitto", "free_port", "wait_for"]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
