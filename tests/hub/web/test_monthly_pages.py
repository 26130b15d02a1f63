"""The monthly report page (/monthly): supervisors and auditors see any month of a site and
download it as PDF and Excel with the same figures; others are refused; a month with nothing
recorded and a store full of hostile values still answer."""
from __future__ import annotations

import io
import re
import subprocess
from datetime import datetime, timezone

import pytest
from openpyxl import load_workbook

from hub.ledgers import monthly_render
from tests.hub.helpers import event
from tests.support.web_app import login, store
from tests.support.extreme_store import QUERIES, fill, where


def use(seq: int, day: int, person: str, badge: str, clock: str = "10:00:00", flagged: bool = False):
    at = f"2025-06-{day:02d}T{clock}+09:00"
    return ("event", event("cabinet-1", seq, kind="key.used", at=at, person=person, badge=badge,
                           data={"unlocked_at": at, "opened_at": at, "closed_at": at, "duration_s": 30,
                                 "flagged": flagged}))


@pytest.fixture
def june(engine):
    from hub import registry

    registry.add_person(engine, "admin", "S001", "Staff 001")
    registry.set_holder(engine, "admin", "cabinet-1", "S001", now=datetime(2025, 5, 1, tzinfo=timezone.utc))
    store(engine, [use(1, 2, "S001", "0123456789ABCDEF"), use(2, 3, "S001", "0123456789ABCDEF"),
                   use(3, 4, "S002", "1111222233334444", clock="20:30:00", flagged=True)])


def test_a_supervisor_sees_the_month_and_downloads_the_same_figures(client, users, june, tmp_path):
    assert login(client, users["supervisor"]).status_code == 302
    page = client.get("/monthly?site=ward-a&month=2025-06")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "自己点検報告" in html
    assert re.search(r'id="mr-holder">2<', html) and re.search(r'id="mr-other">1<', html)
    assert re.search(r'id="mr-after-hours">1<', html)
    # Near-misses are counted from the cases filed (hub.nearmiss): none in this month.
    assert re.search(r'id="mr-near-misses">0<', html)
    charts = re.findall(r'<img src="(data:image/svg\+xml;base64,[^"]+)"', html)
    assert len(charts) == 3

    pdf = client.get("/monthly.pdf?site=ward-a&month=2025-06")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert 'filename="monthly_ward-a_2025-06.pdf"' in pdf.headers["Content-Disposition"]
    (tmp_path / "m.pdf").write_bytes(pdf.data)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "m.pdf"), "-"], capture_output=True,
                          timeout=60, check=True).stdout.decode()
    assert re.search(r"正の鍵責任者による使用\s+2\s*$", text, re.MULTILINE)
    assert re.search(r"その他の職員による使用\s+1\s*$", text, re.MULTILINE)

    book = load_workbook(io.BytesIO(client.get("/monthly.xlsx?site=ward-a&month=2025-06").data))
    summary = {r[0]: r[1] for r in book["自己点検報告"].iter_rows(min_row=2, values_only=True)}
    assert summary["正の鍵責任者による使用"] == 2 and summary["その他の職員による使用"] == 1


def test_the_page_shows_the_same_charts_the_pdf_is_made_from(app, client, users, june):
    assert login(client, users["auditor"]).status_code == 302
    html = client.get("/monthly?site=ward-a&month=2025-06").get_data(as_text=True)
    assert "Monthly self-inspection report" in html  # the auditor reads English
    from hub.ledgers import monthly

    with app.app_context():
        from hub.web.state import state
        report = monthly.build(state().engine, state().cfg, "ward-a", "2025-06")
    document = monthly_render.html_document(report, "en")
    page_charts = re.findall(r'<img src="(data:[^"]+)"', html)
    assert page_charts and page_charts == re.findall(r'<img src="(data:[^"]+)"', document)


def test_a_month_with_nothing_recorded(client, users):
    assert login(client, users["auditor"]).status_code == 302
    html = client.get("/monthly?site=ward-a&month=2031-02").get_data(as_text=True)
    assert re.search(r'id="mr-uses">0<', html)
    assert client.get("/monthly.pdf?site=ward-a&month=2031-02").status_code == 200
    assert client.get("/monthly?site=ward-a&month=2031-13").status_code == 400


@pytest.mark.parametrize("role, allowed", [("admin", False), ("supervisor", True), ("auditor", True)])
def test_only_supervisors_and_auditors_read_it(client, users, role, allowed):
    assert login(client, users[role]).status_code == 302
    for url in ("/monthly", "/monthly.pdf", "/monthly.xlsx"):
        assert client.get(url + "?site=ward-a&month=2031-02").status_code == (200 if allowed else 403)


@pytest.mark.timeout(600)
def test_hostile_stored_values_never_make_a_500(app, client, engine, users):
    fill(engine)
    assert login(client, users["supervisor"]).status_code == 302
    failed = []
    for base in ("/monthly", "/monthly.pdf", "/monthly.xlsx"):
        for q in QUERIES + ["?site=ward-a&month=2025-06", "?month=9999-12&site=ward-a", "?month=0001-01&site=ward-a"]:
            try:
                response = client.get(base + q)
            except Exception as exc:  # TESTING: the app's error would have been a 500
                failed.append((base + q, where(exc)))
                continue
            if response.status_code >= 500:
                failed.append((base + q, response.status_code))
    assert failed == [], failed
