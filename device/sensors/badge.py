"""The badge reader seam: badge ids are upper-case hex strings (FeliCa IDm, ISO 14443 UID).

A badge id is an identifier, not a secret: it can be cloned.
"""
from __future__ import annotations

import logging
from typing import Callable, Protocol

# The one normaliser (kagiban.badge_id), named here too for the reader's callers.
from kagiban.badge_id import BadgeIdError, normalise_badge_id  # noqa: F401

_LOG = logging.getLogger(__name__)

# on_tap(badge_id)
TapCallback = Callable[[str], None]


class ReaderUnavailable(RuntimeError):
    """The badge reader's library or device cannot be used on this machine."""


class BadgeReader(Protocol):
    """A source of badge taps."""

    def start(self, on_tap: TapCallback) -> None:
        """Begin reporting taps; ``on_tap`` runs on the reader's thread, never the caller's."""

    def close(self) -> None:
        """Stop reporting taps and release the device."""


def deliver_tap(on_tap: TapCallback | None, badge_id: str) -> None:
    """Call ``on_tap``, logging (not raising) its failure so the reader keeps running."""
    if on_tap is None:
        _LOG.debug("tap %s before start(): dropped", badge_id)
        return
    try:
        on_tap(badge_id)
    except Exception:  # the reader's thread must survive a broken handler
        _LOG.exception("badge tap handler failed")


class StandInReader:
    """Taps made by software, for tests and simulated units."""

    def __init__(self) -> None:
        self._on_tap: TapCallback | None = None

    def start(self, on_tap: TapCallback) -> None:
        """Report taps made by :meth:`tap` on the thread that calls it."""
        self._on_tap = on_tap

    def tap(self, uid: str) -> None:
        """Present a badge (``uid`` in hex; separators, case and full width do not matter);
        BadgeIdError, and no tap, if no card could have that id."""
        deliver_tap(self._on_tap, normalise_badge_id(uid))

    def close(self) -> None:
        """Stop reporting taps."""
        self._on_tap = None
