"""Who sees which site: a supervisor only the sites they are responsible for, an auditor only
the sites they audit (hub.accounts.sites, hub.web.scope). Two offices on one hub, events,
alerts, photos, near-misses and roll calls at both; every page kind, export and the API shows
site A's rows to a user of site A and nothing of site B, and a request for B's station, alert,
photo, close-out, report, case or roll call answers 404 as one that does not exist. No site
chosen means every site (a one-office hub changes nothing); admins see every site."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
import yaml
from openpyxl import load_workbook
from sqlalchemy import select

from hub import registry
from hub.accounts import sites as user_sites
from hub.accounts.users import add_user
from hub.config import load
from hub.nearmiss import service as nearmiss
from hub.nearmiss.model import CaseInput
from hub.rollcall import service as rollcall
from hub.store.schema import alerts as alerts_table
from hub.store.schema import registry_log, side_log
from tests.hub.helpers import JST
from tests.support.two_sites import (
    DAY,
    NAME_A,
    NAME_B,
    PERSON_A,
    PERSON_B,
    SITE_A,
    SITE_B,
    SITES,
    STAFF,
    STATIONS,
    b_marks,
    day_of_both,
    forced_ids,
    snapshots_of_both,
)
from tests.support.web_app import PASSWORD, Stream, csrf_from, login, store, write_config


@pytest.fixture
def cfg(tmp_path, store):
    path = write_config(tmp_path / "hub", stations=STATIONS, sites=SITES)
    (tmp_path / "hub" / "staff.yaml").write_text(yaml.safe_dump(STAFF, allow_unicode=True))
    return load(path)


@pytest.fixture
def offices(engine, cfg, alert_center):
    """Both offices' day: events and photos stored through a real Ingest, an alert raised at each
    site, a near-miss case at each cabinet and a roll call at each unit."""
    payloads = day_of_both()
    forced = forced_ids(payloads)
    ingest = store(engine, payloads, snapshots=snapshots_of_both(forced))
    assert ingest.quarantined == 0
    alert_ids = {site: alert_center.raise_alert(site=site, station=f"cabinet-{site[-1]}", rule="forced",
                                                severity="critical", message="door forced", params={},
                                                event_id=forced[site])
                 for site in (SITE_A, SITE_B)}
    cases = {site: nearmiss.file_case(engine, cfg, CaseInput(
        occurred_at=datetime(2025, 4, 1, 12, 0, tzinfo=JST), category="other", what=f"at cabinet-{site[-1]}",
        why="the key was left out", severity="minor", station=f"cabinet-{site[-1]}"), "0012")
        for site in (SITE_A, SITE_B)}
    for number, kana in ((PERSON_A, "ショクイン イチニ"), (PERSON_B, "ショクイン サンヨン")):
        registry.add_person(engine, "adm-01", number, f"職員{number}", kana=kana, section="戸籍係",
                            employment="regular", role="係員")
    calls = {site: rollcall.open_session(engine, cfg, "adm-01", rollcall.SessionInput(
        kind="meeting", topic=f"朝礼 {site}", starts_at=datetime.now(JST).strftime("%Y-%m-%dT%H:%M"),
        stations=(f"rollcall-{site[-1]}",), staff_numbers=(person,)))
        for site, person in ((SITE_A, PERSON_A), (SITE_B, PERSON_B))}
    return {"forced": forced, "alerts": alert_ids, "cases": cases, "rollcalls": calls}


@pytest.fixture
def people(engine, users):
    """sup-01 and aud-01 see site A only; sup-all has no sites chosen (every site)."""
    add_user(engine, "sup-all", PASSWORD, "supervisor")
    for name in ("sup-01", "aud-01"):
        assert user_sites.set_sites(engine, "adm-01", name, [SITE_A])
    return users


def signed_in(client, username: str):
    assert login(client, username).status_code == 302
    return client


def text_of(response) -> str:
    """What a reader finds in a page, CSV or Excel file."""
    if response.mimetype.endswith("spreadsheetml.sheet"):
        book = load_workbook(io.BytesIO(response.get_data()))
        return "\n".join(str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row
                         if c.value is not None)
    if response.mimetype == "text/csv":
        return "\n".join(",".join(r) for r in csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    return response.get_data(as_text=True)


# Every kind of page, export and API answer, and what of site A it must show.
PAGES = [
    ("/", "Cabinet A"),
    ("/events", "Cabinet A"),
    (f"/events?day={DAY}", NAME_A),
    ("/alerts", "Cabinet A"),
    ("/alerts.csv", "Cabinet A"),
    ("/alerts.xlsx", "Cabinet A"),
    ("/status/alerts", "Cabinet A"),
    (f"/ledger/keys?day={DAY}", NAME_A),
    (f"/ledger/keys.csv?day={DAY}", NAME_A),
    (f"/ledger/keys.xlsx?day={DAY}", NAME_A),
    (f"/ledger/keys/print?day={DAY}", NAME_A),
    (f"/ledger/keys?month={DAY[:7]}", NAME_A),
    (f"/ledger/shredder?day={DAY}", NAME_A),
    (f"/ledger/shredder.csv?day={DAY}", NAME_A),
    (f"/ledger/shredder.xlsx?day={DAY}", NAME_A),
    (f"/ledger/shredder/print?day={DAY}", NAME_A),
    (f"/ledger/prints?day={DAY}", NAME_A),
    (f"/ledger/prints.csv?day={DAY}", NAME_A),
    (f"/ledger/prints.xlsx?day={DAY}", NAME_A),
    (f"/closeout?day={DAY}&live=1", "Ward A office"),
    (f"/monthly?month={DAY[:7]}", "Ward A office"),
    ("/nearmiss/", "Cabinet A"),
    ("/nearmiss/cases.csv", "cabinet-a"),
    ("/nearmiss/analysis?since=2025-04&until=2025-04", "Cabinet A"),
    ("/rollcall/", f"朝礼 {SITE_A}"),
    ("/registry/designations", "cabinet-a"),
    ("/api/stations", "cabinet-a"),
    ("/api/events", "cabinet-a"),
    ("/api/alerts", "cabinet-a"),
    (f"/api/ledger/keys?day={DAY}", "cabinet-a"),
]


@pytest.mark.parametrize("user", ["sup-01", "aud-01"])
def test_a_user_of_site_a_sees_a_and_nothing_of_b(client, offices, people, user):
    signed_in(client, user)
    for url, of_a in PAGES:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        body = text_of(response)
        assert of_a in body, f"{url}: site A's rows are missing"
        leaked = [mark for mark in b_marks() if mark in body]
        assert not leaked, f"{url} shows site B to {user}: {leaked}"


@pytest.mark.parametrize("user", ["sup-all", "adm-01"])
def test_a_user_without_sites_and_an_admin_see_both(client, offices, people, user):
    signed_in(client, user)
    for url, _of_a in PAGES:
        if url.startswith("/status/") or (url.startswith("/monthly") and user == "adm-01"):
            continue  # the monthly report is the supervisors' and auditors'
        body = text_of(client.get(url))
        if url.startswith(("/closeout", "/monthly")):  # one site's report at a time: B's is offered
            assert f'value="{SITE_B}"' in body, (url, user)
        else:
            assert any(mark in body for mark in b_marks()), f"{url}: {user} should see site B too"


def b_requests(offices, user: str) -> list[str]:
    forced_b = offices["forced"][SITE_B]
    # A case drafted from an alert or event is the supervisors' (an auditor gets 403 for any).
    drafts = [f"/nearmiss/new?event={forced_b}", f"/nearmiss/new?alert={offices['alerts'][SITE_B]}"]
    return [*(drafts if user.startswith("sup") else []),
        "/events?station=cabinet-b",
        "/api/events?station=cabinet-b",
        "/alerts?station=cabinet-b",
        "/alerts.csv?station=cabinet-b",
        "/api/alerts?station=cabinet-b",
        f"/ledger/keys?station=cabinet-b&day={DAY}",
        f"/ledger/keys.csv?station=cabinet-b&day={DAY}",
        f"/ledger/keys.xlsx?station=cabinet-b&day={DAY}",
        f"/ledger/keys/print?station=cabinet-b&day={DAY}",
        f"/api/ledger/keys?station=cabinet-b&day={DAY}",
        f"/ledger/shredder.csv?station=shredder-b&day={DAY}",
        f"/ledger/prints.xlsx?station=printer-b&day={DAY}",
        f"/closeout?site={SITE_B}&day={DAY}",
        f"/closeout.csv?site={SITE_B}&day={DAY}",
        f"/monthly?site={SITE_B}&month=2025-04",
        f"/monthly.xlsx?site={SITE_B}&month=2025-04",
        f"/snapshots/{forced_b}.jpg",
        f"/nearmiss/{offices['cases'][SITE_B]}",
        f"/rollcall/{offices['rollcalls'][SITE_B]}",
        f"/rollcall/{offices['rollcalls'][SITE_B]}/roster.csv",
        "/registry/designations/cabinet-b",
    ]


@pytest.mark.parametrize("user", ["sup-01", "aud-01"])
def test_site_b_asked_for_by_name_is_not_found(client, offices, people, user):
    signed_in(client, user)
    for url in b_requests(offices, user):
        response = client.get(url)
        assert response.status_code == 404, (url, response.status_code)
        # Nothing of B but what the address itself holds (the page offers it back to the language switch).
        assert not [m for m in b_marks() if m in response.get_data(as_text=True) and m not in url], url
    # The same kind of request for site A answers.
    assert client.get(f"/snapshots/{offices['forced'][SITE_A]}.jpg").status_code == 200
    assert client.get(f"/ledger/keys.csv?station=cabinet-a&day={DAY}").status_code == 200


def test_site_b_alerts_cannot_be_acknowledged_by_a_supervisor_of_a(client, engine, offices, people):
    signed_in(client, "sup-01")
    token = csrf_from(client.get("/").get_data(as_text=True))
    b, a = offices["alerts"][SITE_B], offices["alerts"][SITE_A]
    one = client.post(f"/alerts/{b}/ack", data={"comment": "checked", "csrf_token": token})
    many = client.post("/alerts/ack", data={"ids": f"{a},{b}", "comment": "checked", "csrf_token": token})
    # An id that does not exist answers the same as B's: nothing tells B's alert exists.
    missing = client.post("/alerts/999999/ack", data={"comment": "checked", "csrf_token": token})
    assert (one.status_code, many.status_code, missing.status_code) == (404, 404, 404)
    with engine.connect() as conn:
        states = dict(conn.execute(select(alerts_table.c.id, alerts_table.c.state)).all())
    assert states[a] == states[b] == "open"  # the mixed form acknowledged nothing
    ok = client.post(f"/alerts/{a}/ack", data={"comment": "checked", "csrf_token": token})
    assert ok.status_code == 302
    with engine.connect() as conn:
        states = dict(conn.execute(select(alerts_table.c.id, alerts_table.c.state)).all())
    assert (states[a], states[b]) == ("acknowledged", "open")


def test_b_stations_cannot_be_put_in_maintenance_nor_named_on_a_case(client, offices, people):
    signed_in(client, "sup-01")
    token = csrf_from(client.get("/").get_data(as_text=True))
    assert client.post("/maintenance", data={"station": "cabinet-b", "hours": "2", "reason": "x",
                                             "csrf_token": token}).status_code == 404
    form = client.get("/nearmiss/new").get_data(as_text=True)
    assert "cabinet-a" in form and "cabinet-b" not in form
    filed = client.post("/nearmiss/new", data={
        "occurred_at": "2025-04-01T12:00", "station": "cabinet-b", "place": "", "category": "other",
        "what": "x", "why": "", "severity": "minor", "csrf_token": csrf_from(form)})
    assert filed.status_code == 404


def test_the_live_stream_carries_only_site_a(server, bus, alert_center, engine, offices, people):
    stream = Stream(server.port, "aud-01", "/events/stream?after=0&alerts_after=0")
    try:
        # What the page missed before it subscribed: A's events and alert only.
        missed_events, missed_alerts = [], []
        # Site A stored 9 events (a key use: 4, a forced door: 2, a print, a shredding: 2) and has
        # 1 alert; had B's been sent, they would come in between (chain order, then alert order).
        for _ in range(50):
            kind, payload = stream.next_message(timeout=5)
            if kind == "event":
                missed_events.append(json.loads(payload))
            elif kind == "alert":
                missed_alerts.append(json.loads(payload))
                break  # the alerts come after every missed event
        assert len(missed_events) == 9
        assert {e["station"] for e in missed_events} == {"cabinet-a", "shredder-a", "printer-a"}
        assert [a["id"] for a in missed_alerts] == [offices["alerts"][SITE_A]]
        # Live: B's station change and alert are published first, then A's; A's arrive, B's never.
        now = datetime.now(JST).isoformat()
        bus.publish("station", {"site": SITE_B, "station": "cabinet-b", "state": "offline", "at": now})
        b_alert = alert_center.raise_alert(site=SITE_B, station="cabinet-b", rule="offline", severity="warning",
                                           message="offline", params={})
        bus.publish("station", {"site": SITE_A, "station": "cabinet-a", "state": "offline", "at": now})
        a_alert = alert_center.raise_alert(site=SITE_A, station="cabinet-a", rule="offline", severity="warning",
                                           message="offline", params={})
        assert stream.wait_for("station")["station"] == "cabinet-a"
        got = stream.wait_for("alert")
        assert got["id"] == a_alert != b_alert
        assert NAME_B not in got["html"] and "Cabinet B" not in got["html"]
        assert got["open_count"] == 2  # A's forced door and A's offline: B's alerts are not counted
    finally:
        stream.close()


def test_sites_are_set_with_the_change_logged_and_none_means_every_site(engine, people, cfg):
    assert not user_sites.set_sites(engine, "adm-01", "sup-01", [SITE_A])  # the same again: no change
    assert user_sites.set_sites(engine, "adm-01", "sup-01", [SITE_B, SITE_A])
    with engine.connect() as conn:
        logged = conn.execute(select(registry_log).where(registry_log.c.entity == "user_sites")
                              .order_by(registry_log.c.id)).mappings().all()
        side = [json.loads(e) for e in conn.execute(select(side_log.c.entry).where(side_log.c.part == "registry"))
                .scalars()]
    assert [(r["actor"], r["key"], json.loads(r["before"]), json.loads(r["after"])) for r in logged] == [
        ("adm-01", "sup-01", {"sites": []}, {"sites": [SITE_A]}),
        ("adm-01", "aud-01", {"sites": []}, {"sites": [SITE_A]}),
        ("adm-01", "sup-01", {"sites": [SITE_A]}, {"sites": [SITE_A, SITE_B]}),
    ]
    assert [e for e in side if e.get("entity") == "user_sites"][-1]["after"] == json.dumps(
        {"sites": [SITE_A, SITE_B]}, separators=(",", ":"))
    assert user_sites.set_sites(engine, "adm-01", "sup-01", [])
    user = [u for u in __import__("hub.accounts.users", fromlist=["list_users"]).list_users(engine)
            if u["username"] == "sup-01"][0]
    assert user_sites.visible_sites("supervisor", user_sites.sites_of(engine, user["id"])) is None
    assert user_sites.visible_sites("admin", frozenset({SITE_A})) is None
    with pytest.raises(user_sites.SiteScopeError, match="not in the hub's sites"):
        user_sites.set_sites(engine, "adm-01", "sup-01", ["ward-z"], known=[SITE_A, SITE_B])
    with pytest.raises(user_sites.SiteScopeError, match="not a site ID"):
        user_sites.set_sites(engine, "adm-01", "sup-01", ["../etc"])
    with pytest.raises(user_sites.SiteScopeError, match="no active user"):
        user_sites.set_sites(engine, "adm-01", "nobody", [SITE_A])


def test_the_admin_sets_a_users_sites_on_the_users_page(client, engine, offices, people):
    signed_in(client, "adm-01")
    assert 'href="/users"' in client.get("/account").get_data(as_text=True)
    page = client.get("/users").get_data(as_text=True)
    assert "Ward A office" in page and "Ward B office" in page and 'id="user-sup-all"' in page
    saved = client.post("/users/sup-all/sites", data={"sites": [SITE_B], "csrf_token": csrf_from(page)})
    assert saved.status_code == 302
    refused = client.post("/users/sup-all/sites", data={"sites": ["ward-z"], "csrf_token": csrf_from(page)},
                          follow_redirects=True)
    assert "ward-z" in refused.get_data(as_text=True)
    assert client.post("/users/nobody/sites", data={"sites": [SITE_A], "csrf_token": csrf_from(page)}
                       ).status_code == 404
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    signed_in(client, "sup-all")
    body = client.get(f"/ledger/keys?day={DAY}").get_data(as_text=True)
    assert NAME_B in body and NAME_A not in body
    # Only admins manage sites.
    assert client.get("/users").status_code == 403


def test_the_cli_shows_and_sets_a_users_sites(tmp_path, monkeypatch, capsys):
    from kagiban.cli import main

    path = write_config(tmp_path / "cli", stations=STATIONS, sites=SITES)
    monkeypatch.setenv("KAGIBAN_NEW_PASSWORD", PASSWORD)
    assert main(["hub", "user", "add", "--config", str(path), "--username", "aud-02", "--role", "auditor",
                 "--password-env", "KAGIBAN_NEW_PASSWORD"]) == 0
    capsys.readouterr()
    assert main(["hub", "user", "sites", "--config", str(path), "--username", "aud-02"]) == 0
    assert capsys.readouterr().out == "aud-02\t(every site)\n"
    assert main(["hub", "user", "sites", "--config", str(path), "--username", "aud-02", "--site", SITE_B]) == 0
    assert capsys.readouterr().out == f"aud-02\t{SITE_B}\n"
    # A site the hub does not have is refused with its name; nothing changes.
    assert main(["hub", "user", "sites", "--config", str(path), "--username", "aud-02", "--site", "ward-z"]) == 1
    assert "ward-z" in capsys.readouterr().err
    assert main(["hub", "user", "sites", "--config", str(path), "--username", "aud-02", "--all-sites"]) == 0
    assert capsys.readouterr().out == "aud-02\t(every site)\n"
    assert main(["hub", "user", "sites", "--config", str(path), "--username", "nobody"]) == 1
