"""Tampering with the stored audit trail: rows altered, re-hashed, deleted, truncated, appended;
each found by ``kagiban verify`` with the row named.

    python bench/faults/tamper.py [--events 2000] [--quick]

The store is written by the hub's own Ingest (the real hash chain), from events of three
stations. Each case works on a fresh copy of that file, changes it with plain SQL (what someone
with write access to the database file could do), and runs ``kagiban verify --db FILE``.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.common import Run, base_parser, event_payload, machine_header, table, verify_db  # noqa: E402


def build(run: Run, n: int) -> Path:
    from hub.store import migrate
    from hub.store.db import make_engine
    from hub.ingest.writer import Ingest

    db = run.path("hub", "kagiban.db")
    engine = make_engine(f"sqlite:///{db}")
    migrate.upgrade(engine)
    ing = Ingest(engine, prefix="kagiban").start()
    stations = ["cab-1", "cab-2", "door-1"]
    for i in range(n):
        st = stations[i % 3]
        ing.submit(f"kagiban/ward-a/{st}/event", event_payload(st, i // 3 + 1))
    ing.stop()
    engine.dispose()
    return db


def rehash(con: sqlite3.Connection, row_no: int) -> None:
    """Recompute one row's hash from its (altered) content, as a careful forger would."""
    from hub.store.chain import CONTENT_COLUMNS, row_hash

    cols = ", ".join(CONTENT_COLUMNS)
    row = con.execute(f"SELECT prev_hash, {cols} FROM events WHERE row_no=?", (row_no,)).fetchone()
    content = dict(zip(CONTENT_COLUMNS, row[1:]))
    content["data"] = json.loads(content["data"])
    con.execute("UPDATE events SET hash=? WHERE row_no=?", (row_hash(row[0], content), row_no))


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=300)
    p.add_argument("--events", type=int, default=2000)
    args = p.parse_args()
    if args.quick:
        args.events = min(args.events, 90)
    with Run("tamper", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Fault: the stored audit trail tampered with", args)
        original = build(run, args.events)
        n = args.events
        k = n // 2
        code, text = verify_db(original)
        print(f"# untouched store: exit {code}: {text}")
        who = sqlite3.connect(original).execute("SELECT station, seq FROM events WHERE row_no=?", (k,)).fetchone()
        nxt = sqlite3.connect(original).execute("SELECT station, seq FROM events WHERE row_no=?", (k + 1,)).fetchone()
        last = sqlite3.connect(original).execute("SELECT station, seq FROM events WHERE row_no=?", (n,)).fetchone()

        def person(con):
            con.execute("UPDATE events SET person='S999' WHERE row_no=?", (k,))

        def data(con):
            con.execute("UPDATE events SET data=replace(data, '12.5', '2.5') WHERE row_no=?", (k,))

        def broken_json(con):
            con.execute("UPDATE events SET data='{oops' WHERE row_no=?", (k,))

        def at(con):
            con.execute("UPDATE events SET at=replace(at, 'T', ' ') WHERE row_no=?", (k,))

        def person_rehashed(con):
            person(con)
            rehash(con, k)

        def delete_middle(con):
            con.execute("DELETE FROM events WHERE row_no=?", (k,))

        def delete_and_renumber(con):
            con.execute("DELETE FROM events WHERE row_no=?", (k,))
            con.execute("UPDATE events SET row_no=row_no-1 WHERE row_no>?", (k,))
            con.execute("UPDATE chain_head SET row_no=row_no-1")

        def truncate(con):
            con.execute("DELETE FROM events WHERE row_no>?", (n - 5,))

        def last_rehashed(con):
            con.execute("UPDATE events SET person='S999' WHERE row_no=?", (n,))
            rehash(con, n)

        def appended(con):
            cols = [r[1] for r in con.execute("PRAGMA table_info(events)")]
            row = list(con.execute("SELECT * FROM events WHERE row_no=?", (n,)).fetchone())
            row[cols.index("row_no")] = n + 1
            row[cols.index("seq")] = 999_999
            row[cols.index("event_id")] = "0190f3a2-7c1e-7b3a-9f00-3c2d1e0a4b5c"
            con.execute(f"INSERT INTO events VALUES ({', '.join('?' * len(row))})", row)

        def head_removed(con):
            con.execute("DELETE FROM chain_head")

        mid, end = f"row {k}", f"row {n}"
        cases = [
            ("a row's person changed", mid, person, k, who),
            ("a row's data changed (12.5 s -> 2.5 s)", mid, data, k, who),
            ("a row's data made unreadable", mid, broken_json, k, who),
            ("a row's time changed", mid, at, k, who),
            ("a row changed and its hash recomputed", mid, person_rehashed, k + 1, nxt),
            ("a row deleted", mid, delete_middle, k + 1, nxt),
            ("a row deleted, later rows renumbered", mid, delete_and_renumber, k, nxt),
            ("the last 5 rows deleted", f"rows {n - 4}-{n}", truncate, None, None),
            ("the last row changed and its hash recomputed", end, last_rehashed, n, last),
            ("a forged row appended", f"row {n + 1}", appended, n + 1, (last[0], 999_999)),
            ("the chain head removed", "chain_head", head_removed, None, None),
        ]
        rows = []
        all_found = True
        for label, touched, change, expect_row, expect_who in cases:
            copy = run.path("cases", f"{len(rows)}.db")
            shutil.copy(original, copy)
            con = sqlite3.connect(copy, isolation_level=None)
            con.execute("BEGIN")
            change(con)
            con.execute("COMMIT")
            con.close()
            t0 = time.monotonic()
            code, text = verify_db(copy)
            took = time.monotonic() - t0
            named = expect_row is None or (f"row {expect_row} ({expect_who[0]} seq {expect_who[1]})" in text)
            found = code == 1 and named
            all_found &= found
            rows.append([label, touched, code, text, "yes" if found else "NO", f"{took:.2f}"])
        print()
        print(table(["tampering", "touched", "verify exit", "kagiban verify says", "found, row named", "seconds"], rows))
        print()
        print(f"{sum(r[4] == 'yes' for r in rows)} of {len(rows)} tamperings found by kagiban verify "
              f"({n:,} rows); the untouched store verifies OK")
        return 0 if all_found else 1


if __name__ == "__main__":
    sys.exit(main())
