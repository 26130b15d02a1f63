"""A plain MQTT v5 client for tests: it keeps what arrives on its subscription, per topic, and
publishes as a station's peer (a supervisor's app, another station) would."""
from __future__ import annotations

import threading

import paho.mqtt.client as mqtt


class Watcher:
    """A plain MQTT v5 subscriber that keeps what arrives per topic."""

    def __init__(self, port: int, topic: str):
        self.got: dict[str, list[bytes]] = {}
        self.lock = threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.c.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
        self.c.on_message = self._on
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on(self, c, u, msg):
        with self.lock:
            self.got.setdefault(msg.topic, []).append(msg.payload)

    def on(self, topic: str) -> list[bytes]:
        """The payloads received on ``topic`` so far, oldest first."""
        with self.lock:
            return list(self.got.get(topic, []))

    def publish(self, topic, payload, retain=False):
        """Publish at QoS 1 and wait (at most 5 s) until the broker has it."""
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()
