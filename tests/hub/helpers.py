"""What the hub tests share: payload builders, a hub config writer and a stand-in station
that speaks the wire protocol over a real broker."""
from __future__ import annotations

import base64
import json
import threading
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import uuid6
import yaml
from sqlalchemy import Engine, select

from hub.store.schema import events
from kagiban.protocol import Ack, topic
from tests.support.mosquitto import Mosquitto, wait_for
from tests.support.postgres import database_section

SITE = "ward-a"
JST = timezone(timedelta(hours=9))
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60 + b"\xff\xd9"


def event(station: str, seq: int, *, site: str = SITE, **extra: Any) -> dict[str, Any]:
    """An event payload as a station would publish it."""
    body = {
        "v": 1, "id": str(uuid6.uuid7()), "seq": seq, "site": site, "station": station,
        "kind": "door.opened", "at": datetime(2025, 4, 1, 9, 0, seq % 60, tzinfo=JST).isoformat(),
        "badge": "012E4CD2A5B71F03", "person": "staff-001", "data": {"n": seq, "note": "鍵"},
    }
    body.update(extra)
    return body


def snapshot(station: str, event_id: str, *, site: str = SITE, image: bytes = JPEG) -> dict[str, Any]:
    """A snapshot payload for ``event_id``."""
    return {
        "v": 1, "event_id": event_id, "site": site, "station": station,
        "taken_at": datetime(2025, 4, 1, 9, 0, 1, tzinfo=JST).isoformat(),
        "content_type": "image/jpeg", "image": base64.b64encode(image).decode(),
    }


def status(station: str, state: str, *, site: str = SITE) -> dict[str, Any]:
    """A retained status payload."""
    return {"v": 1, "site": site, "station": station, "state": state,
            "at": datetime.now(JST).isoformat(), "kind": "cabinet"}


def heartbeat(station: str, *, site: str = SITE, policy_version: int | None = None) -> dict[str, Any]:
    """A heartbeat payload."""
    return {"v": 1, "site": site, "station": station, "kind": "cabinet",
            "at": datetime.now(JST).isoformat(), "uptime_s": 12.5, "next_seq": 4,
            "outbox_depth": 0, "outbox_capacity": 1000, "policy_version": policy_version}


def encode(body: dict[str, Any]) -> bytes:
    """JSON bytes, as a station sends them."""
    return json.dumps(body, ensure_ascii=False).encode()


def write_hub_config(folder: Path, broker: Mosquitto, prefix: str, **sections: Any) -> Path:
    """A hub YAML file using ``broker`` and ``prefix``, data in ``folder``; returns its path."""
    body: dict[str, Any] = {
        "broker": {"host": "127.0.0.1", "port": broker.port, "prefix": prefix, "keepalive_s": 5},
        "data_dir": "data",
        "ingest": {"client_id": f"hub-{prefix}", "batch_max": 500, "batch_wait_ms": 10},
        # Any free port: tests run side by side, and 8080 may be taken.
        "web": {"port": 0},
        # The running test's store (PostgreSQL when parametrized so; SQLite's default file else).
        **database_section(folder),
    }
    body.update(sections)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hub.yaml"
    path.write_text(yaml.safe_dump(body, allow_unicode=True))
    return path


def store_text(engine: Engine) -> str:
    """Every row of every table as text: what someone reading the whole store would see."""
    from hub.store.schema import metadata

    with engine.connect() as conn:
        return "\n".join(repr(tuple(row)) for table in metadata.sorted_tables for row in conn.execute(select(table)))


def stored_seqs(engine: Engine, station: str) -> list[int]:
    """The sequence numbers stored for ``station``, in chain order."""
    with engine.connect() as conn:
        return list(conn.execute(
            select(events.c.seq).where(events.c.station == station).order_by(events.c.row_no)
        ).scalars())


class FakeStation:
    """A station's MQTT side only: publishes payloads, records the acks it gets."""

    def __init__(self, broker: Mosquitto, prefix: str, station: str, *, site: str = SITE,
                 on_ack: Callable[[Ack], None] | None = None):
        self.prefix, self.site, self.station = prefix, site, station
        self.acks: list[Ack] = []
        self._on_ack = on_ack
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"st-{uuid.uuid4().hex[:10]}", protocol=mqtt.MQTTv5)
        self.client.on_connect = lambda c, *_: c.subscribe(topic(prefix, site, station, "ack"), qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()
        wait_for(self._subscribed.is_set, timeout=10, what=f"{station} subscribed to its acks")

    def _on_message(self, _client, _userdata, msg) -> None:
        ack = Ack.model_validate_json(msg.payload)
        if self._on_ack is not None:
            self._on_ack(ack)
        with self._lock:
            self.acks.append(ack)

    def publish(self, channel: str, payload: bytes, *, station: str | None = None) -> None:
        """Publish on ``channel`` (of another station's topic if given) and wait for PUBACK."""
        self.publish_raw(topic(self.prefix, self.site, station or self.station, channel), payload)

    def publish_raw(self, topic_name: str, payload: bytes) -> None:
        """Publish on any topic and wait for PUBACK."""
        info = self.client.publish(topic_name, payload, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), f"no PUBACK for {topic_name} within 10 s"

    def acked_seqs(self) -> set[int]:
        """Every sequence number acked so far."""
        with self._lock:
            return set().union(*(a.seq_set() for a in self.acks)) if self.acks else set()

    def acked_snapshots(self) -> set[str]:
        """Every snapshot event id acked so far."""
        with self._lock:
            return {s for a in self.acks for s in a.snapshots}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
