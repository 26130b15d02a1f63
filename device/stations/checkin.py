"""A badge tap taken as a roll-call check-in: the ``rollcall.tap`` event and the answer shown.

A roll-call unit checks people in with every tap (device/stations/rollcall.py). Any other
station a supervisor picks for a roll call does so too while the session is on its signed policy
(device.wire RollCall): the tap then checks the person in instead of its usual use (no
unlock, no print release), until the hub closes the session and a policy without it arrives. The
hub judges each tap by its time; the answer here is only what the person is shown.
"""
from __future__ import annotations

import logging
from datetime import datetime

from device import event_data as ev
from device.stations.effects import Answer, Effect, Emit
from device.wire import PolicyEntry, RollCall

_LOG = logging.getLogger(__name__)

# Policy reasons under which a badge identifies nobody (the card is not its holder's any more);
# a badge refused for lack of training still names its holder (a training is where they check in).
NAMES_NOBODY = frozenset({"revoked", "inactive", "badge_expired", "not_yet_valid", "unknown", "expired"})


def check_in(session: RollCall | None, badge: str, entry: PolicyEntry, wall: datetime) -> list[Effect]:
    """The effects of a tap at ``wall`` checked in against ``session`` (None: no session here)."""
    person = None if entry.reason in NAMES_NOBODY else entry.person
    answer = "no_session" if session is None else session.answer(person, wall)
    tap = ev.RollcallTap(session=session.session if session is not None else None, answer=answer)
    _LOG.info("roll-call tap by %s: %s", person or "nobody known", answer)
    return [Answer(answer), Emit.of(tap, wall, badge, person)]
