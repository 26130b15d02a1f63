"""The sender on a real mosquitto: at most a window of events on the wire, the next ones as the
hub acknowledges, unacknowledged ones sent again, acks of another outbox ignored, and a
heartbeat at once after connecting and then every ``heartbeat_s``."""
import json
import queue
import threading
import time
from datetime import datetime, timedelta, timezone

import paho.mqtt.client as mqtt
import pytest

from device import inbox
from device.link import MqttLink
from device.outbox import Outbox
from device.sender import Sender
from device.wire import Heartbeat
from kagiban import protocol
from kagiban.broker import BrokerConfig
from tests.support.mosquitto import wait_for

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=timezone(timedelta(hours=9)))
SITE, STATION = "ward-a", "cabinet-1"


class EventsSeen:
    """The hub's side of the wire: the seqs of the events that arrive, in order."""

    def __init__(self, port: int, topic: str):
        self.seqs: list[int] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.c.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.c.on_subscribe = lambda *a: self._subscribed.set()
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert self._subscribed.wait(10), "subscriber not ready"

    def _on(self, c, u, msg):
        with self._lock:
            self.seqs.append(json.loads(msg.payload)["seq"])

    def now(self) -> list[int]:
        with self._lock:
            return list(self.seqs)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def wire(broker, prefix, tmp_path):
    outbox = Outbox(tmp_path / "outbox.sqlite", site=SITE, station=STATION)
    arrived: queue.Queue = queue.Queue()
    link = MqttLink(BrokerConfig(port=broker.port, prefix=prefix), site=SITE, station=STATION, kind="cabinet",
                    on_input=arrived.put)
    seen = EventsSeen(broker.port, protocol.topic(prefix, SITE, STATION, "event"))
    link.start()
    assert arrived.get(timeout=10) == inbox.LinkChanged(True)
    yield outbox, link, seen
    link.stop()
    seen.close()
    outbox.close()


def sender(link, outbox, window=2):
    s = Sender(link, outbox, station=STATION, window=window, ack_timeout_s=5.0, heartbeat_s=30.0)
    s.link_changed(True)
    return s


def ack(outbox, *seqs, incarnation="same"):
    inc = outbox.incarnation if incarnation == "same" else incarnation
    return protocol.dumps(protocol.Ack(station=STATION, seqs=[(s, s) for s in seqs], incarnation=inc))


def add(outbox, n):
    for _ in range(n):
        outbox.add("door.closed", T0)


def test_a_backlog_goes_out_a_window_at_a_time_as_acks_arrive(wire):
    outbox, link, seen = wire
    add(outbox, 5)
    s = sender(link, outbox, window=2)
    wait_for(lambda: seen.now() == [1, 2], timeout=5, what="the first window")
    time.sleep(0.2)
    assert seen.now() == [1, 2], "no more than the window on the wire"
    s.ack(ack(outbox, 1, 2))
    wait_for(lambda: seen.now() == [1, 2, 3, 4], timeout=5, what="the next window after the ack")
    assert outbox.depth() == 3 and s.in_flight == 2


def test_an_ack_for_another_outbox_deletes_nothing_and_frees_no_room(wire):
    outbox, link, seen = wire
    add(outbox, 3)
    s = sender(link, outbox, window=2)
    wait_for(lambda: seen.now() == [1, 2], timeout=5, what="the first window")
    s.ack(ack(outbox, 1, 2, incarnation="0190a000-0000-7000-8000-000000000000"))
    time.sleep(0.2)
    assert outbox.depth() == 3 and seen.now() == [1, 2]


def test_events_not_acknowledged_in_time_are_sent_again(wire):
    outbox, link, seen = wire
    add(outbox, 2)
    s = sender(link, outbox, window=10)
    wait_for(lambda: seen.now() == [1, 2], timeout=5, what="both events")
    s.ack(ack(outbox, 1))
    s.tick(time.monotonic() + 1.0)  # within the ack timeout: nothing again
    s.tick(time.monotonic() + 6.0)  # past it: the one not acknowledged goes again
    wait_for(lambda: seen.now() == [1, 2, 2], timeout=5, what="the unacknowledged event again")


def test_nothing_is_sent_while_the_link_is_down_and_a_reconnect_starts_from_the_oldest(wire):
    outbox, link, seen = wire
    add(outbox, 2)
    s = Sender(link, outbox, station=STATION, window=10, ack_timeout_s=5.0, heartbeat_s=30.0)
    s.pump()
    time.sleep(0.2)
    assert seen.now() == []
    s.link_changed(True)
    wait_for(lambda: seen.now() == [1, 2], timeout=5, what="sent once connected")
    s.link_changed(False)
    s.link_changed(True)
    wait_for(lambda: seen.now() == [1, 2, 1, 2], timeout=5, what="sent again from the oldest")


def test_a_heartbeat_is_due_at_once_after_connecting_then_every_heartbeat_s(wire):
    outbox, link, _seen = wire
    s = sender(link, outbox)
    now = time.monotonic()
    assert s.heartbeat_due(now) is True
    assert s.heartbeat_due(now + 29.0) is False
    assert s.heartbeat_due(now + 30.0) is True
    hb = Heartbeat(site=SITE, station=STATION, kind="cabinet", at=T0, uptime_s=1.0, next_seq=1,
                   outbox_depth=0, outbox_capacity=10)
    assert s.heartbeat(hb) is True
    s.link_changed(False)
    assert s.heartbeat(hb) is False, "no heartbeat while disconnected"
