"""An insider with write access to the hub's database changes the trail and recomputes the
whole hash chain with the project's own hash function: the chain then reads intact, and the
stations' signatures are what name the change (``kagiban verify`` exits 1)."""
from __future__ import annotations

import hashlib
import json
import sqlite3


from kagiban.ed25519 import PrivateKey
from kagiban.event_signing import EventSigner
from tests.hub.helpers import JPEG
from tests.security.signed_store import (
    STATION,
    fill,
    fill_enrolled_later,
    kagiban_verify,
    recompute_chain,
    signed_event,
)


def _sql(db, sql, *args):
    con = sqlite3.connect(db)
    with con:
        con.execute(sql, args)
    con.close()


def test_an_intact_signed_store_verifies(tmp_path):
    store = fill(tmp_path)
    done = kagiban_verify(store.db)
    assert done.returncode == 0, done.stdout
    lines = done.stdout.splitlines()
    assert all(": OK: " in line or "not checked" in line for line in lines), done.stdout
    assert lines[:2] == [
        "events: OK: 8 rows, chain intact",
        "signatures: OK: 8 signed rows and 1 snapshots checked against 1 station keys; "
        "0 rows from before enrollment (unsigned, accepted); 0 rows unsigned from stations never enrolled",
    ]


def test_a_row_altered_and_the_chain_recomputed_is_named(tmp_path):
    store = fill(tmp_path)
    # Another person on seq 4; on seq 6 the stored signed text is changed to match as well.
    _sql(store.db, "UPDATE events SET person='staff-999', data=? WHERE seq=4", json.dumps({"n": 4, "note": "x"}))
    con = sqlite3.connect(store.db)
    signed = con.execute("SELECT signed FROM events WHERE seq=6").fetchone()[0]
    con.close()
    _sql(store.db, "UPDATE events SET person='staff-999', signed=? WHERE seq=6",
         signed.replace('"person":"staff-001"', '"person":"staff-999"'))
    recompute_chain(store.db)
    done = kagiban_verify(store.db)
    print(done.stdout)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "events: OK: 8 rows, chain intact"  # the chain alone no longer shows it
    assert "signatures: TAMPERED: row 4 (cabinet-1 seq 4): content differs from what the station signed: person, data" in lines
    assert ("signatures: TAMPERED: row 6 (cabinet-1 seq 6): its signature does not match what is stored "
            "(altered, or inserted without the station's key)") in lines


