"""The status page a supervisor keeps open: every station with its connection, door, last
event and policy version; open alerts first, newest first, coloured by severity."""
from __future__ import annotations

import json

from tests.hub.helpers import event, heartbeat, status
from tests.support.web_app import csrf_from, store


def raise_alert(alert_center, rule: str, severity: str, station: str = "cabinet-1",
                at: str = "2025-04-01T09:00:00+09:00"):
    return alert_center.raise_alert(site="ward-a", station=station, rule=rule, severity=severity,
                                    message=f"{rule} at {station}", params={"station": station, "at": at})


def station_row(page: str, station: str) -> str:
    return page.split(f'id="station-{station}"')[1].split("</tr>")[0]


def test_every_configured_station_is_listed_before_it_reports(as_supervisor):
    page = as_supervisor.get("/").get_data(as_text=True)
    assert "Cabinet 1" in station_row(page, "cabinet-1")
    assert "不明" in station_row(page, "cabinet-2")


def test_station_state_door_last_event_and_policy_version(as_supervisor, engine):
    hb = heartbeat("cabinet-1", policy_version=42)
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
    assert "2025-04-01 09:00:00" in one and "Staff 001 (S001)" in one and ">42<" in one
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
