"""Procedures in the store: versions numbered per document with their SHA-256, a new version
putting everyone it applies to on the to-confirm list, confirmations (from the page and from
another module's transaction), a training's required reading, the refusals, and the trail
(registry change log and the ``procedures`` side log held by ``kagiban verify``)."""
from __future__ import annotations

import hashlib
import io
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import text

from hub import registry
from hub.audit import verify
from hub.procedures import service
from hub.procedures.model import ProcedureError
from hub.registry.log import NotFound
from hub.store.chain import verify_side
from hub.store.db import begin_write
from tests.hub.procedures.conftest import ADMIN, SECTION

TODAY = date(2025, 4, 10)
AT = datetime(2025, 4, 10, 1, 0, tzinfo=timezone.utc)
MANUAL_V1 = "# 鍵の取扱手順\n\n1. 鍵は使用後すぐに戻す。\n".encode()
MANUAL_V2 = "# 鍵の取扱手順\n\n1. 鍵は使用後すぐに戻す。\n2. 離席時は施錠する。\n".encode()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _verify(engine) -> str:
    out = io.StringIO()
    verify.run(str(engine.url), out)
    return out.getvalue()


def _pending(engine, name=None) -> list[tuple[str, int, str]]:
    return [(p.document, p.number, p.staff_no) for p in service.pending(engine, TODAY, name=name)]


