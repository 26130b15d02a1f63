"""After-hours alerts on the site's days off that nobody typed: Japan's national holidays
(substitute ones too) from the site's calendar, and the office's own closed-day range, through
a real Ingest and the rules into a real SQLite file."""
from __future__ import annotations

import pytest

from tests.support.alert_stack import Stack, ev
from tests.hub.helpers import SITE

STATIONS = [{"id": "cabinet-1", "site": SITE, "kind": "cabinet", "name": "Key cabinet 1"}]


@pytest.fixture
def make_stack(tmp_path):
    made: list[Stack] = []

    def _make(**cfg) -> Stack:
        s = Stack(tmp_path / f"s{len(made)}", **cfg)
        made.append(s)
        return s

    yield _make
    for s in made:
        s.close()


def after_hours_seqs(stack) -> list[tuple[int, bool]]:
    return sorted((a["params"]["seq"], a["params"]["holiday"]) for a in stack.alerts("after_hours"))


def test_a_national_holiday_is_after_hours_with_no_date_in_the_file(make_stack):
    stack = make_stack(sites={SITE: {"name": "Ward A"}}, stations=STATIONS)
    stack.start_rules()
    stack.feed(
        ev("cabinet-1", 1, "badge.granted", "2026-11-23T10:00:00+09:00"),  # 勤労感謝の日, a Monday
        ev("cabinet-1", 2, "badge.granted", "2025-11-24T10:00:00+09:00"),  # 振替休日 (Sunday the 23rd)
        ev("cabinet-1", 3, "badge.granted", "2026-11-24T10:00:00+09:00"),  # an ordinary Tuesday
    )
    assert after_hours_seqs(stack) == [(1, True), (2, True)]


def test_the_offices_own_new_year_closure_is_after_hours(make_stack):
    stack = make_stack(sites={SITE: {"name": "Ward A", "holidays": [
        {"from": "12-29", "to": "01-03", "label": "年末年始"}]}}, stations=STATIONS)
    stack.start_rules()
    stack.feed(
        ev("cabinet-1", 1, "badge.granted", "2025-12-26T10:00:00+09:00"),  # Friday, the last working day
        ev("cabinet-1", 2, "badge.granted", "2025-12-29T10:00:00+09:00"),  # Monday, closed
        ev("cabinet-1", 3, "door.forced", "2026-01-02T11:00:00+09:00", badge=None, person=None),  # Friday
        ev("cabinet-1", 4, "badge.granted", "2026-01-05T10:00:00+09:00"),  # Monday, open again
    )
    assert after_hours_seqs(stack) == [(2, True), (3, True)]


def test_a_site_without_a_calendar_works_on_national_holidays(make_stack):
    stack = make_stack(sites={SITE: {"name": "Ward A", "holiday_calendar": "none"}}, stations=STATIONS)
    stack.start_rules()
    stack.feed(ev("cabinet-1", 1, "badge.granted", "2026-11-23T10:00:00+09:00"))
    assert stack.alerts("after_hours") == []
