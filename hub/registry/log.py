"""The registry's change log and change hook.

Every write to the registry goes through :func:`writing`: one write transaction in which the
change and its ``registry_log`` rows (who, when, what, the row before and after as JSON) are
committed together, so the log can neither miss a change nor record one that was rolled back.
After the commit, the callbacks connected to that store's signal (:func:`changes` of the
engine written to) are called, so the hub that owns the store can compile and publish the
stations' policies at once (a revoked badge must reach them within seconds). The signal belongs
to the engine, not the process: two hubs in one process (tests, benches) each hear only their
own store's changes.
"""
from __future__ import annotations

import json
import logging
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select

from hub.audit.entries import record_registry
from hub.catalog import translate
from hub.registry.messages import ERRORS
from hub.store.db import begin_write, inserted_id
from hub.store.schema import registry_log
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

MAX_ACTOR = 64


class RegistryError(ValueError):
    """A registry change that cannot be made as asked: ``code`` (a key of
    hub.registry.messages.ERRORS) and ``params`` say why, for each interface to word in its
    own language; ``str()`` is the English sentence, for logs and the CLI."""

    def __init__(self, code: str, params: Mapping[str, Any] | None = None):
        self.code = code
        self.params = dict(params or {})
        # For logs and the CLI: the field the sentence does not name goes first.
        what = self.params.get("what")
        english = self.text("en")
        super().__init__(f"{what}: {english}" if what and "%(what)" not in _source(code) else english)

    def text(self, lang: str) -> str:
        """The reason in ``lang`` ("ja" or "en")."""
        message = ERRORS.get(self.code)
        if message is None:  # a code without a sentence: a bug, but the reason must still show
            return f"{self.code} {self.params}" if self.params else self.code
        return translate(lang, message, **self.params)


def _source(code: str) -> str:
    message = ERRORS.get(code)
    return message.id if message is not None else ""


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


# Engine -> its Signal. Weak keys: the signal of an engine nobody holds any more goes with it.
_SIGNALS: weakref.WeakKeyDictionary[Engine, Signal] = weakref.WeakKeyDictionary()
_SIGNALS_LOCK = threading.Lock()


def changes(engine: Engine) -> Signal:
    """The change signal of the store behind ``engine``: called after each registry commit made
    through this engine object (the one the hub owns and hands to its web page)."""
    with _SIGNALS_LOCK:
        found = _SIGNALS.get(engine)
        if found is None:
            found = _SIGNALS[engine] = Signal()
        return found


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
        raise RegistryError("actor.missing")
    if len(actor) > MAX_ACTOR:
        raise RegistryError("actor.too_long", {"n": MAX_ACTOR})
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
    """A write transaction with its log; on a clean exit, commit, then tell ``changes(engine)``.

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
        changes(engine).send(Change(actor=actor, at=at, items=tuple(rec.items)))


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
