"""What an alert says, in Japanese and English: rule and severity names and each rule's sentence,
made from the alert's stored params (so a page can say it in either language at any time).

Shared by the alerts themselves, the notifier and every page or report that shows an alert.
The English texts here are the source; the hub's catalogue (hub.catalog, the web page's .po
files) says them in Japanese, in any thread, with or without a web request.
"""
from __future__ import annotations

from typing import Any
from collections.abc import Iterator, Mapping

from hub.catalog import N_, NP_, Msg, translate
from hub.timetext import time_text

# Rule names, for the notifications' titles.
RULES: dict[str, Msg] = {
    "forced": N_("Door forced open"),
    "intrusion": N_("Entry without a badge"),
    "shred_flagged": N_("Shredding to check"),
    "held_open": N_("Door held open"),
    "denied": N_("Badge refused"),
    "after_hours": N_("Use after hours"),
    "flagged_use": N_("Use by a non-designated person"),
    "offline": N_("Station offline"),
    "online": N_("Station back online"),
    "seq_gap": N_("Events missing from a station"),
    "outbox_filling": N_("Station cannot deliver its events"),
    "storage_failed": N_("Station cannot record"),
    "storage_corrupt": N_("Station storage damaged"),
    "policy_rejected": N_("Policy refused"),
    "policy_stale": N_("Station holds an old policy"),
    "policy_expired": N_("Station policy expired"),
    "tray_uncollected": N_("Printouts left in the tray"),
    "print_expired": N_("Held print jobs expired"),
    "cups_down": N_("Print server unreachable"),
    "cups_up": N_("Print server reachable again"),
    "pins_failed": N_("GPIO pins not working"),
    "pins_ok": N_("GPIO pins working again"),
    "reader_failed": N_("Badge reader not working"),
    "reader_ok": N_("Badge reader working again"),
    "camera_failed": N_("Camera not working"),
    "camera_ok": N_("Camera working again"),
    "clock_skew": N_("Station clock off"),
    "clock_unsynced": N_("Station clock not synchronised"),
    "bad_signature": N_("Event with a bad signature"),
    "signin_failures": N_("Repeated failed web sign-ins"),
}
SEVERITIES: dict[str, Msg] = {
    "info": N_("Information"),
    "warning": N_("Warning"),
    "critical": N_("Critical"),
}
# What an event is called inside a sentence ({what}), by kind (kagiban.events lists every kind).
KIND_NAMES: dict[str, Msg] = {
    "badge.granted": N_("badge unlock"),
    "door.forced": N_("forced door"),
    "door.intrusion": N_("intrusion"),
    "door.opened": N_("door opening"),
    "key.used": N_("key use"),
}
_REASONS: dict[str, Msg] = {
    "unknown": N_("unknown badge"),
    # Why the registry's policy denies a badge (hub.registry.compile).
    "revoked": N_("badge revoked or lost"),
    "inactive": N_("person no longer active"),
    "badge_expired": N_("badge expired"),
    "not_yet_valid": N_("not yet valid"),
    "untrained": N_("training not taken"),
    "training_expired": N_("training expired"),
    "unconfirmed_procedure": N_("current procedure not read and confirmed"),
    "not_designated": N_("not designated"),
    "outside_hours": N_("outside hours"),
    "no_policy": N_("no policy received yet"),
    "expired": N_("validity ended"),  # a badge entry's default expiry_reason (kagiban.protocol)
    "policy_expired": N_("the station's policy has expired"),
    # Why the registry's policy allows a badge (hub.registry.compile.ALLOW_REASONS).
    "designated_holder": N_("designated holder"),
    "stand_in": N_("designated stand-in"),
    "allowed": N_("trained"),
    # Why a station refused a policy (kagiban.signing, device.policy_cache).
    "unsigned": N_("not signed"),
    "unknown_key": N_("signed with an unknown key"),
    "bad_signature": N_("signature does not match"),
    "retired_key": N_("signed with a retired key"),
    "bad_schema": N_("malformed"),
    "wrong_station": N_("meant for another station"),
    "older_version": N_("older than the one held"),
    # A policy signed with the hub's key, yet out of bounds (hub.alerting.rules._BOUND_REASONS).
    "version_ahead": N_("version too far ahead"),
    "issued_in_future": N_("issued in the future"),
    "issued_too_old": N_("issued too long ago"),
    "replayed": N_("an old policy sent again"),
}
# What is wrong with a peripheral (kagiban.protocol.PeripheralHealth.error), and its state.
PERIPHERAL_ERRORS: dict[str, Msg] = {
    "not_found": N_("not found"),
    "unplugged": N_("unplugged"),
    "read_failed": N_("read error"),
    "open_failed": N_("cannot be opened"),
    "open_timeout": N_("does not answer when opened"),
    "capture_failed": N_("capture error"),
    "capture_timeout": N_("capture does not answer"),
    "gpio_unavailable": N_("GPIO cannot be opened"),
    "pin_failed": N_("a pin cannot be used"),
    "cups_down": N_("not answering"),
}
_PERIPHERAL_STATES: dict[str, Msg] = {
    "failed": NP_("peripheral", "failed"),
    "absent": NP_("peripheral", "absent"),
    "ok": NP_("peripheral", "ok"),
}
# Why a shredding session is flagged (hub.ledgers.shredding).
_SHRED_FLAGS: dict[str, Msg] = {
    "not_on_roster": N_("neither on the day's roster"),
    "after_hours": N_("after hours"),
}
_TEMPLATES: dict[str, Msg] = {
    "intrusion": N_("Door {station_name} opened without a badge at {time}."),
    "shred_flagged": N_("Shredding at {station_name} to check: {who} ({flags}) at {time}."),
    "forced": N_("Door forced open at {station_name} at {time}."),
    "held_open": N_("Door held open at {station_name} for {open_s} s (limit {limit_s} s) at {time}."),
    "denied": N_("Badge {badge} denied at {station_name} (reason: {reason}) at {time}."),
    "after_hours": N_("After-hours {what} at {station_name} by {who} at {time}."),
    "flagged_use": N_("Non-designated use of {station_name} by {who} at {time}."),
    "offline.last_will": N_("{station_name} went offline (connection lost) at {time}."),
    "offline.no_heartbeat": N_("{station_name} went offline: nothing heard for {silent_s} s since "
                               "{time}."),
    "online": N_("{station_name} is back online at {time}."),
    "seq_gap": N_("{station_name}: events {missing_from}-{missing_to} did not arrive within "
                  "{grace_s} s."),
    "storage_failed": N_("{station_name} cannot store its records ({unrecorded} unsaved, {error}); "
                         "it unlocks nothing until it can ({time})."),
    # A damaged store moved aside at start (hub.alerting.rules._storage_corrupt): what may be missing.
    "storage_corrupt.outbox": N_("{station_name} found its outbox damaged ({error}), kept it as "
                                 "{kept} and records in a fresh one from {time}: events after seq "
                                 "{last_stored} of the previous storage may be lost."),
    "storage_corrupt.outbox_range": N_("{station_name} found its outbox damaged ({error}), kept it "
                                       "as {kept} and records in a fresh one from {time}: events "
                                       "after seq {last_stored} of the previous storage may be "
                                       "lost (seq {lost_from}-{lost_to} never reached the hub)."),
    "storage_corrupt.outbox_nothing": N_("{station_name} found its outbox damaged ({error}), kept "
                                         "it as {kept} and records in a fresh one from {time}: no "
                                         "event of the previous storage reached the hub; all of "
                                         "them may be lost."),
    "storage_corrupt.policy": N_("{station_name} could not use its stored policy ({error}), kept "
                                 "it as {kept} at {time}; it refuses every badge until the hub's "
                                 "policy reaches it."),
    "outbox_filling": N_("{station_name}: {depth} of {capacity} outbox places hold unsent events "
                         "at {time}."),
    "policy_rejected": N_("{station_name} refused policy version {offered_version} (reason: "
                          "{reason}; holding version {held_version}) at {time}."),
    "policy_stale": N_("{station_name} still holds policy version {held_version}: the latest, "
                       "version {latest_version}, has not reached it for {grace_s} s (since "
                       "{time})."),
    "policy_expired": N_("The policy of {station_name} (version {held_version}) has expired "
                         "({time}): until the hub's policy reaches it, every decision there is "
                         "flagged (or denied, as configured)."),
    "tray_uncollected": N_("Printouts have been lying in the tray of {station_name} for {minutes} "
                           "min ({time})."),
    "print_expired": N_("{count} held print job(s) at {station_name} were cancelled unprinted "
                        "after {limit_min} min ({time})."),
    "cups_down": N_("{station_name} cannot reach its print server (CUPS); jobs stay held ({time})."),
    "cups_up": N_("{station_name} reaches its print server (CUPS) again ({time})."),
    "pins_failed": N_("The GPIO pins of {station_name} (door switch, lock) do not work ({problem}) "
                      "since {time}: the door is not watched and nothing is unlocked."),
    "pins_ok": N_("The GPIO pins of {station_name} work again ({time})."),
    "reader_failed": N_("The badge reader of {station_name} does not work ({problem}) since "
                        "{time}: no badge can be read; the door is still watched."),
    "reader_ok": N_("The badge reader of {station_name} works again ({time})."),
    "camera_failed": N_("The camera of {station_name} does not work ({problem}) since {time}: "
                        "events are recorded without photos."),
    "camera_ok": N_("The camera of {station_name} works again ({time})."),
    # The station's clock against the hub's receive time (hub.alerting.rules._clock).
    "clock_skew.ahead": N_("The clock of {station_name} is {offset_abs_s} s ahead (limit {limit_s} "
                           "s) at {time}: the times of its records are not right."),
    "clock_skew.behind": N_("The clock of {station_name} is {offset_abs_s} s behind (limit "
                            "{limit_s} s) at {time}: the times of its records are not right."),
    "clock_unsynced": N_("The clock of {station_name} is not synchronised ({time}); its records "
                         "are marked until it is."),
    # A signed event refused at ingest (hub.ingest.refusals); the first of each station until acknowledged.
    "bad_signature": N_("{station_name} sent an event (seq {seq}) whose signature the hub refused "
                        "({reason}) at {time}; it is quarantined, not stored. Check the unit's key "
                        "against the one registered."),
    # Guessed passwords on the web page (hub.web.throttle): per account, or per address.
    "signin_failures.account": N_("{failures} failed web sign-ins for account \"{user}\" within "
                                  "{window_min} min (the last from {address} at {time}); sign-in "
                                  "to this account is refused for a while."),
    "signin_failures.address": N_("{failures} failed web sign-ins from {address} within "
                                  "{window_min} min (the last for account \"{user}\" at {time}); "
                                  "sign-in from this address is refused for a while."),
}


