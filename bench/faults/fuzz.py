"""Bad input: a property-based fuzzer (hypothesis) publishes malformed, oversized, forged and
replayed messages to a running hub while good stations publish valid events.

    python bench/faults/fuzz.py [--examples 2000 --rate 50] [--quick]

Each example is one MQTT message on a station topic: random bytes, JSON that is not an object,
valid payloads with one field replaced by any JSON value, a field missing or one too many, the
wrong protocol version, a payload over the channel's limit, an origin (site/station) that
differs from the topic, a bad topic, a snapshot whose image is not a JPEG, an exact replay of a
stored event, and a forged event under a seq already stored. What the hub should make of each
is decided by kagiban.protocol.parse_station_message (the hub's own gate) and by what is already
stored. Meanwhile good stations (plain paho publishers) send valid events at ``--rate``.
Reported: messages sent, quarantined (by reason, against what was expected), good events stored
(all of them), hub crashes (0: the process is alive and still acks).
"""
from __future__ import annotations

import base64
import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.alert_latency import background  # noqa: E402
from bench.common import (  # noqa: E402
    SITE,
    HubProc,
    Run,
    Swarm,
    base_parser,
    db_query,
    event_payload,
    machine_header,
    plain_client,
    probe_ack,
    stored_count,
    table,
    wait_until,
)
from kagiban import protocol  # noqa: E402

def strategies(prefix: str, replayable: list[tuple[str, bytes]]):
    """A strategy of (category, topic, payload)."""
    from hypothesis import strategies as st

    json_leaf = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                          st.floats(allow_nan=False), st.text(max_size=40))
    json_any = st.recursive(json_leaf, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                             st.dictionaries(st.text(max_size=8), kids, max_size=4)),
                            max_leaves=12)
    fields = ["v", "id", "seq", "site", "station", "kind", "at", "badge", "person", "data"]
    counter = iter(range(10**9))

    def fresh() -> str:
        return f"fz-{next(counter)}"

    def topic(station: str, channel: str = "event") -> str:
        return protocol.topic(prefix, SITE, station, channel)

    def valid(station: str) -> dict:
        return json.loads(event_payload(station, 1))

    @st.composite
    def case(draw):
        kind = draw(st.sampled_from(["bytes", "not_object", "field", "missing", "extra", "version", "oversized",
                                     "forged", "bad_topic", "snapshot", "heartbeat", "replay", "seq_conflict"]))
        st_name = fresh()
        if kind == "bytes":
            return kind, topic(st_name), draw(st.binary(max_size=600))
        if kind == "not_object":
            return kind, topic(st_name), json.dumps(draw(st.one_of(json_leaf, st.lists(json_leaf, max_size=5)))).encode()
        body = valid(st_name)
        if kind == "field":
            body[draw(st.sampled_from(fields))] = draw(json_any)
        elif kind == "missing":
            del body[draw(st.sampled_from(["id", "seq", "site", "station", "kind", "at"]))]
        elif kind == "extra":
            body[draw(st.text(min_size=1, max_size=10).filter(lambda k: k not in body))] = draw(json_leaf)
        elif kind == "version":
            body["v"] = draw(st.sampled_from([0, 2, "1", 1.0, True, None, [1]]))
        elif kind == "oversized":
            channel = draw(st.sampled_from(["event", "heartbeat", "status"]))
            limit = {"event": protocol.MAX_EVENT_BYTES, "heartbeat": protocol.MAX_HEARTBEAT_BYTES,
                     "status": protocol.MAX_STATUS_BYTES}[channel]
            body["data"] = {"pad": "x" * (limit + draw(st.integers(min_value=1, max_value=4000)))}
            return kind, topic(st_name, channel), json.dumps(body).encode()
        elif kind == "forged":
            which = draw(st.sampled_from(["site", "station"]))
            body[which] = "somewhere-else"
        elif kind == "bad_topic":
            t = draw(st.sampled_from([f"{prefix}/{SITE}/{st_name}/bogus", f"{prefix}/{SITE}/{st_name}",
                                      f"{prefix}/{SITE}/{st_name}/event/extra", f"{prefix}/.bad/{st_name}/event",
                                      f"{prefix}/{SITE}/ /event", f"{prefix}/{SITE}/鍵/event"]))
            return kind, t, json.dumps(body).encode()
        elif kind == "snapshot":
            image = draw(st.one_of(st.binary(max_size=64), st.just(b"\xff\xd8\xff\xe0JFIF")))
            snap = {"v": 1, "event_id": str(uuid.uuid4()), "site": SITE, "station": st_name,
                    "taken_at": body["at"], "content_type": "image/jpeg",
                    "image": draw(st.one_of(st.just(base64.b64encode(image).decode()), st.text(max_size=20)))}
            return kind, topic(st_name, "snapshot"), json.dumps(snap).encode()
        elif kind == "heartbeat":
            hb = json.loads(protocol.dumps(protocol.Heartbeat(site=SITE, station=st_name, kind="cabinet",
                                                              at=body["at"], uptime_s=1.0, next_seq=1, outbox_depth=0,
                                                              outbox_capacity=10)))
            hb[draw(st.sampled_from(list(hb)))] = draw(json_any)
            return kind, topic(st_name, "heartbeat"), json.dumps(hb).encode()
        elif kind in ("replay", "seq_conflict"):
            if not replayable:
                return "bytes", topic(st_name), b"{"
            good_station, payload = replayable[draw(st.integers(min_value=0, max_value=len(replayable) - 1))]
            if kind == "replay":
                return kind, topic(good_station), payload
            forged = json.loads(payload)
            forged["id"] = str(uuid.UUID(int=draw(st.integers(min_value=0, max_value=2**122)) | (7 << 76) | (2 << 62)))
            forged["person"] = "S666"
            return kind, topic(good_station), json.dumps(forged).encode()
        return kind, topic(st_name), json.dumps(body, default=str).encode()

    return case()


