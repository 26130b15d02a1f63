"""The repeat window: a badge seen again within ``repeat_s`` of its last sighting is the same
tap, not a new one.

People tap twice when nothing seems to happen, and a card at the edge of the field comes and
goes. Such a sighting makes no new decision and no new event; the person gets the feedback
of the answer already given (green and a beep, or red and three), so a second tap is never
met with silence. The reader reports every arrival of a card; this window, in the pure
station logic, decides what is a new tap.
"""
from __future__ import annotations

from collections.abc import Callable

from device.stations.effects import Answer, Effect, Feedback


class RepeatWindow:
    """Tells new taps from repeats (pure: times are passed in)."""

    def __init__(self, repeat_s: float):
        self.repeat_s = repeat_s
        self._badge: str | None = None
        self._seen = 0.0
        self._feedback: tuple[Feedback | Answer, ...] = ()

    def tap(self, badge: str, now: float, answer: Callable[[], list[Effect]]) -> list[Effect]:
        """``answer()`` for a new tap; for a repeat, only the feedback that answer gave.

        The window is measured from the badge's last sighting, so a card tapped again and again
        stays one tap until it has been away ``repeat_s`` seconds.
        """
        if badge == self._badge and now - self._seen < self.repeat_s:
            self._seen = now
            return list(self._feedback)
        effects = answer()
        self._badge, self._seen = badge, now
        self._feedback = tuple(e for e in effects if isinstance(e, (Feedback, Answer)))
        return effects
