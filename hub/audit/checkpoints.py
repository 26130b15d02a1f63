"""Signed checkpoints of the audit trail, kept off the hub.

Someone with write access to the database can rebuild a consistent events chain and head;
what they cannot do is change what was copied elsewhere before. So every few minutes and at
each close-out the hub signs, with an audit key of its own (Ed25519), a checkpoint of:

- ``rows`` and ``head``: the events chain's last row number and hash;
- ``stations``: each station's highest stored seq, per incarnation;
- ``side``: each side log's last entry number and hash (hub.store.chain.append_side), the station
  key log (``keys``) among them;
- ``keys`` (version 2): every registered station key by key id, with a digest of its station,
  public key and validity period (``key_digest``), so a key added, altered, backdated or
  removed in the database after the checkpoint is named by ``kagiban verify --checkpoints``,
  and so are the rows such a key signed;
- ``at``, ``reason`` (periodic, closeout, start) and ``store_bytes``.

One checkpoint is one JSON line ``{"checkpoint": {...}, "key_id": "...", "signature": "..."}``,
the signature over the checkpoint's canonical JSON (kagiban.protocol.canonical_json). The line
is published retained on ``{prefix}/_hub/checkpoint``, appended (fsync'd) to
``audit.log_dir``/checkpoints.jsonl, sent to ``audit.syslog``, kept in the ``checkpoints``
table (the status page's sizes) and put into the daily close-out message.
``kagiban verify --checkpoints PATH`` (hub.audit.verify) holds the store against every one.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import logging.handlers
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Engine, func, insert, select

from hub.audit.store_size import measure
from hub.config import HubConfig, SyslogTarget
from hub.store.db import begin_write, read_snapshot
from hub.store.schema import SIDE_PARTS, chain_head, checkpoints, events, side_heads, station_keys
from hub.store.timestamps import now_utc, utc_text
from kagiban.ed25519 import InvalidSignature, PrivateKey, PublicKey
from kagiban.configfile import ConfigError
from kagiban.protocol import canonical_json
from kagiban.signing import key_id, load_or_create_private_key

_LOG = logging.getLogger(__name__)

VERSION = 2  # 2: ``keys``
LOG_FILE_NAME = "checkpoints.jsonl"
REASONS = ("start", "periodic", "closeout")


def checkpoint_topic(prefix: str) -> str:
    """The hub's retained checkpoint topic (``_hub`` can be no site: ids start alphanumeric)."""
    return f"{prefix}/_hub/checkpoint"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class StationSeq(_Frozen):
    """A station incarnation's highest stored seq ("" for events that carried none)."""

    station: str
    incarnation: str
    seq: int


class SideHead(_Frozen):
    """A side log's last entry (0 and the genesis hash while empty)."""

    n: int
    hash: str


class Checkpoint(_Frozen):
    """What the hub vouches for at ``at`` (the signed part of a checkpoint line)."""

    v: int = VERSION
    at: str
    reason: str
    rows: int
    head: str
    stations: tuple[StationSeq, ...]
    side: dict[str, SideHead]
    store_bytes: int | None = None
    keys: dict[str, str] | None = None  # key id -> key_digest(); None in version 1 lines

    def summary(self) -> str:
        """One line for people: time, rows, head."""
        return f"{self.at} row {self.rows} head {self.head[:16]}"


@dataclass(frozen=True)
class SignedLine:
    """A checkpoint line as read back: the checkpoint, who signed it, and whether the key checks."""

    number: int  # 1, 2, ... in the order read
    source: str  # file:line
    checkpoint: Checkpoint | None
    key_id: str
    signature_ok: bool
    problem: str = ""  # why the line is unusable (not JSON, wrong shape), if it is

    def name(self) -> str:
        """How verify names this checkpoint."""
        cp = self.checkpoint
        at = f" at {cp.at}, row {cp.rows}" if cp is not None else ""
        return f"checkpoint {self.number} ({self.source}{at})"


# --- making one ---

