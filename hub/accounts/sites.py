"""The sites a web user sees: a supervisor the sites they are responsible for, an auditor the
sites they audit (table ``user_sites``, migration 0023_scopes).

A user with no rows sees every site, as every user did before, so a hub with one office
changes nothing; an admin sees every site whatever the table holds. Every change is written to
the registry change log (``entity`` ``user_sites``, ``key`` the username, the list before and
after) in the same transaction, so it reaches the ``registry`` side log that ``kagiban verify``
checks. It does not go through hub.registry.log.writing: who sees which site is not part of
any station's policy, so no recompile is asked for.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from sqlalchemy import Engine, delete, insert, select

from hub.registry.log import Recorder, check_actor
from hub.store.db import begin_write
from hub.store.schema import user_sites, users
from hub.store.timestamps import now_utc
from kagiban.protocol import ID_PATTERN

_LOG = logging.getLogger(__name__)

ENTITY = "user_sites"
# Roles whose sites are limited by the table (admins see everything; staff see near-miss cases only).
SCOPED_ROLES = ("supervisor", "auditor", "staff")
MAX_SITES = 200
_SITE_RE = re.compile(ID_PATTERN)


class SiteScopeError(ValueError):
    """Sites that cannot be given to a user as asked: ``code`` says why (worded by the page,
    hub.web.user_pages), ``str()`` in English for the CLI and logs."""

    def __init__(self, code: str, value: str = ""):
        self.code = code
        self.value = value
        super().__init__(_ENGLISH[code] % {"value": value})


_ENGLISH = {
    "user_sites.no_user": "there is no active user %(value)s",
    "user_sites.bad_site": "site %(value)s is not a site ID (letters, digits, '_', '.', '-')",
    "user_sites.unknown_site": "site %(value)s is not in the hub's sites",
    "user_sites.too_many": "too many sites",
}


def sites_of(engine: Engine, user_id: int) -> frozenset[str]:
    """The sites stored for ``user_id`` (empty: every site)."""
    with engine.connect() as conn:
        return frozenset(conn.execute(select(user_sites.c.site).where(user_sites.c.user_id == user_id)).scalars())


def visible_sites(role: str, stored: frozenset[str]) -> frozenset[str] | None:
    """The sites a user of ``role`` with ``stored`` rows sees; None for every site."""
    if role not in SCOPED_ROLES or not stored:
        return None
    return stored


def all_user_sites(engine: Engine) -> dict[int, list[str]]:
    """Every user id with rows -> its sites, sorted (for the admin's list)."""
    out: dict[int, list[str]] = {}
    with engine.connect() as conn:
        for row in conn.execute(select(user_sites.c.user_id, user_sites.c.site)
                                .order_by(user_sites.c.user_id, user_sites.c.site)):
            out.setdefault(int(row.user_id), []).append(row.site)
    return out


def set_sites(engine: Engine, actor: str, username: str, sites: Iterable[str],
              known: Iterable[str] | None = None) -> bool:
    """Give ``username`` exactly ``sites`` (empty: every site again), logged as ``actor``;
    ``known``, if given, the sites a site must be one of. False if nothing changed.
    SiteScopeError for an unknown user or a bad or unknown site."""
    actor = check_actor(actor)
    wanted = sorted(set(sites))
    if len(wanted) > MAX_SITES:
        raise SiteScopeError("user_sites.too_many")
    allowed = set(known) if known is not None else None
    for site in wanted:
        if not isinstance(site, str) or not _SITE_RE.match(site):
            raise SiteScopeError("user_sites.bad_site", str(site))
        if allowed is not None and site not in allowed:
            raise SiteScopeError("user_sites.unknown_site", site)
    with begin_write(engine) as conn:
        user_id = conn.execute(select(users.c.id).where(users.c.username == username,
                                                        users.c.active == 1)).scalar()
        if user_id is None:
            raise SiteScopeError("user_sites.no_user", username)
        before = sorted(conn.execute(select(user_sites.c.site)
                                     .where(user_sites.c.user_id == user_id)).scalars())
        if before == wanted:
            return False
        conn.execute(delete(user_sites).where(user_sites.c.user_id == user_id))
        if wanted:
            conn.execute(insert(user_sites), [{"user_id": user_id, "site": s} for s in wanted])
        Recorder(conn, actor, now_utc()).record(ENTITY, username, "update",
                                                before={"sites": before}, after={"sites": wanted})
    _LOG.info("%s set the sites of user %s: %s", actor, username, ", ".join(wanted) or "all")
    return True
