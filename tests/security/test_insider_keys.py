"""An insider with the hub's database registers a station key of their own, or changes one,
and re-signs rows with it: the chain and the signatures then read intact, and what names the
key (and the rows it signed) is the key log the tooling appends and the station keys every
checkpoint kept off the hub records.

One store is filled through the real hub (real mosquitto, ingest, checkpoint writer) by a
station enrolled with ``kagiban hub station-key add`` that signs every event; each test
attacks its own copy with sqlite3 and the project's own functions, then runs ``kagiban verify
--checkpoints`` as an auditor would.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import uuid6

from hub.store.chain import canonical_json, row_hash_text
from hub.config import load
from hub.store.schema import GENESIS_HASH
from hub.service import Hub
from hub.store.timestamps import utc_text
from kagiban.ed25519 import PrivateKey
from kagiban import cli
from kagiban.event_signing import EventSigner, create_station_key
from kagiban.signing import key_id, load_private_key, public_key_b64
from tests.hub.helpers import FakeStation, write_hub_config
from tests.security.signed_store import STATION, audit, copy_store, recompute_chain, signed_event
from tests.support.mosquitto import wait_for


@dataclass(frozen=True)
class Trail:
    """The filled store's folder, its off-hub checkpoint log, the audit public key, the
    station's genuine key id and the times of the checkpoints (in log order)."""

    data: Path
    log: Path
    audit_key: str
    station_key: str
    checkpoint_at: tuple[str, ...]


def _send(st: FakeStation, signer: EventSigner, incarnation: str, seqs: range) -> None:
    for seq in seqs:
        st.publish("event", signed_event(signer, seq, incarnation)[1])
    wait_for(lambda: set(seqs) <= st.acked_seqs(), timeout=20, what=f"seqs {seqs} acked")


@pytest.fixture(scope="module")
def trail(broker, tmp_path_factory) -> Trail:
    folder = tmp_path_factory.mktemp("insider-keys")
    offsite = folder / "offsite"
    prefix = "t" + uuid.uuid4().hex[:12]
    config = write_hub_config(folder / "hub", broker, prefix, web={"enabled": False},
                              audit={"log_dir": str(offsite), "checkpoint_interval_s": 3600})
    hub = Hub(load(config))
    st = FakeStation(broker, prefix, STATION)
    station_key = create_station_key(folder / "station.key")
    signer, incarnation = EventSigner(station_key), str(uuid6.uuid7())
    try:
        hub.start()
        wait_for(hub.connected.is_set, timeout=10, what="hub subscribed")
        wait_for(lambda: hub.checkpoints.made >= 1, timeout=10, what="the start checkpoint")
        # Enrolled with the tooling, as docs/install-pi.md says.
        assert cli.main(["hub", "station-key", "add", "--config", str(config), "--station", STATION,
                         "--public-key", public_key_b64(station_key)]) == 0
        _send(st, signer, incarnation, range(1, 11))
        hub.checkpoints.make("periodic")
        _send(st, signer, incarnation, range(11, 21))
        hub.checkpoints.make("periodic")
        _send(st, signer, incarnation, range(21, 26))  # stored since the last checkpoint
        key = load_private_key(hub.cfg.audit_key_path())
    finally:
        st.close()
        hub.stop()
    log = offsite / "checkpoints.jsonl"
    times = tuple(json.loads(line)["checkpoint"]["at"] for line in log.read_text().splitlines())
    return Trail(folder / "hub" / "data", log, public_key_b64(key), key_id(station_key.public_key()), times)


@pytest.fixture
def store(trail, tmp_path) -> Path:
    """This test's own copy of the filled store."""
    return copy_store(trail.data, tmp_path)


def _after(at: str) -> str:
    """A hub time one second after ``at``."""
    return utc_text(datetime.fromisoformat(at.replace("Z", "+00:00")) + timedelta(seconds=1))


