"""Personal API tokens on the user's own page: made and shown once, used for /metrics and the
API with ``Authorization: Bearer``, listed with when they were made and last used, revoked ->
401 at once (and for a deactivated user too); the store keeps only a hash; every making and
revoking is in the change log and its hash-chained side log."""
from __future__ import annotations

import re

from hub.accounts import tokens as api_tokens
from hub.registry import history
from hub.accounts.users import deactivate
from hub.audit.verify import Context, check_registry
from tests.hub.helpers import store_text
from tests.support.web_app import csrf_from, login

_TOKEN_RE = re.compile(r'id="new-token-value">(kgb_[^<]+)<')


def _make(client, name: str) -> str:
    page = client.get("/account").get_data(as_text=True)
    response = client.post("/account/tokens", data={"name": name, "csrf_token": csrf_from(page)})
    assert response.status_code == 200
    found = _TOKEN_RE.search(response.get_data(as_text=True))
    assert found, "the new token is not shown"
    return found.group(1)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_made_on_the_page_reads_metrics_and_the_api_until_revoked(app, users, cfg):
    browser = app.test_client()
    assert login(browser, users["auditor"]).status_code == 302
    token = _make(browser, "prometheus")

    script = app.test_client()  # no cookie: only the token
    metrics = script.get("/metrics", headers=_bearer(token))
    assert metrics.status_code == 200
    assert "kagiban_" in metrics.get_data(as_text=True)
    assert script.get("/api/stations", headers=_bearer(token)).status_code == 200
    assert "Set-Cookie" not in metrics.headers  # never turned into a session

    # Listed on the user's own page: name, start, made, last used; the token itself is not there again.
    page = browser.get("/account").get_data(as_text=True)
    key_id = token.split("_")[1]
    assert "prometheus" in page and f"kgb_{key_id}_" in page
    assert token not in page
    listed = api_tokens.list_tokens(app.extensions["kagiban"].engine, users["auditor"])
    assert [(t.name, t.active) for t in listed] == [("prometheus", True)]
    assert listed[0].last_used_at is not None

    response = browser.post(f"/account/tokens/{key_id}/revoke", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302
    assert script.get("/metrics", headers=_bearer(token)).status_code == 401
    assert script.get("/api/events", headers=_bearer(token)).status_code == 401


def test_the_store_keeps_a_hash_never_the_token(app, users, cfg, engine):
    made = api_tokens.create(engine, users["supervisor"], "backup script")
    dump = store_text(engine)
    secret = made.token.rsplit("_", 1)[1]
    assert secret not in dump
    assert api_tokens.token_hash(made.token) in dump
    assert api_tokens.authenticate(engine, made.token).username == users["supervisor"]
    # A token with one character changed, or another user's key id with this secret: refused.
    assert api_tokens.authenticate(engine, made.token[:-1] + ("A" if made.token[-1] != "A" else "B")) is None
    assert api_tokens.authenticate(engine, "kgb_abcdefgh_" + secret) is None


def test_a_deactivated_users_token_is_refused_at_once(app, users, engine):
    made = api_tokens.create(engine, users["auditor"], "grafana")
    script = app.test_client()
    assert script.get("/api/alerts", headers=_bearer(made.token)).status_code == 200
    assert deactivate(engine, users["auditor"])
    assert script.get("/api/alerts", headers=_bearer(made.token)).status_code == 401


def test_a_token_cannot_open_the_account_page_nor_sign_in_a_browser(app, users, engine):
    made = api_tokens.create(engine, users["admin"], "ci")
    script = app.test_client()
    assert script.get("/account", headers=_bearer(made.token)).status_code == 403
    assert script.get("/metrics", headers=_bearer("kgb_nonsense")).status_code == 401
    assert script.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401


def test_one_user_cannot_revoke_anothers_token(app, users, engine):
    theirs = api_tokens.create(engine, users["admin"], "theirs")
    browser = app.test_client()
    assert login(browser, users["auditor"]).status_code == 302
    page = browser.get("/account").get_data(as_text=True)
    assert "theirs" not in page
    browser.post(f"/account/tokens/{theirs.info.key_id}/revoke", data={"csrf_token": csrf_from(page)})
    assert api_tokens.authenticate(engine, theirs.token) is not None


def test_making_and_revoking_are_in_the_change_log_without_the_token(app, users, engine, cfg):
    made = api_tokens.create(engine, users["auditor"], "prometheus")
    assert api_tokens.revoke(engine, made.info.key_id, actor=users["auditor"])
    assert not api_tokens.revoke(engine, made.info.key_id, actor=users["auditor"])  # once only
    entries = history(engine, entity="api_token")
    assert [(e.action, e.actor, e.key) for e in entries] == [
        ("revoke", users["auditor"], made.info.key_id), ("add", users["auditor"], made.info.key_id)]
    assert entries[0].after["revoked_by"] == users["auditor"]
    logged = repr([(e.before, e.after) for e in entries])
    assert made.token not in logged and api_tokens.token_hash(made.token) not in logged
    assert check_registry(Context(engine=engine)).ok


def test_a_token_needs_a_name(app, users):
    browser = app.test_client()
    assert login(browser, users["auditor"]).status_code == 302
    page = browser.get("/account").get_data(as_text=True)
    response = browser.post("/account/tokens", data={"name": "  ", "csrf_token": csrf_from(page)})
    assert response.status_code == 400
    assert "kgb_" not in response.get_data(as_text=True)
