"""Signing in and out, the language switch, and the role check.

A wrong username and a wrong password get the same answer (and take the same time, see
hub.accounts.users), so the page never tells whether an account exists. Failed attempts are counted
per account and per address (hub.web.throttle): past the limits an attempt is refused with
429 before its password is checked. Signing out ends every session of the user (hub.accounts.users
session generation), so a copied cookie is worthless afterwards.
"""
from __future__ import annotations

import functools
import logging
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin, current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from hub.accounts import users
from hub.audit.entries import record_signin
from hub.web import i18n, throttle
from hub.web.redirects import local_path
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

ACK_ROLES = ("admin", "supervisor")


class WebUser(UserMixin):
    """A signed-in user, from a users row (never with its password hash)."""

    def __init__(self, row: dict[str, Any]):
        self.user_id = int(row["id"])
        self.username = row["username"]
        self.role = row["role"]
        self.display_name = row["display_name"] or row["username"]
        self.language = row["language"]

    def get_id(self) -> str:
        return str(self.user_id)

    @property
    def can_acknowledge(self) -> bool:
        return self.role in ACK_ROLES


def role_required(*roles: str):
    """Only users with one of ``roles`` may use the view; others get 403."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated or current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return inner

    return wrap


class LoginForm(FlaskForm):
    """The sign-in form (with its CSRF token)."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    target = local_path(request.args.get("next")) or url_for("pages.status")
    if current_user.is_authenticated and request.method == "GET":
        return redirect(target)
    if form.validate_on_submit():
        guard = throttle.guard()
        refusal = guard.refusal(form.username.data, request.remote_addr)
        if refusal is not None:
            _LOG.warning("sign-in for %r from %s not tried: too many failures (%s), %d s to wait",
                         form.username.data, request.remote_addr, refusal.scope, refusal.retry_after_s)
            guard.refused_attempt(form.username.data, request.remote_addr, "form")
            return throttle.refused(refusal, api=False)
        row = users.authenticate(state().engine, form.username.data, form.password.data)
        if row is not None:
            lang = session.get("lang")
            # A fresh session at sign-in: nothing set before it (fixation) carries over.
            session.clear()
            if lang:
                session["lang"] = lang
            if row["role"] == "staff" and not local_path(request.args.get("next")):
                target = url_for("nearmiss.index")  # the one page staff may use
            login_user(WebUser(row))
            session["gen"] = row["session_gen"]
            session.permanent = True
            _LOG.info("user %s signed in from %s", row["username"], request.remote_addr)
            record_signin(state().engine, "signed_in", row["username"], request.remote_addr)
            return redirect(target)
        _LOG.warning("sign-in refused for %r from %s", form.username.data, request.remote_addr)
        guard.failed(form.username.data, request.remote_addr, "form")
        record_signin(state().engine, "refused", form.username.data, request.remote_addr)
        return render_template("login.html", form=form, title=_("Sign in"), next_path=local_path(request.args.get("next")),
                               error=_("The username or password is not correct.")), 401
    return render_template("login.html", form=form, title=_("Sign in"), error=None,
                           next_path=local_path(request.args.get("next")))


@bp.post("/logout")
def logout():
    if current_user.is_authenticated:
        _LOG.info("user %s signed out", current_user.username)
        record_signin(state().engine, "signed_out", current_user.username, request.remote_addr)
        if not g.get("basic_auth"):
            # Every copy of this session's cookie ends here, not only the browser's.
            users.end_sessions(state().engine, current_user.user_id)
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You have signed out."))
    return redirect(url_for("auth.login"))


@bp.post("/language")
def language():
    lang = request.form.get("lang", "")
    if lang not in i18n.LANGUAGES:
        abort(400)
    session["lang"] = lang
    if current_user.is_authenticated:
        # Remembered for the next sign-in too, from any browser.
        users.set_language(state().engine, current_user.user_id, lang)
    return redirect(local_path(request.form.get("next")) or url_for("pages.status"))
