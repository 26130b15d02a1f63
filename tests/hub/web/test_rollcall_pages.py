"""The roll-call pages over the real app: a supervisor opens a session with the form (bad
input shown again in Japanese with what was typed), the session page shows who is present,
late, not expected and absent as taps are stored and reloads itself while open, closing it
records attendance; auditors read and export but neither open nor close."""
from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from hub import registry
from hub.config import load
from hub.procedures import service as procedures
from hub.rollcall import service
from tests.hub.helpers import event
from tests.hub.rollcall.conftest import ACTOR, JST, PEOPLE, SECTION, TRAINING
from tests.support.web_app import STATIONS, csrf_from, login, store, write_config

UNITS = [*STATIONS, {"id": "rollcall-1", "site": "ward-a", "kind": "rollcall", "name": "会議室の点呼端末"}]


@pytest.fixture
def cfg(tmp_path):
    return load(write_config(tmp_path / "hub", stations=UNITS))


@pytest.fixture
def office(engine):
    registry.add_training(engine, ACTOR, TRAINING, ["cabinet"], 365)
    for number, kana, section, employment, badge in PEOPLE:
        registry.add_person(engine, ACTOR, number, f"職員{number}", kana=kana, section=section,
                            employment=employment, role="係員")
        registry.add_badge(engine, ACTOR, number, badge)
    return engine


def start_text(minutes_ago: int) -> str:
    return (datetime.now(JST) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M")


def open_form(client, **changes):
    page = client.get("/rollcall/new").get_data(as_text=True)
    form = {"kind": "training", "training": TRAINING, "topic": "", "starts_at": start_text(0), "window_min": "10",
            "section": SECTION, "employment": "part_time", "staff_numbers": "", "stations": "rollcall-1",
            "csrf_token": csrf_from(page), **changes}
    return client.post("/rollcall/new", data=form)


def tap(seq: int, number: str, at: datetime) -> tuple[str, dict]:
    return ("event", event("rollcall-1", seq, kind="rollcall.tap", at=at.isoformat(), person=number,
                           badge=f"{number}000000000000", data={"session": 1, "answer": "present"}))


def test_a_supervisor_opens_a_roll_call_and_watches_it_fill(as_supervisor, office):
    page = as_supervisor.get("/rollcall/new").get_data(as_text=True)
    # Roll-call units first, then every other station with a reader, named with its kind.
    assert page.index("会議室の点呼端末") < page.index("Cabinet 1 (鍵保管庫)")
    response = open_form(as_supervisor, starts_at=start_text(12))
    assert response.status_code == 302
    sid = int(response.headers["Location"].rsplit("/", 1)[1])
    page = as_supervisor.get(f"/rollcall/{sid}").get_data(as_text=True)
    assert 'data-refresh-s="5"' in page and "rollcall.js" in page  # kept up to date while open
    assert page.count('data-status="absent"') == 2 and "職員0012" in page and "職員0031" in page

    opened = service.get_session(office, sid).opened_at
    store(office, [tap(1, "0012", opened), tap(2, "0099", opened)])  # taps never after the close below
    page = as_supervisor.get(f"/rollcall/{sid}").get_data(as_text=True)
    # Started 12 minutes ago with a 10-minute window: a tap now is late.
    assert 'data-staff="0012" data-status="late"' in page
    assert 'data-staff="0099" data-status="unexpected"' in page and "対象外" in page
    assert 'data-staff="0031" data-status="absent"' in page

    token = csrf_from(page)
    closed = as_supervisor.post(f"/rollcall/{sid}/close", data={"csrf_token": token}, follow_redirects=True)
    page = closed.get_data(as_text=True)
    assert "締め切りました" in page and "data-refresh-s" not in page and "http-equiv=\"refresh\"" not in page
    assert [r["training"] for r in registry.person_record(office, "0012")] == [TRAINING]
    assert registry.person_record(office, "0031") == []
    assert service.get_session(office, sid).procedure_version_id is None
    log = as_supervisor.get("/registry/log").get_data(as_text=True)
    assert "点呼の結果" in log and "遅刻" in log and "対象外" in log  # the outcomes, worded, in the change log


def test_a_bad_form_is_shown_again_with_what_was_typed_and_the_reason_in_japanese(as_supervisor, office):
    response = open_form(as_supervisor, stations="", topic="説明会", window_min="15")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "受付場所: 点呼端末を1台以上選んでください。" in page
    assert 'value="説明会"' in page and 'value="15"' in page
    assert service.list_sessions(office) == []


def test_a_reading_of_a_procedures_current_version_is_opened_on_the_form_and_named_on_its_page(as_supervisor, office):
    procedures.add_document(office, ACTOR, "鍵の取扱手順書", "procedure", sections=[SECTION])
    procedures.upload_version(office, ACTOR, "鍵の取扱手順書", "keys.md", "# 第1版\n".encode())
    second = procedures.upload_version(office, ACTOR, "鍵の取扱手順書", "keys.md", "# 第2版\n".encode())
    form = as_supervisor.get("/rollcall/new").get_data(as_text=True)
    assert f'<option value="{second.id}" >鍵の取扱手順書 第2版</option>' in form  # only the current version
    assert "第1版" not in form
    response = open_form(as_supervisor, kind="meeting", training="", topic="手順書の読み合わせ",
                         staff_numbers="0044, 0099", section="", employment="", procedure_version_id=str(second.id))
    sid = int(response.headers["Location"].rsplit("/", 1)[1])
    assert service.get_session(office, sid).procedure_version_id == second.id
    page = as_supervisor.get(f"/rollcall/{sid}").get_data(as_text=True)
    assert '<dd id="session-reading">鍵の取扱手順書 第2版</dd>' in page

    refused = open_form(as_supervisor, kind="meeting", training="", topic="読み合わせ", staff_numbers="0044",
                        section="", employment="", procedure_version_id="999", stations="rollcall-1")
    assert refused.status_code == 400
    assert "手順書の版: 版 999 はありません。" in refused.get_data(as_text=True)


def test_an_auditor_reads_and_exports_but_cannot_open_or_close(client, users, office, cfg):
    sid = service.open_session(office, cfg, ACTOR, service.SessionInput(
        kind="meeting", topic="朝礼", starts_at=datetime.now(JST), stations=("rollcall-1",), section=SECTION))
    login(client, users["auditor"])
    assert client.get("/rollcall/new").status_code == 403
    page = client.get(f"/rollcall/{sid}").get_data(as_text=True)
    assert 'id="close-form"' not in page
    assert client.post(f"/rollcall/{sid}/close", data={"csrf_token": csrf_from(page)}).status_code == 403
    csv = client.get(f"/rollcall/{sid}/roster.csv")
    assert csv.status_code == 200 and "Absent" in csv.get_data(as_text=True)  # the auditor reads English
    assert client.get(f"/rollcall/{sid}/roster.xlsx").data[:2] == b"PK"
    assert client.get("/rollcall/999").status_code == 404
