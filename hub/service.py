"""The hub process: store, ingest, broker connection and policy publishing, wired together.

The hub connects with a persistent session (clean_start=False, a long session expiry), so
mosquitto queues the stations' QoS 1 messages while the hub restarts; anything lost anyway
is sent again by the stations, whose outboxes keep every event until it is acked.

In a failover pair (``failover.enabled``, a PostgreSQL store shared by two hubs) a hub starts
as the standby: it serves /healthz (its pages redirect to the active hub), and a LeaseKeeper
(hub.store.lease) tries for the lease. Only with the lease does it migrate the store (in the
takeover's transaction: a standby upgraded first never changes the schema under the running
active) and do what the single hub does at start (ingest, broker, policies, alerting, scheduled
jobs). A store without ``hub_leases`` (never migrated, or older than 0021_failover) has no
active hub yet and is migrated at start, as a single hub's always is. A standby whose code is
older than the store never takes over; /healthz and its pages say why. A hub that loses the
lease stops all of that at once and ``run`` ends with EXIT_LEASE_LOST, for systemd to start it
again as a standby.
"""
from __future__ import annotations

import gc
import logging
import signal
import threading
from datetime import timedelta
from typing import TYPE_CHECKING

import paho.mqtt.client as mqtt
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy import Connection, Engine, insert, select, update

from hub.store import migrate
from hub.alerting.alarm import SiteAlarms
from hub.alerting.alerts import AlertCenter
from hub.audit import prefix as verified_prefix, retention
from hub.audit.checkpoints import CheckpointWriter
from hub.audit.jobs import Periodic
from hub.ledgers.closeout import CloseoutScheduler
from hub.ledgers.monthly_schedule import MonthlyScheduler
from hub.nearmiss.digest import DigestScheduler, NotifierSinks
from hub.config import HubConfig
from hub.store.db import begin_write, make_engine
from hub.ingest.writer import Committed, InTransaction, Ingest, TimeBounds
from hub.store.lease import Lease, LeaseKeeper
from hub.live import LiveBus
from hub.alerting.notify import Notifier
from hub import registry
from hub.registry.policy import PolicyPublisher, load_signing_key
from hub.alerting.rules import Rules
from hub.store.schema import stations
from kagiban.broker import connect_properties, make_client
from kagiban.configfile import ConfigError
from kagiban.protocol import STATION_CHANNELS, Ack, dumps, subscription, topic

if TYPE_CHECKING:
    from hub.web.server import WebServer

_LOG = logging.getLogger(__name__)

# ``kagiban hub`` exits with this when the hub lost its lease (EX_TEMPFAIL): systemd restarts it
# (Restart=on-failure) and it comes back as the standby.
EXIT_LEASE_LOST = 75


