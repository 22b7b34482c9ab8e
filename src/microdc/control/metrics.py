"""Prometheus metrics on a per-app CollectorRegistry (never the global one).

Counters/histograms are per process (each uvicorn worker counts its own requests); fleet gauges are
read from the database at scrape time, so every worker reports the same fleet view.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from microdc.control.db import Database
from microdc.control.models import Alarm, Sensor, Site, Workload
from microdc.control.site_state import display_state
from microdc.protocol.vocab import FACILITY_POWER_CONTEXTS, IT_POWER_CONTEXTS, to_watts

log = logging.getLogger("microdc.control")
# alarm kinds the rules raise; a kind a site invents (agent alarm events take any ^[a-z0-9_]+$) is
# counted under "other", so a site cannot add a series to /metrics per made-up kind
METRIC_ALARM_KINDS = frozenset(
    {
        "door_open",
        "heartbeat_lost",
        "humidity",
        "inlet_temperature",
        "leak",
        "smoke",
        "tamper",
        "ups_fault",
        "ups_low_runtime",
        "ups_on_battery",
    }
)


class FleetCollector(Collector):
    """Fleet gauges. Per-sensor series are capped at `site_series` per site (lowest sensor ids first;
    the rest counted in microdc_metrics_series_suppressed), so one site cannot blow up a scrape."""

    def __init__(self, db: Database, site_series: int = 32) -> None:
        self.db = db
        self.site_series = site_series

    def describe(self) -> Iterator[Metric]:
        """Metric families without values (so registering never touches the database)."""
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        power = GaugeMetricFamily(
            "microdc_site_power_watts", "Latest site power by scope (facility, it)", labels=["site", "scope"]
        )
        pue = GaugeMetricFamily(
            "microdc_site_pue", "Facility power / IT power (latest readings)", labels=["site"]
        )
        inlet = GaugeMetricFamily(
            "microdc_inlet_temperature_celsius",
            "Latest inlet (Intake) temperature",
            labels=["site", "sensor"],
        )
        alarms = GaugeMetricFamily(
            "microdc_alarms_open", "Open (raised or acknowledged) alarms", labels=["severity", "kind"]
        )
        placements = GaugeMetricFamily("microdc_placements", "Workloads by placement state", labels=["state"])
        sites = GaugeMetricFamily("microdc_sites", "Sites by state", labels=["state"])
        suppressed = GaugeMetricFamily(
            "microdc_metrics_series_suppressed",
            "Per-sensor series of a site left out of /metrics (over site_metrics_series)",
            labels=["site"],
        )
        return power, pue, inlet, alarms, placements, sites, suppressed

    def collect(self) -> Iterator[Metric]:
        power, pue, inlet, alarms, placements, sites, suppressed = self._families()
        shown: dict[str, int] = {}
        hidden: dict[str, int] = {}
        try:
            with self.db.read_session() as s:
                facility: dict[str, float] = {}
                it: dict[str, float] = {}
                for site_id, sensor_id, rtype, ctx, unit, value in s.execute(
                    select(
                        Sensor.site_id,
                        Sensor.sensor_id,
                        Sensor.reading_type,
                        Sensor.physical_context,
                        Sensor.unit,
                        Sensor.latest_value,
                    )
                    .where(
                        (Sensor.reading_type == "Power")
                        | ((Sensor.reading_type == "Temperature") & (Sensor.physical_context == "Intake"))
                    )
                    .order_by(Sensor.site_id, Sensor.sensor_id)
                ):
                    if rtype == "Temperature":
                        if shown.get(site_id, 0) < self.site_series:
                            shown[site_id] = shown.get(site_id, 0) + 1
                            inlet.add_metric([site_id, sensor_id], value)
                        else:
                            hidden[site_id] = hidden.get(site_id, 0) + 1
                    elif ctx in FACILITY_POWER_CONTEXTS:
                        facility[site_id] = facility.get(site_id, 0.0) + to_watts(value, unit)
                    elif ctx in IT_POWER_CONTEXTS:
                        it[site_id] = it.get(site_id, 0.0) + to_watts(value, unit)
                for site_id, w in facility.items():
                    power.add_metric([site_id, "facility"], w)
                for site_id, w in it.items():
                    power.add_metric([site_id, "it"], w)
                    if w > 0 and site_id in facility:
                        pue.add_metric([site_id], facility[site_id] / w)
                for site_id, n in hidden.items():
                    suppressed.add_metric([site_id], n)
                open_alarms: dict[tuple[str, str], int] = {}
                for sev, kind, n in s.execute(
                    select(Alarm.severity, Alarm.kind, func.count())
                    .where(Alarm.state.in_(("raised", "acknowledged")))
                    .group_by(Alarm.severity, Alarm.kind)
                ):
                    key = (sev, kind if kind in METRIC_ALARM_KINDS else "other")
                    open_alarms[key] = open_alarms.get(key, 0) + n
                for (sev, kind), n in open_alarms.items():
                    alarms.add_metric([sev, kind], n)
                for state, n in s.execute(
                    select(Workload.placement_state, func.count()).group_by(Workload.placement_state)
                ):
                    placements.add_metric([state], n)
                counts: dict[str, int] = {}
                for liveness, trusted, n in s.execute(
                    select(Site.liveness, Site.trusted, func.count()).group_by(Site.liveness, Site.trusted)
                ):
                    state_label = display_state(liveness, trusted)
                    counts[state_label] = counts.get(state_label, 0) + n
                for state, n in counts.items():
                    sites.add_metric([state], n)
        except Exception:  # a scrape must not fail because the database blinked
            log.exception("metrics: fleet query failed")
        yield from (power, pue, inlet, alarms, placements, sites, suppressed)


class Metrics:
    def __init__(self, db: Database, site_series: int = 32) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.readings = Counter(
            "microdc_ingest_readings", "Readings stored by telemetry ingest", registry=self.registry
        )
        self.batches = Counter(
            "microdc_ingest_batches", "Telemetry batches by result", ["result"], registry=self.registry
        )
        self.latency = Histogram(
            "microdc_ingest_latency_seconds",
            "Telemetry batch ingest latency (request handling incl. commit)",
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "microdc_rate_limited", "Requests refused with 429", ["scope"], registry=self.registry
        )
        self.refused = Counter(
            "microdc_refused",
            "Client input refused by a named rule (timestamp-window, batch-conflict, alarm-clear-by-people)",
            ["rule", "route"],
            registry=self.registry,
        )
        self.site_limited = Counter(
            "microdc_site_limited",
            "Site requests refused by a per-site limit (429), by reason (request-rate, sensors)",
            ["reason"],
            registry=self.registry,
        )
        self.security_events = Counter(
            "microdc_security_events",
            "Security events (audited or sampled)",
            ["action"],
            registry=self.registry,
        )
        self.registry.register(FleetCollector(db, site_series))
