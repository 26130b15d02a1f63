"""The one period parser every ledger page reads its day, month or date range with: what each
form covers, what it asks again, and a clear error naming the argument for what it cannot show."""
from __future__ import annotations

from datetime import date

import pytest

from hub.ledgers.base import MAX_RANGE_DAYS, Period, PeriodError, month_period, parse_period

TODAY = date(2025, 4, 15)


def test_nothing_asked_is_today():
    assert parse_period({}, TODAY) == Period("day", TODAY, TODAY)


def test_a_day():
    period = parse_period({"day": "2025-04-01"}, TODAY)
    assert (period.kind, period.first, period.last) == ("day", date(2025, 4, 1), date(2025, 4, 1))
    assert period.label == "2025-04-01" and period.args() == {"day": "2025-04-01"}


@pytest.mark.parametrize("month, last", [("2025-02", date(2025, 2, 28)), ("2024-02", date(2024, 2, 29)),
                                         ("2025-04", date(2025, 4, 30)), ("2025-12", date(2025, 12, 31))])
def test_a_month_runs_to_its_last_day(month, last):
    period = parse_period({"month": month}, TODAY)
    assert (period.kind, period.first, period.last) == ("month", date.fromisoformat(month + "-01"), last)
    assert period.label == month and period.args() == {"month": month}
    assert len(period.days()) == last.day


def test_a_range_of_days():
    period = parse_period({"from": "2025-03-25", "to": "2025-04-03"}, TODAY)
    assert (period.kind, period.first, period.last) == ("range", date(2025, 3, 25), date(2025, 4, 3))
    assert period.args() == {"from": "2025-03-25", "to": "2025-04-03"}
    assert period.slug == "2025-03-25_2025-04-03" and "2025-03-25" in period.label and "2025-04-03" in period.label
    assert len(period.days()) == 10


def test_a_range_without_its_end_is_one_day():
    assert parse_period({"from": "2025-04-02"}, TODAY) == Period("range", date(2025, 4, 2), date(2025, 4, 2))


def test_a_range_wins_over_a_month_and_a_day():
    # A form sends one of them; a hand-made link with several shows the most specific.
    period = parse_period({"from": "2025-04-02", "to": "2025-04-03", "month": "2025-01", "day": "2025-01-01"}, TODAY)
    assert period.kind == "range"


@pytest.mark.parametrize("args, param, expected", [
    ({"day": "2025-13-01"}, "day", "date"),
    ({"day": "yesterday"}, "day", "date"),
    ({"month": "2025-4-1"}, "month", "month"),
    ({"month": "April"}, "month", "month"),
    ({"from": "2025-04-31"}, "from", "date"),
    ({"to": "2025-04-03"}, "from", "date"),
    ({"from": "2025-04-03", "to": "04/05/2025"}, "to", "date"),
    ({"from": "2025-04-03", "to": "2025-04-02"}, "to", "range_order"),
])
def test_what_cannot_be_shown_names_its_argument(args, param, expected):
    with pytest.raises(PeriodError) as caught:
        parse_period(args, TODAY)
    assert (caught.value.param, caught.value.expected) == (param, expected)


def test_a_range_is_at_most_a_year_and_a_day():
    first = date(2024, 1, 1)
    longest = parse_period({"from": "2024-01-01", "to": "2024-12-31"}, TODAY)
    assert len(longest.days()) == MAX_RANGE_DAYS
    with pytest.raises(PeriodError) as caught:
        parse_period({"from": first.isoformat(), "to": "2025-01-01"}, TODAY)
    assert caught.value.expected == "range_length"


def test_the_last_month_there_is():
    assert month_period("9999-12").last == date.max