def _register(db: Path, forger: PrivateKey, added_at: str, *, log_it: bool) -> str:
    """The insider's own key put in the registry with SQL; with ``log_it``, also appended to
    the key log with the project's own hash function, as the tooling would have."""
    public = public_key_b64(forger)
    kid = key_id(forger.public_key())
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO station_keys (station, key_id, public_key, added_at, note) VALUES (?, ?, ?, ?, '')",
                     (STATION, kid, public, added_at))
        if log_it:
            n, prev = conn.execute("SELECT n, hash FROM side_heads WHERE part = 'keys'").fetchone()
            text = canonical_json({"op": "added", "station": STATION, "key_id": kid, "public_key": public,
                                   "added_at": added_at, "retired_at": None})
            digest = row_hash_text(prev, text)
            conn.execute("INSERT INTO side_log (part, n, at, entry, prev_hash, hash) VALUES ('keys', ?, ?, ?, ?, ?)",
                         (n + 1, added_at, text, prev, digest))
            conn.execute("UPDATE side_heads SET n = ?, hash = ? WHERE part = 'keys'", (n + 1, digest))
    conn.close()
    return kid


def _resign(db: Path, forger: PrivateKey, seqs: range, person: str = "staff-999") -> None:
    """Rows of ``seqs`` given another person, their signed text changed to match and signed
    again with the insider's key; the chain recomputed."""
    signer = EventSigner(forger)
    conn = sqlite3.connect(db)
    with conn:
        for seq in seqs:
            signed = conn.execute("SELECT signed FROM events WHERE seq = ?", (seq,)).fetchone()[0]
            text = signed.replace('"person":"staff-001"', f'"person":"{person}"')
            wire = json.loads(signer.sign_event(text.encode("utf-8")))
            conn.execute("UPDATE events SET person = ?, signed = ?, signature = ?, key_id = ? WHERE seq = ?",
                         (person, text, wire["sig"], wire["key_id"], seq))
    conn.close()
    recompute_chain(db)


def _rechain_keys_log(db: Path, edit) -> None:
    """The key log rewritten consistently: ``edit(entry)`` returns the new entry."""
    conn = sqlite3.connect(db)
    with conn:
        rows = conn.execute("SELECT n, at, entry FROM side_log WHERE part = 'keys' ORDER BY n").fetchall()
        prev = GENESIS_HASH
        for n, _at, text in rows:
            new = canonical_json(edit(json.loads(text)))
            digest = row_hash_text(prev, new)
            conn.execute("UPDATE side_log SET entry = ?, prev_hash = ?, hash = ? WHERE part = 'keys' AND n = ?",
                         (new, prev, digest, n))
            prev = digest
        conn.execute("UPDATE side_heads SET hash = ? WHERE part = 'keys'", (prev,))
    conn.close()


def test_the_untouched_store_verifies_with_its_key_in_every_checkpoint(trail, store, capsys):
    code, parts = audit(trail, store, capsys)
    assert code == 0
    assert parts["keys"] == "keys: OK: 1 entries (1 keys, 1 active), log intact and matching the store"
    assert parts["checkpoints"].startswith("checkpoints: OK: 3 checkpoints signed by key")
    assert json.loads(trail.log.read_text().splitlines()[-1])["checkpoint"]["keys"].keys() == {trail.station_key}


def test_a_key_registered_with_sql_that_resigned_rows_since_the_last_checkpoint_is_named(trail, store, capsys):
    forger = PrivateKey.generate()
    kid = _register(store, forger, _after(trail.checkpoint_at[-1]), log_it=False)
    _resign(store, forger, range(21, 26))
    code, parts = audit(trail, store, capsys)
    assert code == 1
    # The chain and every signature read intact: the forged key is registered.
    assert parts["events"] == "events: OK: 25 rows, chain intact"
    assert parts["signatures"].startswith("signatures: OK: 25 signed rows")
    assert parts["keys"].startswith(f"keys: TAMPERED: 1 entries; station key {kid} of cabinet-1 (added_at ")
    assert ("is not in the key log: added outside the tooling; rows it signed: row 21 (cabinet-1 seq 21), "
            "row 22 (cabinet-1 seq 22), row 23 (cabinet-1 seq 23), row 24 (cabinet-1 seq 24), "
            "row 25 (cabinet-1 seq 25) (5 rows)") in parts["keys"]


