"""The registry's pages through the Flask test client, as an admin, a supervisor and an
auditor use them: adding a person and a badge, revoking it, what a supervisor may not do,
an attendance import with mistakes (every problem listed, nothing imported), the change log
with the record before and after, who is untrained or about to expire, designations."""
from __future__ import annotations

import csv
import io
import os
import re
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import holidays as holidays_library
import pytest

from hub import registry
from hub.config import ClosedDays, SiteSection
from hub.registry.compile import compile_station
from tests.support.web_app import csrf_from, login

ACTOR = "adm-01"
TRAINING = "個人情報保護研修"


def today() -> date:
    return datetime.now(ZoneInfo("Asia/Tokyo")).date()


@pytest.fixture
def as_admin(client, users):
    assert login(client, users["admin"]).status_code == 302
    return client


@pytest.fixture
def seeded(engine):
    """A training required at cabinets and three people: trained, expiring soon, expired; one
    more never trained."""
    registry.add_training(engine, "setup", TRAINING, ["cabinet"], 365)
    for number in ("S101", "S102", "S103", "S104"):
        registry.add_person(engine, "setup", number, f"Staff {number[1:]}", section="戸籍係")
    fresh = registry.add_session(engine, "setup", TRAINING, today() - timedelta(days=10))
    registry.record_attendance(engine, "setup", fresh, ["S101"])
    near = registry.add_session(engine, "setup", TRAINING, today() - timedelta(days=350))
    registry.record_attendance(engine, "setup", near, ["S102"])
    old = registry.add_session(engine, "setup", TRAINING, today() - timedelta(days=400))
    registry.record_attendance(engine, "setup", old, ["S103"])
    registry.add_badge(engine, "setup", "S101", "AAAABBBBCCCCDDDD")
    return engine


