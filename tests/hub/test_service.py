"""The hub process: survives its own restarts and the broker's, and stops cleanly on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from hub.config import load
from hub.service import Hub
from tests.hub.helpers import FakeStation, encode, event, stored_seqs, write_hub_config
from tests.support.mosquitto import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_events_sent_while_the_hub_is_down_arrive_when_it_returns(tmp_path, store, broker, prefix, station):
    path = write_hub_config(tmp_path / "hub", broker, prefix)
    hub = Hub(load(path))
    hub.start()
    wait_for(hub.connected.is_set, timeout=10, what="hub connected")
    hub.stop()

    st = station("cabinet-1")
    for seq in range(1, 6):  # the broker queues these in the hub's persistent session
        st.publish("event", encode(event("cabinet-1", seq)))

    hub = Hub(load(path))
    hub.start()
    try:
        wait_for(lambda: st.acked_seqs() == set(range(1, 6)), timeout=10, what="acks after the restart")
        assert stored_seqs(hub.engine, "cabinet-1") == [1, 2, 3, 4, 5]
    finally:
        hub.stop()


def test_hub_reconnects_after_the_broker_restarts(tmp_path, store, own_broker, prefix):
    hub = Hub(load(write_hub_config(tmp_path / "hub", own_broker, prefix)))
    hub.start()
    st = None
    try:
        wait_for(hub.connected.is_set, timeout=10, what="hub connected")
        own_broker.restart()
        wait_for(lambda: not hub.connected.is_set(), timeout=10, what="hub noticed the broker restart")
        wait_for(hub.connected.is_set, timeout=15, what="hub connected again")

        st = FakeStation(own_broker, prefix, "cabinet-1")
        st.publish("event", encode(event("cabinet-1", 1)))
        wait_for(lambda: st.acked_seqs() == {1}, timeout=10, what="ack after the broker restart")
        assert stored_seqs(hub.engine, "cabinet-1") == [1]
    finally:
        if st is not None:
            st.close()
        hub.stop()


def test_run_stores_events_and_exits_0_on_sigterm(tmp_path, store, broker, prefix, station):
    path = write_hub_config(tmp_path / "hub", broker, prefix)
    script = ("import logging, sys; logging.basicConfig(level=logging.INFO); "
              "from hub.config import load; from hub.service import run; sys.exit(run(load(sys.argv[1])))")
    proc = subprocess.Popen([sys.executable, "-c", script, str(path)], cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("connected to the broker" in ln for ln in lines), timeout=15,
                 what="the hub process connected")
        st = station("cabinet-1")
        st.publish("event", encode(event("cabinet-1", 1)))
        wait_for(lambda: st.acked_seqs() == {1}, timeout=10, what="ack from the hub process")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    reader.join(5)
    assert any("hub stopped" in ln for ln in lines)
