"""The end-of-day close-out (終業点検): at a configured time each day, per site, what a
supervisor would walk round to check before locking up, built from the store:

- every key cabinet and restricted door closed and locked (the newer of its last door event
  and its last heartbeat says open or closed; a heartbeat saying unlocked is a problem too);
- the last user of each cabinet that day (the key ledger's last use);
- print jobs still held at each printer (its latest ``print.queue`` event; none: not shown);
- the day's shredding sessions (the shredding ledger; flagged or unended ones are problems);
- alerts nobody has acknowledged yet;
- stations offline, or never heard from.

Anything not in order is listed first. A close-out is a list of :class:`Item` (a section, in
order or not, the station and the facts); :func:`describe` says an item in Japanese or English,
for the page, the exports and the message to the supervisors.

:class:`CloseoutScheduler` (a thread of the hub) builds each configured site's close-out once
a day at ``sites.<site>.closeout.at`` (local time), stores it in ``closeouts`` and sends it to
the site's supervisors through the notifier. A hub started after that time builds the day's
one at start; a day it was down for entirely is not made up afterwards.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.alerting.alerts import list_alerts
from hub.audit.jobs import Periodic
from hub.alerting.wording import alert_text
from hub.config import HubConfig
from hub.store.db import begin_write, inserted_id
from hub.catalog import N_, Msg
from hub.ledgers.base import Labels, export_labels, staff_names, table_csv, table_xlsx
from hub.ledgers.keys import key_ledger
from hub.store.schema import closeouts, events, stations
from hub.stations.state import door_state, last_heartbeat, parse_time
from hub.ledgers.shredding import registry_names, sessions
from hub.store.timestamps import now_utc, utc_text
from hub.stations.directory import display_name, site_name
from hub.timetext import time_text

_LOG = logging.getLogger(__name__)

# The order sections are listed in (problems of every section first, then the rest).
SECTIONS = ("cabinet", "door", "offline", "alert", "printer", "shredding", "last_user")
POLL_S = 20.0  # how often the scheduler looks at the clock


@dataclass
class Item:
    """One line of a close-out: ``ok`` False means a supervisor should look at it."""

    section: str
    ok: bool
    station: str | None = None
    station_name: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Closeout:
    """A site's close-out for a day; ``id`` and ``deliveries`` once stored and sent."""

    site: str
    site_name: str
    day: date
    zone: str
    generated_at: datetime
    items: list[Item]
    id: int | None = None
    deliveries: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The signed audit checkpoint made with it (hub.audit.checkpoints), as its JSON line: the
    # supervisors' mailboxes keep a copy off the hub.
    checkpoint: str | None = None

    @property
    def problems(self) -> list[Item]:
        return [i for i in self.items if not i.ok]

    def as_json(self) -> dict[str, Any]:
        return {"site": self.site, "site_name": self.site_name, "day": self.day.isoformat(),
                "zone": self.zone, "generated_at": self.generated_at.isoformat(), "id": self.id,
                "problems": len(self.problems), "items": [asdict(i) for i in self.items],
                "deliveries": self.deliveries}


def _sort(items: list[Item]) -> list[Item]:
    return sorted(items, key=lambda i: (i.ok, SECTIONS.index(i.section), i.station or ""))


def site_stations(engine: Engine, cfg: HubConfig, site: str) -> dict[str, dict[str, Any]]:
    """The site's stations as the store and the config know them: id -> row of ``stations``."""
    with engine.connect() as conn:
        rows = {r["station"]: dict(r) for r in conn.execute(select(stations)).mappings()}
    for entry in cfg.stations or []:
        row = rows.setdefault(entry.id, {"station": entry.id, "state": "unknown", "state_since": None,
                                         "last_heartbeat": None})
        row.update(site=entry.site, kind=entry.kind)
    return {s: r for s, r in sorted(rows.items()) if r.get("site") == site}


def _who(person: str | None, names: Mapping[str, str]) -> str | None:
    if not person:
        return None
    name = names.get(person)
    return f"{name} ({person})" if name else person


