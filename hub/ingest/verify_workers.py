"""Signature checks of ingest batches in processes of their own.

Each check (libsodium, ~110 us per event) releases the GIL, but has to take it back before the
next one: with the ingest writer and paho's thread busy in the same interpreter, a verifier
thread waits up to the switch interval (5 ms) for it every time, and a batch's checks took
several times their CPU time (bench/ingest.py, docs/performance.md). Worker processes check a
whole chunk of a batch with an interpreter lock of their own; the hub only sends the keys,
signatures and signed bytes, and gets one answer per check back. A large batch's events are
read in them whole (parse, schema check, row, signature: hub/ingest/reading.py), so the hub
process keeps only paho's reading and the transaction.

A worker that dies is noticed at the next check: ``VerifierPool`` logs it, starts new workers,
and the batch's checks are made on the caller's thread meanwhile, so nothing is stored
unchecked and nothing is lost (tests/hub/ingest/test_verify_workers.py). Workers that cannot start at
all (MAX_RESTARTS in a row without one answer) are given up: the checks are then made on the
caller's thread, as before there were workers, and the hub says so in its log.
"""
from __future__ import annotations

import importlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from typing import TypeVar
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from hub.stations import ed25519_check
from kagiban.event_signing import SignatureError

_LOG = logging.getLogger(__name__)

# (raw public key, base64 signature, signed bytes, prefix for the refusal's detail)
Check = tuple[bytes, str, bytes, str]
MAX_RESTARTS = 3
A = TypeVar("A")
R = TypeVar("R")


def check_all(checks: list[Check]) -> list[str | None]:
    """One answer per check: None if the signature matches, else the ``bad_signature`` detail."""
    out: list[str | None] = []
    for public_raw, signature, message, what in checks:
        try:
            ed25519_check.check(public_raw, signature, message)
        except SignatureError as exc:
            out.append(f"{what}{exc}")
        else:
            out.append(None)
    return out


def _worker_init() -> None:
    # Ctrl-C reaches the whole process group: the hub stops its workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What reads a batch's events (the protocol models, the store's key type) is imported now,
    # while the hub warms its workers up, not with the first batch they get (~0.5 s of CPU each).
    importlib.import_module("hub.ingest.reading")
    # A hub killed with -9 cannot stop them, and the work queue never reports its end (each
    # worker holds its writing end too): a worker ends when its parent does.
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), name="parent-watch", daemon=True).start()


def _end_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


class VerifierPool:
    """``workers`` processes (spawned, not forked: the hub runs threads) that run check_all.

    ``check(checks)`` returns a Future; ``answers(future, checks)`` its answers, made on the
    calling thread instead if the workers died (then new ones are started for the next call).
    """

    def __init__(self, workers: int = 2, *, initializer: Callable[[], object] = _worker_init):
        self.workers = workers
        self._initializer = initializer  # run first in each worker (a test passes one that fails)
        self.restarts = 0
        self.given_up = False  # True once workers failed MAX_RESTARTS times in a row
        self._failed = 0  # restarts since the last answer from a worker
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"), initializer=self._initializer)
            return self._pool

    def warm(self) -> None:
        """Start the workers now (a spawned worker takes ~0.3 s to import its modules)."""
        try:
            pool = self._executor()
            for future in [pool.submit(check_all, []) for _ in range(self.workers)]:
                future.result(timeout=60)
        except Exception:  # the first batch notices it too, and restarts them
            _LOG.exception("signature check workers did not start")

    def pids(self) -> list[int]:
        """The workers' process ids (for tests and diagnostics)."""
        pool = self._pool
        if pool is None:
            return []
        # ProcessPoolExecutor keeps its processes in a private mapping; there is no public one.
        return [p.pid for p in (pool._processes or {}).values() if p.pid is not None]

    def check(self, checks: list[Check]) -> Future:
        """Start checking ``checks`` in a worker (checked at once, here, once given up)."""
        return self.submit(check_all, checks)

    def answers(self, future: Future, checks: list[Check]) -> list[str | None]:
        """The answers of ``check(checks)``; made here if its worker died (and workers restarted)."""
        return self.result(future, check_all, checks)

    def submit(self, fn: Callable[[A], R], arg: A) -> Future:
        """Start ``fn(arg)`` in a worker (``fn`` a module-level function); run at once, here,
        once the workers are given up."""
        if not self.given_up:
            try:
                return self._executor().submit(fn, arg)
            except (BrokenProcessPool, RuntimeError):
                self._restart("could not take work")
                if not self.given_up:
                    return self._executor().submit(fn, arg)
        done: Future = Future()
        done.set_result(fn(arg))
        return done

    def result(self, future: Future, fn: Callable[[A], R], arg: A) -> R:
        """What ``submit(fn, arg)`` returned; made here if its worker died (and workers restarted)."""
        try:
            answer = future.result()
        except BrokenProcessPool:
            self._restart("died")
            return fn(arg)
        self._failed = 0
        return answer

    def _restart(self, what: str) -> None:
        with self._lock:
            broken, self._pool = self._pool, None
            self.restarts += 1
            self._failed += 1
            self.given_up = self._failed >= MAX_RESTARTS
        if self.given_up:
            _LOG.error("signature check workers %s %d times in a row; checking signatures in the hub "
                       "process from now on (slower)", what, self._failed)
        else:
            _LOG.error("a signature check worker %s; starting new workers (this batch is checked in the hub)",
                       what)
        if broken is not None:
            broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """End the workers (checks still running are cancelled)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
