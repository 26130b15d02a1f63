"""Badge reader on nfcpy: Sony RC-S380 ("usb", "usb:054c:06c3"), PN532 ("tty:serial0:pn532"),
nfcpy's UDP simulator ("udp:127.0.0.1:PORT"), chosen purely by the device path.

nfcpy is imported only inside the reader's thread start, so this module imports anywhere.
nfcpy 1.0.4 has no driver for the CCID-class RC-S300; it needs the RC-S380 (or an older
RC-S330/360/370, a PN53x board or an ACR122U).

The frontend is made by a callable passed in (``frontend``, default nfcpy's own
``nfc.ContactlessFrontend``), the way gpiozero takes ``pin_factory``: tests hand in one that
fails, then succeeds. A reader absent at start or unplugged is reopened with a growing pause;
its state is kept in :attr:`NfcpyReader.health` for the heartbeat.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from device.health import HealthCell
from device.missing_library import LibraryMissing
from device.sensors.badge import BadgeIdError, ReaderUnavailable, TapCallback, deliver_tap, normalise_badge_id

_LOG = logging.getLogger(__name__)

# FeliCa (212F) and ISO 14443 A and B (106A, 106B); unsupported ones are skipped by nfcpy.
_TARGETS = ["106A", "106B", "212F"]

# frontend(path) -> an opened nfcpy ContactlessFrontend (connect(rdwr=, terminate=), close()).
Frontend = Callable[[str], Any]


def require_nfcpy() -> None:
    """Import nfcpy; LibraryMissing (``reader.type``) if this machine cannot."""
    try:
        import nfc  # noqa: F401
    except Exception as exc:  # ImportError, or its libusb binding failing to load
        raise LibraryMissing("reader.type", f"nfcpy cannot be imported ({exc})",
                             "install it in the agent's venv (pip install nfcpy), or set reader.type: "
                             "standin or none") from exc


def _nfcpy_frontend(path: str) -> Any:
    import nfc

    return nfc.ContactlessFrontend(path)


class NfcpyReader:
    """A contactless reader polled by nfcpy in its own daemon thread.

    ``on_tap`` runs on that thread; hand the badge id to the station's loop. Every arrival of a
    card is reported (a held card once): the station logic's repeat window (reader.repeat_s)
    tells a new tap from the same one again, and answers that with feedback. A reader that is
    missing or unplugged is logged and reopened with a growing pause (``retry_min_s`` doubling
    up to ``retry_max_s``); :meth:`close` ends the thread promptly. ``frontend`` opens the
    device (default: nfcpy's ``ContactlessFrontend``).
    """

    def __init__(
        self,
        path: str,
        *,
        pause_s: float = 0.1,
        retry_min_s: float = 1.0,
        retry_max_s: float = 30.0,
        frontend: Frontend | None = None,
    ) -> None:
        self._path = path
        self._frontend = frontend
        self._retry_min_s = retry_min_s
        self.health = HealthCell("badge reader")
        self._pause_s = pause_s
        self._retry_max_s = retry_max_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_tap: TapCallback | None = None

    def start(self, on_tap: TapCallback) -> None:
        """Start polling in a daemon thread; ReaderUnavailable if nfcpy cannot be imported."""
        if self._thread is not None:
            raise RuntimeError("reader already started")
        if self._frontend is None:
            try:
                require_nfcpy()  # fail here, in the caller, not silently in the thread
            except LibraryMissing as exc:
                raise ReaderUnavailable(str(exc)) from exc
            self._frontend = _nfcpy_frontend
        self._on_tap = on_tap
        self._thread = threading.Thread(target=self._run, name="nfc-reader", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop polling; waits up to ``timeout`` seconds for the thread to end."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                _LOG.warning("badge reader %s did not stop within %.1f s", self._path, timeout)

    @property
    def running(self) -> bool:
        """True while the polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        assert self._frontend is not None
        backoff = self._retry_min_s
        while not self._stop.is_set():
            try:
                clf = self._frontend(self._path)
                if clf is None:  # nfcpy's way of saying "no such device" for some paths
                    raise OSError("no device found")
            except Exception as exc:  # nfcpy raises OSError, FileNotFoundError (no libusb), ...
                self.health.absent("not_found", f"{self._path}: {exc}")
                _LOG.info("badge reader %s not available (%s); retrying in %.0f s",
                          self._path, exc, backoff)
            else:
                _LOG.info("badge reader open: %s", clf)
                self.health.ok()
                opened = time.monotonic()
                try:
                    self._serve(clf)
                except Exception as exc:  # driver errors on unplug are not all OSError
                    _LOG.exception("badge reader %s failed", self._path)
                    self.health.failed("read_failed", f"{type(exc).__name__}: {exc}")
                else:
                    if not self._stop.is_set():
                        self.health.absent("unplugged", f"{self._path} stopped answering")
                finally:
                    try:
                        clf.close()
                    except Exception:  # an unplugged device may fail to close; it is gone anyway
                        _LOG.debug("closing badge reader %s failed", self._path, exc_info=True)
                if self._stop.is_set():
                    break
                # A reader that worked for a while starts over with a short pause.
                if time.monotonic() - opened > self._retry_max_s:
                    backoff = self._retry_min_s
                _LOG.warning("badge reader %s lost; reopening in %.0f s", self._path, backoff)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._retry_max_s)
        _LOG.info("badge reader %s stopped", self._path)

    def _serve(self, clf) -> None:
        """Poll until close() or until nfcpy reports the device gone."""
        rdwr = {
            "targets": _TARGETS,
            "on-connect": self._on_connect,
            # The station sounds its own granted/denied feedback.
            "beep-on-connect": False,
            # nfcpy checks terminate() only between sense() calls: one round each keeps
            # close() prompt.
            "iterations": 1,
        }
        while not self._stop.is_set():
            # terminate is nfcpy's only hook between sense rounds and while a card is held:
            # waiting on the stop event there paces polling and wakes at once on close().
            result = clf.connect(rdwr=rdwr, terminate=lambda: self._stop.wait(self._pause_s))
            if result is False:
                # nfcpy swallowed an I/O error (reader unplugged) and returned False.
                return

    @staticmethod
    def _badge_id(tag) -> str:
        # FeliCa: the IDm; ISO 14443: the UID (A) or PUPI (B).
        raw = getattr(tag, "idm", None) or tag.identifier
        return bytes(raw).hex().upper()

    def _on_connect(self, tag) -> bool:
        try:
            # The same rule as everywhere a badge id comes in (kagiban.badge_id).
            badge_id = normalise_badge_id(self._badge_id(tag))
        except BadgeIdError as exc:
            _LOG.warning("card ignored (%s): %s", type(tag).__name__, exc)
            return True
        _LOG.info("badge %s (%s)", badge_id, type(tag).__name__)
        deliver_tap(self._on_tap, badge_id)
        # True: nfcpy waits until the card leaves, so a held card counts once.
        return True
