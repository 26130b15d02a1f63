"""The procedures pages over the real app: an admin adds a document and uploads versions (a
Markdown one shown rendered with its HTML escaped, the bytes downloadable with their SHA-256);
a new version puts the people it applies to on the to-confirm list; a supervisor records a
confirmation on the page; the list exports as CSV and Excel; who may do what; bad input shown
again in the reader's language with nothing stored; a refusal for an unconfirmed procedure is
worded on the events page."""
from __future__ import annotations

import hashlib
import io

import pytest
from openpyxl import load_workbook

from hub import registry
from hub.procedures import service
from tests.hub.helpers import event
from tests.support.web_app import csrf_from, login, store

ADMIN = "adm-01"
MANUAL = "# 鍵の取扱手順\n\n1. 鍵は使用後すぐに戻す。\n\n<script>alert('x')</script>\n".encode()


@pytest.fixture
def people(engine):
    for number, employment in (("0012", "regular"), ("0021", "part_time"), ("0022", "part_time")):
        registry.add_person(engine, ADMIN, number, f"職員{number}", kana=f"ショクイン{number}", section="戸籍係",
                            employment=employment, role="係員")


def _add(client, **form):
    token = csrf_from(client.get("/procedures/").get_data(as_text=True))
    return client.post("/procedures/", data={"csrf_token": token, **form})


def _upload(client, doc_id, filename, content, note=""):
    token = csrf_from(client.get(f"/procedures/{doc_id}").get_data(as_text=True))
    return client.post(f"/procedures/{doc_id}/versions", content_type="multipart/form-data",
                       data={"csrf_token": token, "note": note, "file": (io.BytesIO(content), filename)})


def _doc_id(response) -> int:
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def test_an_admin_adds_a_document_uploads_a_version_and_everyone_reads_it_safely(client, users, people, engine):
    login(client, users["admin"])
    added = _add(client, name="鍵の取扱手順書", kind="procedure", sections="戸籍係", employments="part_time",
                 station_kinds="cabinet")
    assert added.status_code == 302
    doc_id = _doc_id(added)
    uploaded = _upload(client, doc_id, "keys.md", MANUAL, note="初版")
    assert uploaded.status_code == 302
    page = client.get(f"/procedures/{doc_id}").get_data(as_text=True)
    digest = hashlib.sha256(MANUAL).hexdigest()
    assert digest in page and "keys.md" in page and "初版" in page
    assert "職員0021" in page and "職員0022" in page and "職員0012" not in page  # part-timers only

    [version] = service.list_versions(engine, "鍵の取扱手順書")
    shown = client.get(f"/procedures/versions/{version.id}").get_data(as_text=True)
    assert "<h1>鍵の取扱手順</h1>" in shown and "<script>alert" not in shown and "&lt;script&gt;" in shown
    download = client.get(f"/procedures/versions/{version.id}/file")
    assert download.data == MANUAL and hashlib.sha256(download.data).hexdigest() == digest
    assert download.headers["Content-Disposition"].startswith("attachment;")


def test_a_new_version_lists_people_to_confirm_and_a_supervisor_records_one(app, client, users, people, engine):
    service.add_document(engine, ADMIN, "パート職員向け手順", "procedure", employments=["part_time"])
    doc_id = service.get_document(engine, "パート職員向け手順").id
    service.upload_version(engine, ADMIN, "パート職員向け手順", "p.md", b"# v1\n")
    login(client, users["supervisor"])
    listed = client.get("/procedures/pending").get_data(as_text=True)
    assert 'data-staff="0021"' in listed and 'data-staff="0022"' in listed and 'data-staff="0012"' not in listed

    token = csrf_from(client.get(f"/procedures/{doc_id}").get_data(as_text=True))
    answer = client.post(f"/procedures/{doc_id}/confirmations",
                         data={"csrf_token": token, "number": "1", "at": "2025-04-10T09:30", "via": "supervisor",
                               "staff_nos": "0021"})
    assert answer.status_code == 302
    listed = client.get("/procedures/pending").get_data(as_text=True)
    assert 'data-staff="0021"' not in listed and 'data-staff="0022"' in listed
    [confirmation] = service.confirmations(engine, "パート職員向け手順")
    assert (confirmation.staff_no, confirmation.recorded_by) == ("0021", "sup-01")
    assert confirmation.confirmed_at == "2025-04-10T00:30:00.000000Z"  # 09:30 in Tokyo
    detail = client.get(f"/procedures/{doc_id}").get_data(as_text=True)
    assert "責任職が記録" in detail  # how it was confirmed, in Japanese
    log = client.get("/registry/log").get_data(as_text=True)  # the registry's change log names it
    assert "読了確認" in log and "パート職員向け手順/v1/0021" in log and "規程・手順書の版" in log

    csv_text = client.get("/procedures/pending.csv").data.decode("utf-8-sig")
    assert "0022" in csv_text and "0021" not in csv_text and csv_text.startswith("文書,")
    book = load_workbook(io.BytesIO(client.get("/procedures/pending.xlsx").data))
    rows = [[c.value for c in r] for r in book.active.iter_rows()]
    assert [r[3] for r in rows[1:]] == ["0022"]


