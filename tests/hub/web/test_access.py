"""Who may see and do what: sign-in for everything but /healthz, the same refusal for a wrong
password and an unknown user, CSRF on every form, acknowledgements only by supervisors and
admins, HTTP Basic for integrations."""
from __future__ import annotations

import base64

import pytest
from sqlalchemy import select

from hub.store.schema import alerts
from hub.accounts.users import deactivate
from hub.web.app import create_app
from hub.web.redirects import local_path
from tests.support.web_app import PASSWORD, csrf_from, login

PAGES = ["/", "/events", "/ledger/keys", "/ledger/keys.csv", "/ledger/keys.xlsx"]
API = ["/api/stations", "/api/events", "/api/alerts", "/api/ledger/keys", "/metrics",
       "/snapshots/0190a0a0-0000-7000-8000-000000000000.jpg", "/events/stream"]


def basic(username: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def raise_forced(alert_center) -> int:
    return alert_center.raise_alert(
        site="ward-a", station="cabinet-1", rule="forced", severity="critical",
        message="Door forced open at cabinet-1", params={"station": "cabinet-1", "at": "2025-04-01T09:00:00+09:00"})


@pytest.mark.parametrize("path", PAGES)
def test_pages_send_a_stranger_to_the_sign_in_page(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", API)
def test_api_metrics_snapshots_and_stream_answer_401_json(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_api_asks_integrations_for_basic_credentials(client):
    assert client.get("/api/stations").headers["WWW-Authenticate"].startswith("Basic ")


def test_healthz_needs_no_sign_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "db": True, "broker": True}


def test_wrong_password_and_unknown_user_get_the_same_clear_refusal(client, users):
    wrong = login(client, users["supervisor"], "not the password")
    unknown = login(client, "nobody-here", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "ユーザー名またはパスワードが正しくありません。" in response.get_data(as_text=True)
    # Nothing was signed in.
    assert client.get("/").status_code == 302


def test_sign_in_sets_a_protected_session_cookie_and_returns_to_the_page(client, users):
    token = csrf_from(client.get("/login?next=/events").get_data(as_text=True))
    response = client.post("/login?next=/events",
                           data={"username": users["auditor"], "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/events"
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("kagiban_session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/events").status_code == 200


def test_sign_in_never_redirects_to_another_site(client, users):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login?next=//evil.example/x",
                           data={"username": users["auditor"], "password": PASSWORD, "csrf_token": token})
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("target", [
    "/\t/evil.example/x", "/\n/evil.example/x", "/\r\n/evil.example", "/\\evil.example", "\\\\evil.example",
    "http://evil.example/x", "https:evil.example", "//evil.example", "/\u202e/evil.example", "/\x00/x",
    "evil.example/x", "/" + "a" * 3000,
])
def test_a_target_that_is_not_a_path_on_this_site_is_not_followed(target):
    assert local_path(target) is None


def test_a_path_on_this_site_is_followed_as_given():
    assert local_path("/events?kind=door.forced&day=2025-04-01") == "/events?kind=door.forced&day=2025-04-01"
    assert local_path("/registry/people/職員") == "/registry/people/職員"
    assert local_path("/?") == "/"


def test_a_post_without_csrf_token_is_refused(client, users):
    response = client.post("/login", data={"username": users["auditor"], "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_acknowledge_without_csrf_token_is_refused_and_the_alert_stays_open(as_supervisor, alert_center, engine):
    alert_id = raise_forced(alert_center)
    response = as_supervisor.post(f"/alerts/{alert_id}/ack", data={"comment": "checked"})
    assert response.status_code == 400
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id)).scalar_one() == "open"


def test_supervisor_acknowledges_with_a_comment_recording_who_and_when(as_supervisor, alert_center, engine):
    alert_id = raise_forced(alert_center)
    page = as_supervisor.get("/").get_data(as_text=True)
    assert f'action="/alerts/{alert_id}/ack"' in page
    response = as_supervisor.post(f"/alerts/{alert_id}/ack",
                                  data={"comment": "Cabinet checked, keys complete", "csrf_token": csrf_from(page)})
    assert response.status_code == 302
    with engine.connect() as conn:
        row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
    assert (row.state, row.acked_by, row.ack_comment) == ("acknowledged", "sup-01", "Cabinet checked, keys complete")
    assert row.acked_at is not None
    page = as_supervisor.get("/").get_data(as_text=True)
    assert "アラートを確認済みにしました。" in page
    assert "確認者: sup-01" in page and "Cabinet checked, keys complete" in page


def test_an_empty_comment_is_not_an_acknowledgement(as_supervisor, alert_center, engine):
    alert_id = raise_forced(alert_center)
    token = csrf_from(as_supervisor.get("/").get_data(as_text=True))
    as_supervisor.post(f"/alerts/{alert_id}/ack", data={"comment": "  ", "csrf_token": token})
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id)).scalar_one() == "open"


def test_an_auditor_sees_alerts_but_cannot_acknowledge(as_auditor, alert_center, engine):
    alert_id = raise_forced(alert_center)
    page = as_auditor.get("/").get_data(as_text=True)
    assert f'id="alert-{alert_id}"' in page and "/ack" not in page
    response = as_auditor.post(f"/alerts/{alert_id}/ack", data={"comment": "x", "csrf_token": csrf_from(page)})
    assert response.status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(alerts.c.state).where(alerts.c.id == alert_id)).scalar_one() == "open"


def test_without_the_alert_service_there_is_no_acknowledge_button(engine, cfg, bus, users, alert_center):
    app = create_app(engine, cfg, bus=bus, alerts=None, overrides={"TESTING": True})
    client = app.test_client()
    login(client, users["supervisor"])
    raise_forced(alert_center)
    page = client.get("/").get_data(as_text=True)
    assert "/ack" not in page
    assert "アラート機能が動いていないため" in page


def test_basic_auth_reads_the_api_without_a_session(client, users):
    assert client.get("/api/stations", headers=basic(users["auditor"], PASSWORD)).status_code == 200
    assert client.get("/api/stations", headers=basic(users["auditor"], "wrong")).status_code == 401
    # Basic credentials never turn into a session.
    assert client.get("/api/stations").status_code == 401


def test_deactivating_a_user_ends_their_session(as_auditor, engine, users):
    assert as_auditor.get("/").status_code == 200
    deactivate(engine, users["auditor"])
    assert as_auditor.get("/").status_code == 302


def test_sign_out_needs_a_post_with_token(as_auditor):
    page = as_auditor.get("/").get_data(as_text=True)
    assert as_auditor.post("/logout", data={"csrf_token": csrf_from(page)}).status_code == 302
    assert as_auditor.get("/").status_code == 302


def test_pages_forbid_framing_and_foreign_scripts(as_auditor):
    headers = as_auditor.get("/").headers
    assert headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "no-store"
