"""The near-miss pages over the real app: a staff user may file and read shared cases and is
refused every other page and action; an anonymous report stays anonymous to colleagues; bad
input is shown again with what was typed; supervisors review and share; the analysis and the
exports are for the readers."""
from __future__ import annotations

import pytest
from flask import url_for

from hub.accounts.users import add_user
from hub.nearmiss import service
from hub.web.nearmiss_pages import STAFF_ENDPOINTS
from tests.support.web_app import PASSWORD, csrf_from, login

FORM = {"occurred_at": "2025-04-02T10:30", "station": "cabinet-1", "place": "", "category": "keys",
        "severity": "moderate", "what": "鍵を差したまま離席した", "why": "電話で呼ばれた"}


@pytest.fixture
def staff(engine, users):
    add_user(engine, "staff-07", PASSWORD, "staff", display_name="Staff 07")
    add_user(engine, "staff-08", PASSWORD, "staff", display_name="Staff 08")
    return ["staff-07", "staff-08"]


def _file(client, **changes):
    page = client.get("/nearmiss/new").get_data(as_text=True)
    return client.post("/nearmiss/new", data={**FORM, **changes, "csrf_token": csrf_from(page)})


def _dummy_urls(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every route, its arguments filled with plausible values."""
    out = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            values = {name: (1 if type(rule._converters[name]).__name__ == "IntegerConverter" else "x")
                      for name in rule.arguments}
            url = url_for(rule.endpoint, **values)
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                out.append((rule.endpoint, method, url))
    return out


def test_a_staff_user_lands_on_the_near_miss_page_and_is_refused_everything_else(app, client, staff):
    response = login(client, "staff-07")
    assert response.headers["Location"] == "/nearmiss/"
    token = csrf_from(client.get("/nearmiss/").get_data(as_text=True))
    tried = 0
    for endpoint, method, url in _dummy_urls(app):
        if endpoint in STAFF_ENDPOINTS:
            continue
        answer = client.open(url, method=method, data={"csrf_token": token})
        assert answer.status_code == 403, f"{method} {url} ({endpoint}) answered {answer.status_code}"
        tried += 1
    assert tried > 40  # every page and API of the hub, not a handful
    page = client.get("/nearmiss/").get_data(as_text=True)
    assert "状況" not in page and "/registry" not in page  # the menu offers only what staff may use
    assert client.get("/nearmiss/analysis").status_code == 403


def test_staff_file_a_report_and_colleagues_do_not_see_it_until_it_is_shared(client, app, staff, engine):
    login(client, "staff-07")
    response = _file(client, anonymous="1")
    assert response.status_code == 302
    case_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert client.get(f"/nearmiss/{case_id}").status_code == 200  # their own
    other = app.test_client()
    login(other, "staff-08")
    assert other.get(f"/nearmiss/{case_id}").status_code == 404
    assert "鍵を差したまま離席した" not in other.get("/nearmiss/").get_data(as_text=True)

    service.review(engine, case_id, "鍵は離席前にキャビネットへ戻す", "sup-01")
    service.share(engine, case_id, "sup-01")
    page = other.get("/nearmiss/").get_data(as_text=True)
    assert "鍵を差したまま離席した" in page and "匿名" in page and "staff-07" not in page
    detail = other.get(f"/nearmiss/{case_id}").get_data(as_text=True)
    assert "鍵は離席前にキャビネットへ戻す" in detail and "staff-07" not in detail


def test_the_supervisor_sees_who_filed_an_anonymous_report_and_reviews_and_shares_it(client, app, staff, users):
    login(client, "staff-07")
    case_id = int(_file(client, anonymous="1").headers["Location"].rsplit("/", 1)[1])
    sup = app.test_client()
    login(sup, users["supervisor"])
    page = sup.get(f"/nearmiss/{case_id}").get_data(as_text=True)
    assert "staff-07" in page and 'id="review-form"' in page and 'id="share-form"' not in page
    token = csrf_from(page)
    # An empty countermeasure: refused, with the reason.
    refused = sup.post(f"/nearmiss/{case_id}/review", data={"countermeasure": " ", "csrf_token": token})
    assert refused.status_code == 400 and "対策" in refused.get_data(as_text=True)
    assert sup.post(f"/nearmiss/{case_id}/review", data={"countermeasure": "離席前に戻す",
                                                         "csrf_token": token}).status_code == 302
    page = sup.get(f"/nearmiss/{case_id}").get_data(as_text=True)
    assert 'id="share-form"' in page
    assert sup.post(f"/nearmiss/{case_id}/share", data={"csrf_token": token}).status_code == 302
    assert "共有済み" in sup.get(f"/nearmiss/{case_id}").get_data(as_text=True)
    # Staff may not review nor share.
    own_token = csrf_from(client.get(f"/nearmiss/{case_id}").get_data(as_text=True))
    assert client.post(f"/nearmiss/{case_id}/review", data={"countermeasure": "x", "csrf_token": own_token}
                       ).status_code == 403
    assert client.post(f"/nearmiss/{case_id}/share", data={"csrf_token": own_token}).status_code == 403


def test_bad_input_is_shown_again_with_everything_typed(client, staff):
    login(client, "staff-07")
    response = _file(client, station="", place="", what="書いた内容は消えない")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert 'id="form-error"' in page and "書いた内容は消えない" in page and "電話で呼ばれた" in page
    response = _file(client, occurred_at="2025-13-40T99:99")
    assert response.status_code == 400 and "2025-13-40T99:99" in response.get_data(as_text=True)


def test_staff_cannot_start_a_case_from_an_alert(client, staff):
    login(client, "staff-07")
    assert client.get("/nearmiss/new?alert=1").status_code == 403


def test_the_auditor_reads_the_analysis_and_exports_but_does_not_review(client, users, engine, cfg, staff):
    login(client, "staff-07")
    case_id = int(_file(client, anonymous="1").headers["Location"].rsplit("/", 1)[1])
    auditor = client.application.test_client()
    login(auditor, users["auditor"])
    page = auditor.get("/nearmiss/analysis?since=2025-01&until=2025-06").get_data(as_text=True)
    assert "<svg" in page and 'data-month="2025-04"><th>2025-04</th><td class="num">1<' in page
    detail = auditor.get(f"/nearmiss/{case_id}").get_data(as_text=True)
    assert 'id="review-form"' not in detail and "staff-07" not in detail
    export = auditor.get("/nearmiss/cases.csv")
    assert export.status_code == 200 and "staff-07" not in export.get_data(as_text=True)
    assert auditor.get("/nearmiss/import").status_code == 403
    assert auditor.get("/nearmiss/analysis?since=2025-99").status_code == 400
