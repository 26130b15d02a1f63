"""Signed checkpoints: made at hub start and every interval, the same signed line published
retained on MQTT, appended to the off-hub log folder and sent to syslog; in the daily
close-out message; checkable with the public key ``kagiban hub audit-key`` prints."""
from __future__ import annotations

import io
import json
import socket
import stat
import threading
from datetime import datetime

import paho.mqtt.client as mqtt
import pytest

from hub.ledgers import closeout
from hub.audit import verify
from hub.audit.checkpoints import CheckpointWriter, checkpoint_topic, read_log
from hub.audit.jobs import Periodic
from hub.config import load
from hub.alerting.notify import Notifier
from kagiban import cli
from kagiban.configfile import ConfigError
from kagiban.signing import parse_public_key
from tests.hub.helpers import SITE, encode, event, write_hub_config
from tests.support.workday import DAY, STATIONS, ZONE, day_of_work
from tests.support.sinks import HttpSink
from tests.support.alert_stack import Stack
from tests.support.mosquitto import wait_for


class UdpSyslog:
    """A syslog receiver on loopback UDP: the datagrams it got."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.got: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append(self.sock.recv(65535).decode("utf-8", "replace"))
            except socket.timeout:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def _retained(broker, topic: str) -> list[bytes]:
    got: list[bytes] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _u, msg: got.append(msg.payload) if msg.retain else None
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        wait_for(lambda: got, timeout=10, what="the retained checkpoint")
    finally:
        client.disconnect()
        client.loop_stop()
    return got


def test_the_hub_sends_one_signed_line_to_mqtt_the_log_folder_and_syslog(tmp_path, store, broker, prefix, start_hub,
                                                                        station, capsys):
    syslog = UdpSyslog()
    try:
        hub = start_hub(audit={"log_dir": str(tmp_path / "offsite"), "checkpoint_interval_s": 3600,
                               "syslog": {"address": f"127.0.0.1:{syslog.port}"}})
        st = station("cabinet-1")
        for seq in (1, 2, 3):
            st.publish("event", encode(event("cabinet-1", seq)))
        wait_for(lambda: st.acked_seqs() == {1, 2, 3}, timeout=10, what="events acked")
        # The checkpoint the jobs thread makes at start is sent before this one is made.
        wait_for(lambda: hub.checkpoints.made >= 1, timeout=10, what="the checkpoint made at start")
        _cp, line = hub.checkpoints.make("periodic")
        [retained] = _retained(broker, checkpoint_topic(prefix))
        assert retained.decode() == line
        logged = (tmp_path / "offsite" / "checkpoints.jsonl").read_text().splitlines()
        assert len(logged) == 2 and logged[-1] == line  # the one made at start, then this one
        wait_for(lambda: any(line in d for d in syslog.got), timeout=5, what="the line at syslog")
        body = json.loads(line)["checkpoint"]
        assert body["rows"] == 3 and body["stations"] == [{"station": "cabinet-1", "incarnation": "", "seq": 3}]
        assert set(body["side"]) == {"alerts", "signins", "registry", "quarantine", "snapshots", "keys", "work", "maintenance",
                                     "nearmiss", "procedures", "verified", "failover"}
        assert body["v"] == 2 and body["keys"] == {}  # no station enrolled here
        key_file = hub.cfg.audit_key_path()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    finally:
        syslog.close()

    # The key an auditor keeps with the log; the syslog copy checks as well as the file.
    capsys.readouterr()
    assert cli.main(["hub", "audit-key", "--config", str(tmp_path / "hub" / "hub.yaml")]) == 0
    public = capsys.readouterr().out.split()[0]
    (tmp_path / "syslog.log").write_text("".join(f"Dec  5 00:00:00 hub {d}\n" for d in syslog.got))
    for path in (tmp_path / "offsite", tmp_path / "syslog.log"):
        lines = read_log(path, parse_public_key(public))
        assert lines and all(x.signature_ok for x in lines)
    out = io.StringIO()
    assert verify.run(hub.cfg.db_url(), out, checkpoints=tmp_path / "offsite", audit_key=parse_public_key(public)) == 0
    assert "checkpoints: OK: 2 checkpoints signed" in out.getvalue()


def test_a_failing_sink_does_not_stop_the_others(tmp_path, store):
    s = Stack(tmp_path, audit={"log_dir": str(tmp_path / "not-a-folder")})
    (tmp_path / "not-a-folder").write_text("a file where the folder should be")
    published = []
    writer = CheckpointWriter(s.engine, s.cfg, publish=lambda t, p: published.append((t, p)))
    _cp, line = writer.make("periodic")
    assert writer.failures == 1 and published == [(checkpoint_topic(s.cfg.broker.prefix), line.encode())]


def test_the_close_out_message_carries_a_checkpoint_that_verify_accepts(tmp_path, store):
    sink = HttpSink()
    s = Stack(tmp_path, stations=STATIONS, sites={SITE: {
        "name": "Ward A", "closeout": {"at": "18:00"},
        "supervisors": [{"url": f"json://127.0.0.1:{sink.port}/hook", "label": "chat"}]}})
    notifier = Notifier(s.engine, s.cfg).start()
    writer = CheckpointWriter(s.engine, s.cfg)
    try:
        s.start_rules()
        day_of_work(s)
        runs = closeout.CloseoutScheduler(s.engine, s.cfg, notifier, checkpoint=lambda: writer.make("closeout")[1])
        [made] = runs.run_due(datetime(2025, 4, 1, 18, 0, 30, tzinfo=ZONE))
        wait_for(lambda: sink.bodies, timeout=15, what="the close-out delivered")
        text = sink.bodies[0]["message"]
        assert "■ Audit checkpoint" in text and made.checkpoint in text
        assert closeout.stored(s.engine, SITE, DAY).checkpoint == made.checkpoint
    finally:
        s.stop_rules()
        notifier.stop()
    # The supervisor's copy of the message is a checkpoint log by itself.
    mail = tmp_path / "closeout-mail.log"
    mail.write_text(text)
    out = io.StringIO()
    assert verify.run(s.cfg.db_url(), out, checkpoints=mail, audit_key=writer.key.public_key()) == 0
    assert "checkpoints: OK: 1 checkpoints signed" in out.getvalue()


def test_periodic_jobs_run_at_their_interval_and_outlive_a_failure():
    runs: list[str] = []

    def failing():
        runs.append("bad")
        raise RuntimeError("disk gone")

    jobs = Periodic([("often", 0.1, lambda: runs.append("often")), ("bad", 0.1, failing),
                     ("rarely", 60, lambda: runs.append("rarely"))]).start()
    try:
        wait_for(lambda: runs.count("often") >= 3 and runs.count("bad") >= 3, timeout=5, what="three turns")
    finally:
        jobs.stop()
    assert runs.count("rarely") == 1  # at once, then not for a minute


@pytest.mark.parametrize("audit, key", [
    ({"checkpoint_interval_s": 1}, "audit.checkpoint_interval_s"),
    ({"syslog": {"address": "loghost"}}, "audit.syslog.address"),
    ({"log_dirr": "/x"}, "audit.log_dirr"),
])
def test_bad_audit_settings_name_their_key(tmp_path, broker, prefix, audit, key):
    path = write_hub_config(tmp_path, broker, prefix, audit=audit)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(path)


def test_snapshot_retention_is_90_days_unless_configured(tmp_path, broker, prefix):
    assert load(write_hub_config(tmp_path / "a", broker, prefix)).snapshots.keep_days == 90
    cfg = load(write_hub_config(tmp_path / "b", broker, prefix, snapshots={"keep_days": 30}))
    assert cfg.snapshots.keep_days == 30 and cfg.audit.checkpoint_interval_s == 300


def test_the_protocol_doc_describes_every_checkpoint_field():
    from pathlib import Path

    from hub.audit.checkpoints import Checkpoint

    doc = (Path(__file__).resolve().parents[3] / "docs" / "protocol.md").read_text()
    section = doc[doc.index("## Audit checkpoints"):doc.index("## Delivery")]
    assert "{prefix}/_hub/checkpoint" in section
    for field in Checkpoint.model_fields:
        assert f"`{field}`" in section, field
