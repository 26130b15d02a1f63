"""Words of the status page's station cards that no other page uses: the lock as a station
reported it (hub.stations.state.lock_state) and its clock (hub.web.data.clock_of
``clock_label``). Each state is also a colour on the page (kagiban.css); the words make it
readable without colour."""
from __future__ import annotations

import logging
from typing import Any

from flask_babel import lazy_gettext as _l

_LOG = logging.getLogger(__name__)

LOCK_STATES: dict[str, Any] = {
    "locked": _l("Locked"),
    "unlocked": _l("Unlocked"),
    "unknown": _l("Not reported yet"),
}

CLOCK_LABELS: dict[str, Any] = {
    "synced": _l("Synchronised"),
    "ok": _l("Within limits"),
    "skewed": _l("Offset too large"),
    "unsynced": _l("Clock not synchronised"),
    "unknown": _l("Not measured yet"),
}
