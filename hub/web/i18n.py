"""Languages of the web page: Japanese first, English second.

The message catalogs (``translations/<lang>/LC_MESSAGES/messages.po``) are the source; they
are compiled to ``.mo`` at app start into ``data_dir/i18n`` (again only when a ``.po``
changed), so a clean clone works after ``pip install -e .`` with no build step and no binary
files in git.
Source strings are English; the English catalog is empty on purpose (English falls back to
the source text). The same catalogs word the hub's codes outside the page (registry errors,
alert wording, export labels: marked with ``hub.catalog.N_``/``NP_``), and hub.catalog reads
them for code that runs without a request (the notifier, exports, the CLI).

To change texts: edit templates/views, then from the repository root::

    pybabel extract -F babel.cfg -k _l -k _lp:1c,2 -k N_ -k NP_:1c,2 --no-location --sort-output \
        -o hub/web/translations/messages.pot .
    pybabel update -i hub/web/translations/messages.pot -d hub/web/translations --ignore-obsolete

and fill in the Japanese ``msgstr`` lines (tests/hub/web/test_i18n.py finds missing ones).
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import tempfile
import threading
from pathlib import Path
from collections.abc import Mapping
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask_babel import lazy_gettext as _l
from flask_babel import lazy_pgettext as _lp

from hub.alerting import wording
from hub.catalog import Msg
from hub.ledgers import keys as key_ledger

_LOG = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).resolve().parent / "translations"
LANGUAGES = {"ja": "日本語", "en": "English"}

_lock = threading.Lock()


def compiled_dir(out: Path) -> Path:
    """``out`` holding a ``.mo`` file for each ``.po`` file, recompiled when a ``.po`` changed.

    ``out`` is in the hub's data folder (private to the hub, kept across restarts), not a
    shared temporary folder: a catalog's texts go into pages unescaped.
    """
    with _lock:
        for po in sorted(SOURCE_DIR.glob("*/LC_MESSAGES/*.po")):
            relative = po.relative_to(SOURCE_DIR)
            target = out / relative.with_suffix(".mo")
            stamp = target.with_suffix(".sha256")
            source = po.read_bytes()
            digest = hashlib.sha256(source).hexdigest()
            if target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            catalog = read_po(io.BytesIO(source), locale=relative.parts[0])
            # Written beside the target and renamed: another process never reads half a file.
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".messages-")
            with os.fdopen(fd, "wb") as f:
                # Fuzzy entries are guesses by pybabel update; they must not reach the page.
                write_mo(f, catalog, use_fuzzy=False)
            os.replace(tmp, target)
            stamp.write_text(digest + "\n")
            _LOG.info("compiled the %s message catalog into %s", relative.parts[0], target)
    return out


# --- labels the pages, the live stream and the exports share ---

EVENT_KINDS: dict[str, Any] = {
    "station.started": _l("Station started"),
    "badge.granted": _l("Badge accepted"),
    "badge.denied": _l("Badge refused"),
    "door.opened": _l("Door opened"),
    "door.closed": _l("Door closed"),
    "door.forced": _l("Door forced open"),
    "door.held_open": _l("Door held open"),
    "key.used": _l("Key used"),
    "unlock.expired": _l("Unlocked, not opened"),
    "unlock.ended": _l("Unlock taken over by another badge"),
    "key.purpose": _l("Work of a key use (purpose button)"),
    # Restricted doors and two-person shredders.
    "door.intrusion": _l("Entry without a badge"),
    "shred.waiting": _l("Shredder: waiting for a second person"),
    "shred.started": _l("Shredder switched on"),
    "shred.ended": _l("Shredder switched off"),
    "shred.refused": _l("Shredder not switched on"),
    "bin.opened": _l("Shredder bin opened"),
    "bin.closed": _l("Shredder bin closed"),
    "policy.rejected": _l("Policy refused"),
    "storage.corrupt": _l("Damaged storage replaced"),
    "storage.failed": _l("Station cannot record"),
    # Printers (pull printing).
    "print.released": _l("Print jobs released"),
    "print.release_failed": _l("Nothing released"),
    "print.printed": _l("Print jobs printed"),
    "print.expired": _l("Held print jobs expired"),
    "print.queue": _l("Print queue checked"),
    "cups.down": _l("Print server unreachable"),
    "cups.up": _l("Print server reachable again"),
    "tray.uncollected": _l("Printouts left in the tray"),
    "tray.collected": _l("Printouts collected"),
    "annunciator.silenced": _l("Annunciator silenced"),
    "rollcall.tap": _l("Roll-call tap"),
    "snapshot.failed": _l("Photo not taken"),
}

STATION_STATES: dict[str, Any] = {
    "online": _l("Online"),
    "offline": _l("Offline"),
    "stopped": _l("Stopped"),
    "unknown": _l("Unknown"),
}

# An office (site) as the central hub hears it (hub.stations.offices).
OFFICE_STATES: dict[str, Any] = {
    "fresh": _l("Reachable"),
    "stale": _l("No word (stale)"),
    "unheard": _l("Never heard"),
}

# "Open" is a door that is open, and an alert nobody has dealt with: two words in Japanese.
DOOR_STATES: dict[str, Any] = {
    "open": _lp("door", "Open"),
    "closed": _lp("door", "Closed"),
    "unknown": _l("Unknown"),
}

# How a station's policy compares with the hub's latest (hub.web.data.policy_state).
POLICY_STATES: dict[str, Any] = {
    "current": _l("Up to date"),
    "pending": _l("Updating"),
    "stale": _l("Out of date"),
    "unknown": _l("Unknown"),
    "none": _l("None published"),
}

# A station's peripherals as its heartbeat reports them (kagiban.protocol.PeripheralHealth).
PERIPHERALS: dict[str, Any] = {
    "pins": _l("GPIO pins"),
    "reader": _l("Badge reader"),
    "camera": _l("Camera"),
    "print_server": _l("Print server"),
}

PERIPHERAL_STATES: dict[str, Any] = {
    "ok": _l("Working"),
    "failed": _l("Failed"),
    "absent": _l("Not found"),
}

# Error codes of a peripheral that is not ok, and of a snapshot.failed event.
PERIPHERAL_ERRORS: dict[str, Any] = {
    "not_found": _l("not found"),
    "unplugged": _l("unplugged"),
    "read_failed": _l("read error"),
    "open_failed": _l("cannot be opened"),
    "open_timeout": _l("does not answer when opened"),
    "capture_failed": _l("capture error"),
    "capture_timeout": _l("capture does not answer"),
    "camera_absent": _l("no camera"),
    "camera_failed": _l("camera not working"),
    "camera_hung": _l("camera stuck"),
    "bad_frame": _l("unusable frame"),
    "gpio_unavailable": _l("GPIO cannot be opened"),
    "pin_failed": _l("a pin cannot be used"),
    "cups_down": _l("not answering"),
}

ALERT_STATES: dict[str, Any] = {
    "open": _lp("alert", "Open"),
    "acknowledged": _l("Acknowledged"),
    "closed": _l("Closed by the hub"),
}

STATION_KINDS: dict[str, Any] = {
    "cabinet": _l("Key cabinet"),
    "shredder": _l("Shredder"),
    "printer": _l("Printer"),
    "door": _l("Door"),
    "annunciator": _l("Annunciator"),
    "rollcall": _l("Roll-call unit"),
}


def lazy(table: Mapping[str, Msg]) -> dict[str, Any]:
    """A table of texts defined elsewhere in the hub (hub.catalog.Msg) as the page's lazy
    translations: the page says the same words as the exports and notifications."""
    return {k: (_lp(m.context, m.id) if m.context else _l(m.id)) for k, m in table.items()}


# Alert rule and severity names are defined once, with the alert wording (hub.alerting.wording):
# the page, the notifications and the exports say the same words.
ALERT_RULES: dict[str, Any] = lazy(wording.RULES)
SEVERITIES: dict[str, Any] = lazy(wording.SEVERITIES)

# The key ledger's export words (hub.ledgers.keys), on the page too.
LEDGER_ENTRIES: dict[str, Any] = lazy(key_ledger.ENTRIES)
LEDGER_HEADERS: dict[str, Any] = lazy(key_ledger.HEADERS)

# A station's decision for a badge (kagiban.protocol.PolicyEntry.decision).
DECISIONS: dict[str, Any] = {
    "allow": _lp("decision", "Allowed"),
    "allow_flag": _lp("decision", "Allowed, flagged"),
    "deny": _lp("decision", "Refused"),
}

ROLES: dict[str, Any] = {
    "admin": _l("Administrator"),
    "supervisor": _l("Supervisor"),
    "auditor": _l("Auditor"),
    "staff": _l("Staff"),
}

# Parts of a set-up that could not start (hub.config.Notice.part), named on the status page.
NOTICE_PARTS: dict[str, Any] = {
    "print_server": _l("The print server (cupsd)"),
}


# An annunciator's lamp and buzzer as its heartbeat reports them (kagiban.protocol.SignalState).
SIGNAL_STATES: dict[str, Any] = {
    "off": _l("Lamp off"),
    "lit": _l("Lit, buzzer silenced"),
    "sounding": _l("Sounding"),
    "unknown": _l("Not reported yet"),
}


def label(table: dict[str, Any], key: str | None) -> str:
    """The label of ``key`` in the current language, or the key itself if it has none."""
    if key is None:
        return ""
    found = table.get(key)
    return str(found) if found is not None else key
