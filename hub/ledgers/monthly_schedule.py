"""Sends each site's monthly self-inspection report (hub.ledgers.monthly) to its supervisors on
the first of the month, through the notifier (hub.alerting.notify ``send_message``), like the
daily close-out (hub.ledgers.closeout.CloseoutScheduler).

The message carries the report's main figures in Japanese and English, the report itself as
PDF (Japanese and English, attached for the targets that take files: e-mail and most chat
services through Apprise) and the path of its page on the hub (``/monthly?site=&month=``), from
which the PDF and the Excel workbook can be downloaded again. A PDF that cannot be made is left
out, and the text says so: the figures still go out. What was sent is noted in
``monthly-sent.json`` in the hub's data folder, so a restart on the first does not send it
twice; a first of the month the hub was down for entirely is not made up afterwards.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from hub.audit.jobs import Periodic
from hub.alerting.sinks import Attachment
from hub.config import HubConfig
from hub.ledgers import monthly, monthly_render
from hub.ledgers.monthly_render import word
from hub.store.timestamps import now_utc, utc_text

_LOG = logging.getLogger(__name__)

SEND_AT = time(6, 0)  # local time on the first: late events of the month's last night are in by then
POLL_S = 60.0
SENT_FILE = "monthly-sent.json"


def page_path(site: str, month: str) -> str:
    return f"/monthly?site={site}&month={month}"


def attachments(report: monthly.MonthlyReport) -> tuple[Attachment, ...]:
    """The report as PDF in Japanese, then English; none if the PDF cannot be made (logged)."""
    out = []
    for lang in ("ja", "en"):
        try:
            body = monthly_render.pdf(report, lang)
        except Exception:  # the figures still go out in the text; the page has the downloads
            _LOG.exception("the monthly report %s %s could not be made as PDF (%s)", report.site, report.month, lang)
            return ()
        out.append(Attachment(f"monthly-report_{report.site}_{report.month}_{lang}.pdf", body, "application/pdf"))
    return tuple(out)


def message(report: monthly.MonthlyReport, attached: bool = True) -> tuple[str, str]:
    """The title and text sent to supervisors: Japanese first, English second."""
    k, s, p, a = report.keys, report.shredding, report.printing, report.alerts
    title = (f"[kagiban] {word('title', 'ja')} {report.site_name} {report.month}"
             f" / {word('title', 'en')} {report.site_name} {report.month}")
    lines: list[str] = []
    for lang in ("ja", "en"):
        w = lambda key, lang=lang: word(key, lang)  # noqa: E731
        lines += [
            f"■ {w('keys')}: {w('holder')} {k.holder} / {w('stand_in')} {k.stand_in} / {w('other')} {k.other}",
            f"  {w('after_hours')} {k.after_hours} / {w('forced')} {k.forced} / {w('held_open')} {k.held_open}",
            f"■ {w('shredding')}: {w('sessions')} {s.sessions} / {w('flagged')} {s.flagged}",
            f"■ {w('printing')}: {w('released_jobs')} {p.released_jobs} / {w('expired')} {p.expired}"
            f" / {w('uncollected')} {p.uncollected}",
            f"■ {w('training')}: {w('trained')} {report.training.trained}/{report.training.people}"
            f" / {w('expiring')} {len(report.training.expiring_next_month)}",
            f"■ {w('alerts')}: {w('raised')} {a.raised} / {w('open_count')} {a.open_count}",
            f"■ {w('verification')}: {w('verified_ok') if report.verification.ok else w('verified_bad')}",
            "",
        ]
    if not attached:
        lines.append(f"{word('pdf_missing', 'ja')} / {word('pdf_missing', 'en')}")
    lines.append(f"PDF / Excel: {page_path(report.site, report.month)}")
    return title, "\n".join(lines) + "\n"


class MonthlyScheduler:
    """Builds and sends each site's report of the month before, once, on the first."""

    def __init__(self, engine: Engine, cfg: HubConfig, notifier: Any, *,
                 clock: Callable[[], datetime] = now_utc, poll_s: float = POLL_S):
        self.engine = engine
        self.cfg = cfg
        self.notifier = notifier
        self.clock = clock
        self.poll_s = poll_s
        self._jobs: Periodic | None = None

    @property
    def sent_file(self) -> Path:
        return Path(self.cfg.data_dir) / SENT_FILE

    def sites(self) -> list[str]:
        """The sites with supervisors to send to."""
        return [s for s, section in self.cfg.sites.items() if section.supervisors]

    def start(self) -> MonthlyScheduler:
        if self.notifier is not None and self.sites():
            # A failed run is logged and tried again at the next look; it never ends the thread.
            self._jobs = Periodic([("monthly report", self.poll_s, self.run_due)], thread_name="kagiban-monthly").start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._jobs is not None:
            self._jobs.stop(timeout)
            self._jobs = None

    def _sent(self) -> dict[str, str]:
        try:
            value = json.loads(self.sent_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def _mark(self, key: str) -> None:
        sent = self._sent()
        sent[key] = utc_text(now_utc())
        tmp = self.sent_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(sent, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(self.sent_file)

    def run_due(self, now: datetime | None = None) -> list[monthly.MonthlyReport]:
        """Send every report due now (the first of the month, past SEND_AT) not sent yet."""
        now = now or self.clock()
        made = []
        for site in self.sites():
            local = now.astimezone(self.cfg.site_zone(site))
            if local.day != 1 or local.time().replace(tzinfo=None) < SEND_AT:
                continue
            month = monthly.previous_month(local.date())
            key = f"{site}/{month}"
            if key in self._sent():
                continue
            report = monthly.build(self.engine, self.cfg, site, month, now=now)
            files = attachments(report)
            title, body = message(report, attached=bool(files))
            self._mark(key)  # before sending: the notifier retries; a crash must not send it twice
            self.notifier.send_message(site, title, body, severity="info" if report.verification.ok else "warning",
                                       attachments=files)
            _LOG.info("monthly report %s %s sent to the supervisors", site, month)
            made.append(report)
        return made
