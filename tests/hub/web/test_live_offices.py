"""The status page's Offices table over the live stream (a real waitress server): a page is sent
the table as it is now when its stream connects, and again, drawn from the store in the reader's
language, whenever the hub's watch (hub.stations.offices.OfficeWatch, run by the rules thread)
finds an office gone stale by the clock or heard again. A reader of one site is never sent
another site's office, and a site name with markup arrives escaped."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import update

from hub.accounts import sites as user_sites
from hub.config import load
from hub.stations.offices import OfficeWatch
from hub.store.schema import stations
from hub.store.timestamps import now_utc, utc_text
from tests.hub.helpers import heartbeat
from tests.support.mosquitto import wait_for
from tests.support.web_app import Stream, store, write_config

MARKUP_NAME = "<b>B支所</b>"
_ROW = re.compile(r'<tr data-site="([^"]+)" data-state="([^"]+)"[^>]*>\s*<td>([^<]*)</td>\s*'
                  r'<td><span class="pill state" data-state="[^"]+">([^<]+)</span>')


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub", stations=[
        {"id": "cabinet-a", "site": "ward-a", "kind": "cabinet"},
        {"id": "cabinet-b", "site": "ward-b", "kind": "cabinet"},
    ], sites={"ward-a": {"name": "A支所"}, "ward-b": {"name": MARKUP_NAME}}, rules={"site_stale_after_s": 120}))


def rows(html: str) -> dict[str, tuple[str, str, str]]:
    return {site: (state, name, word.strip()) for site, state, name, word in _ROW.findall(html)}


def heard_ago(engine, station: str, seconds: float) -> None:
    with engine.begin() as conn:
        conn.execute(update(stations).where(stations.c.station == station)
                     .values(last_seen=utc_text(now_utc() - timedelta(seconds=seconds))))


def changed(watch: OfficeWatch) -> dict[str, str]:
    found = watch.check(now_utc())
    return {} if found is None else {c.site: c.state for c in found.changes}


def test_an_office_going_stale_and_back_reaches_the_open_pages_of_its_site_only(server, users, bus, engine, cfg):
    store(engine, [("heartbeat", heartbeat("cabinet-a", site="ward-a")),
                   ("heartbeat", heartbeat("cabinet-b", site="ward-b"))])
    assert user_sites.set_sites(engine, "adm-01", "aud-01", ["ward-a"])
    watch = OfficeWatch(engine, cfg, bus)
    everyone = Stream(server.port, users["supervisor"])  # Japanese, every site
    ward_a = Stream(server.port, users["auditor"])  # English, ward-a only
    try:
        wait_for(lambda: bus.subscribers == 2, timeout=5, what="both streams subscribed")
        # On connecting, each page is sent the table as it is now, of its own sites.
        assert rows(everyone.wait_for("offices")["offices_html"]) == {
            "ward-a": ("fresh", "A支所", "受信中"), "ward-b": ("fresh", "&lt;b&gt;B支所&lt;/b&gt;", "受信中")}
        first = ward_a.wait_for("offices")["offices_html"]
        assert rows(first) == {"ward-a": ("fresh", "A支所", "Reachable")} and "B支所" not in first
        # The watch's first look names every site: both pages are drawn again.
        assert changed(watch) == {"ward-a": "fresh", "ward-b": "fresh"}
        everyone.wait_for("offices")
        ward_a.wait_for("offices")

        # B's uplink is down: nothing arrives, only the clock moves past the limit (120 s).
        heard_ago(engine, "cabinet-b", 600)
        assert changed(watch) == {"ward-b": "stale"}
        html = everyone.wait_for("offices")["offices_html"]
        assert rows(html)["ward-b"] == ("stale", "&lt;b&gt;B支所&lt;/b&gt;", "途絶")
        warning = html.split('id="office-stale-warning"')[1].split("</p>")[0]
        assert "&lt;b&gt;B支所&lt;/b&gt; から受信がありません" in warning and "A支所" not in warning
        assert MARKUP_NAME not in html

        # A goes quiet too. The ward-a reader's next offices message is A's: B's never came.
        heard_ago(engine, "cabinet-a", 300)
        assert changed(watch) == {"ward-a": "stale"}
        mine = ward_a.wait_for("offices")["offices_html"]
        assert rows(mine) == {"ward-a": ("stale", "A支所", "No word (stale)")}
        assert "No word from A支所: none of its stations has been heard for 120 s." in mine
        assert "B支所" not in mine and "ward-b" not in mine
        everyone.wait_for("offices")

        # B is heard again: back to reachable, and the warning names A alone.
        store(engine, [("heartbeat", heartbeat("cabinet-b", site="ward-b"))])
        assert changed(watch) == {"ward-b": "fresh"}
        html = everyone.wait_for("offices")["offices_html"]
        assert {site: r[0] for site, r in rows(html).items()} == {"ward-a": "stale", "ward-b": "fresh"}
        warning = html.split('id="office-stale-warning"')[1].split("</p>")[0]
        assert "A支所 から受信がありません" in warning and "B支所" not in warning
    finally:
        everyone.close()
        ward_a.close()


def test_the_page_draws_the_same_table_the_stream_sends(as_supervisor, server, users, bus, engine, cfg):
    store(engine, [("heartbeat", heartbeat("cabinet-a", site="ward-a"))])
    heard_ago(engine, "cabinet-a", 600)
    page = as_supervisor.get("/").get_data(as_text=True)
    slot = page.split('<div id="offices-slot">')[1].split("</section>")[0]
    stream = Stream(server.port, users["supervisor"])
    try:
        sent = stream.wait_for("offices")["offices_html"]
    finally:
        stream.close()
    assert rows(slot) == rows(sent) == {"ward-a": ("stale", "A支所", "途絶"),
                                        "ward-b": ("unheard", "&lt;b&gt;B支所&lt;/b&gt;", "未受信")}
    assert 'id="office-stale-warning"' in slot and 'id="office-stale-warning"' in sent


def test_a_malformed_offices_message_reaches_no_scoped_reader(server, users, bus, engine):
    assert user_sites.set_sites(engine, "adm-01", "aud-01", ["ward-a"])
    stream = Stream(server.port, users["auditor"])
    try:
        stream.wait_for("offices")  # the table on connecting
        bus.publish("offices", {"changes": "ward-a"})
        bus.publish("offices", {"changes": [{"site": ["ward-a"]}, 7]})
        bus.publish("event", {"row_no": 1, "site": "ward-a", "station": "cabinet-a", "seq": 1,
                              "event_id": "0190a0a0-0000-7000-8000-000000000001", "kind": "door.opened",
                              "at": "2025-04-01T09:00:00+09:00", "badge": None, "person": None})
        # The stream goes on: the event after them arrives, and no offices message before it.
        kind, _data = stream.next_message(timeout=5)
        assert kind == "event"
    finally:
        stream.close()
