"""What each near-miss code says: category, severity and state names, refusals
(:class:`~hub.nearmiss.model.NearMissError`) and import problems, as English source texts
translated through the hub's catalogue (hub.catalog, the web page's .po files)."""
from __future__ import annotations

from hub.catalog import N_, NP_, Msg
from hub.registry.messages import PROBLEMS as REGISTRY_PROBLEMS

CATEGORIES: dict[str, Msg] = {
    "keys": N_("Keys"),
    "printer": NP_("near-miss", "Printer"),
    "shredder": NP_("near-miss", "Shredder"),
    "counter": N_("Counter"),
    "pc": N_("PC"),
    "mail": N_("Mail / transport"),
    "other": N_("Other"),
}

SEVERITIES: dict[str, Msg] = {
    "minor": N_("Minor"),
    "moderate": N_("Moderate"),
    "serious": N_("Serious"),
}

STATES: dict[str, Msg] = {
    "filed": N_("Filed"),
    "reviewed": N_("Reviewed"),
    "shared": N_("Shared"),
}

ANONYMOUS = N_("Anonymous")

ERRORS: dict[str, Msg] = {
    "nearmiss.missing": N_("%(field)s: fill this in."),
    "nearmiss.too_long": N_("%(field)s: at most %(n)s characters."),
    "nearmiss.bad_choice": N_("%(field)s: %(value)s is not one of the choices."),
    "nearmiss.bad_time": N_("When: %(value)s is not a date and time."),
    "nearmiss.future": N_("When: %(value)s is in the future."),
    "nearmiss.no_place": N_("Where: choose a station or write the place."),
    "nearmiss.unknown_station": N_("Where: there is no station %(value)s."),
    "nearmiss.not_found": N_("There is no near-miss case %(id)s."),
    "nearmiss.alert_not_found": N_("There is no alert %(id)s."),
    "nearmiss.wrong_state": N_("Case %(id)s is %(state)s: this step is not possible now."),
    "nearmiss.bad_month": N_("%(value)s is not a month (YYYY-MM)."),
    "nearmiss.digest_sent": N_("The digest of %(month)s was sent already."),
    "nearmiss.digest_future": N_("%(month)s has not begun: its digest cannot be sent yet."),
    "nearmiss.bad_format": N_("Format %(value)s is not csv or xlsx."),
    "nearmiss.import_rejected": N_("%(count)s problem(s), nothing imported."),
}

# What is wrong with a row of a near-miss import (ImportProblem.code): the file-level ones are
# the registry import's own (same reader).
PROBLEMS: dict[str, Msg] = {
    **REGISTRY_PROBLEMS,
    "bad_category": N_("%(value)s is not a near-miss category"),
    "bad_severity": N_("%(value)s is not a severity (minor, moderate, serious)"),
    "not_a_time": N_("%(value)s is not a date and time (YYYY-MM-DD HH:MM)"),
    "no_place": N_("neither a station nor a place"),
    "unknown_station": N_("unknown station %(value)s"),
    "bad_choice": N_("%(value)s is not yes or no"),
}
