"""The monthly self-inspection report page (自己点検報告): any site and month, with the report
as PDF and Excel in the reader's language. Supervisors and auditors only.

``/monthly?site=&month=YYYY-MM`` (default: the month before this one at the site); the downloads
are ``/monthly.pdf`` and ``/monthly.xlsx`` with the same arguments. The page shows the same HTML
(and the same SVG charts) the PDF is made from (hub.ledgers.monthly_render).
"""
from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from hub.ledgers import monthly, monthly_render
from hub.ledgers.closeout import sites_known
from hub.ledgers.shredding import month_days
from hub.web import query, reports, scope
from hub.web.auth import role_required
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("monthly", __name__)

ROLES = ("supervisor", "auditor")
CACHE_SIZE = 8  # reports kept rendered per app


def _lang() -> str:
    return "ja" if str(get_locale() or "ja") == "ja" else "en"


def _asked() -> tuple[str, str, list[str]]:
    """(site, month, the sites to choose from) from the query string; 400 if malformed."""
    st = state()
    sites = scope.keep_sites(sites_known(st.engine, st.cfg), lambda s: s)
    site = query.text(request.args.get("site"), "site") or (sites[0] if sites else "")
    scope.require_site(site)  # another site's report: 404, as one that does not exist
    if not site:
        abort(404, description="no site is known yet")
    month = (request.args.get("month") or "").strip()
    if month:
        try:
            month_days(month)
        except ValueError:
            raise query.BadQuery("month", "month") from None
    else:
        month = monthly.previous_month(datetime.now(st.cfg.site_zone(site)).date())
    return site, month, sites


class _Made:
    """A built report and what was rendered from it (by (format, language))."""

    def __init__(self, report: monthly.MonthlyReport):
        self.report = report
        self.rendered: dict[tuple[str, str], Any] = {}


def _report() -> tuple[_Made, list[str]]:
    """The report asked for: built again only when the store changed (hub.ledgers.monthly
    ``store_mark``) or, for the month under way, a minute later; the page and its downloads
    then show the same figures and cost one build."""
    st = state()
    site, month, sites = _asked()
    now = datetime.now(st.cfg.site_zone(site))
    current = month >= f"{now.year:04d}-{now.month:02d}"
    key = (site, month, monthly.store_mark(st.engine), now.strftime("%H:%M %d") if current else None)
    cache = current_app.extensions.setdefault("kagiban.monthly", {"lock": threading.Lock(), "made": OrderedDict()})
    with cache["lock"]:
        made = cache["made"].get(key)
        if made is not None:
            cache["made"].move_to_end(key)
            return made, sites
    made = _Made(monthly.build(st.engine, st.cfg, site, month))
    with cache["lock"]:
        cache["made"][key] = made
        while len(cache["made"]) > CACHE_SIZE:
            cache["made"].popitem(last=False)
    return made, sites


def _rendered(made: _Made, form: str, render) -> Any:
    lang = _lang()
    if (form, lang) not in made.rendered:
        made.rendered[(form, lang)] = render(made.report, lang)
    return made.rendered[(form, lang)]


@bp.get("/monthly")
@role_required(*ROLES)
def page():
    made, sites = _report()
    report = made.report
    args: dict[str, Any] = {"site": report.site, "month": report.month}
    return render_template(
        "monthly.html", title=_("Monthly report"), r=report, sites=sites,
        body=Markup(_rendered(made, "html", monthly_render.html_body)),
        pdf_url=url_for("monthly.export_pdf", **args), xlsx_url=url_for("monthly.export_xlsx", **args))


@bp.get("/monthly.pdf")
@role_required(*ROLES)
def export_pdf():
    made, _sites = _report()
    report = made.report
    body = _rendered(made, "pdf", monthly_render.pdf)
    _LOG.info("%s downloaded the monthly report of %s %s as PDF", current_user.username, report.site, report.month)
    return reports.download(body, "pdf", "monthly", report.site, report.month)


@bp.get("/monthly.xlsx")
@role_required(*ROLES)
def export_xlsx():
    made, _sites = _report()
    report = made.report
    body = _rendered(made, "xlsx", monthly_render.xlsx)
    _LOG.info("%s downloaded the monthly report of %s %s as Excel", current_user.username, report.site, report.month)
    return reports.download(body, "xlsx", "monthly", report.site, report.month)