def token(client, path: str = "/registry/people") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def text_of(html: str) -> str:
    """The page's visible text, tags removed, entities decoded, spaces collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def test_an_admin_adds_a_person_and_a_badge(as_admin, engine):
    csrf = token(as_admin, "/registry/people/new")
    response = as_admin.post("/registry/people/new", data={
        "csrf_token": csrf, "staff_no": "Ｓ２０１", "name": "Staff 201", "kana": "スタッフ", "section": "戸籍係",
        "employment": "shokutaku", "role": "係員", "active_from": "", "active_to": ""})
    assert response.status_code == 302 and response.headers["Location"] == "/registry/people/S201"
    page = as_admin.get("/registry/people/S201").get_data(as_text=True)
    assert "職員を追加しました" in page and "Staff 201" in page and "嘱託" in page

    response = as_admin.post("/registry/people/S201/badges", data={
        "csrf_token": csrf_from(page), "badge_id": "01:2e:4c:d2:a5:b7:1f:03", "valid_from": "", "valid_to": ""})
    assert response.status_code == 302
    page = as_admin.get("/registry/people/S201").get_data(as_text=True)
    badge_row = page.split('id="badge-012E4CD2A5B71F03"')[1].split("</tr>")[0]
    assert "有効" in badge_row and "失効させる" in badge_row and "紛失として登録" in badge_row
    assert registry.find_badge(engine, "012E4CD2A5B71F03")["staff_no"] == "S201"
    [person] = registry.search_people(engine, "スタッフ")
    assert (person["staff_no"], person["employment"], person["role"]) == ("S201", "shokutaku", "係員")
    # Found by the people search too, by name or badge.
    assert "S201" in as_admin.get("/registry/people?q=012E4CD2").get_data(as_text=True)


def test_mistakes_in_the_person_form_are_explained_and_nothing_is_saved(as_admin, engine, seeded):
    csrf = token(as_admin, "/registry/people/new")
    response = as_admin.post("/registry/people/new", data={
        "csrf_token": csrf, "staff_no": "S101", "name": "Someone else", "employment": "regular"})
    assert response.status_code == 400
    assert "職員番号 S101 は既に登録されています。" in response.get_data(as_text=True)
    response = as_admin.post("/registry/people/S101/badges", data={"csrf_token": csrf, "badge_id": "XYZ"})
    page = as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "保存できませんでした: XYZ はバッジIDではありません。X は16進数の数字（0〜9、A〜F）ではありません。" in page
    assert len(registry.get_person(engine, "S101")["badges"]) == 1


def test_the_badge_form_takes_an_id_as_people_copy_it_and_refuses_what_no_card_has(as_admin, engine, seeded):
    csrf = token(as_admin, "/registry/people/S102")

    def add(number: str, typed: str) -> str:
        response = as_admin.post(f"/registry/people/{number}/badges", data={
            "csrf_token": csrf, "badge_id": typed, "valid_from": "", "valid_to": ""})
        assert response.status_code == 302
        return text_of(as_admin.get(response.headers["Location"]).get_data(as_text=True))

    # Hyphens (refused before), full-width digits and letters: stored as the reader reports it.
    assert "バッジ 012E4CD2A5B71F03 を追加しました" in add("S102", "01-2e-4c-d2-a5-b7-1f-03")
    assert "バッジ 04A22B1A6C3D80 を追加しました" in add("S103", "０４Ａ２ ２Ｂ１Ａ ６Ｃ３Ｄ８０")
    assert registry.find_badge(engine, "012E4CD2A5B71F03")["staff_no"] == "S102"
    assert registry.find_badge(engine, "04A22B1A6C3D80")["staff_no"] == "S103"

    # An odd number of digits (one lost in copying), and a length no card has.
    page = add("S104", "01:2E:4C:D2:A5:B7:1F:0")
    assert ("保存できませんでした: 01:2E:4C:D2:A5:B7:1F:0 はバッジIDではありません。"
            "16進数 15 桁はバイト単位になりません（奇数桁）。") in page
    page = add("S104", "04A22B1A6C")
    assert "16進数 10 桁（5 バイト）のIDを持つカードはありません" in page
    assert registry.get_person(engine, "S104")["badges"] == []

    # The same refusals in English.
    as_admin.post("/language", data={"lang": "en", "csrf_token": csrf})
    page = add("S104", "04A22B1A6C")
    assert ("Not saved: 04A22B1A6C is not a badge ID: no card has an ID of 10 hexadecimal digits (5 bytes). "
            "A card's ID has 8, 14, 16 or 20 digits (ISO 14443 UID: 4, 7 or 10 bytes; FeliCa IDm: 8 bytes).") in page
    page = add("S104", "012E4CD2A5B71F0")
    assert "012E4CD2A5B71F0 is not a badge ID: 15 hexadecimal digits are not whole bytes." in page
    assert registry.get_person(engine, "S104")["badges"] == []


def test_an_import_may_name_attendees_by_badge_and_every_bad_badge_is_explained(as_admin, engine, seeded):
    registry.add_badge(engine, "setup", "S102", "04A22B1A")
    rows = [["カードID", "職員番号", "氏名", "研修名", "実施日"],
            ["aaaa-bbbb-cccc-dddd", "", "Staff 101", TRAINING, "2025-04-02"],  # by badge alone
            ["04:a2:2b:1a", "S102", "Staff 102", TRAINING, "2025-04-02"],  # both, agreeing
            ["04:a2:2b:1", "S103", "Staff 103", TRAINING, "2025-04-02"],  # a digit lost
            ["04A22B1A", "S104", "Staff 104", TRAINING, "2025-04-02"],  # someone else's badge
            ["0000111122223333", "", "Staff 103", TRAINING, "2025-04-02"]]  # not registered
    body = io.StringIO()
    csv.writer(body).writerows(rows)
    csrf = token(as_admin, "/registry/import")
    response = as_admin.post("/registry/import", data={
        "csrf_token": csrf, "file": (io.BytesIO(body.getvalue().encode("utf-8-sig")), "cards.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    table = response.get_data(as_text=True).split('class="grid problems"')[1].split("</table>")[0]
    found = [tuple(text_of(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r))
             for r in re.findall(r"<tr>(<td.*?)</tr>", table)]
    assert found == [
        ("4", "カードID", "04:a2:2b:1 はバッジIDではありません。16進数 7 桁はバイト単位になりません（奇数桁）。"
                         "カードのIDは 8、14、16、20 桁のいずれかです。"),
        ("5", "カードID", "カード 04A22B1A は職員番号 S102 のもので、S104 のものではありません"),
        ("6", "カードID", "カード 0000111122223333 は登録されていません"),
    ]
    del rows[3:]
    body = io.StringIO()
    csv.writer(body).writerows(rows)
    response = as_admin.post("/registry/import", data={
        "csrf_token": csrf, "file": (io.BytesIO(body.getvalue().encode("utf-8")), "cards.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 200
    [session] = [s for s in registry.list_sessions(engine) if s["held_on"] == date(2025, 4, 2)]
    assert session["attendees"] == 2


def test_a_supervisor_and_an_auditor_may_read_but_not_change(client, users, engine, seeded):
    login(client, users["supervisor"])
    page = client.get("/registry/people").get_data(as_text=True)
    assert "S101" in page and "Staff 101" in page
    assert "職員を追加" not in page and "変更できるのは管理者だけです" in page
    person = client.get("/registry/people/S101").get_data(as_text=True)
    assert "AAAABBBBCCCCDDDD" in person and "失効させる" not in person
    csrf = csrf_from(page)
    assert client.get("/registry/people/new").status_code == 403
    assert client.post("/registry/people/new", data={
        "csrf_token": csrf, "staff_no": "S999", "name": "Staff 999"}).status_code == 403
    assert client.post("/registry/people/S101/badges", data={
        "csrf_token": csrf, "badge_id": "0000111122223333"}).status_code == 403
    assert client.post("/registry/badges/AAAABBBBCCCCDDDD/revoke", data={"csrf_token": csrf}).status_code == 403
    assert client.post("/registry/designations/cabinet-1", data={
        "csrf_token": csrf, "op": "holder", "staff_no": "S101"}).status_code == 403
    assert client.post("/registry/import", data={"csrf_token": csrf}).status_code == 403
    with pytest.raises(registry.NotFound):
        registry.get_person(engine, "S999")
    assert registry.find_badge(engine, "AAAABBBBCCCCDDDD")["state"] == "active"
    assert registry.history(engine, actor="sup-01") == []

    auditor = client.application.test_client()
    login(auditor, users["auditor"])
    for path in ("/registry/people/S101", "/registry/trainings", "/registry/sessions", "/registry/gaps",
                 "/registry/designations", "/registry/designations/cabinet-1", "/registry/log", "/registry/import"):
        assert auditor.get(path).status_code == 200, path
    assert auditor.get("/registry/attendance.csv").status_code == 200


def test_a_form_without_its_csrf_token_is_refused(as_admin, engine, seeded):
    assert as_admin.post("/registry/badges/AAAABBBBCCCCDDDD/revoke").status_code == 400
    assert as_admin.post("/registry/import", data={"file": (io.BytesIO(b"x"), "a.csv")}).status_code == 400
    assert registry.find_badge(engine, "AAAABBBBCCCCDDDD")["state"] == "active"


def test_revoke_mark_lost_and_reinstate_are_logged_and_reach_the_compiled_policy(as_admin, engine, cfg, seeded):
    csrf = token(as_admin, "/registry/people/S101")
    response = as_admin.post("/registry/badges/AAAABBBBCCCCDDDD/revoke", data={"csrf_token": csrf})
    assert response.headers["Location"] == "/registry/people/S101#badges"
    page = as_admin.get("/registry/people/S101").get_data(as_text=True)
    assert "バッジ AAAABBBBCCCCDDDD を失効させました" in page
    assert "失効" in page.split('id="badge-AAAABBBBCCCCDDDD"')[1].split("</tr>")[0]
    policy = compile_station(engine, cfg, "cabinet-1", "ward-a", "cabinet")
    assert policy["badges"]["AAAABBBBCCCCDDDD"]["decision"] == "deny"
    assert policy["badges"]["AAAABBBBCCCCDDDD"]["reason"] == "revoked"

    as_admin.post("/registry/badges/AAAABBBBCCCCDDDD/reinstate", data={"csrf_token": csrf})
    as_admin.post("/registry/badges/AAAABBBBCCCCDDDD/lost", data={"csrf_token": csrf})
    assert registry.find_badge(engine, "AAAABBBBCCCCDDDD")["state"] == "lost"
    actions = [e.action for e in registry.history(engine, entity="badge", key="AAAABBBBCCCCDDDD")]
    assert actions == ["lose", "reinstate", "revoke", "add"]
    assert all(e.actor == ACTOR for e in registry.history(engine, entity="badge")[:3])


def test_the_change_log_shows_who_when_and_the_record_before_and_after(as_admin, engine, seeded):
    csrf = token(as_admin, "/registry/people/S102/edit")
    as_admin.post("/registry/people/S102/edit", data={
        "csrf_token": csrf, "name": "Staff 102", "kana": "", "section": "住民記録係", "employment": "part_time",
        "role": "", "active_from": "", "active_to": ""})
    page = as_admin.get("/registry/log?entity=person&key=S102").get_data(as_text=True)
    [entry] = [e for e in registry.history(engine, entity="person", key="S102") if e.action == "update"]
    row = page.split(f'id="log-{entry.id}"')[1].split('<tr id="log-')[0]
    visible = text_of(row)
    assert "adm-01" in visible and "職員" in visible and "S102" in visible and "変更" in visible
    assert "所属 戸籍係 → 住民記録係" in visible
    assert "雇用区分 正規 → パート" in visible
    assert "氏名" not in visible  # unchanged fields are not repeated
    # Newest first, and the additions of the setup further down.
    assert page.index(f'id="log-{entry.id}"') < page.index('class="log action-add"')
    assert "setup" in page
    # The page lists every change by default, filtered by who made it on request.
    assert "S102" not in text_of(as_admin.get("/registry/log?actor=nobody").get_data(as_text=True)).split(
        "変更履歴")[-1]


def test_an_import_with_mistakes_lists_every_one_and_imports_nothing(as_admin, engine, seeded):
    rows = [["職員番号", "氏名", "研修名", "実施日", "区分"],
            ["S104", "Staff 104", TRAINING, "2025-04-01", "正規"],
            ["S999", "Staff 999", TRAINING, "2025-04-01", "正規"],
            ["S101", "Staff 1O1", TRAINING, "2025/4/1", "正規"],
            ["S102", "Staff 102", "防災研修", "2025-04-01", "派遣"],
            ["S103", "Staff 103", TRAINING, (today() + timedelta(days=3)).isoformat(), ""]]
    body = io.StringIO()
    csv.writer(body).writerows(rows)
    csrf = token(as_admin, "/registry/import")
    response = as_admin.post("/registry/import", data={
        "csrf_token": csrf, "file": (io.BytesIO(body.getvalue().encode("utf-8-sig")), "受講記録.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "受講記録.csv に 5 件の問題があります。何も取り込んでいません。" in page
    table = page.split('class="grid problems"')[1].split("</table>")[0]
    found = [tuple(text_of(c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r))
             for r in re.findall(r"<tr>(<td.*?)</tr>", table)]
    assert found == [
        ("3", "職員番号", "職員番号 S999 は登録されていません"),
        ("4", "氏名", "'Staff 1O1' は職員番号 S101 の氏名（名簿では Staff 101）と一致しません"),
        ("5", "研修名", "研修 '防災研修' は研修一覧にありません"),
        ("5", "区分", "雇用区分 '派遣' が不明です（正規・嘱託・パート）"),
        ("6", "実施日", f"{today() + timedelta(days=3)} は未来の日付です"),
    ]
    # Nothing imported: not even the good first row, nor a session for it.
    assert not [s for s in registry.list_sessions(engine) if s["held_on"] == date(2025, 4, 1)]
    assert registry.history(engine, actor=ACTOR) == []

    # The corrected file goes in whole.
    good = "職員番号,氏名,研修名,実施日\r\nS104,Staff 104,個人情報保護研修,2025-04-01\r\n" \
           "S101,Staff 101,個人情報保護研修,2025年4月1日\r\n"
    response = as_admin.post("/registry/import", data={
        "csrf_token": csrf, "file": (io.BytesIO(good.encode("utf-8")), "fixed.csv")},
        content_type="multipart/form-data")
    assert response.status_code == 200
    assert "fixed.csv を取り込みました。" in response.get_data(as_text=True)
    [session] = [s for s in registry.list_sessions(engine) if s["held_on"] == date(2025, 4, 1)]
    assert session["attendees"] == 2


def test_a_years_attendance_in_excel_is_larger_than_a_form_and_still_imported(as_admin, engine, seeded):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["職員番号", "氏名", "研修名", "実施日", "場所", "備考"])
    first = date(2024, 1, 1)
    for n in range(300):
        for number in ("S101", "S102", "S103", "S104"):
            # The office's own remarks column is ignored, but makes the file as big as theirs are.
            sheet.append([number, f"Staff {number[1:]}", TRAINING, first + timedelta(days=n), "会議室A",
                          os.urandom(48).hex()])
    raw = io.BytesIO()
    book.save(raw)
    assert len(raw.getvalue()) > 64 * 1024  # more than the app takes in any other form
    response = as_admin.post("/registry/import", data={
        "csrf_token": token(as_admin, "/registry/import"), "file": (io.BytesIO(raw.getvalue()), "attendance.xlsx")},
        content_type="multipart/form-data")
    assert response.status_code == 200, text_of(response.get_data(as_text=True))[-500:]
    assert "追加した受講記録: 1200 件" in response.get_data(as_text=True)
    assert len([s for s in registry.list_sessions(engine) if s["held_on"] < date(2025, 1, 1)]) == 300


def test_the_export_is_the_import_layout(as_admin, seeded):
    response = as_admin.get(f"/registry/attendance.csv?training={TRAINING}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert rows[0] == ["職員番号", "氏名", "研修名", "実施日", "区分", "場所"]
    assert sorted(r[0] for r in rows[1:]) == ["S101", "S102", "S103"]
    xlsx = as_admin.get("/registry/attendance.xlsx")
    assert xlsx.status_code == 200 and xlsx.data[:2] == b"PK"


def test_who_is_untrained_or_expiring_within_30_days_per_station_kind(as_admin, seeded):
    page = as_admin.get("/registry/gaps").get_data(as_text=True)
    cabinet = page.split('id="gaps-cabinet"')[1].split("</section>")[0]
    rows = {number: text_of(cells) for number, cells in
            re.findall(r'/registry/people/(S\d+)">S\d+</a></td>(.*?)</tr>', cabinet, re.S)}
    assert set(rows) == {"S102", "S103", "S104"}  # S101 is trained for a year more
    expires = today() - timedelta(days=350) + timedelta(days=365)
    assert "期限間近" in rows["S102"] and expires.isoformat() in rows["S102"]
    assert "期限切れ" in rows["S103"]
    assert "未受講" in rows["S104"]
    # No training is required at a printer: nobody is listed there.
    assert "この種類の端末に必要な研修はありません。" in page.split('id="gaps-printer"')[1].split("</section>")[0]
    # A shorter horizon leaves the expiring one out.
    narrow = as_admin.get("/registry/gaps?kind=cabinet&within=5").get_data(as_text=True)
    assert "S102" not in narrow and "S103" in narrow and 'id="gaps-shredder"' not in narrow


def test_designations_are_edited_per_station_and_compiled(as_admin, engine, cfg, seeded):
    csrf = token(as_admin, "/registry/designations/cabinet-1")
    post = lambda **form: as_admin.post("/registry/designations/cabinet-1", data={"csrf_token": csrf, **form})  # noqa: E731
    assert post(op="holder", staff_no="S101").status_code == 302
    post(op="standin", staff_no="S102")
    post(op="settings", others="deny", after_hours="flag")
    post(op="after_hours_add", staff_no="S101")
    page = as_admin.get("/registry/designations/cabinet-1").get_data(as_text=True)
    assert "保存しました" in page
    assert "Staff 101" in page.split('id="holder"')[1].split("</tr>")[0]
    assert "Staff 102" in page.split('id="standin-S102"')[1].split("</tr>")[0]
    assert 'id="after-hours-S101"' in page
    overview = text_of(as_admin.get("/registry/designations").get_data(as_text=True))
    assert "Staff 101 S101" in overview and "拒否" in overview
    held = registry.station_designations(engine, "cabinet-1")
    assert held["holder"]["staff_no"] == "S101" and [p["staff_no"] for p in held["stand_ins"]] == ["S102"]
    assert registry.get_station_settings(engine, "cabinet-1") == {"others": "deny", "after_hours": "flag"}
    assert compile_station(engine, cfg, "cabinet-1", "ward-a", "cabinet")["badges"]["AAAABBBBCCCCDDDD"][
        "reason"] == "designated_holder"
    # An unknown staff number is explained; an unknown station is not a page.
    response = post(op="standin", staff_no="S777")
    assert "職員番号 S777 の職員はいません。" in as_admin.get(response.headers["Location"]).get_data(as_text=True)
    assert as_admin.get("/registry/designations/no-such-station").status_code == 404


def test_the_person_page_shows_trainings_designations_and_recent_uses(as_admin, engine, seeded):
    from tests.hub.helpers import event
    from tests.support.web_app import store

    registry.set_holder(engine, "setup", "cabinet-1", "S101")
    store(engine, [("event", event("cabinet-1", 1, kind="badge.granted", at="2025-04-01T09:00:00+09:00",
                                   person="S101", badge="AAAABBBBCCCCDDDD", data={"reason": "designated_holder"})),
                   ("event", event("cabinet-2", 1, kind="badge.granted", at="2025-04-01T10:00:00+09:00",
                                   person="S101", badge="AAAABBBBCCCCDDDD",
                                   data={"reason": "not_designated", "flagged": True})),
                   ("event", event("cabinet-2", 2, kind="badge.granted", at="2025-04-01T11:00:00+09:00",
                                   person="S102", badge="1234123412341234", data={}))])
    page = as_admin.get("/registry/people/S101").get_data(as_text=True)
    trainings = text_of(page.split('id="trainings"')[1].split("</section>")[0])
    assert "鍵保管庫: 受講済み" in trainings and TRAINING in trainings
    assert (today() - timedelta(days=10) + timedelta(days=365)).isoformat() in trainings
    assert "責任者" in page.split('id="designations"')[1].split("</section>")[0]
    uses = page.split('id="uses"')[1].split("</section>")[0]
    assert uses.count("<tr class=\"event") == 2  # the other person's use is not here
    assert uses.index("cabinet-2") < uses.index("Cabinet 1")  # newest first
    assert "要確認: 指定外の使用者" in uses


def test_trainings_and_sessions_are_added_and_attendance_recorded(as_admin, engine, seeded):
    csrf = token(as_admin, "/registry/trainings")
    as_admin.post("/registry/trainings", data={"csrf_token": csrf, "name": "シュレッダー取扱研修",
                                               "station_kinds": ["shredder"], "valid_days": ""})
    [added] = [t for t in registry.list_trainings(engine) if t["name"] == "シュレッダー取扱研修"]
    assert added["station_kinds"] == ["shredder"] and added["valid_days"] is None
    as_admin.post(f"/registry/trainings/{added['id']}", data={
        "csrf_token": csrf, "station_kinds": ["shredder", "printer"], "valid_days": "730"})
    [changed] = [t for t in registry.list_trainings(engine) if t["id"] == added["id"]]
    assert changed["station_kinds"] == ["printer", "shredder"] and changed["valid_days"] == 730

    response = as_admin.post("/registry/sessions", data={
        "csrf_token": csrf, "training": "シュレッダー取扱研修", "held_on": "2025-06-02", "place": "会議室B"})
    session_url = response.headers["Location"]
    as_admin.post(f"{session_url}/attendance", data={"csrf_token": csrf, "staff_nos": "S101, S102\nS101"})
    page = as_admin.get(session_url).get_data(as_text=True)
    assert "受講記録を 2 件登録しました" in page
    assert 'id="attendee-S101"' in page and 'id="attendee-S102"' in page
    sessions = as_admin.get("/registry/sessions?training=シュレッダー取扱研修").get_data(as_text=True)
    assert "2025-06-02" in sessions and "会議室B" in sessions


def test_the_pages_speak_english_too(as_admin, seeded):
    page = as_admin.get("/registry/people").get_data(as_text=True)
    as_admin.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    page = as_admin.get("/registry/people/S101").get_data(as_text=True)
    assert "Badges" in page and "Revoke" in page and "Mark lost" in page and "Recent uses" in page
    assert ">Active<" in page
    assert "Untrained or expiring" in as_admin.get("/registry/gaps").get_data(as_text=True)


def test_a_stations_page_lists_its_sites_next_days_off_with_japanese_names(as_admin, cfg):
    today = datetime.now(cfg.zone()).date()
    closed = today + timedelta(days=3)
    cfg.sites["ward-a"] = SiteSection(holidays=[ClosedDays.model_validate({"date": closed.isoformat(),
                                                                          "label": "庁舎点検"})])
    national = holidays_library.country_holidays("JP", years=[today.year, today.year + 1], language="ja")
    upcoming = sorted(d for d in national if today <= d <= today + timedelta(days=90))

    page = as_admin.get("/registry/designations/cabinet-1").get_data(as_text=True)
    section = page.split('id="days-off"')[1].split("</section>")[0]
    own = text_of(section.split(f'id="day-off-{closed.isoformat()}"')[1].split("</tr>")[0])
    assert "庁舎点検" in own and "独自の閉庁日" in own
    assert upcoming, "Japan has a national holiday within any 90 days"
    first = text_of(section.split(f'id="day-off-{upcoming[0].isoformat()}"')[1].split("</tr>")[0])
    assert national[upcoming[0]] in first and "国民の祝日" in first
    assert "JP" in text_of(section)

    # In English, the calendar's English names.
    as_admin.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    english = as_admin.get("/registry/designations/cabinet-1").get_data(as_text=True)
    english_name = holidays_library.country_holidays("JP", years=upcoming[0].year, language="en_US")[upcoming[0]]
    assert english_name in text_of(english.split('id="days-off"')[1].split("</section>")[0])
