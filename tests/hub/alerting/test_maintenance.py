"""Maintenance in the audit trail: each period's start (who, when, until, reason) and early end
(who, when, comment) is entered in the ``maintenance`` side log as it is committed, and
``kagiban verify`` holds the maintenance table against that log both ways."""
from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, insert, select, update

from hub.alerting import maintenance
from hub.audit import verify
from hub.store.schema import maintenance as maintenance_table
from hub.store.schema import side_log
from hub.store.timestamps import utc_text
from tests.support.alert_stack import Stack

T0 = datetime(2026, 12, 4, 0, 30, tzinfo=timezone.utc)  # 09:30 in Tokyo


def _log(s: Stack) -> list[dict]:
    with s.engine.connect() as conn:
        return [json.loads(t) for t in conn.execute(
            select(side_log.c.entry).where(side_log.c.part == "maintenance").order_by(side_log.c.n)).scalars()]


def _verify(s: Stack) -> tuple[int, str]:
    out = io.StringIO()
    code = verify.run(s.cfg.db_url(), out=out)
    [line] = [line for line in out.getvalue().splitlines() if line.startswith("maintenance: ")]
    return code, line


def test_start_and_early_end_are_logged_with_who_when_until_and_comment(tmp_path):
    s = Stack(tmp_path)
    try:
        window = maintenance.start(s.engine, "cabinet-1", 2, "replacing the reader", "sup-01", now=T0)
        assert maintenance.end(s.engine, "cabinet-1", "sup-02", "reader replaced, tested with two badges",
                               now=T0 + timedelta(minutes=45))
        assert _log(s) == [
            {"op": "started", "id": window.id, "station": "cabinet-1", "starts_at": utc_text(T0),
             "ends_at": utc_text(T0 + timedelta(hours=2)), "reason": "replacing the reader", "set_by": "sup-01"},
            {"op": "ended", "id": window.id, "station": "cabinet-1", "ended_at": utc_text(T0 + timedelta(minutes=45)),
             "ended_by": "sup-02", "end_comment": "reader replaced, tested with two badges"},
        ]
        [period] = maintenance.periods(s.engine)
        assert (period.set_by, period.ended_by, period.end_comment) == (
            "sup-01", "sup-02", "reader replaced, tested with two badges")
        assert _verify(s) == (0, "maintenance: OK: 2 entries (1 periods, 1 ended early), log intact and matching the store")
    finally:
        s.close()


def test_a_new_period_ends_the_one_before_and_the_log_says_so(tmp_path):
    s = Stack(tmp_path)
    try:
        first = maintenance.start(s.engine, "cabinet-1", 2, "cleaning", "sup-01", now=T0)
        second = maintenance.start(s.engine, "cabinet-1", 4, "lock replaced too", "sup-02", now=T0 + timedelta(hours=1))
        ops = [(e["op"], e["id"]) for e in _log(s)]
        assert ops == [("started", first.id), ("ended", first.id), ("started", second.id)]
        assert _log(s)[1]["ended_by"] == "sup-02" and _log(s)[1]["end_comment"] is None
        # Nothing in force is ended twice, and a station with none is no change.
        assert not maintenance.end(s.engine, "cabinet-2", "sup-01", now=T0 + timedelta(hours=1))
        assert len(_log(s)) == 3
        assert _verify(s)[0] == 0
    finally:
        s.close()


def test_a_too_long_end_comment_is_refused_and_nothing_changes(tmp_path):
    s = Stack(tmp_path)
    try:
        maintenance.start(s.engine, "cabinet-1", 2, "cleaning", "sup-01")
        with pytest.raises(maintenance.MaintenanceError) as err:
            maintenance.end(s.engine, "cabinet-1", "sup-01", "x" * (maintenance.COMMENT_MAX + 1))
        assert err.value.code == "maintenance_comment"
        assert set(maintenance.active(s.engine)) == {"cabinet-1"} and len(_log(s)) == 1
    finally:
        s.close()


def test_verify_names_a_period_altered_deleted_or_inserted_behind_the_log(tmp_path):
    s = Stack(tmp_path)
    try:
        window = maintenance.start(s.engine, "cabinet-1", 2, "cleaning", "sup-01", now=T0)
        maintenance.end(s.engine, "cabinet-1", "sup-01", "done", now=T0 + timedelta(minutes=10))
        # An insider stretches the period to cover a night's alerts.
        with s.engine.begin() as conn:
            conn.execute(update(maintenance_table).values(ends_at=utc_text(T0 + timedelta(hours=12)),
                                                          ended_at=None, ended_by=None, end_comment=None))
        code, line = _verify(s)
        assert code == 1
        assert line == f"maintenance: TAMPERED: 2 entries; maintenance period {window.id} altered (ends_at) against log entry 1"
        with s.engine.begin() as conn:
            conn.execute(delete(maintenance_table))
        assert _verify(s)[1].endswith(f"maintenance period {window.id} of cabinet-1 (set by sup-01) deleted: "
                                      "log entry 1 records it")
        with s.engine.begin() as conn:
            conn.execute(insert(maintenance_table).values(
                id=window.id, station="cabinet-1", starts_at=utc_text(T0), ends_at=utc_text(T0 + timedelta(hours=2)),
                reason="cleaning", set_by="sup-01", ended_at=utc_text(T0 + timedelta(minutes=10)), ended_by="sup-01",
                end_comment="done"))
            conn.execute(insert(maintenance_table).values(
                station="cabinet-2", starts_at=utc_text(T0), ends_at=utc_text(T0 + timedelta(hours=9)),
                reason="quiet night", set_by="sup-01"))
        assert _verify(s)[1].endswith("maintenance period 2 of cabinet-2 is not in the log (inserted)")
    finally:
        s.close()