_UNKNOWN_PERSON = NP_("alert", "unknown")
_NO_VERSION = NP_("policy version", "none")


class _Pairs(Mapping[str, tuple[str, str]]):
    """A table of texts read as (Japanese, English) pairs, as the notifier takes them."""

    def __init__(self, table: Mapping[str, Msg]):
        self._table = table

    def __getitem__(self, key: str) -> tuple[str, str]:
        msg = self._table[key]
        return translate("ja", msg), translate("en", msg)

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)


# (Japanese, English) names, for titles and the page.
RULE_NAMES: Mapping[str, tuple[str, str]] = _Pairs(RULES)
SEVERITY_NAMES: Mapping[str, tuple[str, str]] = _Pairs(SEVERITIES)
# The alert rules and their causes that have a sentence of their own (``rule`` or ``rule.cause``).
SENTENCES: tuple[str, ...] = tuple(_TEMPLATES)
# Every text this module words, for the catalogue's check (tests/hub/test_catalog.py).
TEXTS: dict[str, Mapping[str, Msg]] = {
    "rules": RULES, "severities": SEVERITIES, "kinds": KIND_NAMES, "reasons": _REASONS,
    "peripheral_errors": PERIPHERAL_ERRORS, "peripheral_states": _PERIPHERAL_STATES,
    "shred_flags": _SHRED_FLAGS, "sentences": _TEMPLATES,
    "words": {"unknown_person": _UNKNOWN_PERSON, "no_version": _NO_VERSION},
}


