"""A store filled with extreme values (years 1 and 9999, NaN and Infinity, huge strings, control
characters, odd unicode, text that is not JSON where JSON is expected), the query strings the
pages read, and how to name where an exception came from: for the tests that open every page
and export over such a store."""
from __future__ import annotations

import json
import re
from datetime import date

from sqlalchemy import String, event, insert

from hub.store.schema import (
    alerts,
    attendance,
    badges,
    closeouts,
    events,
    metadata,
    nearmiss_cases,
    people,
    policies,
    procedure_confirmations,
    procedure_documents,
    procedure_versions,
    quarantine,
    registry_log,
    rollcall_people,
    rollcall_sessions,
    shredder_roster,
    snapshots,
    station_log,
    stations,
    training_sessions,
    training_procedures,
    trainings,
)
from hub.web import i18n


HUGE = "鍵" * 20_000 + "x" * 100_000
CONTROL = "a\x00b\x07c\x1b[31mred\x7f\u202eevil\u2028line"
ODD = "\U0001F5DD\u200b\ufeff\u0301e\u0301 ﷽ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 \u00a0"
TIMES = [
    "9999-12-31T23:59:59.999999+00:00", "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+14:00",
    "0001-01-01T00:00:00-12:00", "NaN", "", "not a time", CONTROL, "2025-02-30T25:61:00+09:00",
]
UTC_TEXTS = ["9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00.000000Z", "NaN", "", CONTROL]
DATA = [
    '{"duration_s": NaN, "open_s": Infinity, "limit_s": -Infinity, "count": "NaN"}',
    '{"people": ["%s", null, 7, {"x": 1}], "jobs": "NaN", "held": "many", "flagged": "yes"}' % CONTROL,
    "not json {", "[]", "null", '"a string"', json.dumps({"reason": HUGE, "note": ODD, "since": "9999-12-31"}),
    json.dumps({"event_id": "NaN", "for_kind": CONTROL, "error": ODD, "detail": HUGE, "at": "0001-01-01"}),
    json.dumps({"store": "outbox", "moved_to": [HUGE], "previous_highest_seq": 2**63 - 1, "users": [None]}),
]
HEARTBEATS = [
    json.dumps({"at": "9999-12-31T23:59:59+00:00", "door": "open", "outbox_depth": "NaN",
                "peripherals": {"camera": {"state": ODD, "error": CONTROL, "since": "NaN"}, "pins": "x"},
                "clock_synced": "maybe", "locked": "NaN"}),
    "not json", '{"at": NaN, "peripherals": [], "door": null}', json.dumps({"peripherals": {"reader": None}}),
]


def fill(engine) -> dict[str, list]:
    """Every kind of row with extreme values; what the routes' URL arguments can name."""
    kinds = list(i18n.EVENT_KINDS) + ["x.y", CONTROL[:60]]
    stations_ids = ["cabinet-1", "cabinet-2", "weird-" + "z" * 50]
    rows = []
    row_no = 0
    for i, kind in enumerate(kinds * 2):
        for j in (0, 1):
            row_no += 1
            station = stations_ids[(i + j) % len(stations_ids)]
            rows.append({
                "row_no": row_no, "site": "ward-a" if j else ODD, "station": station, "seq": row_no,
                "event_id": f"00000000-0000-7000-8000-{row_no:012d}", "kind": kind,
                "at": TIMES[(i + j) % len(TIMES)], "at_utc": UTC_TEXTS[(i + j) % len(UTC_TEXTS)],
                "badge": [None, "0123456789ABCDEF", CONTROL, HUGE][(i + j) % 4],
                "person": [None, "S001", HUGE, ODD, CONTROL][(i + 2 * j) % 5],
                "data": DATA[(i + j) % len(DATA)], "received_at": UTC_TEXTS[(i + 2 * j) % len(UTC_TEXTS)],
                "prev_hash": "0" * 64, "hash": "f" * 64, "incarnation": ["", CONTROL][j],
                "time_flag": [None, "future", "past", ODD][(i + j) % 4],
            })
    event_ids = [r["event_id"] for r in rows]
    if engine.dialect.name == "postgresql":
        event.listen(engine, "before_cursor_execute", _fit_for_postgres, retval=True)
    try:
        return _fill(engine, rows, event_ids, stations_ids, row_no)
    finally:
        if event.contains(engine, "before_cursor_execute", _fit_for_postgres):
            event.remove(engine, "before_cursor_execute", _fit_for_postgres)