class Hub:
    """One running hub; ``connected`` is set while it is subscribed at the broker."""

    def __init__(self, cfg: HubConfig):
        self.cfg = cfg
        self.connected = threading.Event()
        self.engine: Engine | None = None
        self.ingest: Ingest | None = None
        self.policies: PolicyPublisher | None = None
        # What happens on the hub, for the live web page (events, station states, alerts).
        self.bus = LiveBus()
        # Set in start() by the rules/alerts and web parts (see _start_rules, _start_web).
        self.alerts: AlertCenter | None = None
        self.rules: Rules | None = None
        self.notifier: Notifier | None = None
        self.closeouts: CloseoutScheduler | None = None  # set in _start_rules
        self.monthly: MonthlyScheduler | None = None  # set in _start_rules
        self.nearmiss_digest: DigestScheduler | None = None  # set in _start_rules
        self.checkpoints: CheckpointWriter | None = None
        self._audit_jobs: Periodic | None = None
        self.web: WebServer | None = None
        self._client: mqtt.Client | None = None
        self._sub_mid: int | None = None
        self._stopping = False
        self._stopping_client = False  # the broker connection is being closed on purpose
        # Failover (hub.store.lease): set in start() when failover.enabled.
        self.lease: Lease | None = None
        self._keeper: LeaseKeeper | None = None
        self.active = threading.Event()  # set while this hub does the active hub's work
        self.lease_lost = threading.Event()  # set once a lease this hub held is gone
        self._role_lock = threading.Lock()

    def start(self) -> None:
        """Migrate the store, start ingest and policies, connect to the broker (in background).

        Raises ConfigError for an unusable staff file, migrate.StoreNewer for a store a newer
        kagiban migrated (a single hub; a failover hub waits as the standby instead).
        """
        cfg = self.cfg
        problem = cfg.failover_problem()
        if problem is not None:
            raise ConfigError(f"{problem[0]}: {problem[1]}")
        self.engine = make_engine(cfg.db_url())
        if not cfg.failover.enabled or not migrate.has_lease_table(self.engine):
            # In a pair only the lease holder migrates (see the module docstring); a store without
            # hub_leases has no active hub to migrate under.
            migrate.upgrade(self.engine)
        if cfg.failover.enabled:
            assert cfg.failover.hub_name is not None  # the config requires it when enabled
            # Standby first: pages (redirecting to the active hub) and the lease keeper.
            self.lease = Lease(self.engine, cfg.db_url(), hub=cfg.failover.hub_name,
                               web_url=cfg.failover.web_url, migrate=True)
            self._start_web()
            self._keeper = LeaseKeeper(self.lease, cfg.failover.poll_s, on_acquired=self._take_over,
                                       on_lost=self._lose_lease).start()
            _LOG.info("hub %s started as the standby: waiting for the lease", cfg.failover.hub_name)
            return
        self._start_active()
        self._start_web()
        # What start-up made (modules, templates, translations, compiled statements) lives as
        # long as the hub: kept out of the collector, a full collection scans only what came
        # after, 0.2 ms instead of ~55 ms in the middle of a page or a batch (bench/web.py).
        gc.freeze()
        _LOG.info("hub started: broker %s:%d, prefix %s", cfg.broker.host, cfg.broker.port, cfg.broker.prefix)

    def _take_over(self) -> None:
        """On the lease keeper's thread, the lease just taken (and the store migrated to this
        code's schema in the same takeover transaction, hub.store.lease): start the active hub's
        work and serve the full pages."""
        with self._role_lock:
            if self._stopping:
                return
            try:
                self._start_active()
            except Exception:
                # Holding the lease while doing nothing would stall the pair: give it up.
                _LOG.exception("hub %s took the lease but could not start", self.cfg.failover.hub_name)
                self.lease_lost.set()
                self._stop_active()
                if self.lease is not None:
                    self.lease.release()
                return
            if self.web is not None:
                port = self.web.port
                self.web.stop()
                self.web = None
                self._start_web(port)
            gc.freeze()
        _LOG.warning("hub %s is now the active hub", self.cfg.failover.hub_name)

    def _lose_lease(self) -> None:
        """On the lease keeper's thread, the lease gone: stop ingest and the jobs at once."""
        _LOG.error("hub %s lost its lease: stopping ingest, alerting and jobs", self.cfg.failover.hub_name)
        self.lease_lost.set()
        with self._role_lock:
            self._stop_active()

    def _start_active(self) -> None:
        """What only the active hub does: stations, policies, ingest, broker, checkpoints,
        alerting and the scheduled jobs."""
        cfg = self.cfg
        assert self.engine is not None
        engine = self.engine
        self._register_configured_stations()
        prefix = cfg.broker.prefix
        self.policies = PolicyPublisher(
            self.engine, cfg.staff_path(), prefix=prefix, configured=cfg.known_stations(),
            publish=self._publish_retained, tz=cfg.zone(), site_zone=cfg.site_zone,
            signing_key=load_signing_key(cfg.policy_key_path()),
            validity=timedelta(hours=cfg.policy.validity_h), control_dir=cfg.policy_control_dir(),
            publish_once=self._publish_alert,
        )
        if cfg.staff_file is None:
            # The registry (people, badges, trainings, designations) is the policy's source; a
            # staff file, where configured, is the simpler source for small setups and tests.
            self.policies.use_compile(registry.policy_source(self.engine, cfg))
        # This hub's store only: another hub in the process keeps its own signal.
        registry.changes(self.engine).connect(self._on_registry_change)
        self.policies.refresh()
        self.ingest = Ingest(
            self.engine,
            prefix=prefix,
            known_stations=cfg.known_stations(),
            batch_max=cfg.ingest.batch_max,
            batch_wait_s=cfg.ingest.batch_wait_ms / 1000,
            time_bounds=TimeBounds(cfg.rules.clock_skew_s, cfg.rules.event_max_age_s),
            on_acks=self._send_acks,
            on_committed=self._after_commit,
            in_transaction=self._in_transaction,
            warm_verifiers=True,
        ).start()
        client = make_client(cfg.broker, cfg.mqtt_client_id())
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client
        client.connect_async(
            cfg.broker.host, cfg.broker.port, keepalive=cfg.broker.keepalive_s,
            clean_start=False, properties=connect_properties(True),
        )
        client.loop_start()
        self.policies.start()
        self.checkpoints = CheckpointWriter(self.engine, cfg, publish=self._publish_retained)
        self._start_rules()
        # First run at once: a checkpoint of the store as this run found it.
        self._audit_jobs = Periodic([
            ("checkpoint", cfg.audit.checkpoint_interval_s, self._periodic_checkpoint),
            ("chain verification", cfg.audit.verify_interval_s, lambda: verified_prefix.advance(engine)),
            ("snapshot expiry", cfg.snapshots.expire_every_s,
             lambda: retention.expire(engine, cfg.snapshots.keep_days)),
        ]).start()
        self.active.set()

    def _start_rules(self) -> None:
        """Alert rules over stored events, alerts and supervisor notifications.

        Raises ConfigError for a supervisor target whose URL cannot be read.
        """
        assert self.engine is not None
        self.notifier = Notifier(self.engine, self.cfg).start()
        # Each site's open critical alerts, retained for its annunciators; told again at start.
        alarms = SiteAlarms(self.engine, self.cfg, publish=self._publish_retained, bus=self.bus)
        self.alerts = AlertCenter(self.engine, self.cfg, publish=self._publish_alert, bus=self.bus,
                                  notifier=self.notifier, alarms=alarms)
        alarms.publish_all()
        # Set before start(): batches committed meanwhile queue up for the rules thread.
        self.rules = Rules(self.engine, self.cfg, self.alerts)
        self.rules.start()
        # The end-of-day close-out of each site with a time configured, sent through the notifier.
        self.closeouts = CloseoutScheduler(self.engine, self.cfg, self.notifier,
                                           checkpoint=self._closeout_checkpoint).start()
        # The monthly self-inspection report, on the first of the month.
        self.monthly = MonthlyScheduler(self.engine, self.cfg, self.notifier).start()
        # The month's shared near-miss cases, on the first of the month, to the supervisor targets.
        if any(section.supervisors for section in self.cfg.sites.values()):
            self.nearmiss_digest = DigestScheduler(
                self.engine, self.cfg, [NotifierSinks(self.notifier, self.cfg)]).start()

    def _periodic_checkpoint(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.make("periodic")

    def _closeout_checkpoint(self) -> str | None:
        """A checkpoint for a close-out message; its signed line."""
        return self.checkpoints.make("closeout")[1] if self.checkpoints is not None else None

    def _publish_alert(self, topic_name: str, payload: bytes) -> None:
        if self._client is not None:
            self._client.publish(topic_name, payload, qos=1, retain=False)

    def _start_web(self, port: int | None = None) -> None:
        """The web page and JSON API, served in a thread (if ``web.enabled``); on ``port``
        instead of the configured one (a standby's pages replaced by the active's).

        Raises ConfigError for an unreadable session key, OSError if the address is taken.
        """
        if not self.cfg.web.enabled:
            return
        assert self.engine is not None
        from hub.web.app import create_app
        from hub.web.server import WebServer

        # The near-miss digest sent by hand goes where the scheduled one goes.
        sinks = [NotifierSinks(self.notifier, self.cfg)] if self.nearmiss_digest is not None else []
        app = create_app(self.engine, self.cfg, bus=self.bus, alerts=self.alerts, stats=self.stats,
                         digest_sinks=sinks)
        self.web = WebServer(app, self.cfg.web.host, self.cfg.web.port if port is None else port,
                             trusted_proxy=self.cfg.web.trusted_proxy).start()

    def stats(self) -> dict:
        """Figures for /healthz and /metrics: this run's ingest counters and the broker link."""
        ingest = self.ingest
        figures: dict = {"broker_connected": self.connected.is_set()}
        if self.cfg.failover.enabled:
            # The lease decides: the active hub's work starts right after it is taken.
            lease = self.lease
            figures["role"] = "active" if lease is not None and lease.held else "standby"
            if lease is not None and lease.blocked is not None:
                figures["blocked"] = lease.blocked  # why this standby does not take over
        if ingest is not None:
            figures.update(ingested=ingest.ingested, duplicates=ingest.duplicates,
                           quarantined=ingest.quarantined, snapshots=ingest.snapshots,
                           backlog=ingest.backlog)
        return figures

    @property
    def web_url(self) -> str | None:
        """Where the web page answers (with the real port when configured as 0), if it runs."""
        return self.web.url if self.web is not None else None

    def _in_transaction(self, conn: Connection, rows: list[dict]) -> InTransaction | None:
        """Inside ingest's transaction: the urgent events' alerts, stored with them."""
        rules = self.rules
        return rules.alerts_in_transaction(conn, rows) if rules is not None else None

    def _after_commit(self, committed: Committed) -> None:
        """On the writer thread, after each commit: rules first, then the live page."""
        if self.rules is not None:
            self.rules.on_committed(committed)
        if not self.bus.subscribers:
            return  # no page open: nothing to build (this runs for every committed batch)
        for row in committed.events:
            self.bus.publish("event", {k: row[k] for k in (
                "row_no", "site", "station", "seq", "event_id", "kind", "at", "badge", "person")})
        for row in committed.presence:
            self.bus.publish("station", {k: row[k] for k in ("site", "station", "state", "at")})
        for hb in committed.heartbeats:
            self.bus.publish("heartbeat", hb.model_dump(mode="json"))

    def _on_registry_change(self, _change) -> None:
        # A revoked badge must reach every station within seconds.
        if self.policies is not None:
            self.policies.request_recompile()

    def stop(self) -> None:
        """Store what was received, then leave the broker; the session stays for the next run."""
        with self._role_lock:
            self._stopping = True
        if self._keeper is not None:
            self._keeper.stop()
            self._keeper = None
        if self.engine is not None:
            registry.changes(self.engine).disconnect(self._on_registry_change)
        if self.web is not None:
            # First: no one acknowledges or exports from a hub that is going away.
            self.web.stop()
            self.web = None
        with self._role_lock:
            self._stop_active()
        if self.lease is not None:
            # After the last write: the standby may take over from here.
            self.lease.close()
            self.lease = None
        self.connected.clear()
        if self.engine is not None:
            self.engine.dispose()
        _LOG.info("hub stopped")

    def _stop_active(self) -> None:
        """Stop what _start_active started (each part once; safe to call again)."""
        self.active.clear()
        if self.policies is not None:
            self.policies.stop()
            self.policies = None
        if self.ingest is not None:
            # Acks for this last batch still go out through the open connection.
            self.ingest.stop()
            self.ingest = None
        # After ingest (its last batch goes through the rules), before the broker and the store:
        # the last alerts are still published and their deliveries recorded.
        if self.rules is not None:
            self.rules.stop()
            self.rules = None
        for job in (self.closeouts, self.monthly, self.nearmiss_digest):
            if job is not None:
                job.stop()
        self.closeouts = self.monthly = self.nearmiss_digest = None
        if self._audit_jobs is not None:
            self._audit_jobs.stop()
            self._audit_jobs = None
        if self.notifier is not None:
            self.notifier.stop()
            self.notifier = None
        if self._client is not None:
            self._stopping_client = True
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        if self.checkpoints is not None:
            self.checkpoints.close()
            self.checkpoints = None
        self.connected.clear()

    # --- broker callbacks (paho's thread) ---

    def _on_connect(self, client, _userdata, flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            _LOG.error("broker refused the connection: %s", reason_code)
            return
        _LOG.info("connected to the broker (session present: %s)", flags.session_present)
        opts = SubscribeOptions(qos=1)
        _result, self._sub_mid = client.subscribe(
            [(subscription(self.cfg.broker.prefix, ch), opts) for ch in STATION_CHANNELS]
        )
        if self.policies is not None:
            self.policies.request_publish()

    def _on_subscribe(self, _client, _userdata, mid, reason_codes, _properties) -> None:
        failed = [rc for rc in reason_codes if rc.is_failure]
        if failed:
            _LOG.error("broker refused subscriptions: %s", ", ".join(str(rc) for rc in failed))
            return
        if mid == self._sub_mid:
            self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        self.connected.clear()
        if self._stopping_client:
            _LOG.info("disconnected from the broker")
            return
        # paho reconnects by itself (loop_start); the broker keeps our session meanwhile.
        _LOG.warning("disconnected from the broker: %s; reconnecting", reason_code)

    def _on_message(self, _client, _userdata, msg: mqtt.MQTTMessage) -> None:
        if self.ingest is not None:
            self.ingest.submit(msg.topic, msg.payload)

    # --- outgoing ---

    def _send_acks(self, acks: list[tuple[str, str, Ack]]) -> None:
        client = self._client
        if client is None:
            return
        for site, station, ack in acks:
            client.publish(topic(self.cfg.broker.prefix, site, station, "ack"), dumps(ack), qos=1)

    def _publish_retained(self, topic_name: str, payload: bytes) -> None:
        if self._client is not None:
            self._client.publish(topic_name, payload, qos=1, retain=True)

    def _register_configured_stations(self) -> None:
        """Listed stations appear in ``stations`` (state unknown) before they first report."""
        listed = self.cfg.stations or []
        if not listed:
            return
        assert self.engine is not None
        with begin_write(self.engine) as conn:
            rows = conn.execute(select(stations.c.station, stations.c.site, stations.c.kind))
            known = {r.station: r for r in rows}
            for entry in listed:
                row = known.get(entry.id)
                if row is None:
                    conn.execute(insert(stations).values(
                        station=entry.id, site=entry.site, kind=entry.kind, state="unknown"))
                elif (row.site, row.kind) != (entry.site, entry.kind):
                    conn.execute(update(stations).where(stations.c.station == entry.id)
                                 .values(site=entry.site, kind=entry.kind))


def run(cfg: HubConfig) -> int:
    """Run the hub until SIGINT or SIGTERM (0 after a clean stop) or until it loses its failover
    lease (EXIT_LEASE_LOST)."""
    stopping = threading.Event()

    def _on_signal(signum, _frame) -> None:
        _LOG.info("signal %s: stopping", signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    hub = Hub(cfg)
    try:
        hub.start()
        # A timed wait keeps the main thread responsive to signals.
        while not stopping.wait(0.2):
            if hub.lease_lost.is_set():
                break
    finally:
        hub.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_LEASE_LOST if hub.lease_lost.is_set() else 0