def build(engine: Engine, cfg: HubConfig, site: str, day: date, *, now: datetime | None = None) -> Closeout:
    """The close-out of ``site`` for ``day`` (the site's local date) as the store has it now."""
    now = now or now_utc()
    zone = cfg.site_zone(site)
    names = {**staff_names(engine), **registry_names(engine)}
    found = site_stations(engine, cfg, site)
    items: list[Item] = []
    with engine.connect() as conn:
        for station, row in found.items():
            kind = row.get("kind")
            label = display_name(cfg, station)
            if kind in ("cabinet", "door"):
                items.append(_door_item(conn, station, label, kind, row))
            if kind == "printer":
                item = _printer_item(conn, station, label)
                if item is not None:
                    items.append(item)
            if row.get("state") != "online":
                items.append(Item("offline", False, station, label, {
                    "state": row.get("state") or "unknown", "since": row.get("state_since")}))
    for station, row in found.items():
        if row.get("kind") != "cabinet":
            continue
        label = display_name(cfg, station)
        uses = [r for r in key_ledger(engine, cfg, day, station=station, names=names) if r.last]
        if uses:
            last = uses[-1]
            items.append(Item("last_user", True, station, label, {
                "person": last.person, "who": _who(last.person, names),
                "closed_at": last.closed_at.isoformat() if last.closed_at else None}))
        else:
            items.append(Item("last_user", True, station, label, {"person": None}))
    shredders = [s for s, r in found.items() if r.get("kind") == "shredder"]
    for station in shredders:
        label = display_name(cfg, station)
        done = sessions(engine, cfg, day, station=station, names=names)
        for s in done:
            unended = s.ended_by in ("running", "station_restarted")
            items.append(Item("shredding", not (s.flagged or unended), station, label, {
                "who": [_who(p, names) or "?" for p in s.people],
                "started_at": s.started_at.isoformat(),
                "ended_at": s.ended_at.isoformat() if s.ended_at else None,
                "duration_s": s.duration_s, "ended_by": s.ended_by,
                "not_on_roster": s.not_on_roster, "after_hours": s.after_hours, "event_id": s.event_id}))
        if not done:
            items.append(Item("shredding", True, station, label, {"none": True}))
    for alert in list_alerts(engine, state="open", site=site, limit=500):
        station = alert["station"]
        items.append(Item("alert", False, station, display_name(cfg, station), {
            "id": alert["id"], "rule": alert["rule"], "severity": alert["severity"],
            "params": alert["params"], "raised_at": alert["raised_at"]}))
    return Closeout(site=site, site_name=site_name(cfg, site), day=day, zone=zone.key,
                    generated_at=now, items=_sort(items))


def _door_item(conn, station: str, label: str, kind: str, row: dict[str, Any]) -> Item:
    # The last door event to arrive (stations.door_row_no), never the latest by its time.
    last = conn.execute(
        select(events.c.kind, events.c.at_utc).where(events.c.row_no == row.get("door_row_no"))
    ).mappings().first() if row.get("door_row_no") is not None else None
    heartbeat = last_heartbeat(row.get("last_heartbeat"))
    door, since = door_state(heartbeat, last)
    locked = heartbeat.get("locked") if isinstance(heartbeat.get("locked"), bool) else None
    ok = door == "closed" and locked is not False
    return Item(kind, ok, station, label, {"door": door, "locked": locked,
                                           "since": since.isoformat() if since else None})


def _printer_item(conn, station: str, label: str) -> Item | None:
    queue = conn.execute(
        select(events.c.data, events.c.at_utc).where(events.c.station == station, events.c.kind == "print.queue")
        .order_by(events.c.at_utc.desc(), events.c.row_no.desc()).limit(1)).mappings().first()
    if queue is None:
        return None
    data = json.loads(queue["data"])
    held = data.get("held") if isinstance(data.get("held"), int) else 0
    jobs = data.get("jobs")
    if held and not isinstance(jobs, list):
        listed = conn.execute(
            select(events.c.data).where(events.c.station == station, events.c.kind == "print.held",
                                        events.c.at_utc <= queue["at_utc"])
            .order_by(events.c.at_utc.desc(), events.c.row_no.desc()).limit(1)).scalar()
        jobs = json.loads(listed).get("jobs") if listed else None
    jobs = [j for j in jobs if isinstance(j, dict)] if isinstance(jobs, list) else []
    return Item("printer", held == 0, station, label, {
        "held": held, "oldest_s": data.get("oldest_s"), "at": queue["at_utc"],
        "jobs": [{k: j.get(k) for k in ("id", "title", "pages", "user")} for j in jobs[:50]]})


# --- words ---

_SECTION_NAMES: dict[str, tuple[str, str]] = {
    "cabinet": ("鍵保管庫", "Key cabinet"),
    "door": ("制限区域の扉", "Restricted door"),
    "offline": ("端末の接続", "Station link"),
    "alert": ("未確認のアラート", "Open alert"),
    "printer": ("印刷待ちのジョブ", "Held print jobs"),
    "shredding": ("シュレッダー", "Shredding"),
    "last_user": ("本日最後の鍵の使用者", "Last key user of the day"),
}
_ENDINGS: dict[str, tuple[str, str]] = {
    "tap": ("バッジで終了", "ended by a badge"),
    "stop_button": ("停止ボタンで終了", "stop button"),
    "max_length": ("上限時間で停止", "stopped at the maximum length"),
    "bin_opened": ("くず箱を開けて停止", "stopped: bin opened"),
    "station_restarted": ("端末の再起動で中断", "cut short by a restart"),
    "running": ("終了の記録なし", "no end recorded"),
}


