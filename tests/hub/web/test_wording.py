"""Every word in the reader's language: codes shown on a page (a refusal's reason, a rule, a
severity) are translated, every time is in the site's zone in one format (the events page, the
alert row and its sentence, the registry's change log), the site's own error pages speak both
languages, and after a registry change the person page shows each station's decision."""
from __future__ import annotations

import re
from datetime import datetime
from html import unescape

import pytest
from sqlalchemy import select

from hub import registry
from hub.store.schema import registry_log
from hub.registry.compile import compile_station, to_policy
from tests.hub.helpers import event
from tests.support.web_app import csrf_from, login, store

TIME = re.compile(r"\b\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\b")
RAW_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def switch(client, lang: str, page: str) -> None:
    client.post("/language", data={"lang": lang, "csrf_token": csrf_from(page)})


@pytest.fixture
def as_admin(client, users):
    assert login(client, users["admin"]).status_code == 302
    return client


def test_a_refusal_reason_on_the_events_page_is_in_the_readers_words(as_supervisor, engine):
    store(engine, [("event", event("cabinet-1", 1, at="2025-04-01T09:00:00+09:00", kind="badge.denied",
                                   badge="AAAABBBBCCCCDDDD", person="S009",
                                   data={"reason": "training_expired", "decision": "deny"}))])
    page = as_supervisor.get("/events").get_data(as_text=True)
    assert "理由: 研修の有効期限切れ" in text_of(page)
    assert "training_expired" not in text_of(page)
    assert "2025-04-01 09:00:00" in text_of(page)
    switch(as_supervisor, "en", page)
    page = text_of(as_supervisor.get("/events").get_data(as_text=True))
    assert "reason: training expired" in page and "training_expired" not in page
    assert "2025-04-01 09:00:00" in page  # the same text in either language


def test_an_alert_row_shows_its_time_and_its_sentence_in_one_format(as_supervisor, engine, alert_center):
    alert_center.raise_alert(site="ward-a", station="cabinet-1", rule="forced", severity="critical",
                             message="Door forced open", raised_at=datetime.fromisoformat("2025-04-01T01:00:05+00:00"),
                             params={"station": "cabinet-1", "station_name": "Cabinet 1",
                                     "at": "2025-04-01T01:00:00+00:00", "zone": "Asia/Tokyo"})
    page = as_supervisor.get("/alerts?state=open").get_data(as_text=True)
    row = text_of(page.split('class="alert')[1].split("</tr>")[0])
    assert TIME.findall(row) == ["2025-04-01 10:00:05", "2025-04-01 10:00:00"]
    assert "扉のこじ開け" in row and "重大" in row and "JST" not in row
    switch(as_supervisor, "en", page)
    row = text_of(as_supervisor.get("/alerts?state=open").get_data(as_text=True).split('class="alert')[1]
                  .split("</tr>")[0])
    assert TIME.findall(row) == ["2025-04-01 10:00:05", "2025-04-01 10:00:00"]
    assert "Door forced open" in row and "Critical" in row


def test_the_change_log_shows_times_in_the_hubs_zone_not_raw_utc(as_admin, engine):
    registry.add_person(engine, "adm-01", "S301", "Staff 301")
    registry.add_badge(engine, "adm-01", "S301", "ABCDEF0123456789")
    registry.revoke_badge(engine, "adm-01", "ABCDEF0123456789")
    with engine.connect() as conn:
        stored = [r.at for r in conn.execute(select(registry_log.c.at))]
    assert stored and all(RAW_UTC.match(at) for at in stored)
    page = text_of(as_admin.get("/registry/log").get_data(as_text=True))
    assert not RAW_UTC.search(page), RAW_UTC.search(page)
    assert len(TIME.findall(page)) >= len(stored) + 1  # each row's time and the revocation's


@pytest.mark.parametrize("lang, title, message", [
    ("ja", "ページが見つかりません", "そのページや記録はありません。"),
    ("en", "Not found", "There is no such page or record."),
])
def test_the_sites_own_404_page_in_each_language(as_supervisor, lang, title, message):
    switch(as_supervisor, lang, as_supervisor.get("/").get_data(as_text=True))
    response = as_supervisor.get("/no/such/page")
    page = response.get_data(as_text=True)
    assert response.status_code == 404 and f'<html lang="{lang}">' in page
    assert title in page and message in page and "Not Found" not in page


