"""The key ledger (鍵の使用簿) over a month: each row says whether it was after hours and
flagged, links the photo of its opening (a forced door its own snapshot), and carries the work
done with the key (作業内容) from a purpose button at the cabinet or the page, or shows the use
as incomplete; the CSV and Excel exports have the same columns in the reader's language."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from hub.config import load
from hub.ledgers import key_work
from hub.ledgers import keys as ledger
from hub.registry.policy import compile_policies, load_staff, store_policies
from hub.store import migrate
from hub.store.db import make_engine
from tests.support.key_uses import SITES, april
from tests.support.web_app import HOLDER, STANDIN, store, write_config

APRIL = (date(2025, 4, 1), date(2025, 4, 30))


@pytest.fixture
def cfg(tmp_path, store):
    return load(write_config(tmp_path / "hub", sites=SITES))


@pytest.fixture
def engine(cfg):
    eng = make_engine(cfg.db_url())
    migrate.upgrade(eng)
    store_policies(eng, compile_policies(load_staff(cfg.staff_path()), cfg.known_stations()))
    yield eng
    eng.dispose()


@pytest.fixture
def stored(engine):
    payloads, snaps = april(HOLDER, STANDIN)
    ingest = store(engine, payloads, snapshots=snaps)
    assert ingest.ingested == len(payloads) and ingest.quarantined == 0
    return payloads


def test_a_month_has_every_day_s_rows_and_each_day_s_last_user(engine, cfg, stored):
    rows = ledger.key_ledger(engine, cfg, *APRIL, station="cabinet-1")
    assert [(r.day.isoformat(), r.entry, r.person) for r in rows] == [
        ("2025-04-01", "use", "S001"), ("2025-04-01", "forced", None),
        ("2025-04-02", "use", "S002"), ("2025-04-05", "use", "S001"),
    ]
    # The last use of each day, not of the month.
    assert [r.last for r in rows] == [True, False, True, True]
    # A day alone is the same rows as that day in the month.
    assert ledger.key_ledger(engine, cfg, date(2025, 4, 2), station="cabinet-1") == [rows[2]]


def test_after_hours_flagged_and_photo_per_row(engine, cfg, stored):
    payloads = stored
    morning, forced, standin, saturday = ledger.key_ledger(engine, cfg, *APRIL, station="cabinet-1")
    # 08:45 on a Tuesday is within 08:30-17:15; 18:00 and a Saturday are not.
    assert [r.after_hours for r in (morning, forced, standin, saturday)] == [False, True, False, True]
    assert [r.flagged for r in (morning, forced, standin, saturday)] == [False, False, True, False]
    # The forced opening links its own snapshot; a use the snapshot of its door.opened.
    assert forced.photo == forced.event_id == payloads[5][1]["id"]
    assert standin.photo == payloads[8][1]["id"]
    assert morning.photo is None and saturday.photo is None


def test_the_work_comes_from_the_button_or_the_page_and_its_lack_is_shown(engine, cfg, stored):
    morning, forced, standin, saturday = ledger.key_ledger(engine, cfg, *APRIL, station="cabinet-1")
    assert morning.work is not None and (morning.work.work, morning.work.source) == ("register", "station")
    assert not morning.incomplete
    assert standin.work is None and standin.incomplete and saturday.incomplete
    assert not forced.incomplete  # nobody used a key: no work to record
    key_work.record(engine, cfg, standin.event_id, "card-safe", username="sup-01", role="supervisor")
    # A correction on the page wins over the button.
    key_work.record(engine, cfg, morning.event_id, "card-safe", username="S001", role="auditor")
    morning, _forced, standin, _saturday = ledger.key_ledger(engine, cfg, *APRIL, station="cabinet-1")
    assert (standin.work.work, standin.work.by, standin.work.source) == ("card-safe", "sup-01", "page")
    assert (morning.work.work, morning.work.source) == ("card-safe", "page") and not standin.incomplete


def read_csv(body: bytes) -> list[dict[str, str]]:
    assert body.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_csv_in_japanese_has_after_hours_flagged_work_and_photo(engine, cfg, stored):
    rows = ledger.key_ledger(engine, cfg, *APRIL, station="cabinet-1")
    export = ledger.Export(ledger.labels("ja"), ledger.work_labeller(cfg, "ja"),
                           lambda event_id: f"https://hub.example/snapshots/{event_id}.jpg")
    lines = read_csv(ledger.to_csv(rows, export))
    work = [line["作業内容"] for line in lines]
    assert work == ["戸籍簿の出納", "", "未記入", "未記入"]
    assert [line["時間外"] for line in lines] == ["", "○", "", "○"]
    photos = [line["写真"] for line in lines]
    assert photos[0] == "" and photos[1] == f"https://hub.example/snapshots/{rows[1].event_id}.jpg"
    assert photos[2].endswith(f"/snapshots/{rows[2].photo}.jpg")


def test_excel_in_english_has_the_same_columns(engine, cfg, stored):
    rows = ledger.key_ledger(engine, cfg, *APRIL, station="cabinet-1")
    body = ledger.to_xlsx(rows, ledger.Export(ledger.labels("en"), ledger.work_labeller(cfg, "en")), title="t")
    sheet = load_workbook(io.BytesIO(body)).active
    header = [c.value for c in sheet[3]]
    assert header == [str(ledger.HEADERS[c]) for c in ledger.COLUMNS]
    table = [dict(zip(header, [c.value for c in line])) for line in sheet.iter_rows(min_row=4)]
    assert [t["Work done"] for t in table] == ["Family register files", None, "Not recorded", "Not recorded"]
    assert [t["After hours"] for t in table] == [None, "yes", None, "yes"]
    assert [t["Flagged"] for t in table] == [None, None, "yes", None]
    assert table[1]["Photo"] == rows[1].event_id  # no link maker: the snapshot's event id
