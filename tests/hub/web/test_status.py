"""The status page a supervisor keeps open: every station with its connection, door, last
event and policy version; open alerts first, newest first, coloured by severity."""
from __future__ import annotations

import json
import re

from tests.hub.helpers import event, heartbeat, status
from tests.support.web_app import csrf_from, store


def raise_alert(alert_center, rule: str, severity: str, station: str = "cabinet-1",
                at: str = "2025-04-01T09:00:00+09:00"):
    return alert_center.raise_alert(site="ward-a", station=station, rule=rule, severity=severity,
                                    message=f"{rule} at {station}", params={"station": station, "at": at})


def station_row(page: str, station: str) -> str:
    return page.split(f'id="station-{station}"')[1].split("</article>")[0]


def test_every_configured_station_is_listed_before_it_reports(as_supervisor):
    page = as_supervisor.get("/").get_data(as_text=True)
    assert "Cabinet 1" in station_row(page, "cabinet-1")
    assert "不明" in station_row(page, "cabinet-2")


# A policy version is its issue time in unix ms (hub.registry.policy): 2025-04-01 09:00 JST.
VERSION_0900 = 1743465600000


def test_station_state_door_last_event_and_policy_version(as_supervisor, engine):
    hb = heartbeat("cabinet-1", policy_version=VERSION_0900)
    hb["door"] = "closed"
    store(engine, [
        ("event", event("cabinet-1", 1, kind="key.used", at="2025-04-01T09:00:00+09:00", person="S001")),
        ("heartbeat", hb),
        ("status", status("cabinet-2", "offline")),
        ("event", event("cabinet-2", 1, kind="door.forced", at="2025-04-01T10:00:00+09:00", person=None,
                        badge=None)),
    ])
    page = as_supervisor.get("/").get_data(as_text=True)
    one = station_row(page, "cabinet-1")
    assert "オンライン" in one and "door-closed" in one and "鍵の使用" in one
    assert "2025-04-01 09:00:00" in one and "Staff 001 (S001)" in one
    # The policy as its issue time in the site's zone; the raw number only as an attribute.
    assert "2025-04-01 09:00:00 発行" in one and f'data-version="{VERSION_0900}"' in one
    assert f">{VERSION_0900}<" not in one
    two = station_row(page, "cabinet-2")
    # The forced door is newer than any heartbeat: the door is open.
    assert "オフライン" in two and "door-open" in two and "扉のこじ開け" in two


def test_open_alerts_come_first_newest_first_with_severity(as_supervisor, alert_center):
    first = raise_alert(alert_center, "held_open", "warning")
    second = raise_alert(alert_center, "forced", "critical", station="cabinet-2")
    alert_center.acknowledge(raise_alert(alert_center, "held_open", "warning", station="cabinet-2"), "sup-01", "fine")
    page = as_supervisor.get("/").get_data(as_text=True)
    open_part = page.split('id="open-alerts"')[1].split("</tbody>")[0]
    assert open_part.index(f'id="alert-{second}"') < open_part.index(f'id="alert-{first}"')
    assert "sev-critical" in open_part and "重大" in open_part and "sev-warning" in open_part
    acked = page.split('id="acked-alerts"')[1].split("</tbody>")[0]
    assert "扉の開けっ放し" in acked and "確認者: sup-01" in acked
    assert 'id="open-count" class="count hot">2<' in page


def test_stations_api(as_supervisor, engine):
    store(engine, [("heartbeat", heartbeat("cabinet-1", policy_version=7))])
    body = as_supervisor.get("/api/stations").get_json()
    one = next(s for s in body["stations"] if s["station"] == "cabinet-1")
    assert (one["state"], one["policy_version"], one["name"]) == ("online", 7, "Cabinet 1")
    json.dumps(body)  # plain JSON all the way down


def test_alerts_api_by_state(as_supervisor, alert_center):
    open_id = raise_alert(alert_center, "forced", "critical")
    done = raise_alert(alert_center, "held_open", "warning")
    alert_center.acknowledge(done, "sup-01", "closed it")
    assert [a["id"] for a in as_supervisor.get("/api/alerts?state=open").get_json()["alerts"]] == [open_id]
    [acked] = as_supervisor.get("/api/alerts?state=acknowledged").get_json()["alerts"]
    assert (acked["id"], acked["acked_by"], acked["ack_comment"]) == (done, "sup-01", "closed it")
    assert as_supervisor.get("/api/alerts?state=bogus").status_code == 400


def _health(state: str, error: str | None = None, detail: str | None = None) -> dict:
    return {"state": state, "error": error, "detail": detail, "since": "2025-04-01T08:30:00+09:00"}


