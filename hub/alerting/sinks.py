"""Where a supervisor notification goes: the one interface the notifier sends through.

``Sink.send(title, body, severity, attachments)`` makes one try and answers (accepted, error
text); the notifier owns retries, records and threads. Attachments (the monthly report's PDF)
are files in memory; a destination that cannot take files (Apprise says which) gets the text
alone, which names the page the files are on. ``AppriseSink`` is the real one (e-mail, Slack,
LINE, json:// ... through Apprise, the only module that imports it); ``MemorySink`` is the
stand-in, which keeps what it was sent and can be told to refuse.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import apprise
from apprise.attachment.memory import AttachMemory

from kagiban.configfile import ConfigError

_NOTIFY_TYPES = {
    "info": apprise.NotifyType.INFO,
    "warning": apprise.NotifyType.WARNING,
    "critical": apprise.NotifyType.FAILURE,
}


@dataclass(frozen=True)
class Attachment:
    """A file sent with a message, held in memory."""

    name: str  # the file name the reader sees (ASCII: some mail clients mangle others)
    content: bytes
    mimetype: str


class Sink(Protocol):
    """One destination of notifications."""

    def send(self, title: str, body: str, severity: str,
             attachments: Sequence[Attachment] = ()) -> tuple[bool, str]:
        """One try: (accepted, error text, "" when accepted). Never raises for a refusal."""
        ...


class SinkFactory(Protocol):
    """Makes the sink for a target's URL; ConfigError naming ``what`` if the URL is unusable."""

    def __call__(self, url: str, timeout_s: float, what: str) -> Sink: ...


class AppriseSink:
    """A notification URL Apprise understands; the URL stays inside and is never logged."""

    def __init__(self, url: str, timeout_s: float, what: str):
        asset = apprise.AppriseAsset(app_id="kagiban", app_desc="kagiban hub")
        plugin = apprise.Apprise.instantiate(url, asset=asset)
        if plugin is None:
            # Not the URL itself in the message: it may hold a password.
            raise ConfigError(f"{what}: not a notification URL Apprise can use")
        plugin.socket_connect_timeout = timeout_s
        plugin.socket_read_timeout = timeout_s
        self._plugin = plugin

    def send(self, title: str, body: str, severity: str,
             attachments: Sequence[Attachment] = ()) -> tuple[bool, str]:
        attach = None
        if attachments and self._plugin.attachment_support:
            attach = apprise.AppriseAttachment(
                [AttachMemory(content=a.content, name=a.name, mimetype=a.mimetype) for a in attachments])
        try:
            ok = bool(self._plugin.notify(
                body=body, title=title, notify_type=_NOTIFY_TYPES.get(severity),
                body_format=apprise.NotifyFormat.TEXT, attach=attach,
            ))
        except Exception as exc:  # a plugin bug must not end the notifier's worker
            return False, f"{exc.__class__.__name__} in the notification plugin"
        return ok, "" if ok else "the service did not accept the notification"


@dataclass(frozen=True)
class Sent:
    """A notification a MemorySink accepted."""

    title: str
    body: str
    severity: str
    attachments: tuple[Attachment, ...] = ()


class MemorySink:
    """The stand-in: keeps what it accepts in ``sent``; refuses the next ``refuse`` tries."""

    def __init__(self, refuse: int = 0):
        self.sent: list[Sent] = []
        self.refuse = refuse
        self.tries = 0
        self._lock = threading.Lock()

    def send(self, title: str, body: str, severity: str,
             attachments: Sequence[Attachment] = ()) -> tuple[bool, str]:
        with self._lock:
            self.tries += 1
            if self.refuse > 0:
                self.refuse -= 1
                return False, "refused by the stand-in"
            self.sent.append(Sent(title, body, severity, tuple(attachments)))
            return True, ""