def test_a_row_inserted_and_the_chain_recomputed_is_named(tmp_path):
    store = fill(tmp_path)
    con = sqlite3.connect(store.db)
    con.row_factory = sqlite3.Row
    template = dict(con.execute("SELECT * FROM events WHERE seq=4").fetchone())
    con.close()
    # Two rows made room for after row 4: one unsigned, one "signed" with a key the insider made.
    _sql(store.db, "UPDATE events SET row_no = row_no + 100 WHERE row_no > 4")
    _sql(store.db, "UPDATE events SET row_no = row_no - 98 WHERE row_no > 100")
    forger = EventSigner(PrivateKey.generate())
    for row_no, seq, sign in ((5, 9, False), (6, 10, True)):
        ev, payload = signed_event(forger, seq, store.incarnation, person="staff-777")
        signed = payload.decode()[: payload.decode().rindex(',"key_id"')] + "}"
        row = {**template, "row_no": row_no, "seq": seq, "event_id": ev.id, "person": "staff-777",
               "data": json.dumps(ev.data, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
               "signed": signed if sign else "", "signature": payload.decode()[-90:-2] if sign else "",
               "key_id": store.signer.key_id if sign else ""}
        con = sqlite3.connect(store.db)
        with con:
            con.execute(f"INSERT INTO events ({','.join(row)}) VALUES ({','.join('?' * len(row))})", list(row.values()))
        con.close()
    recompute_chain(store.db)
    done = kagiban_verify(store.db)
    print(done.stdout)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "events: OK: 10 rows, chain intact"
    assert any(line.startswith("signatures: TAMPERED: row 5 (cabinet-1 seq 9): unsigned, though its station signs "
                               "every event (inserted without the station's key): its station's key was registered at ")
               for line in lines)
    assert ("signatures: TAMPERED: row 6 (cabinet-1 seq 10): its signature does not match what is stored "
            "(altered, or inserted without the station's key)") in lines


def test_a_row_deleted_in_the_middle_renumbered_and_recomputed_is_named(tmp_path):
    store = fill(tmp_path)
    _sql(store.db, "DELETE FROM events WHERE seq=5")
    _sql(store.db, "UPDATE events SET row_no = row_no - 1 WHERE row_no > 5")
    recompute_chain(store.db)
    done = kagiban_verify(store.db)
    print(done.stdout)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "events: OK: 7 rows, chain intact"
    assert (f"signatures: TAMPERED: {STATION} incarnation {store.incarnation} seq 5: missing (deleted): "
            "stored seqs go from 4 to 6") in lines


def test_a_snapshot_replaced_is_named(tmp_path):
    store = fill(tmp_path)
    other = JPEG[:-2] + b"\x01\xff\xd9"
    # The image and its stored hash replaced together, so the two agree with each other.
    _sql(store.db, "UPDATE snapshots SET image=?, sha256=? WHERE event_id=?",
         other, hashlib.sha256(other).hexdigest(), store.snapshot_event)
    done = kagiban_verify(store.db)
    print(done.stdout)
    assert done.returncode == 1
    assert (f"signatures: TAMPERED: snapshot of event {store.snapshot_event} ({STATION}): stored hash is not the one "
            "the station signed (image and hash replaced)") in done.stdout.splitlines()


def test_a_snapshot_image_replaced_alone_is_named(tmp_path):
    store = fill(tmp_path)
    _sql(store.db, "UPDATE snapshots SET image=? WHERE event_id=?", JPEG + b"\x00", store.snapshot_event)
    done = kagiban_verify(store.db)
    assert done.returncode == 1
    assert (f"signatures: TAMPERED: snapshot of event {store.snapshot_event} ({STATION}): image does not match its "
            "stored hash (replaced)") in done.stdout.splitlines()


def test_rows_from_before_enrollment_are_counted_apart_and_accepted(tmp_path):
    store = fill_enrolled_later(tmp_path, before=3, after=4)
    done = kagiban_verify(store.db)
    print(done.stdout)
    assert done.returncode == 0, done.stdout
    assert ("signatures: OK: 4 signed rows and 0 snapshots checked against 1 station keys; "
            "3 rows from before enrollment (unsigned, accepted); 0 rows unsigned from stations never enrolled"
            ) in done.stdout.splitlines()


def test_an_unsigned_row_after_enrollment_is_named_even_with_a_backdated_receive_time(tmp_path):
    store = fill_enrolled_later(tmp_path, before=3, after=4)
    con = sqlite3.connect(store.db)
    con.row_factory = sqlite3.Row
    first = dict(con.execute("SELECT * FROM events WHERE seq=1").fetchone())
    con.close()
    # Seq 8, unsigned, appended after the signed rows, its receive time set to before enrollment.
    ev, _signed = signed_event(store.signer, 8, store.incarnation, person="staff-777")
    row = {**first, "row_no": 8, "seq": 8, "event_id": ev.id, "person": "staff-777"}
    _sql(store.db, f"INSERT INTO events ({','.join(row)}) VALUES ({','.join('?' * len(row))})", *row.values())
    recompute_chain(store.db)
    done = kagiban_verify(store.db)
    print(done.stdout)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "events: OK: 8 rows, chain intact"
    named = [line for line in lines if line.startswith("signatures: TAMPERED: row 8 (cabinet-1 seq 8): unsigned")]
    assert len(named) == 1 and "its station's key was registered at " in named[0]
    # The three genuine rows from before enrollment are still accepted, and counted apart.
    summary = next(line for line in lines if "signed rows and" in line)
    assert "3 rows from before enrollment (unsigned, accepted)" in summary
