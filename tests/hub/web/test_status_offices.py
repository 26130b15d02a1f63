"""The central status page's offices: with stations at two sites or more, each site is shown
reachable, stale (none of its stations heard for rules.site_stale_after_s, with a warning that
names it) or never heard, in Japanese and in English; back to reachable when one of its stations
is heard again. A hub of one site shows no offices table."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from hub.accounts.users import add_user
from hub.config import load
from hub.live import LiveBus
from hub.store import migrate
from hub.store.db import make_engine
from hub.store.schema import stations
from hub.store.timestamps import now_utc, utc_text
from tests.hub.helpers import heartbeat
from hub.web.app import create_app
from tests.support.web_app import PASSWORD, login, store, write_config

TWO_OFFICES = [
    {"id": "cab-a1", "site": "site-a", "kind": "cabinet"},
    {"id": "cab-a2", "site": "site-a", "kind": "cabinet"},
    {"id": "cab-b1", "site": "site-b", "kind": "cabinet"},
    {"id": "cab-c1", "site": "site-c", "kind": "cabinet"},
]
_ROW = re.compile(r'<tr data-site="([^"]+)" data-state="([^"]+)"[^>]*>\s*<td>([^<]*)</td>\s*'
                  r'<td><span class="pill state" data-state="[^"]+">([^<]+)</span>')


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub", stations=TWO_OFFICES, rules={"site_stale_after_s": 120},
                             sites={"site-a": {"name": "A支所"}, "site-b": {"name": "B支所"}}))


def rows(client) -> dict[str, tuple[str, str, str]]:
    html = client.get("/").get_data(as_text=True)
    return {site: (state, name, word.strip()) for site, state, name, word in _ROW.findall(html)}


def heard_ago(engine, station: str, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(update(stations).where(stations.c.station == station)
                     .values(last_seen=utc_text(now_utc() - timedelta(seconds=seconds))))


def test_each_office_reachable_stale_or_never_heard_in_both_languages(engine, app, client, users):
    store(engine, [("heartbeat", heartbeat(s, site=site)) for s, site in
                   (("cab-a1", "site-a"), ("cab-a2", "site-a"), ("cab-b1", "site-b"))])
    heard_ago(engine, "cab-a1", 600)
    heard_ago(engine, "cab-a2", 121)
    login(client, users["supervisor"])  # Japanese
    assert rows(client) == {"site-a": ("stale", "A支所", "途絶"), "site-b": ("fresh", "B支所", "受信中"),
                            "site-c": ("unheard", "site-c", "未受信")}
    page = client.get("/").get_data(as_text=True)
    warning = page.split('id="office-stale-warning"')[1].split("</p>")[0]
    assert "A支所 から受信がありません" in warning and "120 秒以上" in warning and "B支所" not in warning
    client = app.test_client()
    login(client, users["auditor"])  # English
    assert rows(client) == {"site-a": ("stale", "A支所", "No word (stale)"), "site-b": ("fresh", "B支所", "Reachable"),
                            "site-c": ("unheard", "site-c", "Never heard")}
    assert "No word from A支所: none of its stations has been heard for 120 s." in client.get("/").get_data(as_text=True)

    # One of A's stations heard again: A is back.
    store(engine, [("heartbeat", heartbeat("cab-a2", site="site-a"))])
    assert rows(client)["site-a"][0] == "fresh"
    assert 'id="office-stale-warning"' not in client.get("/").get_data(as_text=True)


def test_a_stored_value_that_is_not_a_time_shows_never_heard(engine, as_supervisor):
    store(engine, [("heartbeat", heartbeat("cab-b1", site="site-b"))])
    with engine.begin() as conn:
        conn.execute(update(stations).where(stations.c.station == "cab-b1").values(last_seen="yesterday"))
    assert rows(as_supervisor)["site-b"] == ("unheard", "B支所", "未受信")


def test_a_hub_of_one_office_shows_no_offices_table(tmp_path, store):
    cfg = load(write_config(tmp_path / "one"))  # two stations, both at ward-a
    engine = make_engine(cfg.db_url())
    try:
        migrate.upgrade(engine)
        add_user(engine, "sup-09", PASSWORD, "supervisor")
        client = create_app(engine, cfg, bus=LiveBus(), overrides={"TESTING": True}).test_client()
        login(client, "sup-09")
        page = client.get("/").get_data(as_text=True)
        assert 'id="stations"' in page and 'id="offices"' not in page
    finally:
        engine.dispose()
