"""The monthly self-inspection report (hub.ledgers.monthly) as HTML, PDF and Excel, in Japanese
or English. No web framework: the scheduler renders it without a request, and the web page
embeds the same HTML (and so the same SVG charts) that the PDF is made from.

- :func:`html_body`: the report as an HTML fragment (sections, tables, inline SVG charts);
- :func:`pdf`: a whole A4 document around it, made into a PDF by WeasyPrint;
- :func:`xlsx`: one sheet per section, every cell through hub.ledgers.spreadsheet.
"""
from __future__ import annotations

import base64
import io
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from hub.alerting.wording import RULE_NAMES
from hub.ledgers.monthly import MonthlyReport
from hub.ledgers.monthly_charts import bar_chart, coverage_chart
from hub.ledgers.spreadsheet import write_cell
from hub.timetext import time_text

_LOG = logging.getLogger(__name__)

_TEMPLATES = Path(__file__).with_name("templates")
_ENV = Environment(loader=FileSystemLoader(str(_TEMPLATES)), autoescape=select_autoescape(["html"]))

# (Japanese, English) words of the report.
WORDS: dict[str, tuple[str, str]] = {
    "title": ("自己点検報告", "Monthly self-inspection report"),
    "site": ("拠点", "Site"),
    "month": ("対象月", "Month"),
    "made": ("作成日時", "Made at"),
    "keys": ("鍵の使用", "Key use"),
    "holder": ("正の鍵責任者による使用", "Uses by the designated holder"),
    "stand_in": ("副（代理）による使用", "Uses by a stand-in"),
    "other": ("その他の職員による使用", "Uses by others"),
    "uses": ("使用回数（合計）", "Key uses (total)"),
    "not_opened": ("解錠したが開けなかった", "Unlocked, not opened"),
    "after_hours": ("時間外の使用", "Uses after hours"),
    "forced": ("扉のこじ開け", "Doors forced"),
    "held_open": ("扉の長時間開放", "Doors held open"),
    "by_person": ("職員別の使用回数", "Uses by person"),
    "person": ("職員番号", "Staff number"),
    "name": ("氏名", "Name"),
    "role": ("立場", "Role"),
    "count": ("回数", "Count"),
    "role_holder": ("正", "Holder"),
    "role_standin": ("副", "Stand-in"),
    "role_other": ("その他", "Other"),
    "hour_chart": ("時間帯別の鍵の使用", "Key uses by hour of day"),
    "shredding": ("シュレッダー", "Shredding"),
    "sessions": ("利用回数", "Sessions"),
    "flagged": ("要確認", "Flagged"),
    "not_on_roster": ("2人とも当番外", "Neither on the roster"),
    "unended": ("終了の記録なし・中断", "No end recorded or cut short"),
    "printing": ("印刷", "Printing"),
    "released_jobs": ("受け取られた印刷ジョブ", "Print jobs released"),
    "released_pages": ("受け取られた枚数", "Pages released"),
    "expired": ("期限切れで取り消されたジョブ", "Jobs expired unprinted"),
    "failed": ("受け取りに失敗したタップ", "Releases that failed"),
    "uncollected": ("印刷物の取り忘れ", "Printouts left in the tray"),
    "training": ("研修の受講状況", "Training coverage"),
    "people": ("在籍者（月末）", "People active (month end)"),
    "trained": ("受講済み", "Trained"),
    "untrained": ("未受講", "Untrained"),
    "training_expired": ("有効期限切れ", "Expired"),
    "expiring": ("翌月に有効期限が切れる研修", "Training expiring next month"),
    "training_name": ("研修", "Training"),
    "expires_on": ("有効期限", "Expires on"),
    "coverage_chart": ("研修の受講状況（月末）", "Training coverage (month end)"),
    "none": ("なし", "None"),
    "near_misses": ("ヒヤリハット", "Near-misses"),
    "near_misses_none": ("ヒヤリハットはまだ本システムで記録していません（この欄は記録機能の追加後に集計されます）。",
                         "Near-misses are not recorded by this system yet (this section will count them once they are)."),
    "alerts": ("アラート", "Alerts"),
    "raised": ("当月に発生したアラート", "Alerts raised in the month"),
    "open_count": ("未確認のアラート", "Alerts still open"),
    "alert_chart": ("週別のアラート件数", "Alerts by week"),
    "rule": ("種類", "Rule"),
    "raised_at": ("発生日時", "Raised at"),
    "station": ("端末", "Station"),
    "details": ("内容", "Details"),
    "offline": ("端末のオフライン時間", "Stations' offline time"),
    "offline_time": ("オフライン時間", "Offline time"),
    "periods": ("回数", "Times"),
    "verification": ("監査記録の検証", "Audit trail verification"),
    "verified_ok": ("改ざんは検出されませんでした", "No tampering found"),
    "verified_bad": ("検証で問題が見つかりました", "The verification found a problem"),
    "figure": ("項目", "Figure"),
    "value": ("値", "Value"),
    "week_of": ("週の初日", "Week of"),
    "seal": ("確認印", "Checked by"),
    "pdf_missing": ("PDFを作成できなかったため添付していません。下記のページから取得してください",
                    "The PDF could not be made and is not attached; download it from the page below"),
}