def section_name(section: str, lang: str = "ja") -> str:
    return _SECTION_NAMES.get(section, (section, section))[0 if lang == "ja" else 1]


def _local(value: Any, zone: str) -> str:
    # Every time in the one format the pages show (hub.timetext).
    return time_text(value, zone) or "?"


def describe(item: Item, lang: str, zone: str, *, station: bool = True) -> str:
    """The item as one sentence in ``lang`` ("ja" or "en"); times in ``zone``. ``station``
    False leaves out the leading station name (for tables that show it in a column)."""
    text = _describe(item, lang, zone)
    name = item.station_name or item.station
    if not station and name and item.section != "alert" and text.startswith(f"{name}: "):
        return text[len(name) + 2:]
    return text


def _describe(item: Item, lang: str, zone: str) -> str:
    ja = lang == "ja"
    f = item.facts
    name = item.station_name or item.station or ""
    if item.section in ("cabinet", "door"):
        if f.get("door") == "open":
            text = f"扉が開いています（{_local(f.get('since'), zone)}から）" if ja else \
                f"door open (since {_local(f.get('since'), zone)})"
        elif f.get("door") == "unknown":
            text = "扉の状態が不明です" if ja else "door state unknown"
        else:
            text = "閉" if ja else "closed"
        if f.get("locked") is False:
            text += "、施錠されていません" if ja else ", not locked"
        elif f.get("door") == "closed":
            text = "閉・施錠" if ja else "closed and locked"
        return f"{name}: {text}"
    if item.section == "offline":
        if f.get("state") == "offline":
            return (f"{name}: オフライン（{_local(f.get('since'), zone)}から）" if ja
                    else f"{name}: offline since {_local(f.get('since'), zone)}")
        return f"{name}: 応答が一度もありません" if ja else f"{name}: never heard from"
    if item.section == "alert":
        raw = f.get("params")
        params = raw if isinstance(raw, dict) else {}
        return alert_text(f.get("rule") or "", params, "ja" if ja else "en")
    if item.section == "printer":
        held = f.get("held") or 0
        if not held:
            return f"{name}: 印刷待ちのジョブなし" if ja else f"{name}: no jobs held"
        oldest = f.get("oldest_s")
        minutes = f"{int(oldest // 60)}" if isinstance(oldest, (int, float)) else "?"
        jobs = "; ".join(f"{j.get('user') or '?'} 「{j.get('title') or ''}」 {j.get('pages') or '?'}"
                         + ("枚" if ja else "p") for j in f.get("jobs") or [])
        text = (f"{name}: 印刷待ちのジョブ{held}件（最も古いもの{minutes}分前）" if ja
                else f"{name}: {held} job(s) still held (oldest {minutes} min)")
        return text + (f": {jobs}" if jobs else "")
    if item.section == "shredding":
        if f.get("none"):
            return f"{name}: 本日の利用なし" if ja else f"{name}: no sessions today"
        who = "・".join(f.get("who") or []) if ja else " and ".join(f.get("who") or [])
        span = f"{_local(f.get('started_at'), zone)}〜{_local(f.get('ended_at'), zone) if f.get('ended_at') else ''}"
        ending = _ENDINGS.get(f.get("ended_by") or "", (f.get("ended_by") or "", f.get("ended_by") or ""))
        flags = []
        if f.get("not_on_roster"):
            flags.append("2人とも当番外" if ja else "neither on the roster")
        if f.get("after_hours"):
            flags.append("時間外" if ja else "after hours")
        tail = (("、要確認: " + "・".join(flags)) if ja else ("; to check: " + ", ".join(flags))) if flags else ""
        return (f"{name}: {span} {who}（{ending[0]}{tail}）" if ja
                else f"{name}: {span} {who} ({ending[1]}{tail})")
    if item.section == "last_user":
        if not f.get("person"):
            return f"{name}: 本日の鍵の使用なし" if ja else f"{name}: no key use today"
        closed = _local(f.get("closed_at"), zone) if f.get("closed_at") else "?"
        return (f"{name}: {f.get('who')}（{closed}に閉）" if ja
                else f"{name}: {f.get('who')} (closed at {closed})")
    return f"{name}: {json.dumps(f, ensure_ascii=False)}"