def test_a_key_logged_like_the_tooling_but_backdated_is_named_by_the_checkpoint(trail, store, capsys):
    forger = PrivateKey.generate()
    # Dated just before checkpoint 2 (which vouched for rows 1-10), so it may seem to have signed them.
    kid = _register(store, forger, trail.checkpoint_at[1][:-4] + "000Z", log_it=True)
    _resign(store, forger, range(4, 7))
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["events"] == "events: OK: 25 rows, chain intact"
    assert parts["signatures"].startswith("signatures: OK: ")
    assert parts["keys"].startswith("keys: OK: 2 entries (2 keys, 2 active)")  # consistent by itself
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 2 (checkpoints.jsonl:2 at ")
    assert (f"station key {kid} of cabinet-1 says it was added at {trail.checkpoint_at[1][:-4]}000Z, but the "
            "checkpoint did not know it (added later, backdated); rows it signed: row 4 (cabinet-1 seq 4), "
            "row 5 (cabinet-1 seq 5), row 6 (cabinet-1 seq 6) (3 rows)") in parts["checkpoints"]


def test_a_key_logged_like_the_tooling_that_resigned_vouched_rows_is_named_by_the_checkpoint(trail, store, capsys):
    forger = PrivateKey.generate()
    kid = _register(store, forger, _after(trail.checkpoint_at[-1]), log_it=True)
    _resign(store, forger, range(14, 16))
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["keys"].startswith("keys: OK: ")
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 3 (checkpoints.jsonl:3 at ")
    assert (f"station key {kid} of cabinet-1, added after the checkpoint, signed rows the checkpoint vouched "
            "for (re-signed): row 14 (cabinet-1 seq 14), row 15 (cabinet-1 seq 15) (2 rows)") in parts["checkpoints"]


def test_a_key_retired_with_sql_is_named_and_with_its_log_rewritten_by_the_checkpoint(trail, store, capsys):
    retired_at = trail.checkpoint_at[1]  # as if retired when checkpoint 2 was made
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE station_keys SET retired_at = ? WHERE key_id = ?", (retired_at, trail.station_key))
    conn.close()
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["keys"] == (f"keys: TAMPERED: 1 entries; station key {trail.station_key} of cabinet-1 retired "
                             f"outside the tooling (retired_at {retired_at}; log entry 1 has it active)")

    _rechain_keys_log(store, lambda e: {**e, "retired_at": retired_at})
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["keys"].startswith("keys: OK: ")
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 2 (checkpoints.jsonl:2 at ")
    assert (f"station key {trail.station_key} of cabinet-1 is not what the checkpoint recorded (its station, "
            "public key or validity period altered); rows it signed: row 1 (cabinet-1 seq 1)") in parts["checkpoints"]


def test_a_key_deleted_with_sql_is_named(trail, store, capsys):
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("DELETE FROM station_keys WHERE key_id = ?", (trail.station_key,))
    conn.close()
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["keys"] == (f"keys: TAMPERED: 1 entries; station key {trail.station_key} of cabinet-1 deleted: "
                             "log entry 1 records it")
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 2 ")
    assert f"station key {trail.station_key}, registered at the checkpoint, is not in the registry" in parts["checkpoints"]


def test_a_key_replaced_with_sql_and_rows_resigned_is_named_altered(trail, store, capsys):
    forger = PrivateKey.generate()
    conn = sqlite3.connect(store)
    with conn:  # the insider's public key under the station's genuine key id
        conn.execute("UPDATE station_keys SET public_key = ? WHERE key_id = ?", (public_key_b64(forger), trail.station_key))
    conn.close()
    _resign(store, forger, range(22, 24))
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE events SET key_id = ? WHERE seq IN (22, 23)", (trail.station_key,))
    conn.close()
    recompute_chain(store)
    code, parts = audit(trail, store, capsys)
    assert code == 1
    assert parts["keys"].startswith(f"keys: TAMPERED: 1 entries; station key {trail.station_key} of cabinet-1 altered "
                                    "(public_key) against log entry 1; rows it signed: row 1 (cabinet-1 seq 1)")
    assert parts["checkpoints"].startswith("checkpoints: CONTRADICTED: checkpoint 2 ")
    assert f"station key {trail.station_key} of cabinet-1 is not what the checkpoint recorded" in parts["checkpoints"]
