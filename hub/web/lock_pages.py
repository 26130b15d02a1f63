"""Sign-in locks (``/signin-locks``, admins only): the accounts and addresses whose sign-ins
are refused now after too many failures (hub.web.throttle), with the wait left, and the
unlock that clears one of them so its owner can sign in at once.

An outsider can still cause a lock by guessing; this only lets an admin lift it without
restarting the hub. Every unlock goes in the ``signins`` side log (``unlocked``: who, which
account or address, when) before the counts are cleared.
"""
from __future__ import annotations

import logging

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from hub.audit.entries import record_unlock
from hub.web import throttle
from hub.web.state import state
from hub.web.auth import role_required

_LOG = logging.getLogger(__name__)

bp = Blueprint("locks", __name__, url_prefix="/signin-locks")

ADMIN = "admin"


@bp.get("")
@role_required(ADMIN)
def page():
    return render_template("signin_locks.html", title=_("Sign-in locks"), locks=throttle.guard().locks())


@bp.post("/unlock")
@role_required(ADMIN)
def unlock():
    scope = request.form.get("scope", "")
    name = request.form.get("name", "")
    if scope not in throttle.SCOPES or not name or len(name) > 64:
        abort(400)
    if scope == "account":
        name = throttle.account_key(name)
    try:
        record_unlock(state().engine, current_user.username, request.remote_addr, scope, name)
    except Exception:  # an unlock nobody could audit is not done
        _LOG.exception("could not record the unlock of %s %r; counts left as they are", scope, name)
        flash(_("The unlock could not be recorded, so it was not done. Try again."), "error")
        return redirect(url_for("locks.page"))
    was_refused = throttle.guard().unlock(scope, name)
    _LOG.warning("%s unlocked sign-in for %s %r (was refused: %s)", current_user.username, scope, name, was_refused)
    if scope == "account":
        flash(_("Account %(name)s unlocked: it can sign in now.", name=name), "ok")
    else:
        flash(_("Address %(name)s unlocked: sign-ins from it are checked again.", name=name), "ok")
    return redirect(url_for("locks.page"))
