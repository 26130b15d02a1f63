"""The hub's part of the alert path alone: a ``door.forced`` handed to the ingest writer (as
paho's thread does) -> the critical alert published (the hub's MQTT publish call), with the
rules and the alert center wired as the hub wires them, on a real SQLite file
(``synchronous=FULL``), under a background of ordinary events; no broker, no agent, no web page.

    python bench/alert_path.py [--samples 300 --background 200]

Runs from any checkout (the one it lives in): a tree whose ingest has no ``in_transaction``
hook stores the alert in a second transaction on the rules thread, as before the sixth round
(docs/performance.md). Prints submit -> published (and submit -> the alert's commit) and how
many write transactions each sample took.
"""
from __future__ import annotations

import inspect
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import SITE, LoadMeter, base_parser, dist_ms, event_payload, machine_header, table  # noqa: E402


def main() -> int:
    p = base_parser(__doc__.splitlines()[0], max_seconds=600)
    p.add_argument("--samples", type=int, default=300, help="forced doors to time")
    p.add_argument("--background", type=float, default=200.0, help="ordinary events/s meanwhile")
    p.add_argument("--pause", type=float, default=0.03, help="seconds between samples")
    args = p.parse_args()
    if args.quick:
        args.samples = min(args.samples, 20)
    from sqlalchemy import event as sa_event

    from hub.alerting.alerts import AlertCenter
    from hub.alerting.rules import Rules
    from hub.config import HubConfig
    from hub.ingest.writer import Ingest
    from hub.live import LiveBus
    from hub.store import migrate
    from hub.store.db import make_engine
    from kagiban import protocol

    machine_header("Alert path in the hub alone: door.forced submitted -> alert published", args)
    with tempfile.TemporaryDirectory(prefix="kagiban-alert-path-") as tmp:
        cfg = HubConfig.model_validate({"data_dir": tmp, "sites": {SITE: {"name": "Ward A"}}, "stations": [
            {"id": "cabinet-1", "site": SITE, "kind": "cabinet"},
            *({"id": f"bg-{i}", "site": SITE, "kind": "cabinet"} for i in range(10))]})
        engine = make_engine(cfg.db_url())
        migrate.upgrade(engine)
        published: dict[str, float] = {}
        cond = threading.Condition()

        def publish(_topic: str, payload: bytes) -> None:
            now = time.perf_counter()
            alert = protocol.Alert.model_validate_json(payload)
            with cond:
                published.setdefault(alert.event_id or "", now)
                cond.notify_all()

        commits: list[tuple[float, str]] = []
        sa_event.listen(engine, "commit", lambda _c: commits.append((time.perf_counter(), threading.current_thread().name)))
        rules = Rules(engine, cfg, AlertCenter(engine, cfg, publish=publish, bus=LiveBus())).start()
        hook = {}
        if "in_transaction" in inspect.signature(Ingest).parameters:
            hook = {"in_transaction": rules.alerts_in_transaction}
        ingest = Ingest(engine, prefix="p", on_committed=rules.on_committed, **hook).start()
        stop = threading.Event()

        def background() -> None:
            seqs = {f"bg-{i}": 0 for i in range(10)}
            n = 0
            t0 = time.monotonic()
            while not stop.is_set():
                due = int((time.monotonic() - t0) * args.background)
                while n < due:
                    st = f"bg-{n % 10}"
                    seqs[st] += 1
                    ingest.submit(f"p/{SITE}/{st}/event", event_payload(st, seqs[st]))
                    n += 1
                time.sleep(0.002)

        bg = threading.Thread(target=background, daemon=True)
        bg.start()
        time.sleep(0.5)
        meter = LoadMeter()
        took, writes, missing = [], [], 0
        deadline = time.monotonic() + args.max_seconds * 0.8  # leaves time to stop and print
        for seq in range(1, args.samples + 1):
            if time.monotonic() > deadline:
                print(f"stopped after {seq - 1} samples: --max-seconds {args.max_seconds:.0f}")
                break
            payload = event_payload("cabinet-1", seq, kind="door.forced", badge=None, person=None,
                                    data={"policy_version": 1})
            event_id = protocol.Event.model_validate_json(payload).id
            mark = len(commits)
            t0 = time.perf_counter()
            ingest.submit(f"p/{SITE}/cabinet-1/event", payload)
            with cond:
                if not cond.wait_for(lambda: event_id in published, timeout=5):
                    missing += 1
                    continue
            took.append(published[event_id] - t0)
            # Write transactions from the submit to the publish (background batches included).
            writes.append(sum(1 for t, _n in commits[mark:] if t <= published[event_id]))
            time.sleep(args.pause)
        load = meter.stop()
        stop.set()
        bg.join(5)
        ingest.stop()
        rules.stop()
        engine.dispose()
    d = dist_ms(took)
    mode = "one transaction (in_transaction hook)" if hook else "two transactions (rules thread)"
    print()
    print(table(["path", "samples", "p50 ms", "p95 ms", "p99 ms", "max ms"],
                [[f"submit -> alert published, {mode}", d["n"], d["p50"], d["p95"], d["p99"], d["max"]]]))
    writes.sort()
    if writes:
        print(f"write transactions committed from submit to publish: median {writes[len(writes) // 2]}, "
              f"max {writes[-1]}")
    print(f"missing: {missing}; load during the measurement: {load}")
    return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
