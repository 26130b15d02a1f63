"""The registry's change log and change hook.

Every write to the registry goes through :func:`writing`: one write transaction in which the
change and its ``registry_log`` rows (who, when, what, the row before and after as JSON) are
committed together, so the log can neither miss a change nor record one that was rolled back.
After the commit, the callbacks connected to :data:`changed` are called, so the hub can
compile and publish the stations' policies at once (a revoked badge must reach them within
seconds).
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from hub.audit.entries import record_registry
from hub.store.db import begin_write, inserted_id
from hub.store.schema import registry_log
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

MAX_ACTOR = 64


class RegistryError(ValueError):
    """A registry change that cannot be made as asked; the message says why.

    ``code`` and ``params``, where set, say the same for a page to word in its own language
    (e.g. ``badge_id_length`` with the value and its number of digits)."""

    def __init__(self, message: str, *, code: str | None = None, params: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.params = dict(params or {})


class NotFound(RegistryError):
    """The person, badge, training or session named does not exist."""


@dataclass(frozen=True)
class Change:
    """One committed registry transaction: who made it and what it touched."""

    actor: str
    at: datetime
    # (entity, key, action) of each log row written, in order.
    items: tuple[tuple[str, str, str], ...]

    @property
    def entities(self) -> set[str]:
        """The kinds of records touched (person, badge, training, ...)."""
        return {entity for entity, _key, _action in self.items}


class Signal:
    """A list of callbacks called with a :class:`Change` after each registry commit.

    Callbacks run on the thread that made the change, after its commit; they should be
    quick (e.g. wake the policy publisher). An exception in one is logged and does not stop
    the others or undo the change.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._receivers: list[Callable[[Change], Any]] = []

    def connect(self, fn: Callable[[Change], Any]) -> Callable[[Change], Any]:
        """Call ``fn(change)`` after every registry commit; returns ``fn`` (usable as a decorator)."""
        with self._lock:
            if fn not in self._receivers:
                self._receivers.append(fn)
        return fn

    def disconnect(self, fn: Callable[[Change], Any]) -> None:
        """Stop calling ``fn``; no error if it was not connected."""
        with self._lock:
            if fn in self._receivers:
                self._receivers.remove(fn)

    def send(self, change: Change) -> None:
        """Call every connected callback with ``change``."""
        with self._lock:
            receivers = list(self._receivers)
        for fn in receivers:
            try:
                fn(change)
            except Exception:  # one bad listener must not hide the change from the others
                _LOG.exception("registry change callback %r failed", fn)


changed = Signal()


def to_json(value: Any) -> str | None:
    """Canonical JSON of a row (a mapping) for the log; dates as ISO 8601; None stays None."""
    if value is None:
        return None
    return json.dumps(_plain(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_plain(v) for v in value]
        return sorted(items, key=str) if isinstance(value, (set, frozenset)) else items
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def check_actor(actor: str) -> str:
    """The acting user's name, checked: every change must say who made it."""
    if not isinstance(actor, str) or not actor.strip():
        raise RegistryError("every registry change needs the acting user's name")
    if len(actor) > MAX_ACTOR:
        raise RegistryError(f"the actor's name must have at most {MAX_ACTOR} characters")
    return actor.strip()


class Recorder:
    """The open write transaction of one registry change, and its log."""

    def __init__(self, conn: Connection, actor: str, at: datetime):
        self.conn = conn
        self.actor = actor
        self.at = at
        self.items: list[tuple[str, str, str]] = []

    def record(self, entity: str, key: str, action: str, before: Any = None, after: Any = None) -> None:
        """Write one log row in this transaction (before/after: the row as a mapping, or None)."""
        values = {"at": utc_text(self.at), "actor": self.actor, "entity": entity, "key": str(key),
                  "action": action, "before": to_json(before), "after": to_json(after)}
        row_id = inserted_id(self.conn.execute(insert(registry_log).values(**values)))
        record_registry(self.conn, {"id": row_id, **values})
        self.items.append((entity, str(key), action))


@contextmanager
def writing(engine: Engine, actor: str, *, now: datetime | None = None) -> Iterator[Recorder]:
    """A write transaction with its log; on a clean exit, commit, then tell :data:`changed`.

    Nothing is committed, and nobody told, if the block raises.
    """
    actor = check_actor(actor)
    at = now or now_utc()
    with begin_write(engine) as conn:
        rec = Recorder(conn, actor, at)
        yield rec
    if rec.items:
        _LOG.info("registry: %s by %s", ", ".join(f"{a} {e} {k}" for e, k, a in rec.items[:5])
                  + (f" and {len(rec.items) - 5} more" if len(rec.items) > 5 else ""), actor)
        changed.send(Change(actor=actor, at=at, items=tuple(rec.items)))


@dataclass(frozen=True)
class LogEntry:
    """One row of the change log, with before/after decoded."""

    id: int
    at: str
    actor: str
    entity: str
    key: str
    action: str
    before: dict[str, Any] | None = field(default=None)
    after: dict[str, Any] | None = field(default=None)


def history(
    engine: Engine,
    *,
    entity: str | None = None,
    key: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    limit: int | None = 1000,
) -> list[LogEntry]:
    """Log rows, newest first, optionally only of one entity (and key), actor or since a time."""
    query = select(registry_log).order_by(registry_log.c.id.desc())
    if entity is not None:
        query = query.where(registry_log.c.entity == entity)
    if key is not None:
        query = query.where(registry_log.c.key == key)
    if actor is not None:
        query = query.where(registry_log.c.actor == actor)
    if since is not None:
        query = query.where(registry_log.c.at >= utc_text(since))
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        LogEntry(id=r.id, at=r.at, actor=r.actor, entity=r.entity, key=r.key, action=r.action,
                 before=_json_or_text(r.before), after=_json_or_text(r.after))
        for r in rows
    ]


def _json_or_text(text: str | None) -> Any:
    """A stored before/after: its JSON, or {"text": ...} for a row that is not JSON (shown as is)."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return {"text": text}
    return value if isinstance(value, dict) else {"text": text}