def word(key: str, lang: str) -> str:
    return WORDS[key][0 if lang == "ja" else 1]


def rule_name(rule: str, lang: str) -> str:
    names = RULE_NAMES.get(rule)
    return names[0 if lang == "ja" else 1] if names else rule


def duration_text(seconds: float, lang: str) -> str:
    minutes = int(round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    if lang == "ja":
        return f"{hours}時間{minutes:02d}分"
    return f"{hours} h {minutes:02d} min"


def charts(report: MonthlyReport, lang: str) -> dict[str, str]:
    """The report's three charts as SVG documents (text kept as text)."""
    t = report.training
    return {
        "hours": bar_chart(tuple(str(h) if h % 3 == 0 else "" for h in range(24)), tuple(report.keys.by_hour),
                           word("hour_chart", lang)),
        "weeks": bar_chart(tuple(f"{d.month:02d}/{d.day:02d}" for d, _n in report.alerts.by_week),
                           tuple(n for _d, n in report.alerts.by_week), word("alert_chart", lang), color="#cc6633"),
        "coverage": coverage_chart(((word("trained", lang), t.trained, "#4e9a06"),
                                    (word("training_expired", lang), t.expired, "#edd400"),
                                    (word("untrained", lang), t.untrained, "#cc0000")),
                                   word("coverage_chart", lang)),
    }


def _context(report: MonthlyReport, lang: str) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(report.zone)

    def local(value: datetime | None) -> str:
        return time_text(value, zone)

    # Each chart as a data: URI image, the same bytes on the page and in the PDF: the page's
    # Content-Security-Policy (style-src 'self') would strip an inline SVG's style attributes,
    # and an image's own styles are its own. WeasyPrint draws its text as text.
    uris = {name: "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
            for name, svg in charts(report, lang).items()}
    return {"r": report, "lang": lang, "w": lambda key: word(key, lang), "rule_name": lambda r: rule_name(r, lang),
            "duration": lambda s: duration_text(s, lang), "local": local, "charts": uris}


def html_body(report: MonthlyReport, lang: str = "ja") -> str:
    """The report as an HTML fragment (a ``<div class="monthly-report">``)."""
    return _ENV.get_template("monthly_body.html").render(**_context(report, lang))


def html_document(report: MonthlyReport, lang: str = "ja", body: str | None = None) -> str:
    """A whole A4 HTML document of the report, as the PDF is made from."""
    return _ENV.get_template("monthly_document.html").render(
        body=body if body is not None else html_body(report, lang), **_context(report, lang))


def pdf(report: MonthlyReport, lang: str = "ja") -> bytes:
    """The report as a PDF (WeasyPrint; the fonts are the system's Noto Sans CJK JP)."""
    from weasyprint import HTML

    return HTML(string=html_document(report, lang)).write_pdf()


def rows(report: MonthlyReport, lang: str) -> dict[str, list[list[Any]]]:
    """Each section's rows (the first row is the header), as the Excel sheets have them."""
    w = lambda key: word(key, lang)  # noqa: E731
    k, s, p, t, a = report.keys, report.shredding, report.printing, report.training, report.alerts
    near = [w("near_misses"), w("near_misses_none") if report.near_misses is None else report.near_misses]
    summary: list[list[Any]] = [[w("figure"), w("value")],
               [w("site"), f"{report.site_name} ({report.site})"], [w("month"), report.month],
               [w("holder"), k.holder], [w("stand_in"), k.stand_in], [w("other"), k.other], [w("uses"), k.uses],
               [w("not_opened"), k.not_opened], [w("after_hours"), k.after_hours], [w("forced"), k.forced],
               [w("held_open"), k.held_open],
               [w("sessions"), s.sessions], [w("flagged"), s.flagged], [w("not_on_roster"), s.not_on_roster],
               [w("after_hours"), s.after_hours], [w("unended"), s.unended],
               [w("released_jobs"), p.released_jobs], [w("released_pages"), p.released_pages],
               [w("expired"), p.expired], [w("failed"), p.failed], [w("uncollected"), p.uncollected],
               [w("people"), t.people], [w("trained"), t.trained], [w("training_expired"), t.expired],
               [w("untrained"), t.untrained], [w("raised"), a.raised], [w("open_count"), a.open_count],
               near,
               [w("verification"), w("verified_ok") if report.verification.ok else w("verified_bad")]]
    return {
        w("title"): summary,
        w("by_person"): [[w("person"), w("name"), w("role"), w("count")]]
        + [[pe, n, w("role_" + r), c] for pe, n, r, c in k.by_person],
        w("hour_chart"): [["hour", w("count")]] + [[h, c] for h, c in enumerate(k.by_hour)],
        w("expiring"): [[w("person"), w("name"), w("training_name"), w("expires_on")]]
        + [[g.staff_no, g.name, g.training, g.expires_on] for g in t.expiring_next_month],
        w("alerts"): [[w("raised_at"), w("station"), w("rule"), w("details")]]
        + [[a_.raised_at.replace(tzinfo=None) if a_.raised_at else None, a_.station, rule_name(a_.rule, lang),
            a_.text_ja if lang == "ja" else a_.text_en] for a_ in a.open],
        w("alert_chart"): [[w("week_of"), w("count")]] + [[d, n] for d, n in a.by_week],
        w("offline"): [[w("station"), w("offline_time") + " (s)", w("periods")]]
        + [[o.name, round(o.offline_s), o.periods] for o in report.offline],
        w("verification"): [[line] for line in report.verification.lines],
    }


def xlsx(report: MonthlyReport, lang: str = "ja") -> bytes:
    """The report as an Excel workbook, one sheet per section."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    if wb.active is not None:  # the empty first sheet every new workbook has
        wb.remove(wb.active)
    for name, table in rows(report, lang).items():
        ws = wb.create_sheet("".join(ch for ch in name if ch not in "[]:*?/\\")[:31])
        for r, values in enumerate(table, start=1):
            for c, value in enumerate(values, start=1):
                cell = write_cell(ws, value, r, c)
                if r == 1:
                    cell.font = Font(bold=True)
                elif hasattr(value, "year") and hasattr(value, "hour"):
                    cell.number_format = "yyyy-mm-dd hh:mm:ss"  # the one time format (hub.timetext)
                elif hasattr(value, "year"):
                    cell.number_format = "yyyy-mm-dd"
        ws.column_dimensions["A"].width = 36
        ws.column_dimensions["B"].width = 24
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
