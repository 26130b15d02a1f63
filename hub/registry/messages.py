"""What each registry error code says: one English source text per code, with ``%(name)s``
parameters, translated through the hub's catalogue (hub.catalog, the web page's .po files).

A :class:`~hub.registry.log.RegistryError` carries a code from :data:`ERRORS` and its
parameters; an attendance import's :class:`~hub.registry.io.RowProblem` a code from
:data:`PROBLEMS`. The web page and the CLI word them from here; nothing parses the text.
"""
from __future__ import annotations

from hub.catalog import N_, Msg

# Refusals of a registry change (RegistryError.code).
ERRORS: dict[str, Msg] = {
    # Badge ids (kagiban.badge_id.BadgeIdError, codes as it gives them).
    "badge_id_not_text": N_("A badge ID is written as text."),
    "badge_id_empty": N_("The badge ID is empty."),
    "badge_id_not_hex": N_("%(value)s is not a badge ID: %(char)s is not a hexadecimal digit (0-9, A-F)."),
    "badge_id_odd_length": N_("%(value)s is not a badge ID: %(digits)s hexadecimal digits are not whole "
                              "bytes. A card's ID has 8, 14, 16 or 20 digits."),
    "badge_id_length": N_("%(value)s is not a badge ID: no card has an ID of %(digits)s hexadecimal digits "
                          "(%(bytes)s bytes). A card's ID has 8, 14, 16 or 20 digits (ISO 14443 UID: 4, 7 "
                          "or 10 bytes; FeliCa IDm: 8 bytes)."),
    # Field checks (hub.registry.common).
    "staff_no.not_text": N_("A staff number is written as text."),
    "staff_no.invalid": N_("Staff number %(value)s: use 1 to 32 letters, digits, '_', '.' or '-'."),
    "station.invalid": N_("Station ID %(value)s must match %(pattern)s."),
    "date.missing": N_("A date is needed."),
    "date.has_time": N_("Give a date, not a date and time."),
    "date.invalid": N_("%(value)s is not a date (YYYY-MM-DD)."),
    "dates.reversed": N_("The last day %(last)s is before the first day %(first)s."),
    "text.not_text": N_("A field must be text."),
    "text.empty": N_("Fill in every required field."),
    "text.too_long": N_("A field is too long (at most %(n)s characters)."),
    "actor.missing": N_("Every registry change needs the acting user's name."),
    "actor.too_long": N_("The acting user's name has at most %(n)s characters."),
    # People and badges (hub.registry.people).
    "person.unknown_field": N_("There is no person field %(field)s."),
    "person.bad_employment": N_("%(value)s is not an employment type (%(choices)s)."),
    "person.exists": N_("Staff number %(number)s is already registered."),
    "person.not_found": N_("Nobody has staff number %(number)s."),
    "badge.taken": N_("Badge %(badge)s is already registered to %(number)s (a badge ID is never reused)."),
    "badge.not_found": N_("There is no badge %(badge)s."),
    # Trainings and sessions (hub.registry.trainings).
    "training.bad_kinds": N_("Required for: give a list of station kinds."),
    "training.unknown_kinds": N_("Unknown station kind(s) %(kinds)s; known: %(choices)s."),
    "training.bad_valid_days": N_("Valid for (days): a whole number from 1 to %(n)s, or empty for never expires."),
    "training.not_found": N_("There is no training named %(name)s."),
    "training.exists": N_("Training %(name)s already exists."),
    "training.unknown_field": N_("There is no training field %(field)s."),
    "session.not_found": N_("There is no training session %(id)s."),
    "session.exists": N_("%(name)s already has a session on %(day)s."),
    "session.unknown_field": N_("There is no training session field %(field)s."),
    "station_kind.unknown": N_("Unknown station kind %(value)s."),
    # Designations and rosters (hub.registry.designations).
    "settings.bad_choice": N_("%(value)s is not a choice for %(what)s (%(choices)s)."),
    "roster.too_long": N_("Fill at most a year at a time."),
    "roster.no_teams": N_("Write at least one team: one line per team, staff numbers separated by spaces."),
    "roster.bad_days": N_("Days must be among %(choices)s."),
    # Import and export of attendance (hub.registry.io).
    "io.bad_format": N_("Format %(value)s is not csv or xlsx."),
    "io.bad_language": N_("Language %(value)s is not ja or en."),
    "io.unreadable": N_("%(path)s cannot be read: %(detail)s"),
    "import.rejected": N_("%(count)s problem(s), nothing imported:\n%(problems)s"),
}

# What is wrong with a row of an attendance import (RowProblem.code).
PROBLEMS: dict[str, Msg] = {
    "missing": N_("missing value"),
    "not_staff_no": N_("%(value)s is not a staff number"),
    "unknown_staff_no": N_("unknown staff number %(number)s"),
    "column_twice": N_("column given twice (also column %(n)s)"),
    "column_missing": N_("column missing from the header"),
    "empty_file": N_("the file is empty: no header row"),
    "no_rows": N_("no rows under the header"),
    "outside_columns": N_("a value outside the header's columns"),
    "name_mismatch": N_("%(value)s does not match staff number %(number)s (%(name)s in the registry)"),
    "unknown_training": N_("unknown training %(name)s"),
    "unknown_badge": N_("unknown badge %(badge)s"),
    "badge_other_person": N_("badge %(badge)s belongs to staff number %(holder)s, not %(number)s"),
    "not_a_date": N_("%(value)s is not a date (YYYY-MM-DD)"),
    "future": N_("%(day)s is in the future"),
    "unknown_employment": N_("unknown employment type %(value)s (正規, 嘱託 or パート)"),
    "too_long": N_("longer than %(n)s characters"),
    "place_differs": N_("%(value)s differs from line %(line)s (%(first)s) for the same session"),
    "duplicate": N_("duplicate of line %(line)s"),
    "not_utf8": N_("not UTF-8 text: save the file as CSV UTF-8"),
    "too_many_rows": N_("more than %(n)s rows"),
    "bad_csv": N_("not readable as CSV: %(detail)s"),
    "not_xlsx": N_("not an Excel .xlsx file (%(detail)s)"),
    "no_sheet": N_("no sheet named %(name)s"),
    # Badge ids, as for a registry change.
    **{code: msg for code, msg in ERRORS.items() if code.startswith("badge_id_")},
}
