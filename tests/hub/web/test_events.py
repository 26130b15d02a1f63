"""The events page and API: filters by station, person, kind and day (in the site's zone),
keyset pages that neither skip nor repeat, snapshots only for signed-in users, and every
query answered through an index (no full scan of a million-row table)."""
from __future__ import annotations

import base64

import pytest
from sqlalchemy import event as sa_event

from hub.accounts.users import add_user
from hub.web import data
from tests.hub.helpers import JPEG, event, snapshot
from tests.support.web_app import PASSWORD, login, store


def ev(station: str, seq: int, at: str, kind: str = "door.opened", person: str | None = "S001", **extra):
    return ("event", event(station, seq, at=at, kind=kind, person=person,
                           badge="0123456789ABCDEF" if person else None, **extra))


@pytest.fixture
def day_events(engine):
    """Events around midnight in Tokyo on 2025-04-01/02 at two cabinets."""
    payloads = [
        ev("cabinet-1", 1, "2025-04-01T08:59:00+09:00", kind="badge.granted"),
        ev("cabinet-1", 2, "2025-04-01T09:00:00+09:00"),
        ev("cabinet-1", 3, "2025-04-01T23:30:00+09:00", person="S002"),
        # 2025-04-01 15:30 UTC, but 2025-04-02 in Tokyo: belongs to the 2nd.
        ev("cabinet-1", 4, "2025-04-02T00:30:00+09:00", kind="door.forced", person=None),
        ev("cabinet-2", 1, "2025-04-01T10:00:00+09:00", person="S002"),
    ]
    store(engine, payloads)
    return payloads


def seqs(response) -> list[tuple[str, int]]:
    return [(e["station"], e["seq"]) for e in response.get_json()["events"]]


def test_filters_by_station_person_kind_and_day(as_auditor, day_events):
    assert seqs(as_auditor.get("/api/events")) == [
        ("cabinet-2", 1), ("cabinet-1", 4), ("cabinet-1", 3), ("cabinet-1", 2), ("cabinet-1", 1)]
    assert seqs(as_auditor.get("/api/events?station=cabinet-2")) == [("cabinet-2", 1)]
    assert seqs(as_auditor.get("/api/events?person=S002")) == [("cabinet-2", 1), ("cabinet-1", 3)]
    assert seqs(as_auditor.get("/api/events?kind=door.forced")) == [("cabinet-1", 4)]
    assert seqs(as_auditor.get("/api/events?station=cabinet-1&person=S001&kind=door.opened")) == [("cabinet-1", 2)]


def test_day_is_the_sites_calendar_day_not_utc(as_auditor, day_events):
    first = seqs(as_auditor.get("/api/events?day=2025-04-01"))
    assert ("cabinet-1", 4) not in first
    assert sorted(first) == [("cabinet-1", 1), ("cabinet-1", 2), ("cabinet-1", 3), ("cabinet-2", 1)]
    assert seqs(as_auditor.get("/api/events?day=2025-04-02")) == [("cabinet-1", 4)]
    assert seqs(as_auditor.get("/api/events?day=2025-04-01&station=cabinet-1&person=S002")) == [("cabinet-1", 3)]


def test_bad_filter_values_are_a_400_not_a_crash(as_auditor):
    assert as_auditor.get("/api/events?day=yesterday").status_code == 400
    assert as_auditor.get("/api/events?before=abc").status_code == 400
    assert as_auditor.get("/events?day=2025-13-40").status_code == 400


def test_events_page_shows_times_in_the_site_zone_with_names(as_supervisor, day_events):
    page = as_supervisor.get("/events?station=cabinet-1&day=2025-04-02").get_data(as_text=True)
    assert "2025-04-02 00:30:00" in page  # 2025-04-01T15:30Z shown in Asia/Tokyo
    assert "扉のこじ開け" in page
    page = as_supervisor.get("/events?person=S002").get_data(as_text=True)
    assert "Staff 002 (S002)" in page


