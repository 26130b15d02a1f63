"""A station kind that requires a procedure's current confirmation, through the compiled policy:
a person of the document's audience without it is refused ``unconfirmed_procedure``, the
confirmed one allowed; a new version refuses them again until they confirm it; a training's
required reading is enforced where the training is; other kinds and other people are not
touched."""
from __future__ import annotations

from datetime import date, datetime, timezone

from hub import registry
from hub.procedures import service
from hub.registry.compile import compile_station
from tests.hub.procedures.conftest import ADMIN, SECTION

TODAY = date(2025, 4, 10)
NOW = datetime(2025, 4, 10, 1, 0, tzinfo=timezone.utc)
BADGE = {"0012": "0012000000000012", "0013": "0013000000000013", "0021": "0021000000000021",
         "0022": "0022000000000022"}


def _decisions(engine, cfg, station="cabinet-1", kind="cabinet") -> dict[str, tuple[str, str]]:
    policy = compile_station(engine, cfg, station, "ward-a", kind, TODAY, now=NOW)
    return {number: (policy["badges"][badge]["decision"], policy["badges"][badge]["reason"])
            for number, badge in BADGE.items()}


def test_a_cabinet_refuses_whoever_has_not_confirmed_the_current_version(engine, cfg):
    registry.set_station_settings(engine, ADMIN, "cabinet-1", others="flag")
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure", employments=["part_time"],
                         station_kinds=["cabinet"])
    before = _decisions(engine, cfg)
    assert before["0021"] == ("allow_flag", "not_designated")  # no version yet: nothing required

    v1 = service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", b"# v1\n")
    service.confirm(engine, "sup-01", v1.id, ["0021"], at=NOW)
    after = _decisions(engine, cfg)
    assert after["0021"] == ("allow_flag", "not_designated")  # confirmed
    assert after["0022"] == ("deny", "unconfirmed_procedure")  # a part-timer who has not
    assert after["0012"] == ("allow_flag", "not_designated")  # regular staff: not in its audience
    # The printer is not one of the document's kinds.
    assert _decisions(engine, cfg, "printer-1", "printer")["0022"] == ("allow", "allowed")

    service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys-v2.md", b"# v2\n")
    assert _decisions(engine, cfg)["0021"] == ("deny", "unconfirmed_procedure")


def test_a_training_that_requires_reading_a_version_is_met_by_that_version_or_a_later_one(engine, cfg):
    registry.set_station_settings(engine, ADMIN, "cabinet-1", others="flag")
    registry.add_training(engine, ADMIN, "個人情報保護研修", ["cabinet"], 365)
    session = registry.add_session(engine, ADMIN, "個人情報保護研修", date(2025, 4, 1))
    registry.record_attendance(engine, ADMIN, session, list(BADGE))
    service.add_document(engine, ADMIN, "個人情報保護規程", "rule", sections=[SECTION])
    v1 = service.upload_version(engine, ADMIN, "個人情報保護規程", "r.md", b"# v1\n")
    v2 = service.upload_version(engine, ADMIN, "個人情報保護規程", "r2.md", b"# v2\n")
    service.require_reading(engine, ADMIN, "個人情報保護研修", "個人情報保護規程", 1)
    service.confirm(engine, "sup-01", v1.id, ["0012"], at=NOW)
    service.confirm(engine, "sup-01", v2.id, ["0013"], at=NOW)

    decided = _decisions(engine, cfg)
    assert decided["0012"] == decided["0013"] == ("allow_flag", "not_designated")
    assert decided["0021"] == ("deny", "unconfirmed_procedure")
    # The document names no station kind: only the training's requirement is enforced, and only
    # where the training is required.
    assert _decisions(engine, cfg, "printer-1", "printer")["0021"] == ("allow", "allowed")