def test_versions_are_numbered_per_document_and_kept_with_their_sha256(engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure")
    service.add_document(engine, ADMIN, "回覧 2025-04", "notice")
    first = service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", MANUAL_V1)
    notice = service.upload_version(engine, ADMIN, "回覧 2025-04", "kairan.pdf", PDF)
    second = service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys-v2.md", MANUAL_V2, note="離席時の施錠")

    assert (first.number, notice.number, second.number) == (1, 1, 2)
    assert second.sha256 == hashlib.sha256(MANUAL_V2).hexdigest() and second.content_type == "text/markdown"
    assert notice.content_type == "application/pdf"
    stored, content = service.get_version(engine, first.id)
    assert content == MANUAL_V1 and stored.sha256 == hashlib.sha256(MANUAL_V1).hexdigest()
    assert [v.number for v in service.list_versions(engine, "鍵の取扱手順書")] == [2, 1]
    assert service.get_document(engine, "鍵の取扱手順書").current == 2


@pytest.mark.parametrize(("filename", "content", "code"), [
    ("keys.docx", b"PK\x03\x04", "procedure.bad_type"),
    ("keys.pdf", b"<html>not a pdf</html>", "procedure.not_pdf"),
    ("keys.md", b"\xff\xfe\x00broken", "procedure.not_utf8"),
    ("keys.md", b"", "procedure.empty_file"),
])
def test_a_file_that_is_not_a_pdf_or_markdown_is_refused_and_nothing_stored(engine, filename, content, code):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure")
    with pytest.raises(ProcedureError) as refused:
        service.upload_version(engine, ADMIN, "鍵の取扱手順書", filename, content)
    assert refused.value.code == code
    assert service.list_versions(engine, "鍵の取扱手順書") == []


def test_the_same_bytes_as_the_current_version_are_not_a_new_version(engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure")
    service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", MANUAL_V1)
    with pytest.raises(ProcedureError) as refused:
        service.upload_version(engine, ADMIN, "鍵の取扱手順書", "again.md", MANUAL_V1)
    assert refused.value.code == "procedure.same_as_current" and "version 1" in str(refused.value)


def test_a_document_name_is_unique_and_its_kinds_and_employments_are_checked(engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure")
    for kwargs, code in (({"name": "鍵の取扱手順書", "kind": "procedure"}, "procedure.exists"),
                         ({"name": "x", "kind": "memo"}, "procedure.bad_kind"),
                         ({"name": "x", "kind": "rule", "station_kinds": ["lift"]}, "procedure.unknown_kinds"),
                         ({"name": "x", "kind": "rule", "employments": ["intern"]}, "procedure.unknown_employment"),
                         ({"name": " ", "kind": "rule"}, "procedure.name_missing")):
        with pytest.raises(ProcedureError) as refused:
            service.add_document(engine, ADMIN, **kwargs)
        assert refused.value.code == code
    assert [d.name for d in service.list_documents(engine)] == ["鍵の取扱手順書"]


def test_a_new_version_puts_everyone_it_applies_to_on_the_list_and_a_confirmation_takes_one_off(engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure", sections=[SECTION])
    assert _pending(engine) == []  # nothing uploaded: nothing to confirm
    v1 = service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", MANUAL_V1)
    # The 戸籍係 four; 職員0031 of another section is not asked.
    assert [s for _d, _n, s in _pending(engine)] == ["0012", "0013", "0021", "0022"]

    assert service.confirm(engine, "sup-01", v1.id, ["0012", "0021"], at=AT) == 2
    assert service.confirm(engine, "sup-01", v1.id, ["0012"], at=AT) == 0  # a repeat: the first stands
    assert [s for _d, _n, s in _pending(engine)] == ["0013", "0022"]

    service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys-v2.md", MANUAL_V2)
    rows = service.pending(engine, TODAY)
    assert [(r.staff_no, r.number, r.last_confirmed) for r in rows] == [
        ("0012", 2, 1), ("0013", 2, None), ("0021", 2, 1), ("0022", 2, None)]


def test_the_audience_narrows_by_employment_and_job_role(engine):
    service.add_document(engine, ADMIN, "パート職員向け手順", "procedure", employments=["part_time"])
    service.add_document(engine, ADMIN, "係長の規程", "rule", roles=["係長"])
    service.upload_version(engine, ADMIN, "パート職員向け手順", "p.md", MANUAL_V1)
    service.upload_version(engine, ADMIN, "係長の規程", "r.md", MANUAL_V1)
    assert _pending(engine, "パート職員向け手順") == [("パート職員向け手順", 1, "0021"), ("パート職員向け手順", 1, "0022")]
    assert _pending(engine, "係長の規程") == [("係長の規程", 1, "0012")]


def test_someone_no_longer_active_is_not_asked(engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure", sections=[SECTION])
    service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", MANUAL_V1)
    registry.deactivate_person(engine, ADMIN, "0013", date(2025, 3, 31))
    assert [s for _d, _n, s in _pending(engine)] == ["0012", "0021", "0022"]


def test_record_confirmations_writes_inside_the_callers_transaction(engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure", sections=[SECTION])
    v1 = service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", MANUAL_V1)
    # As a roll-call session's close would: its own write, and the taps of its reading session.
    with begin_write(engine) as conn:
        conn.execute(text("SELECT 1"))
        added = service.record_confirmations(conn, v1.id, ["0021", "0022"], "rollcall", "sup-01", AT, session_id=7)
    assert added == 2
    [first, second] = service.confirmations(engine, "鍵の取扱手順書")
    assert (first.staff_no, first.via, first.session_id, first.recorded_by) == ("0021", "rollcall", 7, "sup-01")
    assert first.confirmed_at == "2025-04-10T01:00:00.000000Z" and second.staff_no == "0022"

    # A rolled-back transaction leaves nothing behind, neither rows nor log entries.
    with pytest.raises(RuntimeError):
        with begin_write(engine) as conn:
            service.record_confirmations(conn, v1.id, ["0012"], "rollcall", "sup-01", AT, session_id=8)
            raise RuntimeError("the session's close failed")
    assert [c.staff_no for c in service.confirmations(engine, "鍵の取扱手順書")] == ["0021", "0022"]
    assert "procedures: OK" in _verify(engine)


def test_an_unknown_person_or_version_records_nothing(engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure")
    v1 = service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", MANUAL_V1)
    with pytest.raises(NotFound):
        service.confirm(engine, "sup-01", v1.id, ["0012", "9999"])
    with pytest.raises(ProcedureError) as refused:
        service.confirm(engine, "sup-01", v1.id + 100, ["0012"])
    assert refused.value.code == "procedure.version_not_found"
    with pytest.raises(ProcedureError) as refused:
        service.confirm(engine, "sup-01", v1.id, ["0012"], via="email")
    assert refused.value.code == "procedure.bad_via"
    assert service.confirmations(engine, "鍵の取扱手順書") == []


def test_a_training_requires_reading_a_version(engine):
    registry.add_training(engine, ADMIN, "個人情報保護研修", ["cabinet"], 365)
    service.add_document(engine, ADMIN, "個人情報保護規程", "rule")
    service.upload_version(engine, ADMIN, "個人情報保護規程", "r.md", MANUAL_V1)
    service.upload_version(engine, ADMIN, "個人情報保護規程", "r2.md", MANUAL_V2)
    assert service.require_reading(engine, ADMIN, "個人情報保護研修", "個人情報保護規程", 1) is True
    assert service.training_readings(engine) == {"個人情報保護研修": ("個人情報保護規程", 1)}
    assert service.require_reading(engine, ADMIN, "個人情報保護研修", "個人情報保護規程") is True  # current: 2
    assert service.training_readings(engine) == {"個人情報保護研修": ("個人情報保護規程", 2)}
    with pytest.raises(ProcedureError):
        service.require_reading(engine, ADMIN, "個人情報保護研修", "個人情報保護規程", 5)
    assert service.require_reading(engine, ADMIN, "個人情報保護研修", None) is True
    assert service.training_readings(engine) == {}


def test_every_step_is_in_the_change_log_and_the_side_log_and_verify_names_tampering(engine):
    service.add_document(engine, ADMIN, "鍵の取扱手順書", "procedure", sections=[SECTION], station_kinds=["cabinet"])
    v1 = service.upload_version(engine, ADMIN, "鍵の取扱手順書", "keys.md", MANUAL_V1)
    service.confirm(engine, "sup-01", v1.id, ["0012"], at=AT)

    logged = [(e.entity, e.key, e.action, e.actor) for e in registry.history(engine, limit=3)]
    assert logged == [("confirmation", "鍵の取扱手順書/v1/0012", "add", "sup-01"),
                      ("procedure_version", "鍵の取扱手順書/v1", "add", ADMIN),
                      ("procedure", "鍵の取扱手順書", "add", ADMIN)]
    with engine.connect() as conn, conn.begin():
        entries = [e.body() for e in verify_side(conn, "procedures").entries]
    assert [e["op"] for e in entries] == ["document", "version", "confirmed"]
    assert entries[1]["sha256"] == v1.sha256 and entries[2]["staff_no"] == "0012"
    assert "procedures: OK: 3 entries (1 documents, 1 versions, 1 confirmations)" in _verify(engine)

    with engine.begin() as conn:  # someone with the database swaps the file's bytes
        conn.execute(text("UPDATE procedure_versions SET content = :c"), {"c": MANUAL_V2})
    assert "procedures: TAMPERED" in _verify(engine) and "stored bytes do not hash" in _verify(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE procedure_versions SET content = :c"), {"c": MANUAL_V1})
        conn.execute(text("DELETE FROM procedure_confirmations"))
    report = _verify(engine)
    assert "procedures: TAMPERED" in report and "confirmation of procedure version 1 by 0012 deleted" in report
