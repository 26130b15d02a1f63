"""The station's MQTT link to the hub (paho-mqtt, MQTT v5).

- Last will: a retained ``offline`` status; ``online`` is published retained on every connect,
  ``stopped`` on a clean stop.
- Subscribes to its own ack, policy and policy-control topics in on_connect, so a reconnect
  resubscribes; with ``site_alarm`` (an annunciator) also to its site's retained alarm state.
- Everything that arrives, and every connect/disconnect, is handed to the agent's loop through
  ``on_input`` as a device.inbox message (paho's callbacks run on paho's thread; the agent's
  state is touched only by its own thread).
- A publish the broker refuses (MQTT v5 reason code >= 128, e.g. 135 Not authorized) is logged;
  the event stays in the outbox.
"""
from __future__ import annotations

import logging
from typing import Callable, Literal

from device import inbox
from device import wire
from kagiban.wire import CHANNELS, StationKind, alarm_topic, now_local, topic
from kagiban.broker import BrokerConfig, make_client

_LOG = logging.getLogger(__name__)

# The channels the station subscribes to, and the inbox message each arrival becomes.
_ARRIVALS: dict[str, Callable[[bytes], inbox.Message]] = {
    "ack": inbox.AckArrived, "policy": inbox.PolicyArrived,
    "policy-control": inbox.PolicyControlArrived,
}


class MqttLink:
    """Connection of one station to the broker."""

    def __init__(
        self,
        cfg: BrokerConfig,
        *,
        site: str,
        station: str,
        kind: StationKind,
        on_input: Callable[[inbox.Message], None],
        site_alarm: bool = False,
    ):
        self.cfg = cfg
        self.site = site
        self.station = station
        self.kind = kind
        self._on_input = on_input
        self._topics = {ch: topic(cfg.prefix, site, station, ch) for ch in CHANNELS}
        self._alarm_topic = alarm_topic(cfg.prefix, site) if site_alarm else None
        self.client = make_client(cfg, client_id=f"kagiban-{site}-{station}")
        will = wire.Status(site=site, station=station, state="offline", kind=kind)
        self.client.will_set(self._topics["status"], wire.dumps(will), qos=1, retain=True)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.refused = 0  # publishes the broker refused (reason code >= 128)

    def start(self) -> None:
        """Connect in the background; paho reconnects by itself."""
        self.client.connect_async(self.cfg.host, self.cfg.port, keepalive=self.cfg.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        """Say stopped (retained: a clean stop, not a lost connection) and disconnect."""
        if self.client.is_connected():
            info = self.client.publish(
                self._topics["status"],
                wire.dumps(self._status("stopped")),
                qos=1,
                retain=True,
            )
            try:
                info.wait_for_publish(timeout=2)
            except (RuntimeError, ValueError):
                pass
        self.client.disconnect()
        self.client.loop_stop()

    def connected(self) -> bool:
        return self.client.is_connected()

    def _status(self, state: Literal["online", "offline", "stopped"]) -> wire.Status:
        return wire.Status(
            site=self.site, station=self.station, state=state, kind=self.kind, at=now_local()
        )

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            _LOG.error("broker refused connection: %s", reason_code)
            return
        _LOG.info("connected to %s:%d", self.cfg.host, self.cfg.port)
        topics = [(self._topics["ack"], 1), (self._topics["policy"], 1), (self._topics["policy-control"], 1)]
        if self._alarm_topic is not None:
            topics.append((self._alarm_topic, 1))
        client.subscribe(topics)
        client.publish(self._topics["status"], wire.dumps(self._status("online")), qos=1, retain=True)
        self._on_input(inbox.LinkChanged(True))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        _LOG.warning("disconnected from broker: %s", reason_code)
        self._on_input(inbox.LinkChanged(False))

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self._alarm_topic:
            self._on_input(inbox.SiteAlarmArrived(message.payload))
            return
        channel = message.topic.rsplit("/", 1)[-1]
        kind = _ARRIVALS.get(channel)
        if kind is not None:
            self._on_input(kind(message.payload))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refused += 1
            _LOG.error("broker refused publish %d: %s", mid, reason_code)

    def publish(self, channel: str, payload: bytes, *, qos: int = 1) -> None:
        """Hand a payload to paho (it queues while disconnected only what we give it)."""
        self.client.publish(self._topics[channel], payload, qos=qos)