def test_each_station_shows_the_health_of_its_peripherals(as_supervisor, engine, client):
    hb = heartbeat("cabinet-1")
    hb["peripherals"] = {"pins": _health("ok"), "reader": _health("ok"),
                         "camera": _health("absent", "not_found", "no usable Pi camera")}
    store(engine, [("heartbeat", hb), ("heartbeat", heartbeat("cabinet-2"))])
    page = as_supervisor.get("/").get_data(as_text=True)
    assert ">機器<" in page
    one = station_row(page, "cabinet-1")
    assert 'data-peripheral="camera" data-state="absent"' in one
    assert "カメラ: 見つからない" in one and 'title="no usable Pi camera"' in one
    assert "2025-04-01 08:30:00から" in one
    assert "GPIO（扉センサー・錠）: 正常" in one and "カードリーダー: 正常" in one
    # A station older than the health report shows nothing rather than "working".
    assert "data-peripheral" not in station_row(page, "cabinet-2")
    client.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    one = station_row(as_supervisor.get("/").get_data(as_text=True), "cabinet-1")
    assert "Camera: not found" in one and "Badge reader: Working" in one
    api = next(s for s in as_supervisor.get("/api/stations").get_json()["stations"] if s["station"] == "cabinet-1")
    assert api["peripherals"][2] == {"name": "camera", "state": "absent", "error": "not_found",
                                     "detail": "no usable Pi camera", "since": "2025-04-01T08:30:00+09:00"}


def _beat(station: str, kind: str, **fields) -> dict:
    hb = heartbeat(station)
    hb.update(kind=kind, **fields)
    return hb


def test_a_card_shows_a_door_and_a_lock_only_where_the_station_has_them(as_supervisor, engine, client):
    store(engine, [
        ("heartbeat", _beat("cabinet-1", "cabinet", door="closed", locked=False)),
        ("heartbeat", _beat("shredder-1", "shredder", door="closed", locked=None)),
        ("heartbeat", _beat("door-1", "door", door="open", locked=None)),
        ("heartbeat", _beat("door-2", "door", door="closed", locked=True)),
    ])
    page = as_supervisor.get("/").get_data(as_text=True)
    assert 'class="station-grid"' in page
    cabinet = station_row(page, "cabinet-1")
    assert 'data-field="door">閉<' in cabinet and 'data-state="unlocked">解錠中<' in cabinet
    assert "lock-unlocked" in cabinet  # colour as well as words
    # A shredder's bin door is not a room door, and it has no lock: neither is shown.
    shredder = station_row(page, "shredder-1")
    assert "シュレッダー" in shredder
    assert 'data-field="door"' not in shredder and 'data-field="lock"' not in shredder and ">扉<" not in shredder
    # A restricted door without a lock relay: its door, no lock; with one: both.
    door = station_row(page, "door-1")
    assert 'data-field="door">開<' in door and 'data-field="lock"' not in door
    assert 'data-state="locked">施錠<' in station_row(page, "door-2")
    # A cabinet not heard from yet has a lock that has not been reported.
    assert 'data-state="unknown">未報告<' in station_row(page, "cabinet-2")
    client.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    english = as_supervisor.get("/").get_data(as_text=True)
    assert 'data-state="unlocked">Unlocked<' in station_row(english, "cabinet-1")
    assert 'data-state="locked">Locked<' in station_row(english, "door-2")


def test_a_card_shows_the_clock_and_the_policy_issue_time_in_words(as_supervisor, engine, client):
    store(engine, [("heartbeat", {**heartbeat("cabinet-1", policy_version=VERSION_0900), "clock_synced": True}),
                   ("heartbeat", heartbeat("cabinet-2", policy_version=42))])
    page = as_supervisor.get("/").get_data(as_text=True)
    one = station_row(page, "cabinet-1")
    assert 'data-state="ok">同期済み<' in one and "時計のずれ: " in one
    assert "2025-04-01 09:00:00 発行" in one
    # A version that is no issue time (a hand-made store) is shown as the number it is.
    two = station_row(page, "cabinet-2")
    assert re.search(r'data-field="policy" data-version="42">([^<]*)<', two).group(1) == "版 42"
    assert 'data-state="ok">許容範囲内<' in two
    assert 'data-state="unknown">未計測<' not in one
    client.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})
    english = station_row(as_supervisor.get("/").get_data(as_text=True), "cabinet-1")
    assert "Issued 2025-04-01 09:00:00" in english and ">Synchronised<" in english


def test_a_card_shows_the_lock_of_a_tap_newer_than_the_last_heartbeat(as_supervisor, engine):
    # The heartbeat at 08:59 said locked; the tap at 09:00:02 unlocked it for a few seconds.
    beat = _beat("cabinet-1", "cabinet", door="closed", locked=True)
    beat["at"] = "2025-04-01T08:59:00+09:00"
    tap = event("cabinet-1", 2, kind="badge.granted", at="2025-04-01T09:00:02+09:00",
                data={"flagged": False, "reason": "", "unlock_s": 5})
    store(engine, [("heartbeat", beat), ("event", tap)])
    assert 'data-state="unlocked">解錠中<' in station_row(as_supervisor.get("/").get_data(as_text=True), "cabinet-1")
    # The window ran out unused: locked again, although no heartbeat said so.
    store(engine, [("event", event("cabinet-1", 3, kind="unlock.expired", at="2025-04-01T09:00:07+09:00",
                                   data={"unlock_s": 5}))])
    assert 'data-state="locked">施錠<' in station_row(as_supervisor.get("/").get_data(as_text=True), "cabinet-1")
    # A heartbeat newer than the last event is what stands.
    later = _beat("cabinet-1", "cabinet", door="closed", locked=False)
    later["at"] = "2025-04-01T09:01:00+09:00"
    store(engine, [("heartbeat", later)])
    assert 'data-state="unlocked">解錠中<' in station_row(as_supervisor.get("/").get_data(as_text=True), "cabinet-1")