@pytest.mark.parametrize("window", [data.WINDOW, 7])
def test_keyset_pages_cover_everything_once(as_auditor, engine, monkeypatch, window):
    # A small window sends the person filter down the index path as well.
    monkeypatch.setattr(data, "WINDOW", window)
    payloads = [ev("cabinet-1", n, f"2025-04-01T10:{n // 60:02d}:{n % 60:02d}+09:00",
                   person="S001" if n % 3 else "S002") for n in range(1, 131)]
    store(engine, payloads)
    for query, expected in (("", list(range(130, 0, -1))),
                            ("&person=S002", [n for n in range(130, 0, -1) if n % 3 == 0])):
        seen, before, pages = [], None, 0
        while True:
            url = f"/api/events?limit=20{query}" + (f"&before={before}" if before else "")
            body = as_auditor.get(url).get_json()
            seen += [e["seq"] for e in body["events"]]
            pages += 1
            before = body["next_before"]
            if before is None:
                break
        assert seen == expected
        assert pages == -(-len(expected) // 20)


def test_snapshot_thumbnails_open_full_size_for_signed_in_users_only(as_auditor, client, engine):
    forced = event("cabinet-1", 1, kind="door.forced", person=None, badge=None)
    store(engine, [("event", forced)], snapshots=[snapshot("cabinet-1", forced["id"])])
    page = as_auditor.get("/events").get_data(as_text=True)
    url = f"/snapshots/{forced['id']}.jpg"
    assert f'href="{url}"' in page and f'src="{url}"' in page and 'class="thumb"' in page
    response = as_auditor.get(url)
    assert response.status_code == 200 and response.mimetype == "image/jpeg" and response.data == JPEG
    assert as_auditor.get("/snapshots/0190a0a0-0000-7000-8000-000000000000.jpg").status_code == 404
    body = as_auditor.get("/api/events").get_json()["events"][0]
    assert body["has_snapshot"] and body["snapshot_url"] == url
    anonymous = as_auditor.application.test_client()
    assert anonymous.get(url).status_code == 401


def test_basic_auth_pages_through_the_api(client, users, day_events):
    token = base64.b64encode(f"{users['auditor']}:{PASSWORD}".encode()).decode()
    body = client.get("/api/events?limit=2", headers={"Authorization": f"Basic {token}"}).get_json()
    assert len(body["events"]) == 2 and body["next_before"] is not None


FILTERS = [
    data.EventFilter(),
    data.EventFilter(station="cabinet-1"),
    data.EventFilter(person="S001"),
    data.EventFilter(kind="key.used"),
    data.EventFilter(station="cabinet-1", kind="key.used", person="S001"),
    data.EventFilter(day=__import__("datetime").date(2025, 4, 1)),
    data.EventFilter(station="cabinet-1", day=__import__("datetime").date(2025, 4, 1)),
    data.EventFilter(person="S001", kind="key.used", day=__import__("datetime").date(2025, 4, 1)),
]


@pytest.mark.sqlite_only  # SQLite's planner; PostgreSQL's picks plans by table size, not shown by a few rows
@pytest.mark.parametrize("flt", FILTERS, ids=lambda f: ",".join(k for k, v in vars(f).items() if v) or "none")
@pytest.mark.parametrize("before", [None, 100])
def test_every_events_query_uses_an_index(engine, cfg, day_events, flt, before, monkeypatch):
    """No statement of a page scans the whole events table (what makes 1,000,000 rows slow)."""
    monkeypatch.setattr(data, "WINDOW", 2)  # also exercise the index fallback of the window path
    statements: list[tuple[str, tuple]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many):
        if "FROM events" in statement:
            statements.append((statement, parameters))

    sa_event.listen(engine, "before_cursor_execute", capture)
    try:
        data.list_events(engine, cfg, flt, before=before, limit=50)
    finally:
        sa_event.remove(engine, "before_cursor_execute", capture)
    assert statements
    with engine.connect() as conn:
        for statement, parameters in statements:
            plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)]
            scans = [step for step in plan if step.startswith("SCAN events") and "COVERING INDEX" not in step]
            tail = statement.split("FROM events", 1)[1]
            if "WHERE" not in tail and "ORDER BY events.row_no DESC" in tail and "LIMIT" in tail:
                # Newest first by primary key, stopped by LIMIT: reads one page of rows.
                assert scans == ["SCAN events"] and not any("TEMP B-TREE" in p for p in plan), plan
            else:
                assert not scans, (statement, plan)


def test_supervisors_can_make_a_near_miss_case_from_each_event_row_and_no_one_else(
        client, app, users, engine, day_events):
    forced_id = day_events[3][1]["id"]
    login(client, users["supervisor"])
    page = client.get("/events?station=cabinet-1").get_data(as_text=True)
    assert "ヒヤリハットにする" in page
    assert page.count('class="small make-case"') == 4  # one per row shown
    link = f'href="/nearmiss/new?event={forced_id}"'
    row = page.split(f'id="ev-{forced_id}"')[1].split("</tr>")[0]
    assert link in row
    # Followed, the link opens the near-miss form started from that event.
    draft = client.get(f"/nearmiss/new?event={forced_id}")
    assert draft.status_code == 200
    assert 'value="2025-04-02T00:30"' in draft.get_data(as_text=True)
    # The status page shares the row template: no such link there.
    assert "make-case" not in client.get("/").get_data(as_text=True)

    auditor = app.test_client()
    login(auditor, users["auditor"])
    assert "make-case" not in auditor.get("/events?station=cabinet-1").get_data(as_text=True)
    assert auditor.get(f"/nearmiss/new?event={forced_id}").status_code == 403

    add_user(engine, "staff-07", PASSWORD, "staff", display_name="職員0007")
    staff = app.test_client()
    login(staff, "staff-07")
    assert staff.get("/events").status_code == 403
    assert staff.get(f"/nearmiss/new?event={forced_id}").status_code == 403
