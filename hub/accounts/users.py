"""People who sign in to the hub's web page: supervisors, auditors, admins and staff.

Passwords are stored only as argon2id hashes (argon2-cffi's PasswordHasher with its current
recommended parameters); a hash made with older parameters is replaced at the next
successful sign-in. An unknown or deactivated user costs the same hashing work as a wrong
password, so the time taken does not tell whether a username exists.

Sessions end: each user has a session generation (``session_gen``), raised on sign-out,
on a new password and on deactivation. A web session carries the generation it was issued
with; hub.web.app refuses one whose user has moved on, so a copied cookie stops working.

Roles: ``admin`` (everything), ``supervisor`` (acknowledges alerts), ``auditor`` (reads and
exports), ``staff`` (files and reads near-miss cases, nothing else: hub.web.nearmiss_pages). Users are deactivated, never deleted, so an acknowledgement always names someone
who can still be looked up.
"""
from __future__ import annotations

import logging
import re
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.store.db import begin_write, inserted_id
from hub.store.schema import USER_ROLES, users
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

ROLES = USER_ROLES
LANGUAGES = ("ja", "en")
USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 hashes anything, but a megabyte "password" is an attack

_USERNAME_RE = re.compile(USERNAME_PATTERN)
_HASHER = PasswordHasher()
# Verified against when the username is unknown, so that case takes as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("kagiban: no such user")
# What callers may see of a user row: never the hash.
_PUBLIC = (users.c.id, users.c.username, users.c.role, users.c.display_name, users.c.language,
           users.c.active, users.c.created_at, users.c.session_gen)


class UserError(ValueError):
    """A user that cannot be added or changed as asked; the message says why."""


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")


def add_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    language: str = "ja",
    *,
    replace: bool = False,
) -> int:
    """Add an active user; return its id. UserError for a bad or taken username, role,
    language or a too-short password. With ``replace``, an existing user of that name gets
    the new password, role, name and language and is active again (same id)."""
    if not isinstance(username, str) or not _USERNAME_RE.match(username):
        raise UserError(f"username {username!r} must match {USERNAME_PATTERN}")
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if language not in LANGUAGES:
        raise UserError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    if len(display_name) > 128:
        raise UserError("the display name must have at most 128 characters")
    _check_password(password)
    values = {
        "username": username,
        "password_hash": _HASHER.hash(password),
        "role": role,
        "display_name": display_name or username,
        "language": language,
        "active": 1,
        "created_at": utc_text(now_utc()),
    }
    try:
        with begin_write(engine) as conn:
            existing = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
            if existing is not None and replace:
                values.pop("created_at")
                # A replaced password ends the sessions signed in with the old one.
                conn.execute(update(users).where(users.c.id == existing)
                             .values(**values, session_gen=users.c.session_gen + 1))
                user_id = existing
            else:
                user_id = inserted_id(conn.execute(insert(users).values(**values)))
    except IntegrityError as exc:
        raise UserError(f"username {username!r} is already taken") from exc
    _LOG.info("added user %s (%s)", username, role)
    return int(user_id)


def authenticate(engine: Engine, username: str | None, password: str | None) -> dict[str, Any] | None:
    """The user's row (without the hash) if ``username`` is active and ``password`` is right;
    None otherwise, in about the same time whichever part was wrong."""
    if not isinstance(username, str) or not isinstance(password, str):
        return None
    if len(password) > MAX_PASSWORD_LENGTH:
        return None
    with engine.connect() as conn:
        row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    if row is None or not row["active"]:
        try:
            _HASHER.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        _HASHER.verify(row["password_hash"], password)
    except (VerificationError, InvalidHashError):
        return None
    if _HASHER.check_needs_rehash(row["password_hash"]):
        with begin_write(engine) as conn:
            conn.execute(update(users).where(users.c.id == row["id"])
                         .values(password_hash=_HASHER.hash(password)))
        _LOG.info("password hash of %s renewed with current parameters", username)
    return {k: row[k] for k in (c.name for c in _PUBLIC)}


def get_user(engine: Engine, user_id: int) -> dict[str, Any] | None:
    """An active user by id (without the hash), or None."""
    with engine.connect() as conn:
        row = conn.execute(
            select(*_PUBLIC).where(users.c.id == user_id, users.c.active == 1)).mappings().first()
    return dict(row) if row is not None else None


def list_users(engine: Engine, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    """Users by username (without hashes)."""
    query = select(*_PUBLIC).order_by(users.c.username)
    if not include_inactive:
        query = query.where(users.c.active == 1)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def deactivate(engine: Engine, username: str) -> bool:
    """Stop a user from signing in (the row stays); False if there is no such active user."""
    with begin_write(engine) as conn:
        changed = conn.execute(update(users).where(users.c.username == username, users.c.active == 1)
                               .values(active=0, session_gen=users.c.session_gen + 1)).rowcount
    if changed:
        _LOG.info("deactivated user %s", username)
    return bool(changed)


def set_password(engine: Engine, username: str, password: str) -> bool:
    """Give an active user a new password (their sessions end); False if there is no such
    active user."""
    _check_password(password)
    with begin_write(engine) as conn:
        changed = conn.execute(update(users).where(users.c.username == username, users.c.active == 1)
                               .values(password_hash=_HASHER.hash(password),
                                       session_gen=users.c.session_gen + 1)).rowcount
    if changed:
        _LOG.info("new password for user %s; their sessions ended", username)
    return bool(changed)


def end_sessions(engine: Engine, user_id: int) -> None:
    """End every web session of a user (at sign-out: a copy of the cookie is worthless too)."""
    with begin_write(engine) as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(session_gen=users.c.session_gen + 1))


def set_language(engine: Engine, user_id: int, language: str) -> None:
    """Remember the page language a user chose."""
    if language not in LANGUAGES:
        raise UserError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    with begin_write(engine) as conn:
        conn.execute(update(users).where(users.c.id == user_id).values(language=language))
