"""The user's own page (``/account``): their personal API tokens, made, listed and revoked;
and the Bearer sign-in that scripts and Prometheus use with them (hub.accounts.tokens).

A new token is shown once, in the answer to the form that made it (never in a redirect,
a flash message or the session cookie); the list shows each token's name, start, when it was
made and last used. A request signed in with a token cannot open this page: a token that
leaked from a scrape config must not be able to see or change the others.
"""
from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.accounts import tokens as api_tokens
from hub.accounts import users
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("tokens", __name__, url_prefix="/account")

ERRORS = {
    "token_name_missing": _l("Give the token a name (what will use it, e.g. prometheus)."),
    "token_name_bad": _l("A token name has at most 64 characters."),
    "token_too_many": _l("You have too many tokens: revoke one first."),
    "token_no_user": _l("Your account cannot have tokens."),
}


def bearer_user(req):
    """The WebUser of a request carrying ``Authorization: Bearer <token>`` with a valid token;
    None without one or with a bad one (checked on every request, never made a session)."""
    from hub.web.auth import WebUser

    auth = req.authorization
    if auth is None or auth.type != "bearer" or not auth.token:
        return None
    engine = state().engine
    found = api_tokens.authenticate(engine, auth.token)
    row = users.get_user(engine, found.user_id) if found is not None else None
    if found is None or row is None:
        _LOG.warning("API token refused from %s", req.remote_addr)
        return None
    g.api_token = found.token_id
    return WebUser(row)


def _own_page_only() -> None:
    if g.get("api_token") is not None or g.get("basic_auth"):
        abort(403)


@bp.get("")
def account():
    _own_page_only()
    return _page()


def _page(new: api_tokens.NewToken | None = None, error: str | None = None, status: int = 200):
    rows = api_tokens.list_tokens(state().engine, current_user.username)
    return render_template("account.html", title=_("Your account"), tokens=rows, new=new, error=error), status


@bp.post("/tokens")
def token_add():
    _own_page_only()
    try:
        made = api_tokens.create(state().engine, current_user.username, request.form.get("name", ""))
    except api_tokens.TokenError as exc:
        return _page(error=str(ERRORS.get(exc.code, exc)), status=400)
    return _page(new=made)


@bp.post("/tokens/<key_id>/revoke")
def token_revoke(key_id: str):
    _own_page_only()
    if api_tokens.revoke(state().engine, key_id, actor=current_user.username, owner=current_user.username):
        flash(_("Token revoked: it no longer works."), "ok")
    else:
        flash(_("No such token of yours, or it was revoked already."), "error")
    return redirect(url_for("tokens.account"))
