"""The monthly digest of shared near-miss cases, sent through the notifier's sink interface
(hub.alerting.sinks.Sink: Apprise in the hub, MemorySink in tests).

A month's digest lists the cases shared in that month (the hub's local time): category, place,
how serious, what happened, why and the countermeasure, Japanese first, English second, never
the reporter's name (the digest goes to everyone). It is recorded in ``nearmiss_digests`` and
the near-miss log before it is sent, so it goes out once; the scheduler sends the month before
on the first of the month from ``SEND_AT``, like the monthly report. A supervisor may send a
month's digest by hand from the near-miss page (``send(..., by=user)``), recorded the same way;
sending a month again takes ``force`` and is logged as such, with who did it.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time

from sqlalchemy import Engine, insert, select, update

from hub.alerting.sinks import Attachment, Sink
from hub.audit.jobs import Periodic
from hub.catalog import translate
from hub.config import HubConfig
from hub.ledgers.base import day_bounds
from hub.nearmiss import trail
from hub.nearmiss.messages import CATEGORIES, SEVERITIES
from hub.nearmiss.model import Case, NearMissError
from hub.nearmiss.service import list_cases
from hub.stations.directory import display_name
from hub.store.db import begin_write
from hub.store.schema import nearmiss_digests
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

SEND_AT = time(6, 30)
POLL_S = 60.0


def month_bounds(month: str, cfg: HubConfig) -> tuple[str, str]:
    """The UTC text bounds [first instant, first instant of the next month) of ``month`` (YYYY-MM)."""
    try:
        y, m = int(month[:4]), int(month[5:7])
        first = date(y, m, 1)
        if len(month) != 7 or month[4] != "-":
            raise ValueError(month)
    except ValueError:
        raise NearMissError("nearmiss.bad_month", {"value": month}) from None
    nxt = date(y + (m == 12), m % 12 + 1, 1)
    return utc_text(day_bounds(first, cfg.zone())[0]), utc_text(day_bounds(nxt, cfg.zone())[0])


def previous_month(day: date) -> str:
    return f"{day.year - (day.month == 1):04d}-{(day.month - 2) % 12 + 1:02d}"


@dataclass(frozen=True)
class Digest:
    """A month's digest as sent: title, text and the case ids in it."""

    month: str
    title: str
    body: str
    case_ids: tuple[int, ...]
    refused: tuple[str, ...] = ()  # what each sink that did not accept it said
    again: bool = False  # sent before, sent again (forced)


def _place(cfg: HubConfig, case: Case) -> str:
    return display_name(cfg, case.station) if case.station else case.place


def _block(cfg: HubConfig, lang: str, case: Case) -> list[str]:
    label = {"ja": ("内容", "原因", "対策"), "en": ("What", "Why", "Countermeasure")}[lang]
    head = f"#{case.id} {translate(lang, CATEGORIES[case.category])} · {_place(cfg, case)} · " \
           f"{translate(lang, SEVERITIES[case.severity])}"
    return [head, f"  {label[0]}: {case.what}", f"  {label[1]}: {case.why}",
            f"  {label[2]}: {case.countermeasure or ''}"]


def compose(engine: Engine, cfg: HubConfig, month: str) -> Digest:
    """The digest of the cases shared in ``month`` (YYYY-MM), oldest share first."""
    lo, hi = month_bounds(month, cfg)
    cases = sorted(list_cases(engine, state="shared", shared_since=lo, shared_before=hi),
                   key=lambda c: (c.shared_at or "", c.id))
    title = f"ヒヤリハット共有 {month}（{len(cases)}件） / Near-miss digest {month} ({len(cases)})"
    lines = [f"{month} に共有されたヒヤリハット: {len(cases)} 件"]
    for case in cases:
        lines += _block(cfg, "ja", case)
    lines += ["", f"Near-misses shared in {month}: {len(cases)}"]
    for case in cases:
        lines += _block(cfg, "en", case)
    return Digest(month, title, "\n".join(lines) + "\n", tuple(c.id for c in cases))