def key_digest(station: str, public_key: str, added_at: str, retired_at: str | None) -> str:
    """What a checkpoint records of one station key: sha256 (128 bits, hex) of its station,
    public key and validity period in canonical JSON."""
    body = {"station": station, "public_key": public_key, "added_at": added_at, "retired_at": retired_at}
    return hashlib.sha256(canonical_json(body)).hexdigest()[:32]


def build(engine: Engine, reason: str, now: datetime | None = None) -> Checkpoint:
    """The store's checkpoint now, read in one transaction."""
    with read_snapshot(engine) as conn:
        head = conn.execute(select(chain_head.c.row_no, chain_head.c.hash)).one()
        top = conn.execute(
            select(events.c.station, events.c.incarnation, func.max(events.c.seq))
            .group_by(events.c.station, events.c.incarnation)
            .order_by(events.c.station, events.c.incarnation)).all()
        side = {r.part: SideHead(n=r.n, hash=r.hash) for r in conn.execute(select(side_heads))}
        keys = {r.key_id: key_digest(r.station, r.public_key, r.added_at, r.retired_at)
                for r in conn.execute(select(station_keys).order_by(station_keys.c.key_id))}
    return Checkpoint(
        at=utc_text(now or now_utc()), reason=reason, rows=head.row_no, head=head.hash,
        stations=tuple(StationSeq(station=s, incarnation=i, seq=q) for s, i, q in top),
        side={p: side[p] for p in SIDE_PARTS if p in side}, store_bytes=measure(engine), keys=keys,
    )


def sign_line(cp: Checkpoint, key: PrivateKey) -> str:
    """The checkpoint's signed JSON line (no newline)."""
    body = cp.model_dump(mode="json")
    signature = key.sign(canonical_json(body))
    return json.dumps({"checkpoint": body, "key_id": key_id(key.public_key()),
                       "signature": base64.b64encode(signature).decode("ascii")},
                      ensure_ascii=False, separators=(",", ":"))


def read_line(text: str, public_key: PublicKey | None, number: int, source: str) -> SignedLine:
    """A checkpoint line (anything before its first ``{``, a syslog header, is skipped)."""
    start = text.find("{")
    try:
        # raw_decode: whatever a relay put after the line (a NUL, a trailer) is left alone.
        obj = json.JSONDecoder().raw_decode(text, start)[0] if start >= 0 else None
        if not isinstance(obj, dict) or not isinstance(obj.get("checkpoint"), dict):
            raise ValueError("not a checkpoint line")
        body, kid, sig = obj["checkpoint"], str(obj.get("key_id", "")), obj.get("signature")
        cp = Checkpoint.model_validate_json(json.dumps(body))
    except (ValueError, ValidationError) as exc:
        return SignedLine(number, source, None, "", False, f"unreadable: {str(exc).splitlines()[0][:120]}")
    ok = False
    if public_key is not None and isinstance(sig, str):
        try:
            public_key.verify(base64.b64decode(sig, validate=True), canonical_json(body))
            ok = True
        except (InvalidSignature, ValueError):
            ok = False
    return SignedLine(number, source, cp, kid, ok)


