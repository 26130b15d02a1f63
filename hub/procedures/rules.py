"""What a station kind requires of the procedures, read once per policy compile
(hub.registry.compile): a person is refused ``unconfirmed_procedure`` when

- a document lists the station's kind in ``station_kinds``, applies to the person (its
  audience), and the person has not confirmed its current version (a later one counts too); or
- a training the kind requires requires reading version N of a document
  (``training_procedures``), and the person has confirmed no version N or later of it.

A station of an unknown kind (None) requires every document that any kind requires, as it
requires every training. Only the store's tables are read here (no registry module), so the
compile can import it without a circle.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from hub.procedures.model import Audience, json_list
from hub.store.schema import procedure_confirmations, procedure_documents, procedure_versions, training_procedures

UNCONFIRMED = "unconfirmed_procedure"


@dataclass(frozen=True)
class Requirement:
    """A version of a document (or a later one) someone must have confirmed."""

    document_id: int
    number: int
    audience: Audience = Audience()
    station_kinds: tuple[str, ...] = ()


@dataclass
class Readings:
    """The documents stations require, training requirements, and who confirmed what."""

    current: list[Requirement] = field(default_factory=list)
    by_training: dict[int, Requirement] = field(default_factory=dict)
    # (person id, document id) -> the highest version number the person confirmed.
    confirmed: dict[tuple[int, int], int] = field(default_factory=dict)

    def missing(self, person: Any, kind: str | None, trainings: Iterable[dict[str, Any]]) -> list[Requirement]:
        """The requirements ``person`` (a ``people`` row) does not meet at a station of ``kind``
        that requires ``trainings`` (the catalogue's dicts, as hub.registry.trainings gives them)."""
        out = []
        for req in self.current:
            applies = kind in req.station_kinds if kind is not None else bool(req.station_kinds)
            if applies and req.audience.covers(person) and not self._has(person.id, req):
                out.append(req)
        for training in trainings:
            reading = self.by_training.get(training["id"])
            if reading is not None and not self._has(person.id, reading):
                out.append(reading)
        return out

    def _has(self, person_id: int, req: Requirement) -> bool:
        return self.confirmed.get((person_id, req.document_id), 0) >= req.number


def load_readings(conn: Connection) -> Readings:
    """Everything :meth:`Readings.missing` needs, in three queries."""
    current = {r.document_id: r.number for r in conn.execute(
        select(procedure_versions.c.document_id, func.max(procedure_versions.c.number).label("number"))
        .group_by(procedure_versions.c.document_id))}
    readings = Readings()
    for doc in conn.execute(select(procedure_documents)):
        kinds = tuple(json_list(doc.station_kinds))
        if kinds and doc.id in current:
            readings.current.append(Requirement(
                doc.id, current[doc.id],
                Audience(tuple(json_list(doc.sections)), tuple(json_list(doc.roles)),
                         tuple(json_list(doc.employments))), kinds))
    for r in conn.execute(select(training_procedures.c.training_id, procedure_versions.c.document_id,
                                 procedure_versions.c.number)
                          .join(procedure_versions, procedure_versions.c.id == training_procedures.c.version_id)):
        readings.by_training[r.training_id] = Requirement(r.document_id, r.number)
    for r in conn.execute(select(procedure_confirmations.c.person_id, procedure_versions.c.document_id,
                                 func.max(procedure_versions.c.number).label("number"))
                          .join(procedure_versions, procedure_versions.c.id == procedure_confirmations.c.version_id)
                          .group_by(procedure_confirmations.c.person_id, procedure_versions.c.document_id)):
        readings.confirmed[(r.person_id, r.document_id)] = r.number
    return readings
