"""Annunciator logic: the site's open critical alerts in, lamp and buzzer out; a silence button.

An on-site alarm that needs nothing but the office's own broker (My Number networks have no
internet, so e-mail or LINE may never reach a supervisor): the hub publishes, retained, which
critical alerts of the site are open (device.wire.SiteAlarm, on ``{prefix}/{site}/alarm``).

- Lamp: lit while any critical alert of the site is open; dark once none is (acknowledged or
  closed at the hub).
- Buzzer: sounds while an open critical alert has not been silenced here.
- The silence button (``silence``) stops the buzzer for the alerts open at that moment and
  records ``annunciator.silenced`` with their ids. It acknowledges nothing: the lamp stays lit
  and the alerts stay open until a supervisor acknowledges them on the page. A critical alert
  raised after that sounds again.
- With the link to the broker lost the lamp and buzzer keep their state: the retained state
  comes again on reconnect. At start both are off until the hub's state arrives.

Times: ``now`` is monotonic seconds, ``wall`` the aware wall-clock time of the event.
"""
from __future__ import annotations

import logging
from datetime import datetime

from device import event_data as ev
from device.config import Pin, PinsSection
from device.stations.base import StationBase, StationUnit
from device.stations.effects import Effect, Emit, Signal
from device.wire import SiteAlarm
from kagiban.wire import SignalState

_LOG = logging.getLogger(__name__)

SILENCE = "silence"


class AnnunciatorLogic(StationBase):
    """State of one annunciator: which critical alerts are open, which were silenced."""

    hears_site_alarm = True

    def __init__(self) -> None:
        self._open: set[int] = set()
        self._count = 0  # open critical alerts, also those beyond the ids listed
        self._silenced: set[int] = set()
        self._lamp = False
        self._sound = False

    @property
    def signal(self) -> SignalState:
        if not self._lamp:
            return "off"
        return "sounding" if self._sound else "lit"

    def site_alarm(self, alarm: SiteAlarm, now: float, wall: datetime) -> list[Effect]:
        """The hub's state of the site's open critical alerts: light and sound accordingly."""
        self._open = set(alarm.alerts)
        self._count = alarm.count
        # Silencing holds for alerts still open; a closed one raised again has a new id.
        self._silenced &= self._open
        # The ids listed are the newest, so a new alert is always among them.
        return self._set(lamp=alarm.count > 0, sound=bool(self._open - self._silenced))

    def input(self, name: str, active: bool, now: float, wall: datetime) -> list[Effect]:
        """The silence button pressed: the buzzer stops for the alerts open now."""
        if name != SILENCE:
            _LOG.debug("input %s is not used by an annunciator", name)
            return []
        if not active or not self._sound:
            return []
        self._silenced = set(self._open)
        silenced = ev.AnnunciatorSilenced(alerts=sorted(self._open), count=self._count)
        return [Emit.of(silenced, wall), *self._set(lamp=self._lamp, sound=False)]

    def _set(self, *, lamp: bool, sound: bool) -> list[Effect]:
        sound = sound and lamp
        if (lamp, sound) == (self._lamp, self._sound):
            return []
        self._lamp, self._sound = lamp, sound
        return [Signal(lamp=lamp, sound=sound)]


class AnnunciatorPins(PinsSection, kw_only=True):
    """An annunciator cannot work without its lamp, its buzzer and its silence button."""

    lamp: Pin
    buzzer: Pin
    silence_button: Pin


class AnnunciatorUnit(StationUnit, kw_only=True):
    """An annunciator's unit file: lamp, buzzer and silence button required."""

    KIND = "annunciator"
    pins: AnnunciatorPins

    def make_logic(self) -> AnnunciatorLogic:
        return AnnunciatorLogic()


UNIT = AnnunciatorUnit
