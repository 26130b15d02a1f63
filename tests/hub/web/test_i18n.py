"""Japanese first, English second: every text on the page has a Japanese translation, the
language switch works on every page and is remembered, and times are shown in the site's
zone, in one format in either language."""
from __future__ import annotations

from pathlib import Path

from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from hub.accounts.users import get_user
from tests.hub.helpers import event
from tests.support.web_app import csrf_from, login, store

ROOT = Path(__file__).resolve().parents[3]
CATALOGS = ROOT / "hub" / "web" / "translations"


def extracted(tmp_path) -> set:
    """Every message the sources hold, extracted the way i18n.py documents."""
    pot = tmp_path / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "_l",
                                "-k", "_lp:1c,2", "-k", "N_", "-k", "NP_:1c,2", "--no-location", "-o", str(pot), str(ROOT)])
    with pot.open("rb") as f:
        return {(m.context, m.id) for m in read_po(f) if m.id}


def test_every_text_has_a_japanese_translation(tmp_path):
    wanted = extracted(tmp_path)
    assert len(wanted) > 50
    with (CATALOGS / "ja" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        ja = {(m.context, m.id): m for m in read_po(f, locale="ja") if m.id}
    missing = sorted(str(key) for key in wanted if key not in ja or not ja[key].string or ja[key].fuzzy)
    assert missing == [], "run pybabel update and translate these"
    with (CATALOGS / "en" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        en = {(m.context, m.id) for m in read_po(f, locale="en") if m.id}
    assert wanted <= en


def test_japanese_is_the_default(client):
    page = client.get("/login").get_data(as_text=True)
    assert '<html lang="ja">' in page and "ログイン" in page and "パスワード" in page


def test_the_switch_changes_the_page_and_is_remembered_for_the_user(client, users, engine):
    login(client, users["supervisor"])
    page = client.get("/events").get_data(as_text=True)
    assert "イベント" in page and 'name="lang" value="en"' in page
    response = client.post("/language", data={"lang": "en", "next": "/events", "csrf_token": csrf_from(page)})
    assert response.headers["Location"] == "/events"
    page = client.get("/events").get_data(as_text=True)
    assert '<html lang="en">' in page and ">Events<" in page and "Sign out" in page
    assert get_user(engine, 1)["language"] == "en"
    # A new browser: the saved choice applies after sign-in.
    other = client.application.test_client()
    login(other, users["supervisor"])
    assert "Sign out" in other.get("/").get_data(as_text=True)
    # And back.
    client.post("/language", data={"lang": "ja", "csrf_token": csrf_from(page)})
    assert "ログアウト" in client.get("/").get_data(as_text=True)


def test_the_switch_is_on_the_sign_in_page_too(client):
    page = client.get("/login").get_data(as_text=True)
    client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": csrf_from(page)})
    assert "Password" in client.get("/login").get_data(as_text=True)


def test_an_unknown_language_is_refused(as_supervisor):
    page = as_supervisor.get("/").get_data(as_text=True)
    assert as_supervisor.post("/language", data={"lang": "xx", "csrf_token": csrf_from(page)}).status_code == 400


def test_times_are_in_the_site_zone_in_each_language(client, users, engine):
    # 15:30 UTC on the 1st is half past midnight on the 2nd in Tokyo.
    store(engine, [("event", event("cabinet-1", 1, at="2025-04-01T15:30:00+00:00", kind="door.forced",
                                   person=None, badge=None))])
    login(client, users["supervisor"])
    page = client.get("/events").get_data(as_text=True)
    assert "2025-04-02 00:30:00" in page
    client.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    page = client.get("/events").get_data(as_text=True)
    assert '<html lang="en">' in page and "2025-04-02 00:30:00" in page  # one format in every language


def test_catalogs_are_compiled_into_the_data_folder_once(tmp_path):
    from hub.web.i18n import compiled_dir

    out = compiled_dir(tmp_path / "i18n")
    mo = out / "ja" / "LC_MESSAGES" / "messages.mo"
    assert mo.stat().st_size > 1000
    before = mo.stat().st_mtime_ns
    compiled_dir(tmp_path / "i18n")
    assert mo.stat().st_mtime_ns == before  # unchanged .po: nothing rewritten


def test_rule_and_severity_names_are_defined_once_and_the_page_says_the_same(app):
    from flask_babel import force_locale

    from hub.alerting import alerts, wording
    from hub.web import i18n

    with app.test_request_context():
        for lang in ("ja", "en"):
            with force_locale(lang):
                for rule in wording.RULES:
                    assert str(i18n.ALERT_RULES[rule]) == wording.rule_name(rule, lang)
                for severity in alerts.SEVERITIES:
                    assert str(i18n.SEVERITIES[severity]) == wording.severity_name(severity, lang)
    assert wording.severity_name("info", "en") == "Information"
