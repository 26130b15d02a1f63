"""Sign-ins, failed sign-ins and sign-outs go to the hash-chained sign-in log that the
checkpoints cover; ``kagiban verify`` counts them and names an entry altered afterwards."""
from __future__ import annotations

import io
import json

from sqlalchemy import select

from hub.audit import verify
from hub.store.schema import side_log
from tests.support.web_app import csrf_from, login


def _signins(engine) -> list[dict]:
    with engine.connect() as conn:
        return [json.loads(t) for t in conn.execute(
            select(side_log.c.entry).where(side_log.c.part == "signins").order_by(side_log.c.n)).scalars()]


def test_sign_ins_failures_and_sign_outs_are_logged_in_order(client, users, engine, cfg):
    assert login(client, users["supervisor"], "wrong password").status_code == 401
    assert login(client, users["supervisor"]).status_code == 302
    page = client.get("/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert [(e["op"], e["user"]) for e in _signins(engine)] == [
        ("refused", "sup-01"), ("signed_in", "sup-01"), ("signed_out", "sup-01")]
    out = io.StringIO()
    assert verify.run(cfg.db_url(), out=out) == 0
    assert "signins: OK: 3 entries (1 refused)" in out.getvalue()


def test_an_erased_failed_sign_in_is_named(client, users, engine, cfg):
    login(client, users["supervisor"], "wrong password")
    login(client, users["supervisor"])
    with engine.begin() as conn:  # someone with the database's password, behind the hub
        conn.exec_driver_sql("UPDATE side_log SET entry = replace(entry, 'refused', 'signed_in') "
                             "WHERE part = 'signins' AND n = 1")
    out = io.StringIO()
    assert verify.run(cfg.db_url(), out=out) == 1
    assert "signins: TAMPERED: 0 entries read; log entry 1 content altered" in out.getvalue()
