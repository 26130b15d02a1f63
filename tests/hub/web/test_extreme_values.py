"""No page or export fails on a stored value: extreme values are written into the store directly
(years 1 and 9999, NaN and Infinity, huge strings, control characters, odd unicode, text that is
not JSON where JSON is expected), then every GET route of the app (enumerated from Flask's url_map,
so a page added later is covered too) is opened by each role, with and without the filters the
pages read, and none may answer 500."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub.store.schema import events
from hub.web.state import state
from tests.support.extreme_store import QUERIES, fill, where
from tests.support.web_app import login


def _urls(app, values: dict[str, list]) -> list[str]:
    """Every GET route with each argument filled from ``values`` (unknown ones get "x", or 1
    where the route takes a number)."""
    from werkzeug.routing import IntegerConverter

    out = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        choices = [dict()]
        for arg in sorted(rule.arguments):
            unknown = [1] if isinstance(rule._converters.get(arg), IntegerConverter) else ["x"]
            choices = [{**c, arg: v} for c in choices for v in values.get(arg, unknown)]
        with app.test_request_context():
            from flask import url_for
            for args in choices:
                base = url_for(rule.endpoint, **args)
                out.extend(base + q for q in QUERIES)
    return out


@pytest.mark.parametrize("role", [None, "admin", "supervisor", "auditor"])
def test_every_page_and_export_answers_whatever_the_store_holds(app, client, engine, users, role):
    values = fill(engine)
    with app.app_context():
        state().shutdown.set()  # the live stream replays what is stored, then ends
    if role is not None:
        assert login(client, users[role]).status_code == 302
    urls = _urls(app, values)
    assert len(urls) > 300  # every route, each with its arguments and filters
    failed = []
    for url in urls:
        try:
            response = client.get(url)
            body = response.get_data()  # streamed responses fail while they are read
        except Exception as exc:  # TESTING: the app's error would have been a 500
            failed.append((url, where(exc)))
            continue
        if response.status_code == 500:
            failed.append((url, response.status_code, body[:200]))
    causes = sorted({str(f[1]) for f in failed})
    assert failed == [], f"{len(failed)} failed; causes:\n" + "\n".join(causes)


def test_the_stored_extremes_are_what_the_pages_read(app, engine, users):
    fill(engine)
    with engine.connect() as conn:
        ats = set(conn.execute(select(events.c.at)).scalars())
    assert {"9999-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00+00:00", "NaN"} <= ats


# Values no page can use, for every parameter any page reads: each must get a 400 (the site's
# own page, or JSON under the API) or be ignored by a page that does not read it; never a 500.
BAD_QUERIES = [
    "?day=2025-02-30", "?day=NaN", "?day=%0A", "?day=99999-01-01", "?day=-0001-01-01", "?day=2025-1-1x",
    "?month=2025-13", "?month=0000-00", "?month=%00", "?before=abc", "?before=-5", "?before=1e99",
    "?limit=NaN", "?limit=%E2%80%AE", "?limit=1_000", "?after=x", "?alerts_after=%0A", "?within=NaN",
    "?within=-99999999999999999999999", "?since=2025-02-30", "?until=x", "?state=shut", "?kind=%00",
    "?next=%0A", "?next=/%09/127.0.0.2/x", "?site=%00", "?live=%0A", "?training=%0A", "?q=" + "%F0" * 10,
    "?station=" + "x" * 5000, "?day=2025-01-01&day=x", "?station=%00", "?station=cabinet-1%1B[31m",
    "?person=%07", "?site=ward-a%0D%0A",
]
# Where a parameter is read, its bad value is a 400 (a sample per parameter).
MUST_REFUSE = {
    "/events?day=2025-02-30": "day", "/ledger/keys?day=NaN": "day", "/ledger/keys.csv?day=%0A": "day",
    "/ledger/shredder?month=2025-13": "month", "/closeout?day=99999-01-01": "day", "/events?before=abc": "before",
    "/api/events?limit=NaN": "limit", "/api/alerts?state=shut": "state", "/api/alerts?limit=1_000": "limit",
    "/registry/gaps?within=NaN": "within", "/registry/attendance.csv?since=2025-02-30": "since",
    "/ledger/prints?day=-0001-01-01": "day", "/events/stream?after=x": "after",
    "/nearmiss/analysis?until=2025-13": "until", "/nearmiss/new?alert=x": "alert", "/nearmiss/?state=shut": "state",
}


def _site_error_page(response) -> bool:
    if response.mimetype == "application/json":
        return "error" in response.get_json()
    text = response.get_data(as_text=True)
    return "鍵番" in text and "<h1>" in text


@pytest.mark.timeout(300)
def test_bad_query_values_are_a_400_with_the_sites_page_never_a_500(app, client, engine, users):
    # An ordinary store: what is tested is the query string, not the rows.
    values = {"staff_no": ["S001"], "filename": ["kagiban.css"], "session_id": [1], "case_id": [1], "rollcall_id": [1]}
    with app.app_context():
        state().shutdown.set()  # the live stream ends after its replay
    assert login(client, users["admin"]).status_code == 302
    failed, refused = [], 0
    for base in sorted({u.split("?")[0] for u in _urls(app, values)}):
        for q in BAD_QUERIES:
            try:
                response = client.get(base + q)
                response.get_data()
                response.close()  # a live stream counts as open until closed
            except Exception as exc:
                failed.append((base + q, where(exc)))
                continue
            if response.status_code >= 500:
                failed.append((base + q, response.status_code))
            elif response.status_code == 400:
                refused += 1
                if not _site_error_page(response):
                    failed.append((base + q, "400 without the site's page"))
    assert failed == [], f"{len(failed)} failed:\n" + "\n".join(map(str, failed[:40]))
    assert refused > 50
    for url, param in MUST_REFUSE.items():
        response = client.get(url)
        assert response.status_code == 400, url
        body = response.get_data(as_text=True)
        assert f"「{param}」" in body or f'"{param} must be' in body, url
