"""The sender: what goes from the outbox to the hub, and when.

- At most ``window`` events are on the wire at once; the next ones go as acks free the window
  (a backlog drains in windows, oldest first).
- An event not acknowledged within ``ack_timeout_s`` is sent again; a reconnect starts again
  from the oldest unacknowledged event. The hub inserts idempotently, so sending twice is
  harmless and losing an ack costs only a resend.
- An ack deletes its events (and snapshots) from the outbox, but only an ack of this outbox's
  incarnation: seqs count per incarnation (device.outbox).
- A heartbeat every ``heartbeat_s`` while connected (QoS 0), and at once on every connect.

Runs on the agent's loop thread only; nothing is sent while the link is down.
"""
from __future__ import annotations

import logging
import time

from device.link import MqttLink
from device.outbox import Outbox
from device import wire
from kagiban.wire import ProtocolError

_LOG = logging.getLogger(__name__)

# Snapshots go out this many at a time (each is up to a few hundred kB).
SNAPSHOT_BATCH = 20


class Sender:
    """The send window, acks, resends and heartbeat timing of one station."""

    def __init__(self, link: MqttLink, outbox: Outbox, *, station: str, window: int,
                 ack_timeout_s: float, heartbeat_s: float) -> None:
        self.link = link
        self.outbox = outbox
        self.station = station
        self.window = window
        self.ack_timeout_s = ack_timeout_s
        self.heartbeat_s = heartbeat_s
        self.connected = False
        self._inflight: dict[int, float] = {}  # seq -> when (last) sent
        self._sent_upto = 0
        self._snap_inflight: dict[str, float] = {}
        self._next_heartbeat = 0.0
        self._next_resend = 0.0

    @property
    def in_flight(self) -> int:
        """Events sent and not acknowledged yet."""
        return len(self._inflight)

    def link_changed(self, connected: bool) -> None:
        """The link came up (send from the oldest unacknowledged, heartbeat at once) or went down."""
        self.connected = connected
        self._inflight.clear()
        self._snap_inflight.clear()
        self._sent_upto = 0
        if connected:
            self._next_heartbeat = 0.0
            self.pump()

    def pump(self, now: float | None = None) -> None:
        """Send what the window has room for, and the snapshots not on the wire."""
        if not self.connected:
            return
        now = time.monotonic() if now is None else now
        free = self.window - len(self._inflight)
        if free > 0:
            rows = self.outbox.pending(after_seq=self._sent_upto, limit=free)
            for seq, payload in rows:
                self.link.publish("event", payload)
                self._inflight[seq] = now
            if rows:
                self._sent_upto = rows[-1][0]
        for event_id, payload in self.outbox.pending_snapshots(limit=SNAPSHOT_BATCH):
            if event_id not in self._snap_inflight:
                self.link.publish("snapshot", payload)
                self._snap_inflight[event_id] = now

    def ack(self, payload: bytes) -> None:
        """The hub acknowledged events and snapshots it has committed: forget them."""
        try:
            ack = wire.parse_hub_message(wire.Ack, payload)
        except ProtocolError as exc:
            _LOG.error("ignoring malformed ack: %s", exc)
            return
        if ack.station != self.station:
            _LOG.error("ignoring ack addressed to %s", ack.station)
            return
        # Seqs count per outbox incarnation: an ack for a replaced outbox deletes nothing here.
        seqs = ack.seq_set() if ack.incarnation == self.outbox.incarnation else set()
        if ack.seqs and not seqs:
            _LOG.warning("ignoring acked seqs of incarnation %s (this outbox: %s)",
                         ack.incarnation, self.outbox.incarnation)
        if seqs:
            self.outbox.ack(seqs)
            for seq in seqs:
                self._inflight.pop(seq, None)
        if ack.snapshots:
            self.outbox.ack_snapshots(ack.snapshots)
            for eid in ack.snapshots:
                self._snap_inflight.pop(eid, None)
        self.pump()

    def tick(self, now: float) -> None:
        """Send again what was not acknowledged in time (looked at four times per timeout)."""
        if now < self._next_resend:
            return
        self._next_resend = now + max(0.2, self.ack_timeout_s / 4)
        if not self.connected:
            return
        limit = self.ack_timeout_s
        stale = [seq for seq, t in self._inflight.items() if now - t > limit]
        if stale:
            _LOG.warning("no ack for %d events within %.1fs; sending again", len(stale), limit)
            resent = self.outbox.payloads(stale)
            for seq, payload in resent:
                self.link.publish("event", payload)
                self._inflight[seq] = now
            for seq in set(stale) - {seq for seq, _ in resent}:
                self._inflight.pop(seq, None)  # acknowledged meanwhile
        stale_snaps = [eid for eid, t in self._snap_inflight.items() if now - t > limit]
        for eid in stale_snaps:
            del self._snap_inflight[eid]
        if stale_snaps:
            self.pump()

    def heartbeat_due(self, now: float) -> bool:
        """True once per ``heartbeat_s`` (and at once after a connect); schedules the next."""
        if now < self._next_heartbeat:
            return False
        self._next_heartbeat = now + self.heartbeat_s
        return True

    def heartbeat(self, hb: wire.Heartbeat) -> bool:
        """Publish ``hb`` (QoS 0: the next one replaces a lost one); False while disconnected."""
        if not self.connected:
            return False
        self.link.publish("heartbeat", wire.dumps(hb), qos=0)
        return True

    def next_deadline(self) -> float:
        """When :meth:`tick` or the next heartbeat is due (monotonic seconds)."""
        return min(self._next_heartbeat, self._next_resend)
