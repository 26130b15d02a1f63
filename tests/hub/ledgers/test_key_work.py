"""Recording the work done with a key (作業内容): only from the site's list, only by the person
who used the key or a supervisor, audited in the ``work`` side log (who, when, what) that
``kagiban verify`` holds the table against, and the stored key.used event never changes."""
from __future__ import annotations

import io
import json
from datetime import date

import pytest
from sqlalchemy import select, update

from hub.audit import verify
from hub.config import load
from hub.ledgers import key_work
from hub.ledgers import keys as ledger
from hub.store import migrate
from hub.store.db import make_engine
from hub.store.schema import events, key_work as key_work_table, side_log
from tests.support.key_uses import SITES, use
from tests.support.web_app import HOLDER, store, write_config


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub", sites=SITES))


@pytest.fixture
def engine(cfg):
    eng = make_engine(cfg.db_url())
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def use_id(engine):
    payloads = use("cabinet-1", 1, HOLDER, "S001", "04-01", "08:45:00", "08:45:02", "08:46:10", 68.0)
    store(engine, payloads)
    return payloads[3][1]["id"]


def stored_use(engine, event_id):
    with engine.connect() as conn:
        return conn.execute(select(events).where(events.c.event_id == event_id)).mappings().one()


def work_log(engine) -> list[dict]:
    with engine.connect() as conn:
        return [json.loads(e) for e in conn.execute(
            select(side_log.c.entry).where(side_log.c.part == "work").order_by(side_log.c.n)).scalars()]


def verify_lines(cfg) -> dict[str, str]:
    out = io.StringIO()
    verify.run(cfg.db_url(), out)
    return {line.split(":", 1)[0]: line for line in out.getvalue().splitlines()}


def test_a_supervisor_records_the_work_audited_and_the_event_untouched(engine, cfg, use_id):
    before = stored_use(engine, use_id)
    done = key_work.record(engine, cfg, use_id, "register", username="sup-01", role="supervisor")
    assert (done.work, done.by, done.source) == ("register", "sup-01", "page")
    assert stored_use(engine, use_id) == before
    [entry] = work_log(engine)
    assert {k: entry[k] for k in ("event_id", "station", "work", "recorded_by")} == {
        "event_id": use_id, "station": "cabinet-1", "work": "register", "recorded_by": "sup-01"}
    assert entry["recorded_at"] == done.at
    assert verify_lines(cfg)["work"].startswith("work: OK: 1 entries")


def test_the_person_who_used_the_key_may_record_it_others_may_not(engine, cfg, use_id):
    key_work.record(engine, cfg, use_id, "register", username="S001", role="auditor")
    with pytest.raises(key_work.WorkError) as caught:
        key_work.record(engine, cfg, use_id, "card-safe", username="aud-01", role="auditor")
    assert caught.value.code == "not_allowed" and caught.value.params == {"use": use_id}
    [row] = ledger.key_ledger(engine, cfg, date(2025, 4, 1), station="cabinet-1")
    assert row.work.work == "register" and len(work_log(engine)) == 1


@pytest.mark.parametrize("event_id, work, code", [
    (None, "shopping", "unknown_work"),
    ("not-a-use", "register", "no_such_use"),
])
def test_bad_input_is_refused_by_name_and_nothing_is_stored(engine, cfg, use_id, event_id, work, code):
    with pytest.raises(key_work.WorkError) as caught:
        key_work.record(engine, cfg, event_id or use_id, work, username="sup-01", role="supervisor")
    assert caught.value.code == code
    assert work in str(caught.value.params) or (event_id or use_id) in str(caught.value.params)
    assert work_log(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(key_work_table)).all() == []


def test_a_record_altered_behind_the_log_is_named_by_verify(engine, cfg, use_id):
    key_work.record(engine, cfg, use_id, "register", username="S001", role="auditor")
    with engine.begin() as conn:
        conn.execute(update(key_work_table).values(work="card-safe"))
    line = verify_lines(cfg)["work"]
    assert line.startswith("work: TAMPERED") and "altered (work)" in line