def _word(table: Mapping[str, Msg], key: str, lang: str) -> str:
    """``key`` from ``table`` in ``lang``; the key itself if the table has no text for it."""
    msg = table.get(key)
    return key if msg is None else translate(lang, msg)


class _Blank(dict):
    """Format arguments where a missing key reads as "?" rather than failing."""

    def __missing__(self, key: str) -> str:
        return "?"


def local_time_text(at_iso: str | None, zone: str | None) -> str:
    """``at_iso`` in ``zone`` (or its own offset) as every page shows a time (hub.timetext)."""
    if not at_iso:
        return "?"
    return time_text(at_iso, zone) or str(at_iso)  # a malformed stored time: as it is


def rule_name(rule: str, lang: str) -> str:
    """The rule's name in ``lang`` ("ja" or "en"), for a notification's title."""
    return _word(RULES, rule, lang)


def reason_name(reason: str, lang: str) -> str:
    """Why a badge was allowed or refused, or a policy refused (a reason code), in ``lang``."""
    return _word(_REASONS, reason, lang)


def severity_name(severity: str, lang: str) -> str:
    """The severity's name in ``lang`` ("ja" or "en")."""
    return _word(SEVERITIES, severity, lang)


def alert_text(rule: str, params: dict[str, Any], lang: str = "en") -> str:
    """The alert's sentence in ``lang`` ("ja" or "en"), from its stored params."""
    lang = "ja" if lang == "ja" else "en"
    args = _Blank(params)
    args["time"] = local_time_text(params.get("at"), params.get("zone"))
    args["station_name"] = params.get("station_name") or params.get("station") or "?"
    args["who"] = params.get("person") or params.get("badge") or translate(lang, _UNKNOWN_PERSON)
    args["what"] = _word(KIND_NAMES, params.get("kind") or "", lang)
    reason = params.get("reason") or ""
    args["reason"] = _word(_REASONS, reason, lang) if reason else "-"
    for key in ("held_version", "offered_version"):
        if key in params and params[key] is None:
            args[key] = translate(lang, _NO_VERSION)  # a station that holds no policy yet
    code = params.get("error_code")
    if "peripheral" in params:
        state = params.get("state") or ""
        state_text = translate(lang, _PERIPHERAL_STATES[state]) if state in _PERIPHERAL_STATES else "?"
        args["problem"] = _word(PERIPHERAL_ERRORS, code, lang) if code else state_text
    flags = [f for f in params.get("flags") or [] if isinstance(f, str)]
    args["flags"] = ("、" if lang == "ja" else ", ").join(_word(_SHRED_FLAGS, f, lang) for f in flags)
    template = _TEMPLATES.get(f"{rule}.{params.get('cause')}") or _TEMPLATES.get(rule)
    if template is None:
        return params.get("message") or rule
    return translate(lang, template).format_map(args)
