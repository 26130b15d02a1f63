"""Which sites the signed-in user sees (hub.accounts.sites), for every page, export, stream and
action: a supervisor the sites they are responsible for, an auditor the sites they audit.

A station, alert or record of another site answers 404, exactly as one that does not exist,
so a request cannot tell that it exists (never 403). Read once per request (``g``): a change
on the admin's page takes effect at the user's next request, live streams included (a stream
reads its scope when it opens; the page reconnects at the next reload).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import abort, g, has_request_context
from flask_login import current_user

from sqlalchemy import select

from hub.accounts.sites import sites_of, visible_sites
from hub.store.schema import alerts
from hub.web import data
from hub.web.state import state

T = TypeVar("T")


def sites() -> frozenset[str] | None:
    """The sites the user sees; None for every site (admins, users without rows, no request)."""
    if not has_request_context() or not current_user or not current_user.is_authenticated:
        return None
    if "scope_sites" not in g:
        g.scope_sites = visible_sites(current_user.role, sites_of(state().engine, current_user.user_id))
    return g.scope_sites


def limited() -> bool:
    """Whether the user sees only some sites."""
    return sites() is not None


def site_visible(site: str | None) -> bool:
    scope = sites()
    return scope is None or site in scope


def stations() -> frozenset[str] | None:
    """The known stations of the user's sites; None for every station."""
    scope = sites()
    if scope is None:
        return None
    if "scope_stations" not in g:
        st = state()
        g.scope_stations = frozenset(s for s, site in data.station_sites(st.engine, st.cfg).items() if site in scope)
    return g.scope_stations


def station_visible(station: str | None) -> bool:
    seen = stations()
    return seen is None or station in seen


def require_station(station: str | None) -> None:
    """404 for a station of another site (or none the hub knows), as for one that does not exist."""
    if station and not station_visible(station):
        abort(404)


def require_site(site: str | None) -> None:
    """404 for a site the user does not see."""
    if not site_visible(site):
        abort(404)


def require_alerts(alert_ids: Iterable[int]) -> None:
    """404 if one of ``alert_ids`` is an alert of another site or none at all: for a user
    limited to some sites both answer the same, so an id does not tell that it exists."""
    scope = sites()
    wanted = sorted(set(alert_ids))
    if scope is None or not wanted:
        return
    with state().engine.connect() as conn:
        found = conn.execute(select(alerts.c.site).where(alerts.c.id.in_(wanted))).scalars().all()
    if len(found) != len(wanted) or any(site not in scope for site in found):
        abort(404)


def require_event(event_id: str | None) -> None:
    """404 if ``event_id`` is an event of another site, or, for a user limited to some sites,
    no event at all (both answer the same)."""
    scope = sites()
    if scope is None:
        return
    found = data.get_event(state().engine, event_id) if event_id else None
    if found is None or found["site"] not in scope:
        abort(404)


def keep(rows: Iterable[T], station_of: Callable[[T], Any] = lambda r: getattr(r, "station")) -> list[T]:
    """The rows of the user's stations (all of them without a limit)."""
    seen = stations()
    if seen is None:
        return list(rows)
    return [r for r in rows if station_of(r) in seen]


def keep_sites(rows: Iterable[T], site_of: Callable[[T], Any]) -> list[T]:
    """The rows of the user's sites (all of them without a limit)."""
    scope = sites()
    if scope is None:
        return list(rows)
    return [r for r in rows if site_of(r) in scope]


def station_ids(ids: Iterable[str]) -> list[str]:
    """The station ids of a menu the user may pick from."""
    seen = stations()
    return list(ids) if seen is None else [s for s in ids if s in seen]
