"""What each roll-call code says: session kinds, check-in statuses and refusals
(:class:`~hub.rollcall.service.RollcallError`), as English source texts translated through the
hub's catalogue (hub.catalog, the web page's .po files)."""
from __future__ import annotations

from hub.catalog import N_, NP_, Msg

KINDS: dict[str, Msg] = {
    "training": NP_("roll call", "Training"),
    "meeting": N_("Morning meeting (朝礼)"),
}

STATUSES: dict[str, Msg] = {
    "present": N_("Present"),
    "late": N_("Late"),
    "absent": N_("Absent"),
    "unexpected": N_("Not expected"),
}

ERRORS: dict[str, Msg] = {
    "rollcall.bad_kind": N_("Kind: %(value)s is neither a training nor a morning meeting."),
    "rollcall.no_topic": N_("Topic: fill this in (at most %(n)s characters)."),
    "rollcall.unknown_training": N_("Training: there is no training %(value)s."),
    "rollcall.bad_start": N_("Start: %(value)s is not a date and time."),
    "rollcall.bad_window": N_("Check-in window: %(value)s is not a number of minutes from 1 to %(n)s."),
    "rollcall.no_station": N_("Where: choose at least one roll-call unit."),
    "rollcall.unknown_station": N_("Where: %(value)s is not a roll-call unit."),
    "rollcall.station_busy": N_("Where: %(station)s already has session %(id)s open."),
    "rollcall.nobody_expected": N_("Who: nobody is expected (choose a section or list staff numbers)."),
    "rollcall.bad_employment": N_("Who: %(value)s is not an employment type."),
    "rollcall.unknown_person": N_("Who: there is no staff number %(value)s."),
    "rollcall.too_many": N_("Who: at most %(n)s people."),
    "rollcall.bad_procedure": N_("Procedure version: %(value)s is not a number."),
    "rollcall.unknown_procedure": N_("Procedure version: there is no version %(value)s."),
    "rollcall.not_found": N_("There is no roll-call session %(id)s."),
    "rollcall.closed": N_("Roll-call session %(id)s is closed already."),
    "rollcall.bad_format": N_("Format %(value)s is not csv or xlsx."),
}