def message(c: Closeout) -> tuple[str, str]:
    """The title and body sent to supervisors: Japanese first, English second."""
    n = len(c.problems)
    title = (f"[kagiban] 終業点検 {c.site_name} {c.day.isoformat()}: "
             + (f"要確認{n}件" if n else "異常なし")
             + f" / Close-out {c.site_name} {c.day.isoformat()}: "
             + (f"{n} to check" if n else "all in order"))
    lines: list[str] = []
    for lang, heads in (("ja", ("■ 要確認", "■ 問題なし・記録")), ("en", ("■ To check", "■ In order / for the record"))):
        for head, ok in zip(heads, (False, True)):
            part = [i for i in c.items if i.ok is ok]
            if not part:
                continue
            lines.append(head)
            lines += [f"・[{section_name(i.section, lang)}] {describe(i, lang, c.zone)}" for i in part]
        lines.append("")
    lines.append(f"拠点 / Site: {c.site_name} ({c.site})")
    if c.checkpoint:
        lines += ["", "■ 監査チェックポイント（署名付き。kagiban verify --checkpoints で照合できます）",
                  "■ Audit checkpoint (signed; kagiban verify --checkpoints checks the store against it)",
                  c.checkpoint]
    return title, "\n".join(lines).rstrip() + "\n"


# --- storage ---

def _from_row(row: Any) -> Closeout:
    body = _json_object(row.items)
    items = []
    listed = body.get("items")
    for i in listed if isinstance(listed, list) else []:
        try:
            items.append(Item(**i))
        except TypeError:  # a stored line that is not an item: left out, the rest is shown
            _LOG.warning("close-out %s: an unreadable item is left out", row.id)
    return Closeout(
        site=row.site, site_name=body.get("site_name") or row.site, day=row.day, zone=body.get("zone") or "UTC",
        generated_at=parse_time(row.generated_at) or now_utc(),
        items=items, id=row.id, deliveries=_json_object(row.deliveries or "{}"),
        checkpoint=body.get("checkpoint") if isinstance(body.get("checkpoint"), str) else None,
    )


def _json_object(text: str) -> dict[str, Any]:
    """A stored JSON object; {} for text that is not one."""
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def stored(engine: Engine, site: str, day: date) -> Closeout | None:
    """The close-out stored for ``site`` and ``day``, if one was made."""
    with engine.connect() as conn:
        row = conn.execute(select(closeouts).where(closeouts.c.site == site, closeouts.c.day == day)).first()
    return _from_row(row) if row is not None else None


def store(engine: Engine, c: Closeout) -> int | None:
    """Store a close-out; its id, or None if one for that site and day is already stored."""
    body = {"site_name": c.site_name, "zone": c.zone, "items": [asdict(i) for i in c.items]}
    if c.checkpoint:
        body["checkpoint"] = c.checkpoint
    try:
        with begin_write(engine) as conn:
            c.id = inserted_id(conn.execute(insert(closeouts).values(
                site=c.site, day=c.day, generated_at=utc_text(c.generated_at), problems=len(c.problems),
                items=json.dumps(body, ensure_ascii=False, default=str),
                deliveries=json.dumps(c.deliveries, ensure_ascii=False))))
    except IntegrityError:
        return None
    return c.id


def record_delivery(engine: Engine, closeout_id: int, label: str, state: str, attempts: int, error: str) -> None:
    """Note how sending a stored close-out to one supervisor target went."""
    with begin_write(engine) as conn:
        raw = conn.execute(select(closeouts.c.deliveries).where(closeouts.c.id == closeout_id)).scalar()
        if raw is None:
            return
        deliveries = json.loads(raw or "{}")
        deliveries[label] = {"state": state, "attempts": attempts, "error": error or None,
                             "at": utc_text(now_utc())}
        conn.execute(update(closeouts).where(closeouts.c.id == closeout_id)
                     .values(deliveries=json.dumps(deliveries, ensure_ascii=False)))


# --- exports ---

COLUMNS = ("status", "section", "station", "details")
HEADERS: dict[str, Msg] = {"status": N_("Status"), "section": N_("What"), "station": N_("Station"),
                           "details": N_("Details")}
STATUSES: dict[str, Msg] = {"problem": N_("To check"), "ok": N_("In order")}
SHEET = N_("Close-out")
LABELS_EN = export_labels(HEADERS, STATUSES, SHEET)


def labels(lang: str) -> Labels:
    """The close-out's export words in ``lang`` ("ja" or "en")."""
    return export_labels(HEADERS, STATUSES, SHEET, lang)


