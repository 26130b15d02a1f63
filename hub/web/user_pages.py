"""The web users and the sites each one sees (``/users``, admins only): a supervisor the sites
they are responsible for, an auditor the sites they audit (hub.accounts.sites).

No site ticked means every site, as before sites could be chosen. Each change is written to the
registry change log and its side log (hub.accounts.sites); a bad or unknown site is refused
with its code, worded here, and nothing is changed.
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.accounts import sites as user_sites
from hub.accounts import users
from hub.ledgers.closeout import sites_known
from hub.stations.directory import site_name
from hub.web import i18n
from hub.web.auth import role_required
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("users", __name__, url_prefix="/users")

ADMIN = "admin"

ERRORS: dict[str, Any] = {
    "user_sites.no_user": _l("There is no such active user."),
    "user_sites.bad_site": _l("“%(value)s” is not a site ID."),
    "user_sites.unknown_site": _l("“%(value)s” is not one of the hub's sites."),
    "user_sites.too_many": _l("Too many sites at once."),
}


def _known() -> list[str]:
    st = state()
    return sites_known(st.engine, st.cfg)


@bp.get("")
@role_required(ADMIN)
def page():
    st = state()
    chosen = user_sites.all_user_sites(st.engine)
    people = [{**u, "sites": chosen.get(int(u["id"]), []),
               "scoped": u["role"] in user_sites.SCOPED_ROLES}
              for u in users.list_users(st.engine)]
    return render_template("users.html", title=_("Users and their sites"), people=people,
                           sites=[(s, site_name(st.cfg, s)) for s in _known()])


@bp.post("/<username>/sites")
@role_required(ADMIN)
def set_sites(username: str):
    wanted = request.form.getlist("sites")
    try:
        changed = user_sites.set_sites(state().engine, current_user.username, username, wanted, known=_known())
    except user_sites.SiteScopeError as exc:
        if exc.code == "user_sites.no_user":
            abort(404)
        _LOG.info("%s could not set the sites of %s: %s", current_user.username, username, exc)
        flash(str(i18n.label(ERRORS, exc.code)) % {"value": exc.value}, "error")
        return redirect(url_for("users.page") + f"#user-{username}")
    if changed:
        flash(_("The sites of %(user)s were saved.", user=username), "ok")
    else:
        flash(_("Nothing changed for %(user)s.", user=username), "ok")
    return redirect(url_for("users.page") + f"#user-{username}")
