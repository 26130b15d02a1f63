"""The open roll-call sessions as the policy compile puts them on the units: station ->
kagiban.protocol.RollCall (as JSON). A leaf (tables only), so hub.registry.compile reads it
without importing the roll-call service, which writes through the registry."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from hub.store.schema import rollcall_people, rollcall_sessions
from kagiban.protocol import RollCall

_LOG = logging.getLogger(__name__)


def instant(text: str) -> datetime:
    """A stored UTC text (hub.store.timestamps) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def late_after(starts_at: str, window_min: int) -> datetime:
    """The last instant a tap is on time: the start plus the check-in window."""
    return instant(starts_at) + timedelta(minutes=window_min)


def stations_of(text: str) -> list[str]:
    """A session's stored station list; a value that is no list of text is no station."""
    try:
        value = json.loads(text)
    except ValueError:
        return []
    return [s for s in value if isinstance(s, str)] if isinstance(value, list) else []


def open_sessions(conn: Connection) -> dict[str, dict[str, Any]]:
    """Each station with an open session -> its RollCall (JSON-ready); the newest session wins
    should two ever name one station (opening refuses that)."""
    out: dict[str, dict[str, Any]] = {}
    rows = conn.execute(select(rollcall_sessions).where(rollcall_sessions.c.closed_at.is_(None))
                        .order_by(rollcall_sessions.c.id)).all()
    for row in rows:
        expected = sorted(conn.execute(select(rollcall_people.c.staff_no).where(
            rollcall_people.c.session_id == row.id, rollcall_people.c.expected.is_(True))).scalars())
        try:
            session = RollCall.model_validate({
                "session": row.id, "title": row.topic[:128], "opens_at": instant(row.opened_at),
                "late_after": late_after(row.starts_at, row.window_min), "expected": expected,
            }).model_dump(mode="json")
        except (ValueError, OverflowError, TypeError):
            # A stored value no station could take (a time that is no instant, a number too long):
            # that session is left off, every other station's policy still goes out.
            _LOG.error("roll call %s left off the policies: a stored value is not usable", row.id)
            continue
        for station in stations_of(row.stations):
            out[station] = session
    return out
