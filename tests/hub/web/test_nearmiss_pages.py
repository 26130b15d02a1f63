"""The near-miss pages over the real app: a staff user may file and read shared cases and is
refused every other page and action; an anonymous report stays anonymous to colleagues; bad
input is shown again with what was typed; supervisors review and share; the analysis and the
exports are for the readers."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone
from html import unescape

import pytest
from flask import url_for

from hub import registry
from hub.accounts.users import add_user
from hub.alerting.sinks import MemorySink
from hub.audit import verify
from hub.nearmiss import digest, service
from hub.nearmiss.model import CaseInput
from hub.store.chain import verify_side
from hub.web.app import create_app
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


# --- the monthly digest, sent by hand ---

def _shared_in_march(engine, cfg) -> int:
    march = datetime(2025, 3, 10, 9, 0, tzinfo=timezone.utc)
    case_id = service.file_case(engine, cfg, CaseInput(
        occurred_at=march, category="shredder", what="シュレッダーのごみ箱が満杯のまま", why="当番が決まっていない",
        severity="minor", place="奥の事務室"), "staff-07", now=march)
    service.review(engine, case_id, "昼にごみ箱を空にする当番を決めた", "sup-01", now=march)
    service.share(engine, case_id, "sup-01", now=march)
    return case_id


def _send(client, **form):
    token = csrf_from(client.get("/nearmiss/").get_data(as_text=True))
    return client.post("/nearmiss/digest", data={"csrf_token": token, **form}, follow_redirects=True)


def test_a_supervisor_sends_a_months_digest_by_hand_once_unless_sent_again(engine, cfg, bus, users):
    sink = MemorySink()
    app = create_app(engine, cfg, bus=bus, digest_sinks=[sink], overrides={"TESTING": True})
    client = app.test_client()
    login(client, users["supervisor"])
    case_id = _shared_in_march(engine, cfg)
    page = client.get("/nearmiss/").get_data(as_text=True)
    assert 'id="digest-form"' in page and "まだ送信したまとめはありません。" in page

    answer = _send(client, month="2025-03").get_data(as_text=True)
    assert "2025-03 のまとめ（1 件）を送信しました。" in answer
    [message] = sink.sent
    assert "シュレッダーのごみ箱が満杯のまま" in message.body and "staff-07" not in message.body
    assert 'data-month="2025-03"' in answer  # listed as sent
    assert digest.sent_months(engine).keys() == {"2025-03"}

    # Once per month: the same month again is refused and says how to force it.
    answer = _send(client, month="2025-03").get_data(as_text=True)
    assert "2025-03 のまとめは送信済みです。もう一度送るには「再送信する」" in answer
    assert len(sink.sent) == 1
    answer = _send(client, month="2025-03", again="1").get_data(as_text=True)
    assert "2025-03 のまとめ（1 件）を再送信しました。" in answer
    assert len(sink.sent) == 2

    # Recorded as the scheduled one is: the near-miss log names who sent it, and verify agrees.
    with engine.connect() as conn:
        sent = [e.body() for e in verify_side(conn, "nearmiss").entries if e.body().get("op") == "digest"]
    assert [(e["month"], e["cases"], e["by"], e.get("again")) for e in sent] == [
        ("2025-03", [case_id], "sup-01", None), ("2025-03", [case_id], "sup-01", True)]
    out = io.StringIO()
    verify.run(cfg.db_url(), out)
    assert "(1 cases, 1 shared, 1 digests)" in out.getvalue()

    # A month not begun, a malformed month: refused, nothing sent.
    assert "まだ始まっていないため" in _send(client, month="2999-01").get_data(as_text=True)
    assert "March は年月（YYYY-MM）ではありません。" in _send(client, month="March").get_data(as_text=True)
    assert len(sink.sent) == 2



def test_a_target_that_refuses_the_digest_is_said_on_the_page_and_the_month_stays_recorded(engine, cfg, bus,
                                                                                          users):
    app = create_app(engine, cfg, bus=bus, digest_sinks=[MemorySink(refuse=1)], overrides={"TESTING": True})
    client = app.test_client()
    login(client, users["supervisor"])
    _shared_in_march(engine, cfg)
    answer = _send(client, month="2025-03").get_data(as_text=True)
    assert "2025-03 のまとめ（1 件）は記録しましたが、1 か所の通知先が受け付けませんでした" in answer
    assert "refused by the stand-in" not in answer  # the sink's own prose stays in the log
    assert digest.sent_months(engine).keys() == {"2025-03"}

def test_the_digest_button_is_the_supervisors_and_says_when_nothing_can_be_sent(client, as_auditor, app, users,
                                                                                   engine, cfg):
    assert 'id="digest"' not in as_auditor.get("/nearmiss/").get_data(as_text=True)
    token = csrf_from(as_auditor.get("/nearmiss/").get_data(as_text=True))
    assert as_auditor.post("/nearmiss/digest", data={"csrf_token": token, "month": "2025-03"}).status_code == 403
    # The app of the conftest has no notification target.
    sup = app.test_client()
    login(sup, users["supervisor"])
    page = sup.get("/nearmiss/").get_data(as_text=True)
    assert 'id="digest-unavailable"' in page and 'id="digest-form"' not in page
    _shared_in_march(engine, cfg)
    answer = _send(sup, month="2025-03").get_data(as_text=True)
    assert "責任職の通知先がないため、まとめを送信できません。" in answer
    assert digest.sent_months(engine) == {}


# --- import: each case in the registry's change log ---

PAPER = (
    "発生日時,ステーション,場所,分類,内容,原因,重大度,報告者,匿名,対策\r\n"
    "2025/04/02 10:30,cabinet-1,,鍵,鍵を差したまま離席,呼ばれて急いだ,中程度,職員0031,,昼前に鍵を戻す\r\n"
    "2025-04-03 14:00,,窓口 2,窓口,別の人の書類を渡しかけた,番号札を確認しなかった,重大,職員0032,はい,\r\n"
)


def _visible(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_imported_cases_are_in_the_registry_change_log_like_other_imports(client, app, users, engine):
    login(client, users["supervisor"])
    token = csrf_from(client.get("/nearmiss/import").get_data(as_text=True))
    answer = client.post("/nearmiss/import", data={"csrf_token": token, "file": (io.BytesIO(PAPER.encode()), "paper.csv")},
                         content_type="multipart/form-data")
    assert answer.status_code == 200 and "paper.csv" in answer.get_data(as_text=True)
    entries = registry.history(engine, entity="nearmiss_case")
    assert sorted((e.action, e.actor, e.after["what"], e.after["file"]) for e in entries) == [
        ("add", "sup-01", "別の人の書類を渡しかけた", "paper.csv"), ("add", "sup-01", "鍵を差したまま離席", "paper.csv")]

    admin = app.test_client()
    login(admin, users["admin"])
    page = _visible(admin.get("/registry/log?entity=nearmiss_case").get_data(as_text=True))
    assert page.count("ヒヤリハット事例") >= 2 and "追加" in page
    assert "分類 鍵" in page and "重大度 重大" in page and "匿名 はい" in page and "状態 対策済み" in page
    # The named reporter is logged; the anonymous one is not (the near-miss log keeps it).
    assert "職員0031" in page and "職員0032" not in page
    # Importing the same file again adds nothing, and logs nothing.
    token = csrf_from(client.get("/nearmiss/import").get_data(as_text=True))
    client.post("/nearmiss/import", data={"csrf_token": token, "file": (io.BytesIO(PAPER.encode()), "paper.csv")},
                content_type="multipart/form-data")
    assert len(registry.history(engine, entity="nearmiss_case")) == 2
