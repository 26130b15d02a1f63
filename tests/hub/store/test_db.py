"""The store's engines (hub.store.db) on SQLite and on PostgreSQL: write transactions queue one at
a time, so two hubs writing to one store keep one chain, one sequence of row numbers, and store a
resent event once; the schema migrates once when two hubs start together."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from hub.accounts.users import add_user
from hub.audit import verify
from hub.ingest.writer import Ingest
from hub.store import migrate
from hub.store.chain import verify as verify_chain
from hub.store.db import make_engine
from hub.store.schema import events, quarantine
from tests.hub.helpers import encode, event

PREFIX = "p"
PER_STATION = 60


def _payloads(station: str) -> list[tuple[str, bytes]]:
    made = [event(station, seq, kind="door.opened") for seq in range(1, PER_STATION + 1)]
    return [(f"{PREFIX}/{body['site']}/{station}/event", encode(body)) for body in made]


def _feed(ingest: Ingest, streams: list[list[tuple[str, bytes]]], go: threading.Event) -> None:
    go.wait(10)
    for messages in zip(*streams):  # the stations' events interleaved, each in seq order
        for topic, payload in messages:
            ingest.submit(topic, payload)


def test_two_hubs_writing_at_once_keep_one_chain_and_store_a_resent_event_once(tmp_path, store):
    url = store.url(tmp_path)
    first, second = make_engine(url), make_engine(url)  # two hub processes' engines
    migrate.upgrade(first)
    # Small batches: many transactions from each side, interleaved.
    a = Ingest(first, prefix=PREFIX, batch_max=15, batch_wait_s=0).start()
    b = Ingest(second, prefix=PREFIX, batch_max=15, batch_wait_s=0).start()
    go = threading.Event()
    # door-9's events reach both hubs (a station resending after a failover): stored once each.
    resent = _payloads("door-9")
    feeders = [threading.Thread(target=_feed, args=(a, [_payloads("cabinet-1"), _payloads("cabinet-2"), resent], go)),
               threading.Thread(target=_feed, args=(b, [_payloads("shredder-1"), _payloads("printer-1"), resent], go))]
    # A third writer meanwhile: the sign-in side log, chained in the same store.
    signins = threading.Thread(target=lambda: [add_user(first, f"user-{n:02d}", "a long enough password",
                                                        "auditor", display_name=f"職員00{n:02d}")
                                               for n in range(10)])
    for t in feeders + [signins]:
        t.start()
    go.set()
    for t in feeders + [signins]:
        t.join(60)
    a.stop()
    b.stop()
    try:
        with first.connect() as conn:
            row_nos = list(conn.execute(select(events.c.row_no).order_by(events.c.row_no)).scalars())
            assert conn.execute(select(func.count()).select_from(quarantine)).scalar_one() == 0
            per_station = dict(conn.execute(select(events.c.station, func.count()).group_by(events.c.station)).all())
        assert row_nos == list(range(1, 5 * PER_STATION + 1))  # one sequence, no gap, no repeat
        assert per_station == {s: PER_STATION for s in
                               ("cabinet-1", "cabinet-2", "door-9", "shredder-1", "printer-1")}
        assert a.ingested + b.ingested == 5 * PER_STATION
        assert a.duplicates + b.duplicates == PER_STATION
        assert verify_chain(first).ok
        assert verify.run(url) == 0
    finally:
        first.dispose()
        second.dispose()


def test_two_hubs_starting_together_migrate_the_store_once(tmp_path, store):
    url = store.url(tmp_path, empty=True)
    engines = [make_engine(url), make_engine(url)]
    done: list[str] = []
    errors: list[BaseException] = []

    def start(engine) -> None:
        try:
            done.append(migrate.upgrade(engine))
        except BaseException as exc:  # reported below, with the other thread's result
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert errors == []
        assert done == [migrate.head_revision()] * 2
        assert migrate.current_revision(engines[0]) == migrate.head_revision()
    finally:
        for e in engines:
            e.dispose()
