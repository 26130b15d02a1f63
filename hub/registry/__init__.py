"""The hub's registry: people and badges, trainings (catalogue, sessions, attendance),
designations (cabinet holders and stand-ins, shredder roster, after-hours users), the change
log of all of it, import/export of attendance (CSV and Excel), and the compile of each
station's access policy.

Every write is a function ``f(engine, actor, ...)`` (``actor``: the acting user's name),
committed with its ``registry_log`` rows in one transaction; after the commit the callbacks
connected to that engine's signal (:func:`changes`) are called so the hub that owns the engine
republishes the policies at once (another hub in the same process, on its own engine, is not
disturbed)::

    from hub import registry
    publisher.use_compile(registry.policy_source(engine, cfg))
    registry.changes(engine).connect(lambda change: publisher.request_recompile())
    registry.revoke_badge(engine, "admin", "012E4CD2A5B71F03")
"""
from __future__ import annotations

from hub.registry.log import Change, LogEntry, NotFound, RegistryError, Signal, changes, history
from hub.registry.people import (
    add_badge,
    add_person,
    deactivate_person,
    find_badge,
    get_person,
    list_people,
    mark_badge_lost,
    reinstate_badge,
    revoke_badge,
    search_people,
    set_badge_dates,
    update_person,
)
from hub.registry.trainings import (
    add_session,
    add_training,
    delete_session,
    find_session,
    list_sessions,
    list_trainings,
    person_record,
    record_attendance,
    remove_attendance,
    session_roster,
    training_gaps,
    update_session,
    update_training,
)
from hub.registry.designations import (
    add_after_hours_user,
    add_stand_in,
    after_hours_list,
    all_designations,
    fill_rotation,
    get_station_settings,
    remove_after_hours_user,
    remove_designation,
    roster,
    roster_table,
    set_holder,
    set_roster,
    set_station_settings,
    station_designations,
)
from hub.registry.io import (
    ImportRejected,
    ImportReport,
    RowProblem,
    check_attendance,
    export_attendance,
    import_attendance,
)
from hub.registry.compile import (
    StationDecision,
    badge_decisions,
    compile_all,
    compile_station,
    policy_source,
    stations_to_compile,
    to_policy,
)

__all__ = [
    "Change", "LogEntry", "NotFound", "RegistryError", "Signal", "changes", "history",
    "add_badge", "add_person", "deactivate_person", "find_badge", "get_person", "list_people",
    "mark_badge_lost", "reinstate_badge", "revoke_badge", "search_people", "set_badge_dates",
    "update_person",
    "add_session", "add_training", "delete_session", "find_session", "list_sessions",
    "list_trainings", "person_record", "record_attendance", "remove_attendance", "session_roster",
    "training_gaps", "update_session", "update_training",
    "add_after_hours_user", "add_stand_in", "after_hours_list", "all_designations", "fill_rotation",
    "get_station_settings", "remove_after_hours_user", "remove_designation", "roster",
    "roster_table", "set_holder", "set_roster", "set_station_settings", "station_designations",
    "ImportRejected", "ImportReport", "RowProblem", "check_attendance", "export_attendance",
    "import_attendance",
    "compile_all", "compile_station", "policy_source", "stations_to_compile", "to_policy",
    "StationDecision", "badge_decisions",
]
