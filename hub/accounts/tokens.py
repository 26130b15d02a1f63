"""Personal API tokens: how scripts and Prometheus call the API and ``/metrics``.

A token is ``kgb_<key id>_<secret>``: 8 random characters that name it, then 256 random bits.
Only its SHA-256 is stored. A password needs a slow hash (argon2, ~0.1 s) because people pick
guessable ones; a token is random, so a fast hash is just as safe against a stolen store, and
checking one costs microseconds instead of an argon2 run on every Prometheus scrape. The key id
finds the row; the hash is then compared in constant time.

A token is shown once, when it is made; it belongs to one user, has a name, and is refused
at once when revoked or when its user is deactivated (both checked on every request). Making
and revoking a token are changes an auditor relies on: each is written to the change log
(``registry_log``, entity ``api_token``, and its hash-chained side log) in the same
transaction, never with the token or its hash.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, insert, select, update

from hub.store.db import begin_write, inserted_id
from hub.registry.log import Recorder, check_actor
from hub.store.schema import api_tokens, users
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

PREFIX = "kgb_"
MAX_NAME = 64
MAX_TOKENS_PER_USER = 20
ENTITY = "api_token"
# last_used_at is written at most this often per token: a scrape every 15 s must not be a
# store write every 15 s.
LAST_USED_EVERY = timedelta(minutes=1)
_TOKEN_RE = re.compile(r"^kgb_([A-Za-z0-9]{8})_([A-Za-z0-9_-]{43})$")
_KEY_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: read aloud or off a screen


class TokenError(ValueError):
    """A token that cannot be made or revoked as asked; ``code`` says why, for the page."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TokenInfo:
    """What a list shows of a token: never the token or its hash."""

    id: int
    key_id: str
    username: str
    name: str
    created_at: str
    last_used_at: str | None
    revoked_at: str | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def hint(self) -> str:
        """The token's start as shown in lists (enough to recognise it, useless to use)."""
        return f"{PREFIX}{self.key_id}_…"


@dataclass(frozen=True)
class NewToken:
    """A token just made: ``token`` is shown to its user this once and never stored."""

    info: TokenInfo
    token: str


@dataclass(frozen=True)
class TokenUser:
    """The active user a token signs in as."""

    user_id: int
    username: str
    token_id: int


