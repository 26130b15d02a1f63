"""What ingest makes of times and snapshots (protocol revision 3): a snapshot is stored only for
an event of the same station; one that arrives before its event is held back unacknowledged
until the event is stored, and quarantined after SNAPSHOT_HOLDS tries; an event far from its
receive time is stored with a time_flag. Real Ingest, real SQLite file."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from hub.ingest.writer import SNAPSHOT_HOLDS, Ingest, TimeBounds
from hub.store.schema import events, quarantine, snapshots
from tests.hub.helpers import JST, SITE, encode, event, snapshot


def run(engine, *messages: tuple[str, str, dict], acks: list | None = None, **kw) -> Ingest:
    """Submit (channel, station, payload) messages, one batch each, and wait until all are stored."""
    ingest = Ingest(engine, prefix="p", batch_max=1, batch_wait_s=0,
                    on_acks=(acks.extend if acks is not None else None), **kw).start()
    for channel, station, body in messages:
        ingest.submit(f"p/{SITE}/{station}/{channel}", encode(body))
    ingest.stop()
    return ingest


def snaps_acked(acks) -> set[str]:
    return {s for _site, _st, ack in acks for s in ack.snapshots}


def test_a_snapshot_before_its_event_is_held_then_stored_when_the_station_sends_it_again(engine):
    ev = event("cabinet-1", 1)
    acks: list = []
    ingest = run(engine, ("snapshot", "cabinet-1", snapshot("cabinet-1", ev["id"])), acks=acks)
    assert ingest.held == 1 and snaps_acked(acks) == set()  # not acked: the station sends it again
    with engine.connect() as conn:
        assert conn.execute(select(snapshots.c.event_id)).all() == []
        assert conn.execute(select(quarantine.c.id)).all() == []
    run(engine, ("event", "cabinet-1", ev), ("snapshot", "cabinet-1", snapshot("cabinet-1", ev["id"])), acks=acks)
    assert snaps_acked(acks) == {ev["id"]}
    with engine.connect() as conn:
        assert conn.execute(select(snapshots.c.station)).scalars().all() == ["cabinet-1"]


def test_a_snapshot_whose_event_never_comes_is_quarantined_after_its_holds(engine):
    lost = event("cabinet-1", 1)["id"]
    acks: list = []
    ingest = run(engine, *[("snapshot", "cabinet-1", snapshot("cabinet-1", lost))] * (SNAPSHOT_HOLDS + 1), acks=acks)
    assert ingest.held == SNAPSHOT_HOLDS
    assert snaps_acked(acks) == {lost}  # acked once quarantined, so the station stops sending it
    with engine.connect() as conn:
        assert conn.execute(select(quarantine.c.reason)).scalars().all() == ["orphan_snapshot"]


def test_a_snapshot_for_another_stations_event_is_forged_in_the_same_batch_too(engine):
    ev = event("cabinet-1", 1)
    ingest = Ingest(engine, prefix="p", batch_max=10, batch_wait_s=0.2)
    ingest.submit(f"p/{SITE}/cabinet-1/event", encode(ev))
    ingest.submit(f"p/{SITE}/cabinet-2/snapshot", encode(snapshot("cabinet-2", ev["id"])))
    ingest.submit(f"p/{SITE}/cabinet-1/snapshot", encode(snapshot("cabinet-1", ev["id"])))
    ingest.start()
    ingest.stop()
    assert ingest.batches == 1
    with engine.connect() as conn:
        assert conn.execute(select(quarantine.c.reason, quarantine.c.topic)).all() == [
            ("forged_origin", f"p/{SITE}/cabinet-2/snapshot")]
        assert conn.execute(select(snapshots.c.station)).scalars().all() == ["cabinet-1"]


def test_an_event_far_from_its_receive_time_is_stored_flagged(engine):
    now = datetime.now(JST)
    times = {1: now, 2: now + timedelta(seconds=300), 3: now - timedelta(days=40),
             4: now - timedelta(seconds=3000), 5: now + timedelta(seconds=60)}
    run(engine, *[("event", "cabinet-1", event("cabinet-1", n, at=t.isoformat())) for n, t in times.items()],
        time_bounds=TimeBounds(future_s=120, past_s=30 * 86400))
    with engine.connect() as conn:
        flags = dict(conn.execute(select(events.c.seq, events.c.time_flag)).all())
    assert flags == {1: None, 2: "future", 3: "past", 4: None, 5: None}