def _cells(c: Closeout, item: Item, labels: Labels, lang: str) -> list[Any]:
    return [labels.entries.get("ok" if item.ok else "problem"), section_name(item.section, lang),
            item.station_name or item.station or "", describe(item, lang, c.zone, station=False)]


def to_csv(c: Closeout, labels: Labels = LABELS_EN, lang: str = "en") -> bytes:
    """The close-out as CSV (UTF-8 with a byte-order mark), problems first."""
    return table_csv([labels.headers[k] for k in COLUMNS], (_cells(c, i, labels, lang) for i in c.items))


def to_xlsx(c: Closeout, labels: Labels = LABELS_EN, lang: str = "en", *, title: str = "") -> bytes:
    """The close-out as an Excel workbook; problems are highlighted."""
    return table_xlsx([labels.headers[k] for k in COLUMNS],
                      ((_cells(c, i, labels, lang), not i.ok) for i in c.items), sheet=labels.sheet, title=title)


# --- the daily run ---

class CloseoutScheduler:
    """Builds, stores and sends each configured site's close-out once a day at its time."""

    def __init__(self, engine: Engine, cfg: HubConfig, notifier: Any = None, *,
                 clock: Callable[[], datetime] = now_utc, poll_s: float = POLL_S,
                 checkpoint: Callable[[], str | None] | None = None):
        self.engine = engine
        # Makes a signed audit checkpoint for each close-out (its JSON line), if given.
        self.checkpoint = checkpoint
        self.cfg = cfg
        self.notifier = notifier
        self.clock = clock
        self.poll_s = poll_s
        self._jobs: Periodic | None = None
        self.made = 0  # close-outs built by this run, for figures

    def sites(self) -> list[str]:
        """The sites with a close-out time."""
        return [s for s, section in self.cfg.sites.items() if section.closeout is not None]

    def start(self) -> CloseoutScheduler:
        if self.sites():
            # A failed run is logged and tried again at the next look; it never ends the thread.
            self._jobs = Periodic([("close-out", self.poll_s, self.run_due)], thread_name="kagiban-closeout").start()
            _LOG.info("close-out at %s", ", ".join(
                f"{s} {section.closeout.at:%H:%M}" for s, section in self.cfg.sites.items()
                if section.closeout is not None))
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._jobs is not None:
            self._jobs.stop(timeout)
            self._jobs = None

    def run_due(self, now: datetime | None = None) -> list[Closeout]:
        """Build, store and send every close-out whose time has come today and that is not
        stored yet; the ones made."""
        now = now or self.clock()
        made = []
        for site in self.sites():
            local = now.astimezone(self.cfg.site_zone(site))
            closeout = self.cfg.sites[site].closeout
            if closeout is None:  # sites() lists only the sites with one
                continue
            if local.time().replace(tzinfo=None) < closeout.at or stored(self.engine, site, local.date()) is not None:
                continue
            c = self.run(site, local.date(), now)
            if c is not None:
                made.append(c)
        return made

    def run(self, site: str, day: date, now: datetime | None = None) -> Closeout | None:
        """Build, store and send one close-out; None if one was already stored for the day."""
        c = build(self.engine, self.cfg, site, day, now=now)
        if self.checkpoint is not None and stored(self.engine, site, day) is None:
            try:
                c.checkpoint = self.checkpoint()
            except Exception:
                # The close-out still goes out; the periodic checkpoints go on.
                _LOG.exception("no checkpoint for the close-out of %s %s", site, day)
        closeout_id = store(self.engine, c)
        if closeout_id is None:
            return None
        self.made += 1
        _LOG.info("close-out %s %s: %d item(s), %d to check", site, day, len(c.items), len(c.problems))
        if self.notifier is not None:
            title, body = message(c)

            def result(label: str, state: str, attempts: int, error: str) -> None:
                record_delivery(self.engine, closeout_id, label, state, attempts, error)

            # Pending first: a quick answer from a target must not be overwritten by it.
            for label in self.notifier.labels(site):
                record_delivery(self.engine, closeout_id, label, "pending", 0, "")
            self.notifier.send_message(site, title, body, severity="warning" if c.problems else "info",
                                       on_result=result)
        return c


def sites_known(engine: Engine, cfg: HubConfig) -> list[str]:
    """Every site the hub knows: configured, listed with a station, or heard from."""
    with engine.connect() as conn:
        heard = set(conn.execute(select(stations.c.site).distinct()).scalars())
    return sorted(set(cfg.sites) | {e.site for e in cfg.stations or []} | heard)