def token_hash(token: str) -> str:
    """SHA-256 hex of a whole token, as stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise TokenError("a token needs a name (what uses it, e.g. prometheus)", "token_name_missing")
    if len(name) > MAX_NAME or any(ord(ch) < 32 for ch in name):
        raise TokenError(f"a token name has at most {MAX_NAME} characters and no control characters",
                         "token_name_bad")
    return name


def _public(row) -> dict:
    return {"key_id": row["key_id"], "user": row["username"], "name": row["name"],
            "created_at": row["created_at"], "revoked_at": row["revoked_at"], "revoked_by": row["revoked_by"]}


_COLUMNS = (api_tokens.c.id, api_tokens.c.key_id, users.c.username, api_tokens.c.name, api_tokens.c.created_at,
            api_tokens.c.last_used_at, api_tokens.c.revoked_at, api_tokens.c.revoked_by)


def _info(row) -> TokenInfo:
    return TokenInfo(**{k: row[k] for k in ("id", "key_id", "username", "name", "created_at", "last_used_at",
                                            "revoked_at", "revoked_by")})


def create(engine: Engine, username: str, name: str, *, actor: str | None = None,
           now: datetime | None = None) -> NewToken:
    """Make a token for the active user ``username``; ``actor`` (default: the user) is who
    the change log names. TokenError if the user is unknown or has too many tokens."""
    name = _check_name(name)
    actor = check_actor(actor or username)
    at = now or now_utc()
    key_id = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(8))
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    with begin_write(engine) as conn:
        user = conn.execute(select(users.c.id).where(users.c.username == username, users.c.active == 1)).first()
        if user is None:
            raise TokenError(f"no active user {username!r}", "token_no_user")
        count = conn.execute(select(func.count()).select_from(api_tokens).where(
            api_tokens.c.user_id == user.id, api_tokens.c.revoked_at.is_(None))).scalar_one()
        if count >= MAX_TOKENS_PER_USER:
            raise TokenError(f"{username} already has {count} tokens: revoke one first", "token_too_many")
        token_id = inserted_id(conn.execute(insert(api_tokens).values(
            user_id=user.id, key_id=key_id, token_hash=token_hash(token), name=name, created_at=utc_text(at),
        )))
        row = conn.execute(select(*_COLUMNS).join(users, users.c.id == api_tokens.c.user_id)
                           .where(api_tokens.c.id == token_id)).mappings().one()
        Recorder(conn, actor, at).record(ENTITY, key_id, "add", after=_public(row))
    _LOG.info("API token %s (%s) made for %s by %s", key_id, name, username, actor)
    return NewToken(info=_info(row), token=token)


def revoke(engine: Engine, key_id: str, *, actor: str, owner: str | None = None,
           now: datetime | None = None) -> bool:
    """Revoke a token (of ``owner`` only, if given); False if there is no such unrevoked token."""
    actor = check_actor(actor)
    at = now or now_utc()
    query = select(*_COLUMNS).join(users, users.c.id == api_tokens.c.user_id).where(
        api_tokens.c.key_id == key_id, api_tokens.c.revoked_at.is_(None))
    if owner is not None:
        query = query.where(users.c.username == owner)
    with begin_write(engine) as conn:
        before = conn.execute(query).mappings().first()
        if before is None:
            return False
        conn.execute(update(api_tokens).where(api_tokens.c.id == before["id"])
                     .values(revoked_at=utc_text(at), revoked_by=actor))
        after = {**_public(before), "revoked_at": utc_text(at), "revoked_by": actor}
        Recorder(conn, actor, at).record(ENTITY, key_id, "revoke", before=_public(before), after=after)
    _LOG.info("API token %s of %s revoked by %s", key_id, before["username"], actor)
    return True


def revoke_all(engine: Engine, username: str, *, actor: str) -> int:
    """Revoke every unrevoked token of ``username`` (e.g. when the user is deactivated); how many."""
    keys = [t.key_id for t in list_tokens(engine, username, include_revoked=False)]
    return sum(revoke(engine, key, actor=actor, owner=username) for key in keys)


def list_tokens(engine: Engine, username: str | None = None, *, include_revoked: bool = True) -> list[TokenInfo]:
    """Tokens (of one user, or everyone's), newest first."""
    query = select(*_COLUMNS).join(users, users.c.id == api_tokens.c.user_id).order_by(api_tokens.c.id.desc())
    if username is not None:
        query = query.where(users.c.username == username)
    if not include_revoked:
        query = query.where(api_tokens.c.revoked_at.is_(None))
    with engine.connect() as conn:
        return [_info(r) for r in conn.execute(query).mappings()]


def authenticate(engine: Engine, token: str, *, now: datetime | None = None) -> TokenUser | None:
    """The active user of an unrevoked ``token``, or None; notes when it was last used."""
    match = _TOKEN_RE.match(token or "")
    if match is None:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(api_tokens.c.id, api_tokens.c.token_hash, api_tokens.c.last_used_at, users.c.id.label("user_id"),
                   users.c.username)
            .join(users, users.c.id == api_tokens.c.user_id)
            .where(api_tokens.c.key_id == match.group(1), api_tokens.c.revoked_at.is_(None), users.c.active == 1)
        ).mappings().first()
    # Hashed even when no row matched, so a wrong key id takes as long as a wrong secret.
    offered = token_hash(token)
    if row is None or not hmac.compare_digest(offered, row["token_hash"]):
        return None
    at = now or now_utc()
    if row["last_used_at"] is None or row["last_used_at"] < utc_text(at - LAST_USED_EVERY):
        try:
            with begin_write(engine) as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == row["id"])
                             .values(last_used_at=utc_text(at)))
        except Exception:  # a busy store must not refuse a good token
            _LOG.exception("could not note the use of API token %s", match.group(1))
    return TokenUser(user_id=int(row["user_id"]), username=row["username"], token_id=int(row["id"]))
