"""What the status page and the alert history read of the alerts: open alerts grouped for
triage, and the history one page at a time. No Flask here.

- Grouping: open alerts of the same rule at the same station are one group (count, first and
  last time, every id, the latest alert for its text). Critical groups are pinned on top,
  then by severity, then the newest first. A group whose alerts were all raised while its
  station was in maintenance (``params.maintenance``, hub.alerting.maintenance) is never
  pinned nor counted in the tab title.
- History: newest first by id with a keyset cursor (``before``: the last id shown), at most
  ``PAGE_MAX`` rows a page; the date range is taken in the hub's zone.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone, tzinfo
from typing import Any

from sqlalchemy import Engine, and_, select

from hub.ledgers.base import day_bounds
from hub.store.schema import alerts
from hub.store.timestamps import utc_text

_LOG = logging.getLogger(__name__)

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
HISTORY_STATES = ("open", "acknowledged", "closed")
PAGE_DEFAULT = 50
PAGE_MAX = 200
OPEN_MAX = 2000  # open alerts read for the status page; more is a flood the count still shows
EXPORT_MAX = 50_000  # rows in one export; a larger range is to be split


@dataclass(frozen=True)
class AlertFilter:
    """The filters of the status page and the history (query parameters, so a view can be
    bookmarked); the status page uses severity, station and rule."""

    severity: str | None = None
    station: str | None = None
    rule: str | None = None
    state: str | None = None
    since: date | None = None
    until: date | None = None
    # The sites the reader sees (hub.web.scope); None: every site. Never in the query string.
    sites: frozenset[str] | None = None

    def args(self) -> dict[str, Any]:
        """The query arguments that ask for the same view again."""
        pairs = (("severity", self.severity), ("station", self.station), ("rule", self.rule),
                 ("state", self.state), ("since", self.since.isoformat() if self.since else None),
                 ("until", self.until.isoformat() if self.until else None))
        return {k: v for k, v in pairs if v}

    def conditions(self, zone: tzinfo) -> list[Any]:
        """The filter as SQL conditions on ``alerts``; dates are days in ``zone``."""
        conds = []
        for col, value in ((alerts.c.severity, self.severity), (alerts.c.station, self.station),
                           (alerts.c.rule, self.rule), (alerts.c.state, self.state)):
            if value:
                conds.append(col == value)
        if self.since:
            conds.append(alerts.c.raised_at >= utc_text(day_bounds(self.since, zone)[0]))
        if self.until:
            conds.append(alerts.c.raised_at < utc_text(day_bounds(self.until, zone)[1]))
        if self.sites is not None:
            conds.append(alerts.c.site.in_(sorted(self.sites)))
        return conds


@dataclass(frozen=True)
class AlertGroup:
    """Open alerts of one rule at one station."""

    rule: str
    station: str
    site: str
    severity: str
    count: int
    first_at: str
    last_at: str
    ids: tuple[int, ...]
    latest: dict[str, Any] = field(compare=False)
    maintenance: bool = False

    @property
    def pinned(self) -> bool:
        return self.severity == "critical" and not self.maintenance

    @property
    def key(self) -> str:
        """A stable name for the group (its checkbox, its row id)."""
        return f"{self.rule}--{self.station}"

    @property
    def id_list(self) -> str:
        return ",".join(str(i) for i in self.ids)


def _params(row: dict[str, Any]) -> dict[str, Any]:
    try:
        params = json.loads(row["params"]) if isinstance(row["params"], str) else row["params"]
    except ValueError:  # a hand-edited row must not break the page
        params = {}
    return params if isinstance(params, dict) else {}


def _row(r: Any) -> dict[str, Any]:
    out = dict(r._mapping)
    out["params"] = _params(out)
    return out


def open_groups(engine: Engine, flt: AlertFilter) -> list[AlertGroup]:
    """The open alerts, grouped, pinned critical first (see the module's docstring)."""
    # No dates in this filter, so no zone is needed for them.
    conds = [alerts.c.state == "open", *AlertFilter(flt.severity, flt.station, flt.rule, sites=flt.sites).conditions(timezone.utc)]
    query = select(alerts).where(and_(*conds)).order_by(alerts.c.id.desc()).limit(OPEN_MAX)
    with engine.connect() as conn:
        rows = [_row(r) for r in conn.execute(query)]
    return group(rows)


def group(rows: list[dict[str, Any]]) -> list[AlertGroup]:
    """``rows`` (open alerts, any order) as groups in triage order."""
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault((row["rule"], row["station"]), []).append(row)
    out = []
    for (rule, station), members in by_key.items():
        members.sort(key=lambda r: (r["raised_at"], r["id"]))
        latest = members[-1]
        severity = min((m["severity"] for m in members), key=lambda s: SEVERITY_RANK.get(s, 3))
        out.append(AlertGroup(
            rule=rule, station=station, site=latest["site"], severity=severity, count=len(members),
            first_at=members[0]["raised_at"], last_at=latest["raised_at"],
            ids=tuple(m["id"] for m in members), latest=latest,
            maintenance=all(m["params"].get("maintenance") is True for m in members)))
    # Newest first, then a stable sort by pin and severity keeps that order within each rank.
    out.sort(key=lambda g: (g.last_at, g.ids[-1]), reverse=True)
    out.sort(key=lambda g: (not g.pinned, g.maintenance, SEVERITY_RANK.get(g.severity, 3)))
    return out


def title_counts(groups: list[AlertGroup]) -> tuple[int, int]:
    """(critical, open) alerts the tab title shows: those not raised in maintenance."""
    live = [g for g in groups if not g.maintenance]
    return sum(g.count for g in live if g.severity == "critical"), sum(g.count for g in live)


def history(engine: Engine, flt: AlertFilter, zone: tzinfo, *, before: int | None = None,
            limit: int = PAGE_DEFAULT) -> tuple[list[dict[str, Any]], int | None]:
    """A page of alerts, newest first, and the ``before`` cursor of the next page (or None)."""
    limit = max(1, min(limit, PAGE_MAX))
    rows = _query(engine, flt, zone, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more and rows else None)


def period_bounds(flt: AlertFilter, zone: tzinfo) -> tuple[datetime | None, datetime | None]:
    """The filter's date range as instants: the start of ``since`` and the end of ``until``
    (days in ``zone``), None where open."""
    return (day_bounds(flt.since, zone)[0] if flt.since else None,
            day_bounds(flt.until, zone)[1] if flt.until else None)


def export_rows(engine: Engine, flt: AlertFilter, zone: tzinfo) -> list[dict[str, Any]]:
    """Every alert the filter selects, newest first, at most ``EXPORT_MAX``."""
    return _query(engine, flt, zone, None, EXPORT_MAX)


def _query(engine: Engine, flt: AlertFilter, zone: tzinfo, before: int | None, limit: int) -> list[dict[str, Any]]:
    conds = flt.conditions(zone)
    if before is not None:
        conds.append(alerts.c.id < before)
    query = select(alerts).order_by(alerts.c.id.desc()).limit(limit)
    if conds:
        query = query.where(and_(*conds))
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(query)]