def sent_months(engine: Engine) -> dict[str, str]:
    """Month -> when its digest was sent."""
    with engine.connect() as conn:
        return {r.month: r.sent_at for r in conn.execute(select(nearmiss_digests))}


def send(engine: Engine, cfg: HubConfig, month: str, sinks: Sequence[Sink], *,
         now: datetime | None = None, by: str | None = None, force: bool = False) -> Digest:
    """Record and send ``month``'s digest to every sink once (NearMissError if it was sent
    already, unless ``force``: then it is sent again and the record says when, by whom and
    with which cases). ``by``: the user who sent it by hand (None: the scheduler). A month not
    begun yet is refused. A sink that refuses is logged and named in the result's ``refused``;
    the digest stays recorded (the notifier's own retries are the sink's business)."""
    now = now or now_utc()
    lo, _hi = month_bounds(month, cfg)
    if lo > utc_text(now):
        raise NearMissError("nearmiss.digest_future", {"month": month})
    digest = compose(engine, cfg, month)
    row = {"month": month, "sent_at": utc_text(now), "cases": json.dumps(list(digest.case_ids))}
    with begin_write(engine) as conn:
        sent_before = conn.execute(select(nearmiss_digests.c.month)
                                   .where(nearmiss_digests.c.month == month)).first() is not None
        if sent_before and not force:
            raise NearMissError("nearmiss.digest_sent", {"month": month})
        if sent_before:
            # The log keeps the first sending; the row (and verify) holds the latest.
            conn.execute(update(nearmiss_digests).where(nearmiss_digests.c.month == month)
                         .values(sent_at=row["sent_at"], cases=row["cases"]))
        else:
            conn.execute(insert(nearmiss_digests).values(**row))
        trail.record_digest(conn, row, by=by, again=sent_before)
    refused = []
    for sink in sinks:
        ok, error = sink.send(digest.title, digest.body, "info")
        if not ok:
            refused.append(error)
            _LOG.warning("near-miss digest %s not accepted by a sink: %s", month, error)
    _LOG.info("near-miss digest %s sent%s with %d case(s) to %d sink(s)%s", month, " again" if sent_before else "",
              len(digest.case_ids), len(sinks), f" by {by}" if by else "")
    return replace(digest, refused=tuple(refused), again=sent_before)


class NotifierSinks:
    """The hub's notifier as one sink: a message goes to every site's supervisor targets."""

    def __init__(self, notifier, cfg: HubConfig):
        self.notifier = notifier
        self.cfg = cfg

    def send(self, title: str, body: str, severity: str,
             attachments: Sequence[Attachment] = ()) -> tuple[bool, str]:
        labels = [label for site, section in self.cfg.sites.items() if section.supervisors
                  for label in self.notifier.send_message(site, title, body, severity=severity,
                                                          attachments=attachments)]
        return (True, "") if labels else (False, "no supervisor targets configured")


class DigestScheduler:
    """Sends the month before's digest on the first of the month, from SEND_AT (local time)."""

    def __init__(self, engine: Engine, cfg: HubConfig, sinks: Sequence[Sink], *,
                 clock: Callable[[], datetime] = now_utc, poll_s: float = POLL_S):
        self.engine = engine
        self.cfg = cfg
        self.sinks = list(sinks)
        self.clock = clock
        self.poll_s = poll_s
        self._jobs: Periodic | None = None

    def start(self) -> DigestScheduler:
        if self.sinks:
            self._jobs = Periodic([("near-miss digest", self.poll_s, self.run_due)],
                                  thread_name="kagiban-nearmiss-digest").start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._jobs is not None:
            self._jobs.stop(timeout)
            self._jobs = None

    def run_due(self, now: datetime | None = None) -> Digest | None:
        """Send the month before's digest if it is due now and not sent yet."""
        now = now or self.clock()
        local = now.astimezone(self.cfg.zone())
        if local.day != 1 or local.time().replace(tzinfo=None) < SEND_AT:
            return None
        month = previous_month(local.date())
        if month in sent_months(self.engine):
            return None
        return send(self.engine, self.cfg, month, self.sinks, now=now)
