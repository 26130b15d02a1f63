"""The end-of-day close-out page (終業点検): what was found for a site and day, problems first,
and to whom it was sent; with CSV and Excel exports in the reader's language.

``/closeout?site=&day=YYYY-MM-DD`` shows the close-out stored for that day (as it was sent);
with none stored yet, or with ``live=1``, it is built from the store as it is now. The
exports are ``/closeout.csv`` and ``/closeout.xlsx`` with the same arguments.
"""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from hub.ledgers import closeout
from hub.ledgers.base import Labels
from hub.web import i18n, query, reports, scope
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("closeout", __name__)

# The export's words (hub.ledgers.closeout), on the page too.
HEADERS = i18n.lazy(closeout.HEADERS)
STATUSES = i18n.lazy(closeout.STATUSES)
DELIVERY_STATES = {"pending": _l("Sending"), "sent": _l("Sent"), "failed": _l("Not delivered")}


def _lang() -> str:
    return "ja" if str(get_locale() or "ja") == "ja" else "en"


def _closeout() -> tuple[closeout.Closeout, bool, list[str]]:
    """(the close-out asked for, whether it is the stored one, the sites to choose from)."""
    st = state()
    sites = scope.keep_sites(closeout.sites_known(st.engine, st.cfg), lambda s: s)
    site = query.text(request.args.get("site"), "site") or (sites[0] if sites else "")
    scope.require_site(site)  # another site's close-out: 404, as one that does not exist
    if not site:
        abort(404, description="no site is known yet")
    day = reports.parse_day(request.args.get("day")) or datetime.now(st.cfg.site_zone(site)).date()
    live = request.args.get("live") == "1"
    found = None if live else closeout.stored(st.engine, site, day)
    if found is not None:
        return found, True, sites
    return closeout.build(st.engine, st.cfg, site, day), False, sites


@bp.get("/closeout")
def page():
    c, is_stored, sites = _closeout()
    st = state()
    has_stored = is_stored or closeout.stored(st.engine, c.site, c.day) is not None
    args: dict[str, Any] = {"site": c.site, "day": c.day.isoformat(), **({} if is_stored else {"live": "1"})}
    lang = _lang()
    rows = [{"item": i, "section": closeout.section_name(i.section, lang),
             "text": closeout.describe(i, lang, c.zone, station=False)} for i in c.items]
    return render_template(
        "closeout.html", title=_("Close-out"), c=c, rows=rows, stored=is_stored, has_stored=has_stored,
        sites=sites,
        delivery_label=lambda s: str(DELIVERY_STATES.get(s, s)),
        live_url=url_for("closeout.page", site=c.site, day=c.day.isoformat(), live="1"),
        stored_url=url_for("closeout.page", site=c.site, day=c.day.isoformat()),
        csv_url=url_for("closeout.export_csv", **args), xlsx_url=url_for("closeout.export_xlsx", **args),
    )


def _labels() -> Labels:
    return closeout.labels(_lang())


@bp.get("/closeout.csv")
def export_csv():
    c, _stored, _sites = _closeout()
    body = closeout.to_csv(c, _labels(), _lang())
    _LOG.info("%s exported the close-out of %s %s as CSV", current_user.username, c.site, c.day)
    return reports.download(body, "csv", "closeout", c.site, c.day.isoformat())


@bp.get("/closeout.xlsx")
def export_xlsx():
    c, _stored, _sites = _closeout()
    labels = _labels()
    body = closeout.to_xlsx(c, labels, _lang(), title=f"{labels.sheet} {c.site_name} {c.day.isoformat()}")
    _LOG.info("%s exported the close-out of %s %s as Excel", current_user.username, c.site, c.day)
    return reports.download(body, "xlsx", "closeout", c.site, c.day.isoformat())
