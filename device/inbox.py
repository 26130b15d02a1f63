"""What the agent's loop is handed: one frozen message type per kind of input.

Every thread that has something for the station (the reed switch's and the inputs' gpiozero
callbacks, the badge reader, paho, the camera and print workers, tests through
``Agent.call``) posts one of these into the agent's inbox; only the loop thread reads them
(device.agent dispatches each type to the part that owns it). Times are monotonic seconds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

from device import wire


@dataclass(frozen=True)
class BadgeTapped:
    """A badge was read (``uid`` as the reader gave it)."""

    uid: str
    at: float


@dataclass(frozen=True)
class ContactMoved:
    """A raw edge of a contact (``door``, or an extra input such as ``stop_button``):
    ``is_open`` is the contact's level, before debouncing."""

    name: str
    is_open: bool
    at: float


@dataclass(frozen=True)
class ContactFound:
    """A contact's settled level found at start (a bin left open): heard like an edge."""

    name: str
    is_open: bool
    at: float


@dataclass(frozen=True)
class WorkDone:
    """The print server answered a request (device.stations.effects.Work)."""

    work: Any
    result: Any
    at: float


@dataclass(frozen=True)
class AckArrived:
    """The hub's ack, as received (parsed by the sender)."""

    payload: bytes


@dataclass(frozen=True)
class PolicyArrived:
    """A (retained) policy offered on the station's policy topic."""

    payload: bytes


@dataclass(frozen=True)
class PolicyControlArrived:
    """A policy control message (key change, reset) on the policy-control topic."""

    payload: bytes


@dataclass(frozen=True)
class SiteAlarmArrived:
    """The hub's retained state of the site's open critical alerts (device.wire.SiteAlarm)."""

    payload: bytes


@dataclass(frozen=True)
class LinkChanged:
    """The MQTT link connected (True) or was lost (False)."""

    connected: bool


@dataclass(frozen=True)
class SnapshotTaken:
    """The camera worker made the photo an event asked for."""

    snapshot: wire.Snapshot


@dataclass(frozen=True)
class SnapshotMissed:
    """The camera worker could not make the photo an event asked for."""

    failed: wire.SnapshotFailed
    at: float


@dataclass(frozen=True)
class Call:
    """Run ``fn(agent)`` on the loop thread (device.agent.Agent.call)."""

    fn: Callable[[Any], None]


@dataclass(frozen=True)
class Wake:
    """Nothing to do: wakes the loop so it sees that it is stopping."""


Message = Union[BadgeTapped, ContactMoved, ContactFound, WorkDone, AckArrived, PolicyArrived, PolicyControlArrived,
                SiteAlarmArrived, LinkChanged, SnapshotTaken, SnapshotMissed, Call, Wake]
