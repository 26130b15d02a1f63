"""The demo's office: a ward office's family-register section (戸籍住民課), its places, its staff and
what the registry holds about them, seeded through hub.registry as an admin would enter it.

Staff are 職員 numbers with a reading and a role, never invented personal names. Who does what in
the day (demo.day) is decided here: the holders and stand-ins of the key cabinets, the pair on
the shredder's roster, the after-hours user of the archive, and a part-time clerk who has not
yet taken the personal-data training (refused wherever she taps).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the units import this module too, and need no database
    from sqlalchemy.engine import Engine

_LOG = logging.getLogger(__name__)

SITE = "ward-a"
SITE_NAME = "A区役所 戸籍住民課"
SECTION = "戸籍住民課"
ACTOR = "demo"
TRAINING = "個人情報保護研修"
TRAINING_DAYS = 365
TRAINING_PLACE = "第1会議室"
# The kinds of station the training is required at.
KINDS = ["cabinet", "shredder", "printer", "door"]


@dataclass(frozen=True)
class Person:
    """One member of staff: staff number, role (職名), employment (hub.registry's codes), badge
    (the card's IDm) and the user name their terminal prints as (an OS account here)."""

    number: str
    role: str
    badge: str
    print_user: str
    employment: str = "regular"
    trained: bool = True
    kana: str = "ショクイン"

    @property
    def name(self) -> str:
        return f"職員{self.number}"


# The section's staff, by what they do in the day.
KACHOHOSA = Person("0008", "課長補佐", "0123456789ABCDE0", "staff0008")   # holds the card safe's keys
KAKARICHO = Person("0012", "係長", "0123456789ABCDEF", "staff0012")       # holds the office's and the archive's keys
SHUNIN = Person("0027", "主任", "1111222233334444", "staff0027")          # stand-in at the office's cabinet
SHUJI_A = Person("0031", "主事", "5555666677778888", "staff0031")         # prints, shreds (roster)
SHUJI_B = Person("0045", "主事", "2222333344445555", "staff0045")         # shreds (roster)
# A part-time clerk (会計年度任用職員) who started this month: no training yet.
PART_TIMER = Person("0102", "会計年度任用職員", "9999AAAABBBBCCCC", "staff0102",
                    employment="part_time", trained=False)
STAFF = (KACHOHOSA, KAKARICHO, SHUNIN, SHUJI_A, SHUJI_B, PART_TIMER)

# Designations: station -> (holder, stand-ins).
DESIGNATIONS: dict[str, tuple[Person, tuple[Person, ...]]] = {
    "cabinet-1": (KAKARICHO, (SHUNIN,)),
    "cabinet-2": (KAKARICHO, ()),
    "cabinet-3": (KACHOHOSA, (KAKARICHO,)),
}
# The archive keeps office hours; its holder may still open it late (the supervisors hear of it).
AFTER_HOURS_USERS: dict[str, tuple[Person, ...]] = {"cabinet-2": (KAKARICHO,)}
ROSTER: dict[str, tuple[Person, ...]] = {"shredder-1": (SHUJI_A, SHUJI_B)}

def seed_registry(engine: Engine, today: date) -> None:
    """The office's people, badges, training, designations and roster, through hub.registry as
    an admin would enter them; what is already there (a rerun on the same data) is kept."""
    from hub import registry

    training = next((t for t in registry.list_trainings(engine) if t["name"] == TRAINING), None)
    if training is None:
        registry.add_training(engine, ACTOR, TRAINING, KINDS, TRAINING_DAYS)
    for person in STAFF:
        try:
            registry.get_person(engine, person.number)
        except registry.NotFound:
            registry.add_person(engine, ACTOR, person.number, person.name, kana=person.kana, section=SECTION,
                                employment=person.employment, role=person.role, print_user=person.print_user)
            registry.add_badge(engine, ACTOR, person.number, person.badge)
    # Everyone but the part-timer took the training a month ago.
    held = today - timedelta(days=30)
    session = registry.find_session(engine, TRAINING, held) or registry.add_session(
        engine, ACTOR, TRAINING, held, place=TRAINING_PLACE)
    registry.record_attendance(engine, ACTOR, session, [p.number for p in STAFF if p.trained])
    for station, (holder, stand_ins) in DESIGNATIONS.items():
        registry.set_holder(engine, ACTOR, station, holder.number)
        for person in stand_ins:
            registry.add_stand_in(engine, ACTOR, station, person.number)
    for station, users in AFTER_HOURS_USERS.items():
        for person in users:
            registry.add_after_hours_user(engine, ACTOR, station, person.number)
    # Tomorrow too: a demo left running past midnight keeps its pair on the roster.
    for station, pair in ROSTER.items():
        for day in (today, today + timedelta(days=1)):
            registry.set_roster(engine, ACTOR, station, day, [p.number for p in pair])
    _LOG.info("demo registry seeded: %d people at %s", len(STAFF), SITE_NAME)
