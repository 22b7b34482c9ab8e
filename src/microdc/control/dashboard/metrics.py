"""Prometheus metric families the dashboard adds to the control plane's per-app registry.

The control plane's `FleetCollector` exports fleet aggregates (site power and PUE, inlet temperature,
open alarms by kind, placements and sites by state). Everything else an operator sees on the dashboard
is exported here, per site, read from the database at scrape time (so every worker reports the same
fleet), plus the audit chain's verification status (verified in a background thread at most every
`audit_verify_max_age_s`, never inside a scrape) and the dashboard's own counters (per process).

Registered through the registry the control plane exposes (`services.metrics.registry.register`), from
the dashboard router's lifespan.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from microdc.control import audit
from microdc.control.dashboard import queries
from microdc.control.db import Database
from microdc.control.models import Alarm, AuditHead, Sensor, Site, Workload

log = logging.getLogger("microdc.control.dashboard")

SAFETY_FAMILIES = {
    "Door": ("microdc_site_door_open", "Door sensor: 1 open, 0 closed"),
    "Smoke": ("microdc_site_smoke_detected", "Smoke detector: 1 smoke, 0 clear"),
    "Leak": ("microdc_site_leak_detected", "Leak detector: 1 leak, 0 dry"),
    "Intrusion": ("microdc_site_intrusion_state", "Intrusion sensor: 0 normal, 1 intrusion, 2 tampering"),
}


@dataclass(frozen=True)
class VerifyStatus:
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str
    head_seq: int
    verified_at: float  # unix time
    duration_s: float


class AuditVerifier:
    """Runs `audit.verify` (a walk of the whole chain) off the request path and remembers the result."""

    def __init__(self, db: Database, max_age_s: float) -> None:
        self.db = db
        self.max_age_s = max_age_s
        self.last: VerifyStatus | None = None
        self._lock = threading.Lock()
        self._running = False

    def verify_now(self) -> VerifyStatus:
        with self._lock:
            t0 = time.perf_counter()
            with self.db.read_session() as s:
                head = s.get(AuditHead, 1)
                r = audit.verify(s)
            self.last = VerifyStatus(
                r.ok,
                r.checked,
                r.first_bad_seq,
                r.reason,
                head.last_seq if head else 0,
                time.time(),
                time.perf_counter() - t0,
            )
            return self.last

    def refresh_in_background(self) -> None:
        """Start a verification thread if the last result is missing or stale (and none is running)."""
        last = self.last
        if last is not None and time.time() - last.verified_at < self.max_age_s:
            return
        with self._lock:
            if self._running:
                return
            self._running = True

        def run() -> None:
            try:
                self.verify_now()
            except Exception:
                log.exception("dashboard: audit verification failed")
            finally:
                self._running = False

        threading.Thread(target=run, name="audit-verify", daemon=True).start()


class DashboardCollector(Collector):
    def __init__(self, db: Database, verifier: AuditVerifier) -> None:
        self.db = db
        self.verifier = verifier

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()

    def _families(self) -> dict[str, GaugeMetricFamily]:
        def g(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=labels)

        fams = [
            g(
                "microdc_site_info",
                "Site inventory (value 1)",
                ["site", "name", "jurisdiction", "security_tier", "lat", "lon"],
            ),
            g(
                "microdc_site_state",
                "1 for the site's current state (up, suspect, link_down, down, untrusted, unknown)",
                ["site", "state"],
            ),
            g(
                "microdc_site_utilization_ratio",
                "Utilization 0-1: mean CPU Percent sensors if reported (source=cpu), else cores allocated to "
                "running workloads / capacity (source=cores)",
                ["site", "source"],
            ),
            g(
                "microdc_site_alarms_open",
                "Open (raised or acknowledged) alarms of the site",
                ["site", "severity"],
            ),
            g("microdc_site_alarms_unacknowledged", "Raised alarms nobody has acknowledged yet", ["site"]),
            g("microdc_alarms_open_by_state", "Open alarms by lifecycle state", ["state", "severity"]),
            g(
                "microdc_site_temperature_celsius",
                "Latest reading of every temperature sensor",
                ["site", "sensor", "context"],
            ),
            g("microdc_site_humidity_percent", "Latest relative humidity", ["site", "sensor", "context"]),
            g(
                "microdc_site_ups_state",
                "UPS state: 0 on mains, 1 on battery, 2 bypass, 3 fault",
                ["site", "sensor"],
            ),
            g(
                "microdc_site_ups_runtime_minutes",
                "UPS runtime remaining at present load",
                ["site", "sensor"],
            ),
            *(g(name, doc, ["site", "sensor"]) for name, doc in SAFETY_FAMILIES.values()),
            g(
                "microdc_site_last_reading_timestamp_seconds",
                "Newest reading timestamp of the site",
                ["site"],
            ),
            g(
                "microdc_site_last_heartbeat_timestamp_seconds",
                "Last heartbeat received from the site's agent",
                ["site"],
            ),
            g("microdc_site_desired_version", "Current desired-state version of the site", ["site"]),
            g(
                "microdc_site_desired_acked_version",
                "Desired-state version the agent last acknowledged",
                ["site"],
            ),
            g(
                "microdc_site_desired_backlog",
                "Desired-state versions not yet acknowledged by the agent",
                ["site"],
            ),
            g("microdc_site_workloads", "Workloads by placement state at the site", ["site", "state"]),
            g(
                "microdc_site_cores",
                "Cores: capacity of the servers, allocated to running workloads",
                ["site", "kind"],
            ),
            g(
                "microdc_site_data_class_workloads",
                "Running (assigned or held) workloads by data class",
                ["site", "data_class"],
            ),
            g(
                "microdc_workload_placement",
                "Where each workload is (value 1; site empty when degraded)",
                ["workload", "site", "state", "data_class"],
            ),
            g("microdc_audit_entries", "Entries in the audit log (head seq)"),
            g("microdc_audit_chain_ok", "1 if the last verification of the audit hash chain passed"),
            g("microdc_audit_chain_verified_entries", "Entries checked by the last verification"),
            g("microdc_audit_chain_last_verified_timestamp_seconds", "When the chain was last verified"),
            g(
                "microdc_audit_chain_first_bad_seq",
                "First bad entry found by the last verification (0 = none)",
            ),
        ]
        return {f.name: f for f in fams}

    def collect(self) -> Iterator[Metric]:
        f = self._families()
        try:
            with self.db.read_session() as s:
                self._collect(s, f)
        except Exception:  # a scrape must not fail because the database blinked
            log.exception("dashboard metrics: query failed")
        self.verifier.refresh_in_background()
        v = self.verifier.last
        if v is not None:
            f["microdc_audit_chain_ok"].add_metric([], 1.0 if v.ok else 0.0)
            f["microdc_audit_chain_verified_entries"].add_metric([], v.checked)
            f["microdc_audit_chain_last_verified_timestamp_seconds"].add_metric([], v.verified_at)
            f["microdc_audit_chain_first_bad_seq"].add_metric([], v.first_bad_seq or 0)
        yield from f.values()

    def _collect(self, s: Any, f: dict[str, GaugeMetricFamily]) -> None:
        rows = queries.fleet_rows(s)
        for r in rows:
            sid = r["id"]
            f["microdc_site_info"].add_metric(
                [sid, r["name"], r["jurisdiction"], str(r["tier"]), f"{r['lat']:.5f}", f"{r['lon']:.5f}"], 1.0
            )
            for state in queries.STATES:
                f["microdc_site_state"].add_metric([sid, state], 1.0 if r["state"] == state else 0.0)
            if r["util"] is not None:
                f["microdc_site_utilization_ratio"].add_metric([sid, r["util_src"]], r["util"])
            f["microdc_site_alarms_open"].add_metric([sid, "critical"], r["alarms_critical"])
            f["microdc_site_alarms_open"].add_metric([sid, "warning"], r["alarms_warning"])
            f["microdc_site_alarms_unacknowledged"].add_metric([sid], r["alarms_unacked"])
            f["microdc_site_cores"].add_metric([sid, "capacity"], r["cores_cap"])
            f["microdc_site_cores"].add_metric([sid, "allocated"], r["cores_used"])
        for state, severity, n in s.execute(
            select(Alarm.state, Alarm.severity, func.count())
            .where(Alarm.state.in_(queries.OPEN_ALARM_STATES))
            .group_by(Alarm.state, Alarm.severity)
        ):
            f["microdc_alarms_open_by_state"].add_metric([state, severity], n)

        last: dict[str, float] = {}
        sc = Sensor.__table__.c
        for site_id, sensor_id, rtype, ctx, value, ts in s.execute(
            select(
                sc.site_id, sc.sensor_id, sc.reading_type, sc.physical_context, sc.latest_value, sc.latest_ts
            )
        ):
            t = ts.timestamp()
            if t > last.get(site_id, 0.0):
                last[site_id] = t
            if rtype == "Temperature":
                f["microdc_site_temperature_celsius"].add_metric([site_id, sensor_id, ctx], value)
            elif rtype == "Humidity":
                f["microdc_site_humidity_percent"].add_metric([site_id, sensor_id, ctx], value)
            elif rtype == "UPSState":
                f["microdc_site_ups_state"].add_metric([site_id, sensor_id], value)
            elif rtype == "Runtime":
                f["microdc_site_ups_runtime_minutes"].add_metric([site_id, sensor_id], value)
            elif rtype in SAFETY_FAMILIES:
                f[SAFETY_FAMILIES[rtype][0]].add_metric([site_id, sensor_id], value)
        for site_id, t in last.items():
            f["microdc_site_last_reading_timestamp_seconds"].add_metric([site_id], t)

        for sid, hb, version, acked in s.execute(
            select(Site.id, Site.last_heartbeat_at, Site.desired_version, Site.desired_acked_version)
        ):
            if hb is not None:
                f["microdc_site_last_heartbeat_timestamp_seconds"].add_metric([sid], hb.timestamp())
            f["microdc_site_desired_version"].add_metric([sid], version)
            if acked is not None:
                f["microdc_site_desired_acked_version"].add_metric([sid], acked)
            f["microdc_site_desired_backlog"].add_metric([sid], max(0, version - (acked or 0)))

        per_site: dict[tuple[str, str], int] = {}
        classes: dict[tuple[str, str], int] = {}
        for wid, site_id, state, data_class in s.execute(
            select(Workload.id, Workload.site_id, Workload.placement_state, Workload.data_class)
        ):
            f["microdc_workload_placement"].add_metric([wid, site_id or "", state, data_class], 1.0)
            if site_id:
                per_site[(site_id, state)] = per_site.get((site_id, state), 0) + 1
                if state in queries.RUNNING_STATES:
                    classes[(site_id, data_class)] = classes.get((site_id, data_class), 0) + 1
        for (sid, state), n in per_site.items():
            f["microdc_site_workloads"].add_metric([sid, state], n)
        for (sid, dc), n in classes.items():
            f["microdc_site_data_class_workloads"].add_metric([sid, dc], n)

        head = s.get(AuditHead, 1)
        f["microdc_audit_entries"].add_metric([], head.last_seq if head else 0)


class DashboardMetrics:
    """Process-local dashboard counters plus the per-site collector, on the app's registry."""

    def __init__(self, registry: CollectorRegistry, db: Database, verifier: AuditVerifier) -> None:
        self.registry = registry
        self.collector = DashboardCollector(db, verifier)
        self.sse_clients = Gauge(
            "microdc_dashboard_sse_clients", "Open dashboard event streams (this process)", registry=None
        )
        self.events = Counter(
            "microdc_dashboard_events",
            "Server-sent events sent to dashboards (this process)",
            ["kind"],
            registry=None,
        )
        self.poll = Histogram(
            "microdc_dashboard_poll_seconds",
            "Time of one change poll of the dashboard's event hub",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
            registry=None,
        )
        self.logins = Counter(
            "microdc_dashboard_logins",
            "Dashboard login attempts by method and result (this process)",
            ["method", "result"],
            registry=None,
        )
        self._registered: list[Any] = []

    def register(self) -> None:
        for c in (self.collector, self.sse_clients, self.events, self.poll, self.logins):
            self.registry.register(c)
            self._registered.append(c)

    def unregister(self) -> None:
        while self._registered:
            c = self._registered.pop()
            with contextlib.suppress(KeyError):
                self.registry.unregister(c)
