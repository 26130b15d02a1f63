"""Signed events the hub refused (bad_signature, unknown_key, retired_key, unsigned): kept in
quarantine once per (station, incarnation, seq, reason).

A station resends what the hub has not acknowledged, and the hub does not acknowledge a refused
event (a key registered late, or a unit re-enrolled, lets it through on a later resend). So the
same refused event arrives again on every resend: the first copy is quarantined (and its
side-log entry made), later copies only count (``quarantine.repeats``, the last at
``last_at``). Each first copy is reported as a :class:`Refusal` for the ``bad_signature`` alert
(hub.alerting.rules).
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_, update

from hub.store.schema import quarantine

_LOG = logging.getLogger(__name__)

SIGNATURE_REASONS = frozenset({"bad_signature", "unknown_key", "retired_key", "unsigned"})


@dataclass(frozen=True)
class Refusal:
    """A signed event quarantined for the first time."""

    site: str
    station: str
    incarnation: str
    seq: int
    reason: str
    detail: str
    received_at: str


def _key(row: Mapping[str, Any]) -> tuple[str, str, int, str] | None:
    if row["reason"] not in SIGNATURE_REASONS or row["seq"] is None or not row["station"]:
        return None
    return row["station"], row["incarnation"] or "", row["seq"], row["reason"]


def fold_repeats(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The quarantine ``rows`` still to insert: a refused signed event already quarantined
    (before, or earlier in ``rows``) is dropped and counted on its first copy instead."""
    keyed = {k for k in map(_key, rows) if k is not None}
    if not keyed:
        return rows
    first: dict[tuple[str, str, int, str], int | None] = {}  # key -> stored id (None: in rows)
    cols = (quarantine.c.station, quarantine.c.incarnation, quarantine.c.seq, quarantine.c.reason)
    for found in conn.execute(select(quarantine.c.id, *cols).where(tuple_(*cols).in_(sorted(keyed)))
                              .order_by(quarantine.c.id)):
        first.setdefault((found.station, found.incarnation or "", found.seq, found.reason), found.id)
    keep: list[dict[str, Any]] = []
    counted: dict[int | tuple, tuple[int, str]] = {}  # stored id or key -> (repeats, last time)
    for row in rows:
        key = _key(row)
        if key is None:
            keep.append(row)
            continue
        if key not in first:
            first[key] = None
            keep.append(row)
            continue
        stored = first[key]
        target = stored if stored is not None else key
        n, _last = counted.get(target, (0, ""))
        counted[target] = (n + 1, row["received_at"])
    for row in keep:  # repeats within this batch go onto the copy being inserted
        key = _key(row)
        if key is not None and key in counted:
            row["repeats"], row["last_at"] = counted.pop(key)
    updates: list[dict[str, Any]] = [{"b_id": target, "b_n": n, "b_last": last} for target, (n, last) in counted.items()]
    if updates:
        conn.execute(update(quarantine).where(quarantine.c.id == bindparam("b_id"))
                     .values(repeats=quarantine.c.repeats + bindparam("b_n"), last_at=bindparam("b_last")),
                     updates)
        _LOG.info("%d refused signed event(s) sent again; counted on their first quarantined copy",
                  sum(u["b_n"] for u in updates))
    return keep


def first_refusals(rows: Sequence[Mapping[str, Any]], sites: Mapping[str, str]) -> list[Refusal]:
    """The refused signed events among the quarantine ``rows`` inserted (first copies)."""
    return [Refusal(sites.get(r["station"], ""), r["station"], r["incarnation"] or "", r["seq"], r["reason"],
                    r["detail"], r["received_at"]) for r in rows if _key(r) is not None]