def test_the_sites_own_400_403_and_500_pages_in_japanese_and_english(app, client, users):
    @app.get("/test-only/fails")
    def _fails():
        raise RuntimeError("a fault in a view")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    login(client, users["supervisor"])
    wanted = {
        "ja": {400: "要求の内容が正しくありません", 403: "許可されていません", 500: "問題が発生しました"},
        "en": {400: "The request is not valid", 403: "Not allowed", 500: "Something went wrong"},
    }
    for lang, titles in wanted.items():
        switch(client, lang, client.get("/").get_data(as_text=True))
        for status, path in ((400, "/events?day=someday"), (403, "/registry/people/new"), (500, "/test-only/fails")):
            response = client.get(path)
            page = response.get_data(as_text=True)
            assert response.status_code == status, path
            assert f'<html lang="{lang}">' in page and titles[status] in page, (lang, status)
            assert "Internal Server Error" not in page and "Forbidden" not in page and "Bad Request" not in page


def test_after_a_badge_is_added_the_person_page_shows_each_stations_decision(as_admin, engine, cfg):
    registry.add_training(engine, "adm-01", "個人情報保護研修", ["cabinet"], 365)
    registry.add_person(engine, "adm-01", "S401", "Part-timer 401", employment="part_time")
    page = as_admin.get("/registry/people/S401").get_data(as_text=True)
    response = as_admin.post("/registry/people/S401/badges", data={
        "csrf_token": csrf_from(page), "badge_id": "0102030405060708", "valid_from": "", "valid_to": ""})
    assert response.status_code == 302
    page = as_admin.get("/registry/people/S401").get_data(as_text=True)
    text = text_of(page)
    assert "各端末の現在の判定" in text and "usable" not in text
    for station in ("cabinet-1", "cabinet-2"):
        row = text_of(page.split(f'id="decision-0102030405060708-{station}"')[1].split("</tr>")[0])
        assert "拒否" in row and "研修未受講" in row, row
        # What the station itself will decide with the policy published for it.
        policy = to_policy(compile_station(engine, cfg, station, "ward-a", "cabinet"))
        assert policy.decide("0102030405060708", datetime.now().astimezone()).reason == "untrained"

    # Trained now: allowed, but not designated (flagged), or refused outside business hours.
    session = registry.add_session(engine, "adm-01", "個人情報保護研修", datetime.now(cfg.zone()).date())
    registry.record_attendance(engine, "adm-01", session, ["S401"])
    switch(as_admin, "en", page)
    page = as_admin.get("/registry/people/S401").get_data(as_text=True)
    row = text_of(page.split('id="decision-0102030405060708-cabinet-1"')[1].split("</tr>")[0])
    assert ("Allowed, flagged" in row and "not designated" in row) or ("Refused" in row and "outside hours" in row)
    assert "training not taken" not in row


def test_every_event_kind_reason_and_decision_has_words_in_both_languages(app):
    from flask_babel import force_locale

    from hub.alerting import wording
    from hub.registry import compile as policy_compile
    from hub.web import i18n
    from kagiban import events as ev
    from kagiban.signing import REASONS as SIGNING_REASONS

    kinds = set(ev.MODELS)  # every event kind a station sends
    assert len(kinds) > 25 and kinds <= set(i18n.EVENT_KINDS)
    reasons = set(policy_compile.ALLOW_REASONS) | set(policy_compile.DENY_REASONS) | set(SIGNING_REASONS) | {
        "no_policy", "expired", "policy_expired"}
    with app.test_request_context():
        for table, codes in ((i18n.EVENT_KINDS, kinds), (i18n.DECISIONS, set(policy_compile.DECISIONS))):
            with force_locale("ja"):
                ja = {code: str(table[code]) for code in codes}
            with force_locale("en"):
                en = {code: str(table[code]) for code in codes}
            for code in codes:
                assert ja[code] != en[code] and code not in (ja[code], en[code]), code
    for reason in reasons:
        ja, en = wording.reason_name(reason, "ja"), wording.reason_name(reason, "en")
        assert ja != en and reason not in (ja, en), reason