def expected(prefix: str, topic_name: str, payload: bytes, stored_ids: dict[tuple[str, int], str]) -> str:
    """What the hub should do: 'quarantine:<reason>', 'store', 'duplicate' or 'ignored'."""
    try:
        site, station, channel = protocol.parse_topic(prefix, topic_name)
    except protocol.ProtocolError:
        if topic_name.count("/") != prefix.count("/") + 3 or not topic_name.startswith(prefix + "/"):
            return "ignored"  # the hub's subscriptions do not match it
        if topic_name.rsplit("/", 1)[-1] not in protocol.STATION_CHANNELS:
            return "ignored"
        return "quarantine:bad_topic"
    try:
        channel, model = protocol.parse_station_message(prefix, topic_name, payload)
    except protocol.ProtocolError as exc:
        return f"quarantine:{exc.reason}"
    if channel != "event":
        return "store"  # a heartbeat, status or snapshot that is fine
    key = (model.station, model.seq)
    if key in stored_ids:
        return "duplicate" if stored_ids[key] == model.id else "quarantine:seq_conflict"
    return "store"


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=900)
    p.add_argument("--examples", type=int, default=2000, help="fuzzed messages (hypothesis examples)")
    p.add_argument("--rate", type=float, default=50.0, help="good events/s meanwhile")
    p.add_argument("--good-stations", type=int, default=3)
    p.add_argument("--seed", type=int, default=6)
    args = p.parse_args()
    if args.quick:
        args.examples = min(args.examples, 60)
    from hypothesis import HealthCheck, Phase, given, seed, settings

    with Run("fuzz", keep=args.keep, max_seconds=args.max_seconds) as run:
        machine_header("Fault: malformed, oversized, forged and replayed messages (hypothesis) with good traffic", args)
        broker = run.broker()
        prefix = "fz" + uuid.uuid4().hex[:8]
        hub = HubProc(run, broker.port, prefix).start()
        good = Swarm(broker.port, prefix, [f"good-{i}" for i in range(args.good_stations)]).start()
        run.on_close(good.stop)
        background(good, args.rate)  # good traffic throughout (its driver runs on the swarm)
        time.sleep(1.5)
        # Stored good events to replay, and the ids stored under each (station, seq).
        replayable: list[tuple[str, bytes]] = []
        rows = db_query(hub.db, "SELECT station, seq, event_id, kind, at, badge, person, data FROM events "
                                "WHERE station LIKE 'good-%' ORDER BY row_no LIMIT 200")
        stored_ids = {(r[0], r[1]): r[2] for r in rows}
        for station, seq, event_id, kind, at, badge, person, data in rows:
            body = {"v": 1, "id": event_id, "seq": seq, "site": SITE, "station": station, "kind": kind, "at": at,
                    "badge": badge, "person": person, "data": json.loads(data)}
            replayable.append((station, json.dumps(body).encode()))

        client = plain_client(f"fuzzer-{uuid.uuid4().hex[:6]}")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        run.on_close(client.loop_stop)
        sent: Counter = Counter()
        expect: Counter = Counter()
        refused = Counter()
        t0 = time.monotonic()

        @seed(args.seed)
        @settings(max_examples=args.examples, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(strategies(prefix, replayable))
        def fuzz(case) -> None:
            kind, topic_name, payload = case
            sent[kind] += 1
            expect[expected(prefix, topic_name, payload, stored_ids)] += 1
            info = client.publish(topic_name, payload, qos=1)
            info.wait_for_publish(10)
            if info.rc:
                refused[kind] += 1

        fuzz()
        fuzz_s = time.monotonic() - t0
        good.driver = None
        time.sleep(0.2)  # the swarm thread may be inside the driver's last turn
        good_sent = sum(good.sent.values())
        wait_until(lambda: good.acked_total >= good_sent, 60, what="every good event acked")
        probe_ack(broker.port, prefix, timeout=60)  # after every fuzzed message: the hub still works
        alive = hub.alive()
        quarantined = dict(db_query(hub.db, "SELECT reason, count(*) FROM quarantine GROUP BY reason"))
        good_stored = sum(stored_count(hub.db, s) for s in good.stations)
        fuzz_stored = db_query(hub.db, "SELECT count(*) FROM events WHERE station LIKE 'fz-%'")[0][0]
        hub_log = (hub.log.read_text(errors="replace") if hub.log.exists() else "")
        tracebacks = hub_log.count("Traceback")
        exp_q = Counter({k.split(":", 1)[1]: v for k, v in expect.items() if k.startswith("quarantine:")})
        print()
        print(table(["fuzzed category", "messages sent"], sorted(sent.items())))
        print()
        reasons = sorted(set(quarantined) | set(exp_q))
        print(table(["quarantine reason", "expected", "quarantined by the hub"],
                    [[r, exp_q.get(r, 0), quarantined.get(r, 0)] for r in reasons]
                    + [["all", sum(exp_q.values()), sum(quarantined.values())]]))
        print()
        print(table(["what", "value"], [
            ["fuzzed messages sent (hypothesis examples)", sum(sent.values())],
            ["of them valid after all (stored as new events of fuzz stations)", f"expected {expect['store']}, "
             f"events stored {fuzz_stored} (others were valid heartbeats/snapshots)"],
            ["exact replays of stored events (acked, not stored again)", expect["duplicate"]],
            ["not for the hub (a topic it does not subscribe to)", expect["ignored"]],
            ["publishes the broker refused", sum(refused.values())],
            ["good events sent / stored", f"{good_sent:,} / {good_stored:,}"],
            ["hub process alive, still acking", "yes" if alive else "NO"],
            ["tracebacks in the hub's log", tracebacks],
            ["fuzzing took", f"{fuzz_s:.0f} s"],
        ]))
        all_good = good_stored == good_sent
        match = all(quarantined.get(r, 0) == exp_q.get(r, 0) for r in reasons)
        print(f"hub crashes: {0 if alive else 1}; every good event stored: {all_good}; quarantine as expected: {match}")
        return 0 if alive and all_good and match else 1


if __name__ == "__main__":
    sys.exit(main())