def read_log(path: str | os.PathLike, public_key: PublicKey | None) -> list[SignedLine]:
    """Every checkpoint line in ``path`` (a file, or a folder's ``*.jsonl`` and ``*.log`` files
    in name order); lines without a checkpoint (other syslog traffic) are skipped."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".jsonl", ".log")) if path.is_dir() else [path]
    out: list[SignedLine] = []
    for file in files:
        with file.open(encoding="utf-8", errors="replace") as fh:
            for lineno, text in enumerate(fh, 1):
                if '"checkpoint"' not in text:
                    continue
                out.append(read_line(text.strip(), public_key, len(out) + 1, f"{file.name}:{lineno}"))
    return out


# --- where they go ---

def append_fsync(folder: Path, line: str) -> None:
    """Append ``line`` to folder/checkpoints.jsonl and fsync it (and the folder, for a new file)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / LOG_FILE_NAME
    new = not target.exists()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(fd, (line + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def syslog_handler(target: SyslogTarget) -> logging.handlers.SysLogHandler:
    """A handler sending to ``target`` (UDP host:port or a local socket path)."""
    facility = logging.handlers.SysLogHandler.facility_names[target.facility]
    if target.address.startswith("/"):
        handler = logging.handlers.SysLogHandler(address=target.address, facility=facility)
    else:
        host, _sep, port = target.address.rpartition(":")
        handler = logging.handlers.SysLogHandler(address=(host.strip("[]"), int(port)), facility=facility,
                                                 socktype=socket.SOCK_DGRAM)
    handler.append_nul = False  # the line as signed, nothing after it
    return handler


def load_audit_key(path: Path) -> PrivateKey:
    """The hub's audit signing key, created with mode 600 if the file is missing."""
    try:
        return load_or_create_private_key(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"audit.signing_key_file: {path}: {exc}") from exc


class CheckpointWriter:
    """Makes, signs and sends checkpoints; ``make`` is safe from any thread (each call is one
    checkpoint, made and sent one at a time, so the newest is the one retained on MQTT and the
    last line of the log). A sink that fails is logged and the others still get the checkpoint."""

    def __init__(self, engine: Engine, cfg: HubConfig, *, publish: Callable[[str, bytes], None] | None = None,
                 key: PrivateKey | None = None):
        self.engine = engine
        self.cfg = cfg
        self.publish = publish
        self.key = key or load_audit_key(cfg.audit_key_path())
        self.folder = cfg.audit_log_dir()
        self._syslog = syslog_handler(cfg.audit.syslog) if cfg.audit.syslog is not None else None
        self.made = 0
        self.failures = 0  # sink failures, for figures
        # Two checkpoints made at once (the periodic job and a close-out) could otherwise reach
        # the sinks in the other order: an older head retained on MQTT after a newer one.
        self._lock = threading.Lock()

    def make(self, reason: str = "periodic", now: datetime | None = None) -> tuple[Checkpoint, str]:
        """Build, sign, store and send one checkpoint; it and its signed line."""
        if reason not in REASONS:
            raise ValueError(f"unknown checkpoint reason {reason!r}")
        with self._lock:
            return self._make(reason, now)

    def _make(self, reason: str, now: datetime | None) -> tuple[Checkpoint, str]:
        cp = build(self.engine, reason, now)
        line = sign_line(cp, self.key)
        with begin_write(self.engine) as conn:
            conn.execute(insert(checkpoints).values(at=cp.at, reason=reason, store_bytes=cp.store_bytes,
                                                    line=line))
        for name, send in (("log_dir", self._to_folder), ("syslog", self._to_syslog), ("mqtt", self._to_mqtt)):
            try:
                send(line)
            except Exception:
                self.failures += 1
                _LOG.exception("checkpoint %s could not be written to %s", cp.summary(), name)
        self.made += 1
        _LOG.info("checkpoint (%s): %s", reason, cp.summary())
        return cp, line

    def _to_folder(self, line: str) -> None:
        if self.folder is not None:
            append_fsync(self.folder, line)

    def _to_syslog(self, line: str) -> None:
        if self._syslog is not None:
            record = logging.LogRecord("kagiban.checkpoint", logging.INFO, __file__, 0,
                                       "kagiban-checkpoint: %s", (line,), None)
            self._syslog.emit(record)

    def _to_mqtt(self, line: str) -> None:
        if self.publish is not None:
            self.publish(checkpoint_topic(self.cfg.broker.prefix), line.encode("utf-8"))

    def close(self) -> None:
        if self._syslog is not None:
            self._syslog.close()


def stored_lines(engine: Engine) -> Iterator[str]:
    """The hub's own copies, oldest first."""
    with engine.connect() as conn:
        yield from conn.execute(select(checkpoints.c.line).order_by(checkpoints.c.id)).scalars()