def _fit_for_postgres(conn, cursor, statement, parameters, context, executemany):
    """PostgreSQL stores no NUL in text and refuses text longer than its column (SQLite takes
    both): each value made the most extreme one PostgreSQL holds, the rest kept."""
    found = re.match(r"INSERT INTO (\w+)", statement)
    if not found or found.group(1) not in metadata.tables:
        return statement, parameters
    table = metadata.tables[found.group(1)]

    def fit(key: str, value):
        if not isinstance(value, str):
            return value
        value = value.replace("\x00", "")
        column = table.c.get(key) if key in table.c else table.c.get(re.sub(r"(__\d+|_m\d+)$", "", key))
        length = getattr(column.type, "length", None) if column is not None and isinstance(column.type, String) else None
        return value[:length] if length else value

    def one(params):
        return {k: fit(k, v) for k, v in params.items()} if isinstance(params, dict) else params

    return statement, ([one(p) for p in parameters] if executemany else one(parameters))


def _fill(engine, rows, event_ids, stations_ids, row_no: int) -> dict[str, list]:
    with engine.begin() as conn:
        conn.execute(insert(events), rows)
        conn.execute(insert(stations), [
            {"station": st, "site": "ward-a" if k else ODD, "kind": ["cabinet", "printer", "weird"][k],
             "state": ["online", "offline", "unknown"][k], "state_since": TIMES[k], "last_seen": UTC_TEXTS[k],
             "last_heartbeat": HEARTBEATS[k], "policy_version": [2**62, None, -1][k],
             "clock_offset_s": [1e308, -1e308, None][k], "last_row_no": [row_no, 1, 10**12][k],
             "door_row_no": [2, None, row_no - 1][k]}
            for k, st in enumerate(stations_ids)])
        conn.execute(insert(station_log), [
            {"station": st, "site": "ward-a", "state": "offline", "at": t, "received_at": t}
            for st in stations_ids for t in UTC_TEXTS])
        conn.execute(insert(snapshots), [
            {"event_id": eid, "site": "ward-a", "station": "cabinet-1", "taken_at": UTC_TEXTS[k % len(UTC_TEXTS)],
             "content_type": ["image/jpeg", CONTROL][k % 2], "sha256": "0" * 64,
             "image": [b"", b"\xff\xd8" + b"\x00" * 10, HUGE.encode()][k % 3], "received_at": UTC_TEXTS[0]}
            for k, eid in enumerate(event_ids[:12])])
        conn.execute(insert(quarantine), [
            {"received_at": t, "topic": CONTROL, "reason": "bad_json", "detail": HUGE, "size": 2**31 - 1,
             "payload": (CONTROL + ODD).encode()} for t in UTC_TEXTS])
        conn.execute(insert(alerts), [
            {"site": ["ward-a", ODD][k % 2], "station": stations_ids[k % 3], "rule": rule,
             "severity": ["info", "warning", "critical", "weird"][k % 4], "message": HUGE if k % 2 else CONTROL,
             "params": [json.dumps({"at": "9999-12-31T23:59:59+00:00", "zone": "Asia/Tokyo", "offset_s": "NaN",
                                    "people": [None, 1], "flags": "x", "cause": CONTROL, "count": HUGE}),
                        "not json", '{"at": NaN, "zone": "No/Such_Zone", "limit_min": Infinity}',
                        json.dumps({"at": CONTROL, "station_name": ODD})][k % 4],
             "event_id": event_ids[k % len(event_ids)] if k % 3 else None, "raised_at": UTC_TEXTS[k % len(UTC_TEXTS)],
             "state": ["open", "acknowledged"][k % 2], "acked_by": [None, HUGE][k % 2],
             "acked_at": [None, UTC_TEXTS[k % len(UTC_TEXTS)]][k % 2], "ack_comment": [None, CONTROL + ODD][k % 2]}
            for k, rule in enumerate(list(i18n.ALERT_RULES) + ["no_such_rule", "offline", "seq_gap"])])
        conn.execute(insert(policies), [{"station": "weird-" + "z" * 50, "site": "ward-a", "version": 2**62,
                                         "content_sha256": "0" * 64, "payload": "not json",
                                         "published_at": UTC_TEXTS[0]}])
        person_ids = []
        for k, (no, name) in enumerate([("S900", HUGE), ("S901", CONTROL), ("S902", ODD)]):
            person_ids.append(conn.execute(insert(people).values(
                staff_no=no, name=name, kana=ODD, section=CONTROL, employment="regular", role=HUGE[:64],
                active_from=[date(1, 1, 1), None, date(9999, 12, 31)][k],
                active_to=[date(9999, 12, 31), date(1, 1, 1), None][k], print_user=CONTROL)).inserted_primary_key[0])
        conn.execute(insert(badges), [
            {"badge_id": f"ABCDEF0{k}", "person_id": pid, "valid_from": date(1, 1, 1), "valid_to": date(9999, 12, 31),
             "state": "active", "state_changed_at": UTC_TEXTS[k % len(UTC_TEXTS)]} for k, pid in enumerate(person_ids)])
        training = conn.execute(insert(trainings).values(
            name=ODD + CONTROL, station_kinds="not json", valid_days=2**31 - 1)).inserted_primary_key[0]
        session_ids = [conn.execute(insert(training_sessions).values(
            training_id=training, held_on=day, place=HUGE, notes=CONTROL)).inserted_primary_key[0]
            for day in (date(1, 1, 1), date(9999, 12, 31))]
        conn.execute(insert(attendance), [{"session_id": s, "person_id": p} for s in session_ids for p in person_ids])
        conn.execute(insert(shredder_roster), [{"station": "cabinet-1", "day": d, "person_id": person_ids[0]}
                                               for d in (date(1, 1, 1), date(9999, 12, 31))])
        conn.execute(insert(registry_log), [
            {"at": t, "actor": CONTROL, "entity": "person", "key": ODD, "action": "update",
             "before": "not json", "after": json.dumps({"name": HUGE, "when": "NaN"})} for t in UTC_TEXTS])
        conn.execute(insert(closeouts), [
            {"site": "ward-a", "day": day, "generated_at": UTC_TEXTS[k], "problems": -1,
             "items": ["not json", json.dumps([{"kind": CONTROL, "ok": "NaN", "params": {"since": "9999-99"}}])][k],
             "deliveries": "not json"} for k, day in enumerate((date(1, 1, 1), date(9999, 12, 31)))])
        # Near-miss cases: times at both ends and none, texts huge and odd, evidence not JSON.
        case_ids = [conn.execute(insert(nearmiss_cases).values(
            occurred_at=UTC_TEXTS[k], station=[None, "weird-" + "z" * 50, "cabinet-1"][k % 3], place=HUGE[:128],
            category=category, what=HUGE, why=CONTROL + ODD, severity=["minor", "moderate", "serious"][k % 3],
            anonymous=bool(k % 2), reporter=CONTROL, filed_by=ODD[:64], filed_at=UTC_TEXTS[-k - 1], source="form",
            alert_id=2**31 - 1, event_ids=["not json", json.dumps([None, 7, "NaN"]), json.dumps(event_ids[:3])][k % 3],
            state=["filed", "reviewed", "shared"][k % 3], countermeasure=[None, HUGE, ODD][k % 3],
            shared_at=[None, None, UTC_TEXTS[k]][k % 3])).inserted_primary_key[0]
            for k, category in enumerate(("keys", "pc", "other"))]
        # Roll calls: one open and one closed, starts at both ends and none, stations not JSON,
        # people whose statuses, times and numbers are odd.
        rollcall_ids = [conn.execute(insert(rollcall_sessions).values(
            kind=["training", "meeting", "training"][k], topic=[HUGE[:128], CONTROL, ODD][k],
            training_id=[training, None, 2**31 - 1][k], training_session_id=[None, session_ids[0], 2**31 - 1][k],
            stations=["not json", json.dumps([None, "cabinet-1", 7]), json.dumps({"x": 1})][k],
            starts_at=UTC_TEXTS[k], window_min=[2**31 - 1, 0, -5][k], opened_at=UTC_TEXTS[-k - 1],
            opened_by=CONTROL, closed_at=[None, UTC_TEXTS[k], ""][k], closed_by=[None, ODD[:64], CONTROL][k],
            procedure_version_id=[None, 2**31 - 1, -1][k])).inserted_primary_key[0] for k in range(3)]
        conn.execute(insert(rollcall_people), [
            {"session_id": r, "staff_no": no, "expected": bool(k % 2), "status": [None, "present", CONTROL][k % 3],
             "tapped_at": UTC_TEXTS[k % len(UTC_TEXTS)], "station": [None, ODD, "cabinet-1"][k % 3], "event_id": None}
            for r in rollcall_ids for k, no in enumerate(["S900", HUGE[:64], CONTROL])])
        # Procedures: audiences that are not JSON lists, versions whose bytes are no PDF or UTF-8 and
        # whose numbers, sizes and times are odd, confirmations and a training's reading of them.
        doc_ids = [conn.execute(insert(procedure_documents).values(
            name=[HUGE[:128], CONTROL][k], kind=["rule", "notice"][k], sections=["not json", json.dumps([None, 7])][k],
            roles=json.dumps({"x": CONTROL}), employments=[HUGE, json.dumps(["part_time", ODD])][k],
            station_kinds=[json.dumps(["cabinet", CONTROL]), "[]"][k], created_by=CONTROL,
            created_at=UTC_TEXTS[k])).inserted_primary_key[0] for k in range(2)]
        version_ids = [conn.execute(insert(procedure_versions).values(
            document_id=doc_ids[k % 2], number=[1, 2**31 - 1, -1][k], filename=[CONTROL, HUGE[:255], ODD][k],
            content_type=["text/markdown", "application/pdf", CONTROL[:64]][k], size=[-1, 2**31 - 1, 0][k],
            sha256=["0" * 64, "z", CONTROL[:64]][k],
            content=[(CONTROL + ODD + "<script>x</script>[a](javascript:x)").encode(), b"%PDF-\xff\x00", b"\xff\xfe"][k],
            note=[HUGE, CONTROL, ""][k], uploaded_by=ODD[:64], uploaded_at=UTC_TEXTS[-k - 1])).inserted_primary_key[0]
            for k in range(3)]
        conn.execute(insert(procedure_confirmations), [
            {"version_id": v, "person_id": p, "confirmed_at": UTC_TEXTS[k % len(UTC_TEXTS)],
             "via": ["supervisor", "rollcall"][k % 2], "recorded_by": CONTROL, "session_id": [None, 2**31 - 1][k % 2]}
            for k, (v, p) in enumerate((v, p) for v in version_ids for p in person_ids)])
        conn.execute(insert(training_procedures).values(training_id=training, version_id=version_ids[1]))
    return {"event_id": event_ids[:3] + ["NaN"], "staff_no": ["S900", "S901", "S902"],
            "session_id": session_ids, "station": stations_ids, "filename": ["kagiban.css"], "case_id": case_ids[1:],
            "rollcall_id": rollcall_ids, "doc_id": doc_ids, "version_id": version_ids}


QUERIES = [
    "", "?day=9999-12-31", "?day=0001-01-01", "?day=NaN", "?station=cabinet-1&kind=door.forced&before=1",
    "?before=99999999999999999999", "?limit=NaN", "?month=9999-12", "?month=0001-01", "?q=%00%E2%80%AE",
    "?site=ward-a&day=9999-12-31", "?state=acknowledged&within=NaN", "?training=1&day=0001-01-01",
]


def where(exc: BaseException) -> str:
    """The exception and the last frame of ours it went through."""
    import traceback

    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/hub/" in f.filename]
    last = frames[-1] if frames else None
    return f"{exc.__class__.__name__}: {str(exc)[:120]} at {last.filename.split('/hub/')[-1]}:{last.lineno}" if last else repr(exc)