def test_bad_input_is_shown_again_in_japanese_and_nothing_is_stored(client, users, people, engine):
    login(client, users["admin"])
    doc_id = _doc_id(_add(client, name="回覧 2025-04", kind="notice"))
    refused = _upload(client, doc_id, "kairan.docx", b"PK\x03\x04")
    assert refused.status_code == 400
    assert "PDFでもMarkdownでもありません" in refused.get_data(as_text=True)
    assert service.list_versions(engine, "回覧 2025-04") == []
    again = _add(client, name="回覧 2025-04", kind="notice", sections="戸籍係")
    assert again.status_code == 400
    page = again.get_data(as_text=True)
    assert "という文書はすでにあります" in page and 'value="戸籍係"' in page  # what was typed stays


def test_who_may_do_what(client, app, users, people, engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure")
    doc_id = service.get_document(engine, "鍵の取扱手順書").id
    version = service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", b"# v1\n")
    login(client, users["auditor"])  # reads and exports, changes nothing
    assert client.get("/procedures/").status_code == 200
    assert client.get(f"/procedures/versions/{version.id}/file").status_code == 200
    assert client.get("/procedures/pending.csv").status_code == 200
    token = csrf_from(client.get(f"/procedures/{doc_id}").get_data(as_text=True))
    assert client.post("/procedures/", data={"csrf_token": token, "name": "x", "kind": "rule"}).status_code == 403
    assert client.post(f"/procedures/{doc_id}/confirmations",
                       data={"csrf_token": token, "staff_nos": "0021"}).status_code == 403
    supervisor = app.test_client()
    login(supervisor, users["supervisor"])
    assert _upload(supervisor, doc_id, "keys2.md", b"# v2\n").status_code == 403
    assert [v.number for v in service.list_versions(engine, "鍵の取扱手順書")] == [1]


def test_a_refusal_for_an_unconfirmed_procedure_is_worded_on_the_events_page(client, users, engine):
    store(engine, [("event", event("cabinet-1", 1, kind="badge.denied", person="0022",
                                   data={"reason": "unconfirmed_procedure", "decision": "deny"}))])
    login(client, users["supervisor"])
    assert "現行の規程・手順書が未確認" in client.get("/events").get_data(as_text=True)
    client.post("/language", data={"lang": "en", "csrf_token": csrf_from(client.get("/events").get_data(as_text=True))})
    assert "current procedure not read and confirmed" in client.get("/events").get_data(as_text=True)


def test_a_training_that_requires_reading_a_version_says_so_on_the_trainings_page(client, users, engine):
    registry.add_training(engine, ADMIN, "個人情報保護研修", ["cabinet"], 365)
    service.add_document(engine, ADMIN, "個人情報保護規程", "rule")
    service.upload_version(engine, ADMIN, "個人情報保護規程", "r.md", b"# v1\n")
    doc_id = service.get_document(engine, "個人情報保護規程").id
    login(client, users["admin"])
    token = csrf_from(client.get(f"/procedures/{doc_id}").get_data(as_text=True))
    answer = client.post(f"/procedures/{doc_id}/training",
                         data={"csrf_token": token, "training": "個人情報保護研修", "number": "1"})
    assert answer.status_code == 302
    assert "個人情報保護規程 第1版の読了が必要" in client.get("/registry/trainings").get_data(as_text=True)
    assert "個人情報保護研修 (v1)" in client.get(f"/procedures/{doc_id}").get_data(as_text=True)
