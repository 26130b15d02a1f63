"""A station whose outbox was replaced starts again at seq 1 under a new incarnation: the hub
stores the new count beside the old one (no seq_conflict), acks each incarnation apart, and the
chain stays verifiable with old rows hashed as they always were."""
from __future__ import annotations

import json

import uuid6
from sqlalchemy import select, update

from hub.store.chain import CONTENT_COLUMNS, row_hash, verify
from hub.ingest.writer import Ingest
from hub.store.schema import events, quarantine
from kagiban.protocol import dumps
from tests.hub.helpers import SITE, encode, event

NEW = str(uuid6.uuid7())


def run(engine, *bodies, acks=None) -> Ingest:
    ingest = Ingest(engine, prefix="p", on_acks=(acks.extend if acks is not None else None))
    for body in bodies:
        ingest.submit(f"p/{SITE}/cabinet-1/event", encode(body))
    ingest.start()
    ingest.stop()
    return ingest


def stored(engine) -> list[tuple[str, int]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(events.c.incarnation, events.c.seq).where(events.c.station == "cabinet-1")
            .order_by(events.c.row_no))]


def reasons(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(quarantine.c.reason)).scalars())


def test_a_fresh_outbox_counting_from_1_is_stored_beside_the_old_one(engine):
    old = [event("cabinet-1", n) for n in range(1, 6)]  # a station from before incarnations
    run(engine, *old)
    acks = []
    fresh = [event("cabinet-1", n, incarnation=NEW) for n in range(1, 4)]
    again = run(engine, *fresh, acks=acks)

    assert stored(engine) == [("", n) for n in range(1, 6)] + [(NEW, n) for n in range(1, 4)]
    assert reasons(engine) == [] and again.ingested == 3
    [(site, station, ack)] = acks
    assert ack.incarnation == NEW and ack.seq_set() == {1, 2, 3}
    assert verify(engine).ok


def test_duplicates_and_conflicts_are_judged_within_an_incarnation(engine):
    first = event("cabinet-1", 1, incarnation=NEW)
    run(engine, event("cabinet-1", 1), first)
    again = run(engine, first, event("cabinet-1", 1, incarnation=NEW, kind="door.forced"))

    assert again.duplicates == 1
    assert reasons(engine) == ["seq_conflict"]  # the same seq twice in one outbox still is one
    assert stored(engine) == [("", 1), (NEW, 1)]


def test_each_incarnation_gets_its_own_ack_and_old_stations_get_theirs_without_the_field(engine):
    acks = []
    run(engine, event("cabinet-1", 7), event("cabinet-1", 1, incarnation=NEW), acks=acks)
    by_incarnation = {ack.incarnation: ack for _site, _station, ack in acks}
    assert by_incarnation[None].seq_set() == {7} and by_incarnation[NEW].seq_set() == {1}
    # A station from before incarnations refuses unknown fields: its ack has none.
    assert "incarnation" not in json.loads(dumps(by_incarnation[None]))


def test_old_rows_hash_as_before_and_the_incarnation_of_new_rows_is_covered(engine):
    run(engine, event("cabinet-1", 1), event("cabinet-1", 1, incarnation=NEW))
    with engine.connect() as conn:
        rows = conn.execute(select(events).order_by(events.c.row_no)).all()
    old, new = rows
    content = {name: getattr(old, name) for name in CONTENT_COLUMNS}
    content["data"] = json.loads(old.data)
    assert old.hash == row_hash(old.prev_hash, content)  # no incarnation key in what is hashed
    assert new.hash != row_hash(new.prev_hash, {**{n: getattr(new, n) for n in CONTENT_COLUMNS},
                                                "data": json.loads(new.data)})

    other = str(uuid6.uuid7())
    with engine.begin() as conn:  # moving a row to another incarnation is an alteration
        conn.execute(update(events).where(events.c.row_no == 2).values(incarnation=other))
    report = verify(engine)
    assert report.problem == "altered" and report.row_no == 2
