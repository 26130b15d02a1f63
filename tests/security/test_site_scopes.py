"""A user of one office reaching for another's records (issue 16, "Many offices": a supervisor
sees only the sites they are responsible for, an auditor the sites they audit), replayed against
a real hub on a real mosquitto over HTTP: two offices' stations publish key uses and a forced
door each; a signed-in auditor and supervisor of ward-a then ask for ward-b's ledger CSV, its
station's events, its photo, its alert (and acknowledge it), its close-out and report, every
export the app has (found in its url_map, so a new one cannot be left out) and the live stream.
Each named request answers 404, as for something that does not exist; nothing of ward-b shows
in any answer; ward-b's alert stays open."""
from __future__ import annotations

import base64
import io
from datetime import datetime, timedelta

import pytest
import requests
from openpyxl import load_workbook

from hub import config as hub_config
from hub.accounts.sites import set_sites
from hub.accounts.users import add_user
from hub.alerting import alerts as alert_store
from hub.service import Hub
from tests.hub.helpers import JPEG, FakeStation, encode, event, write_hub_config
from tests.security.web_hub import PASSWORD, sign_in
from tests.support.mosquitto import wait_for
from tests.support.two_sites import SITE_A, SITE_B, SITES, STATIONS, b_marks
from tests.support.web_app import Stream

TIMEOUT = 30


@pytest.fixture
def hub(broker, prefix, tmp_path, store):
    path = write_hub_config(tmp_path / "hub", broker, prefix, stations=STATIONS, sites=SITES,
                            time_zone="Asia/Tokyo")
    h = Hub(hub_config.load(path))
    h.start()
    assert h.web_url, "the hub's web page did not start"
    add_user(h.engine, "adm-01", PASSWORD, "admin")
    add_user(h.engine, "sup-a", PASSWORD, "supervisor")
    add_user(h.engine, "aud-a", PASSWORD, "auditor")
    for user in ("sup-a", "aud-a"):
        set_sites(h.engine, "adm-01", user, [SITE_A])
    yield h
    h.stop()


def publish_office(broker, prefix, site: str, first_seq: int, at: datetime) -> dict[str, str]:
    """A key use and a forced door (with its photo) at the site's cabinet, over MQTT; the ids."""
    cabinet = f"cabinet-{site[-1]}"
    stamp = lambda s: (at + timedelta(seconds=s)).isoformat()  # noqa: E731
    used = event(cabinet, first_seq, site=site, kind="key.used", person=None, badge=None, at=stamp(30), data={
        "unlocked_at": stamp(0), "opened_at": stamp(2), "closed_at": stamp(30), "duration_s": 28.0, "flagged": False})
    forced = event(cabinet, first_seq + 1, site=site, kind="door.forced", person=None, badge=None, at=stamp(60),
                   data={})
    station = FakeStation(broker, prefix, cabinet, site=site)
    try:
        for body in (used, forced):
            station.publish("event", encode(body))
        station.publish("snapshot", encode({
            "v": 1, "event_id": forced["id"], "site": site, "station": cabinet, "taken_at": stamp(61),
            "content_type": "image/jpeg", "image": base64.b64encode(JPEG).decode()}))
        wait_for(lambda: {first_seq, first_seq + 1} <= station.acked_seqs(), timeout=TIMEOUT,
                 what=f"{cabinet}'s events acked")
    finally:
        station.close()
    return {"used": used["id"], "forced": forced["id"]}


def open_alert(hub: Hub, site: str) -> dict:
    found: list[dict] = []

    def raised() -> bool:
        found[:] = alert_store.list_alerts(hub.engine, state="open", site=site)
        return bool(found)

    wait_for(raised, timeout=TIMEOUT, what=f"the forced door's alert at {site}")
    return found[0]


def session(hub: Hub, user: str) -> requests.Session:
    http = requests.Session()
    assert sign_in(http, hub.web_url, user, PASSWORD).status_code == 302
    return http


def leaked(text: str, asked: str = "") -> list[str]:
    """ward-b's names in an answer, but for what the request itself named."""
    return [mark for mark in b_marks() if mark in text and mark not in asked]


