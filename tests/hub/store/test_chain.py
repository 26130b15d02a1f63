"""The hash chain: verify() finds an intact trail intact and names the first tampered row."""
from __future__ import annotations

import json
import sqlite3
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import insert

from hub.store import migrate
from hub.store.chain import CONTENT_COLUMNS, canonical_json, content_json, row_hash, row_hash_text, verify
from hub.store.db import begin_write, make_engine
from hub.ingest.writer import Ingest
from hub.store.schema import GENESIS_HASH, chain_head, events
from tests.hub.helpers import SITE, encode, event

ROWS = 20  # alternating cabinet-1 and cabinet-2: row n is cabinet-(2 - n % 2) seq (n + 1) // 2


@pytest.fixture
def db(tmp_path):
    """A store holding ROWS events written by the real ingest path; yields (engine, file)."""
    path = tmp_path / "kagiban.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    ingest = Ingest(engine, prefix="p")
    for seq in range(1, ROWS // 2 + 1):
        for name in ("cabinet-1", "cabinet-2"):
            ingest.submit(f"p/{SITE}/{name}/event", encode(event(name, seq)))
    ingest.start()
    ingest.stop()
    yield engine, path
    engine.dispose()


def tamper(path, sql, *args):
    """Change the file behind the hub's back, as someone with the file would."""
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql, args)
    conn.close()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(st.text(max_size=8), _JSON, max_size=5),
    person=st.none() | st.text(max_size=20),
    badge=st.none() | st.text(alphabet="0123456789ABCDEF", min_size=8, max_size=16),
)
def test_ingest_hashes_the_text_verify_hashes(data, person, badge):
    # Ingest builds the content's JSON around the data text it stores; verify() parses the data
    # back and encodes the whole content. Both must be the same text, or intact rows look altered.
    row = {"site": "ward-a", "station": "cabinet-1", "seq": 7, "event_id": "e-1", "kind": "key.used",
           "at": "2026-11-26T10:00:00+09:00", "badge": badge, "person": person,
           "received_at": "2026-11-26T01:00:00.000000Z"}
    data_text = canonical_json(data)
    content = {**row, "data": json.loads(data_text)}
    assert content_json(row, data_text) == canonical_json(content)
    assert row_hash_text(GENESIS_HASH, content_json(row, data_text)) == row_hash(GENESIS_HASH, content)


def test_intact_chain_is_reported_intact(db):
    engine, _ = db
    report = verify(engine)
    assert report.ok
    assert report.rows == ROWS
    assert str(report) == f"OK: {ROWS} rows, chain intact"


def test_empty_store_is_intact(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    migrate.upgrade(engine)
    assert str(verify(engine)) == "OK: 0 rows, chain intact"


def test_altered_row_is_named(db):
    engine, path = db
    tamper(path, "UPDATE events SET person = 'staff-002' WHERE row_no = 12")
    report = verify(engine)
    assert (report.problem, report.row_no, report.station, report.seq) == ("altered", 12, "cabinet-2", 6)
    assert str(report) == "TAMPERED: row 12 (cabinet-2 seq 6) content altered"


def test_altered_data_that_is_no_longer_json_is_named(db):
    engine, path = db
    tamper(path, "UPDATE events SET data = '{\"n\": ' WHERE row_no = 3")
    report = verify(engine)
    assert (report.problem, report.row_no) == ("altered", 3)


def test_altered_row_with_rewritten_hash_breaks_the_next_link(db):
    engine, path = db
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM events WHERE row_no = 7").fetchone()
    content = {name: row[name] for name in CONTENT_COLUMNS}
    content["data"] = json.loads(row["data"])
    content["kind"] = "door.closed"
    forged = row_hash(row["prev_hash"], content)
    with conn:
        conn.execute("UPDATE events SET kind = 'door.closed', hash = ? WHERE row_no = 7", (forged,))
    conn.close()

    report = verify(engine)
    assert (report.problem, report.row_no) == ("relinked", 8)
    assert str(report).startswith("TAMPERED: row 8 (cabinet-2 seq 4) does not follow the row before it")


def test_deleted_middle_row_names_the_row_after_the_gap(db):
    engine, path = db
    tamper(path, "DELETE FROM events WHERE row_no = 10")
    report = verify(engine)
    assert (report.problem, report.row_no, report.station, report.seq) == ("removed", 11, "cabinet-1", 6)
    assert str(report) == "TAMPERED: rows removed before row 11 (cabinet-1 seq 6)"


def test_deleted_first_row_is_found(db):
    engine, path = db
    tamper(path, "DELETE FROM events WHERE row_no = 1")
    assert (verify(engine).problem, verify(engine).row_no) == ("removed", 2)


def test_deleted_last_row_is_found_through_the_chain_head(db):
    engine, path = db
    tamper(path, "DELETE FROM events WHERE row_no = ?", ROWS)
    report = verify(engine)
    assert report.problem == "truncated"
    assert str(report) == (
        f"TAMPERED: rows removed at the end: the chain head names row {ROWS}, the last row is {ROWS - 1}"
    )


def test_last_row_rewritten_with_its_hash_is_found_through_the_chain_head(db):
    engine, path = db
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT * FROM events WHERE row_no = ?", (ROWS,)).fetchone()
    content = {name: row[name] for name in CONTENT_COLUMNS}
    content["data"] = json.loads(row["data"])
    content["badge"] = "0000000000000000"
    with conn:
        conn.execute("UPDATE events SET badge = ?, hash = ? WHERE row_no = ?",
                     ("0000000000000000", row_hash(row["prev_hash"], content), ROWS))
    conn.close()
    report = verify(engine)
    assert (report.problem, report.row_no) == ("altered", ROWS)


def test_missing_chain_head_is_found(db):
    engine, path = db
    tamper(path, "DELETE FROM chain_head")
    assert verify(engine).problem == "no_head"


def test_verify_streams_instead_of_loading_every_row(tmp_path):
    # 20,000 rows would take well over 10 MB as Python objects; streaming stays far below.
    engine = make_engine(f"sqlite:///{tmp_path / 'big.db'}")
    migrate.upgrade(engine)
    count, prev, batch = 20_000, GENESIS_HASH, []
    with begin_write(engine) as conn:
        for n in range(1, count + 1):
            row = {"site": SITE, "station": "cabinet-1", "seq": n, "event_id": f"{n:036d}",
                   "kind": "door.opened", "at": "2025-04-01T09:00:00+09:00", "badge": None,
                   "person": "staff-001", "data": canonical_json({"n": n, "pad": "x" * 200}),
                   "received_at": "2025-04-01T00:00:00.000000Z"}
            content = {name: row[name] for name in CONTENT_COLUMNS}
            content["data"] = json.loads(row["data"])
            digest = row_hash(prev, content)
            batch.append({**row, "row_no": n, "at_utc": "2025-04-01T00:00:00.000000Z",
                          "prev_hash": prev, "hash": digest})
            prev = digest
        conn.execute(insert(events), batch)
        conn.execute(chain_head.update().values(row_no=count, hash=prev))
    del batch

    tracemalloc.start()
    try:
        report = verify(engine)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.ok and report.rows == count
    assert peak < 8 * 1024 * 1024
