"""The monthly self-inspection report page (自己点検報告): any site and month, with the report
as PDF and Excel in the reader's language. Supervisors and auditors only.

``/monthly?site=&month=YYYY-MM`` (default: the month before this one at the site); the downloads
are ``/monthly.pdf`` and ``/monthly.xlsx`` with the same arguments. The page shows the same HTML
(and the same SVG charts) the PDF is made from (hub.ledgers.monthly_render).
"""
from __future__ import annotations

import logging
from datetime import datetime

from flask import Blueprint, abort, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from hub.ledgers import monthly, monthly_render
from hub.ledgers.closeout import sites_known
from hub.ledgers.shredding import month_days
from hub.web import query, reports
from hub.web.auth import role_required
from hub.web.state import state

_LOG = logging.getLogger(__name__)

bp = Blueprint("monthly", __name__)

ROLES = ("supervisor", "auditor")


def _lang() -> str:
    return "ja" if str(get_locale() or "ja") == "ja" else "en"


def _asked() -> tuple[str, str, list[str]]:
    """(site, month, the sites to choose from) from the query string; 400 if malformed."""
    st = state()
    sites = sites_known(st.engine, st.cfg)
    site = query.text(request.args.get("site"), "site") or (sites[0] if sites else "")
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


def _report() -> tuple[monthly.MonthlyReport, list[str]]:
    st = state()
    site, month, sites = _asked()
    return monthly.build(st.engine, st.cfg, site, month), sites


@bp.get("/monthly")
@role_required(*ROLES)
def page():
    report, sites = _report()
    args = {"site": report.site, "month": report.month}
    return render_template(
        "monthly.html", title=_("Monthly report"), r=report, sites=sites,
        body=Markup(monthly_render.html_body(report, _lang())),
        pdf_url=url_for("monthly.export_pdf", **args), xlsx_url=url_for("monthly.export_xlsx", **args))


@bp.get("/monthly.pdf")
@role_required(*ROLES)
def export_pdf():
    report, _sites = _report()
    body = monthly_render.pdf(report, _lang())
    _LOG.info("%s downloaded the monthly report of %s %s as PDF", current_user.username, report.site, report.month)
    return reports.download(body, "pdf", "monthly", report.site, report.month)


@bp.get("/monthly.xlsx")
@role_required(*ROLES)
def export_xlsx():
    report, _sites = _report()
    body = monthly_render.xlsx(report, _lang())
    _LOG.info("%s downloaded the monthly report of %s %s as Excel", current_user.username, report.site, report.month)
    return reports.download(body, "xlsx", "monthly", report.site, report.month)
