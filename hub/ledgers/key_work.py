"""The work done with a key (作業内容), as the paper 作業管理簿 records it beside who and when.

It is picked for a use after the fact, from the site's list in the hub file
(``sites.<site>.key_work``), by the person who used the key (a web user whose user name is
their staff number) or by a supervisor or admin; or at the cabinet, where purpose buttons are
fitted (a ``key.purpose`` event, hub.ledgers.keys reads it). A recording is a new row of
``key_work`` and an entry in the ``work`` side log, in one transaction: the stored key.used
event is never modified, and a correction is another row (the latest counts).
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select

from hub.audit.entries import record_work
from hub.catalog import N_, Msg
from hub.config import HubConfig
from hub.store.db import begin_write
from hub.store.schema import events, key_work
from hub.store.timestamps import now_utc, utc_text
from kagiban import events as ev_kinds

_LOG = logging.getLogger(__name__)

# Who may record the work of any use; anyone else only the work of their own uses.
RECORDER_ROLES = ("admin", "supervisor")


# Why a recording was refused, as the page says it (``%(use)s``: the use's event id).
ERRORS: dict[str, Msg] = {
    "no_such_use": N_("No key use %(use)s is stored: the work was not recorded."),
    "not_allowed": N_("Only the person who used the key or a supervisor may record the work of key use %(use)s."),
    "unknown_work": N_("The work %(work)s is not on the list of site %(site)s: nothing was recorded."),
}


class WorkError(Exception):
    """The work could not be recorded: ``code`` says why (hub.web.i18n words it), ``params``
    name what (the use's event, the work code)."""

    def __init__(self, code: str, **params: str):
        self.code = code
        self.params = params
        super().__init__(f"{code}: {params}")


@dataclass(frozen=True)
class WorkRecord:
    """The work recorded for one use: ``source`` "page" (``by`` a user) or "station" (a
    purpose button, ``by`` the person who used the key)."""

    event_id: str
    work: str
    by: str
    at: str  # UTC text (page) or the station's aware time (station)
    source: str


def may_record(role: str, username: str, person: str | None) -> bool:
    """Whether a user may record the work of a use by ``person``."""
    return role in RECORDER_ROLES or (person is not None and username == person)


def record(engine: Engine, cfg: HubConfig, event_id: str, work: str, *, username: str, role: str) -> WorkRecord:
    """Record ``work`` for the key use ``event_id``; WorkError ``no_such_use`` (not a stored
    key.used), ``not_allowed`` (neither the person nor a supervisor) or ``unknown_work``
    (not on the use's site's list). Nothing is stored unless all is well."""
    with engine.connect() as conn:
        use = conn.execute(select(events.c.site, events.c.station, events.c.person).where(
            events.c.event_id == event_id, events.c.kind == ev_kinds.KeyUsed.KIND)).first()
    if use is None:
        raise WorkError("no_such_use", use=event_id)
    if not may_record(role, username, use.person):
        raise WorkError("not_allowed", use=event_id)
    if cfg.site(use.site).work(work) is None:
        raise WorkError("unknown_work", work=work, site=use.site)
    row = {"event_id": event_id, "station": use.station, "work": work, "recorded_by": username[:64],
           "recorded_at": utc_text(now_utc())}
    with begin_write(engine) as conn:
        key = conn.execute(insert(key_work).values(**row)).inserted_primary_key
        assert key is not None  # a one-row insert has its key
        row["id"] = key[0]
        record_work(conn, row)
    _LOG.info("%s recorded the work %s for key use %s at %s", username, work, event_id, use.station)
    return WorkRecord(event_id, work, row["recorded_by"], row["recorded_at"], "page")


def recorded(engine: Engine, event_ids: Iterable[str]) -> dict[str, WorkRecord]:
    """The latest work recorded on the page for each of ``event_ids`` that has any."""
    wanted = list(dict.fromkeys(event_ids))
    out: dict[str, WorkRecord] = {}
    with engine.connect() as conn:
        # In chunks: SQLite takes a bounded number of parameters.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for r in conn.execute(select(key_work).where(key_work.c.event_id.in_(chunk)).order_by(key_work.c.id)):
                out[r.event_id] = WorkRecord(r.event_id, r.work, r.recorded_by, r.recorded_at, "page")
    return out


def purpose_of(data: str | None) -> str:
    """The purpose code in a stored key.purpose event's data ("" if none)."""
    try:
        return ev_kinds.read_as(ev_kinds.KeyPurpose, json.loads(data or "{}")).purpose
    except ValueError:
        return ""