def test_an_office_user_cannot_reach_another_offices_records(broker, prefix, hub):
    at = datetime.now(hub.cfg.site_zone(SITE_A)).replace(hour=9, minute=0, second=0, microsecond=0)
    day = at.date().isoformat()
    ids_a = publish_office(broker, prefix, SITE_A, 1, at)
    ids_b = publish_office(broker, prefix, SITE_B, 1, at)
    alert_a, alert_b = open_alert(hub, SITE_A), open_alert(hub, SITE_B)
    url = hub.web_url
    auditor, supervisor = session(hub, "aud-a"), session(hub, "sup-a")

    # Named: ward-b's ledger CSV, station, photo, close-out and report answer as if they did not exist.
    named = [f"ledger/keys.csv?station=cabinet-b&day={day}", f"ledger/keys.xlsx?station=cabinet-b&day={day}",
             f"api/ledger/keys?station=cabinet-b&day={day}", "events?station=cabinet-b",
             "api/events?station=cabinet-b", "alerts?station=cabinet-b", f"snapshots/{ids_b['forced']}.jpg",
             f"closeout?site={SITE_B}&day={day}", f"closeout.csv?site={SITE_B}&day={day}",
             f"monthly.xlsx?site={SITE_B}&month={day[:7]}"]
    for path in named:
        answer = auditor.get(url + path, timeout=TIMEOUT)
        assert answer.status_code == 404, (path, answer.status_code)
        assert not leaked(answer.text, path), path
    # The same requests for ward-a answer.
    assert auditor.get(url + f"snapshots/{ids_a['forced']}.jpg", timeout=TIMEOUT).content == JPEG
    mine = auditor.get(url + f"ledger/keys.csv?station=cabinet-a&day={day}", timeout=TIMEOUT)
    assert mine.status_code == 200 and "Cabinet A" in mine.content.decode("utf-8-sig")

    # Every export and report the app has, unfiltered and aimed at ward-b: nothing of ward-b.
    exports = sorted(r.rule for r in hub.web.app.url_map.iter_rules()
                     if "GET" in r.methods and r.rule.endswith((".csv", ".xlsx", ".pdf")) and not r.arguments)
    assert len(exports) >= 10
    for rule in exports:
        for query in (f"?day={day}&month={day[:7]}", f"?day={day}&month={day[:7]}&site={SITE_B}&station=cabinet-b"):
            answer = auditor.get(url + rule.lstrip("/") + query, timeout=TIMEOUT)
            if answer.status_code == 403:  # not the auditors' (their role, not the site, says so)
                answer = supervisor.get(url + rule.lstrip("/") + query, timeout=TIMEOUT)
            assert answer.status_code in (200, 404), (rule, query, answer.status_code)
            text = _readable(rule, answer)
            assert not leaked(text, query), (rule, query, leaked(text, query))

    # Acknowledging ward-b's alert, alone or with ward-a's: 404, and it stays open.
    page = supervisor.get(url, timeout=TIMEOUT).text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    for path, data in ((f"alerts/{alert_b['id']}/ack", {"comment": "seen"}),
                       ("alerts/ack", {"ids": f"{alert_a['id']},{alert_b['id']}", "comment": "seen"})):
        answer = supervisor.post(url + path, data={**data, "csrf_token": token}, timeout=TIMEOUT,
                                 allow_redirects=False)
        assert answer.status_code == 404, path
    assert alert_store.get_alert(hub.engine, alert_b["id"])["state"] == "open"
    assert alert_store.get_alert(hub.engine, alert_a["id"])["state"] == "open"
    # The status page and the alert history of ward-a's supervisor: ward-a's alert, not ward-b's.
    for path in ("", "alerts", "status/alerts", "api/alerts", "api/stations"):
        body = supervisor.get(url + path, timeout=TIMEOUT).text
        assert "cabinet-a" in body or "Cabinet A" in body, path
        assert not leaked(body), path

    # The live stream: what was missed holds ward-a's events only; new ward-b events never arrive.
    port = int(url.rstrip("/").rsplit(":", 1)[1])
    stream = Stream(port, "aud-a", "/events/stream?after=0")
    try:
        missed = [stream.wait_for("event", timeout=10)["station"] for _ in range(2)]
        assert missed == ["cabinet-a", "cabinet-a"]
        publish_office(broker, prefix, SITE_B, 3, at + timedelta(minutes=5))
        publish_office(broker, prefix, SITE_A, 3, at + timedelta(minutes=5))
        live = [stream.wait_for("event", timeout=10)["station"] for _ in range(2)]
        assert live == ["cabinet-a", "cabinet-a"]  # ward-b's two, published first, never came
    finally:
        stream.close()


def _readable(rule: str, answer: requests.Response) -> str:
    """What a reader finds in an answer: a CSV's or a workbook's cells, an error page's text (a
    PDF is compressed: the monthly report's is checked by its site's 404 and the page it is made from)."""
    if answer.status_code != 200:
        return answer.text
    if rule.endswith(".csv"):
        return answer.content.decode("utf-8-sig", "replace")
    if rule.endswith(".xlsx"):
        book = load_workbook(io.BytesIO(answer.content))
        return "\n".join(str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row
                         if c.value is not None)
    return ""
