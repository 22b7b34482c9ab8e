"""Turn a scenario into the arrays the planner solves: options, capacities, demand, costs, masks.

Facilities are build options at sites (module × server type × count; one per site at most) plus the
cloud regions (always available, unlimited). Customers are demand sources. Every rule that decides
whether a customer may be served somewhere comes from the one policy module; the latency it checks
comes from the physics.

Resources (RESOURCES): cores and memory sized for the peak hour, and storage: the raw data each demand
keeps where it is served (placement.ledger.stored_gb, docs/storage.md).

Costs are annual, in the scenario's currency:
- fixed (site option): site cost + annualized capex of module and servers (capital recovery factor) +
  the idle power of the servers at the site's annual PUE, priced at the energy and carbon price; the
  servers' storage priced per TB (capex annualized, constant power at that PUE) where the catalog says so;
- assignment (site): dynamic server power of the customer's mean load at that PUE, priced likewise;
  backhaul of its requests and responses between its access point and the site, priced by distance
  class; the raw data it syncs to the cloud at the network price (placement.ledger);
- assignment (cloud): cores for the mean load at the service's target utilization and memory at the
  region's prices, egress of responses, backhaul of requests, carbon price on cloud energy, and its
  stored data per GB-month.
Capacity is sized for the peak hour of each customer's load profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from microdc.model import Scenario
from microdc.model.profiles import profile_peak
from microdc.model.scenario import Network
from microdc.model.series import ScenarioSeries
from microdc.physics.geo import distance_matrix_km
from microdc.physics.latency import LatencyModel
from microdc.physics.latency import device_rtt_ms as rtt_to_target
from microdc.physics.queueing import mmc_response_quantile_s
from microdc.physics.site_power import annual_pue
from microdc.placement import ledger
from microdc.placement.facility import FacilityProblem
from microdc.placement.options import BuildOption, enumerate_options
from microdc.policy import PolicyBook, slo_mask

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

HOURS_PER_YEAR = 8760.0
SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600.0
RESOURCES = ("cores", "memory_gb", "storage_tb")  # also the capacity fields of a BuildOption


def capital_recovery_factor(rate: float, years: float) -> float:
    """Annual payment per unit of capex over its lifetime at a discount rate."""
    if rate == 0:
        return 1.0 / years
    return rate / (1.0 - (1.0 + rate) ** (-years))


@dataclass(frozen=True)
class Demand:
    """Per-customer sizes (C,)."""

    mean_rps: FloatArray
    peak_rps: FloatArray
    cores_peak: FloatArray  # cores needed at peak at the service's target utilization
    busy_cores_mean: FloatArray  # cores busy on average (energy)
    memory_gb: FloatArray
    storage_tb: FloatArray  # raw data kept where it is served (placement.ledger.demand_stored_gb)
    service_s: FloatArray  # mean service time of one request on one core
    slo_p95_ms: FloatArray  # inf where the service has no p95 SLO
    slo_p99_ms: FloatArray


@dataclass(frozen=True)
class PlanningProblem:
    scenario: Scenario
    facility: FacilityProblem
    options: list[BuildOption]
    n_sites_options: int  # facilities [0, n) are site options, [n, F) cloud regions
    target_site: npt.NDArray[np.int64]  # (F,) site index or -1
    target_cloud: npt.NDArray[np.int64]  # (F,) cloud region index or -1
    annual_pue: FloatArray  # (F,)
    fixed_parts: dict[str, FloatArray]  # (F,) each; sums to facility.fixed_cost
    raw_cost: FloatArray  # (F, C) assignment cost before the allowed mask (baselines may break SLOs)
    site_parts: dict[str, FloatArray]  # (n_site_options, C) each; sums to raw_cost of the site rows
    cloud_parts: dict[str, FloatArray]  # (n_cloud, C) each; sums to raw_cost of the cloud rows
    demand: Demand
    rtt_ms: FloatArray  # (F, C) network round trip, device → target
    p50_ms: FloatArray  # (F, C) predicted response median (network + service)
    p95_ms: FloatArray  # (F, C) predicted response p95 (network + service)
    p99_ms: FloatArray
    sovereign: BoolArray  # (F, C)
    tier_ok: BoolArray
    slo_ok: BoolArray
    labels: list[str] = field(default_factory=list)
    series: ScenarioSeries | None = None  # the loaded weather and carbon (reused by the expected year)

    @property
    def n_facilities(self) -> int:
        return len(self.target_site)

    def is_cloud(self) -> BoolArray:
        return np.asarray(self.target_cloud >= 0)


def device_rtt_ms(kind: str, distance_km: npt.ArrayLike, network: Network, model: LatencyModel) -> FloatArray:
    """Device → target round trip for one kind of target ("site" or "cloud"); see physics.latency."""
    return rtt_to_target(
        distance_km,
        kind == "cloud",
        access_ms=network.access_ms,
        edge_extra_ms=network.edge_extra_ms,
        metro_radius_km=network.metro_radius_km,
        model=model,
    )


def size_demand(s: Scenario) -> Demand:
    svc = {v.id: v for v in s.services}
    peaks = {name: profile_peak(p, s.base_dir) for name, p in s.profiles.items()}
    mean = np.array([d.mean_rate_rps for d in s.demand])
    peak_factor = np.array([peaks.get(d.profile, 1.0) for d in s.demand])
    cpu = np.array([svc[d.service].cpu_seconds_per_request for d in s.demand])
    util = np.array([svc[d.service].target_utilization for d in s.demand])
    per_inst = np.array([svc[d.service].requests_per_instance for d in s.demand])
    mem_inst = np.array([svc[d.service].memory_gb_per_instance for d in s.demand])
    peak = mean * peak_factor
    inf = float("inf")
    return Demand(
        mean_rps=mean,
        peak_rps=peak,
        cores_peak=peak * cpu / util,
        busy_cores_mean=mean * cpu,
        memory_gb=peak / per_inst * mem_inst,  # continuous instances: proportional to load
        storage_tb=ledger.demand_stored_gb(s) / ledger.GB_PER_TB,
        service_s=cpu,
        slo_p95_ms=np.array([svc[d.service].slo.p95_ms or inf for d in s.demand]),
        slo_p99_ms=np.array([svc[d.service].slo.p99_ms or inf for d in s.demand]),
    )


def response_quantile_ms(
    service_s: FloatArray, cores: FloatArray, util: FloatArray, q: float, min_pool_cores: float = 1.0
) -> FloatArray:
    """Planning estimate of the q-quantile of response time (wait + service): an M/M/c queue at the
    service's target utilization, with c the customer's cores but at least `min_pool_cores` (a
    service at a site runs on at least one whole server, and the site pools its customers)."""
    c = np.maximum(np.ceil(cores), max(min_pool_cores, 1.0))
    mu = 1.0 / service_s
    lam = util * c * mu
    return np.asarray(1000.0 * mmc_response_quantile_s(lam, mu, c, q), dtype=np.float64)


def build_problem(
    s: Scenario, *, allow_unserved: bool = False, latency: LatencyModel | None = None
) -> PlanningProblem:
    lat_model = latency or LatencyModel(access_ms=s.network.access_ms)
    options = enumerate_options(s)
    n_opt, n_cloud, n_c = len(options), len(s.cloud_regions), len(s.demand)
    n_f = n_opt + n_cloud
    if n_f == 0:
        raise ValueError("no site can host any module within its grid power cap and there is no cloud region")
    eco = s.economics
    demand = size_demand(s)
    series = ScenarioSeries(s)
    year_c = {c: series.year_outdoor_c(c) for c in {site.climate for site in s.sites}}
    year_dp = {c: series.year_dew_point_c(c) for c in year_c}

    target_site = np.array([o.site for o in options] + [-1] * n_cloud, dtype=np.int64)
    target_cloud = np.array([-1] * n_opt + list(range(n_cloud)), dtype=np.int64)

    # --- capacities and fixed costs ---------------------------------------------------------
    capacity = np.zeros((n_f, len(RESOURCES)))
    for j, name in enumerate(RESOURCES):
        capacity[:n_opt, j] = [getattr(o, name) for o in options]
    capacity[n_opt:] = np.inf
    modules = {m.id: m for m in s.catalog.modules}
    servers = {v.id: v for v in s.catalog.servers}
    pue = np.ones(n_f)
    price = np.zeros(n_f)  # energy + carbon price per kWh at the target
    parts = {
        k: np.zeros(n_f)
        for k in ("site", "module_capex", "server_capex", "idle_energy", "storage_capex", "storage_energy")
    }
    dyn_w_per_core = np.zeros(n_f)
    for f, o in enumerate(options):
        site, m, v = s.sites[o.site], modules[o.module], servers[o.server]
        # PUE at the load the servers draw at half utilization (the planner's working point).
        it_w = o.servers * (v.idle_w + 0.5 * (v.peak_w - v.idle_w))
        pue[f] = annual_pue(
            it_w, year_c[site.climate], m, it_capacity_w=o.it_kw * 1000.0, dew_point_c=year_dp[site.climate]
        )
        intensity = series.mean_intensity(site.grid_zone)
        energy_price = (
            site.energy_price_per_kwh if site.energy_price_per_kwh is not None else eco.energy_price_per_kwh
        )
        price[f] = energy_price + eco.carbon_price_per_tonne * intensity / 1e6
        parts["site"][f] = site.annual_cost
        if not o.existing:
            parts["module_capex"][f] = m.capex * capital_recovery_factor(eco.discount_rate, m.lifetime_years)
            parts["server_capex"][f] = (
                o.servers * v.capex * capital_recovery_factor(eco.discount_rate, v.lifetime_years)
            )
        idle_kwh = o.servers * v.idle_w * HOURS_PER_YEAR / 1000.0 * pue[f]
        parts["idle_energy"][f] = idle_kwh * price[f]
        tb = o.servers * v.storage_tb
        if not o.existing:
            parts["storage_capex"][f] = (
                tb * v.storage_capex_per_tb * capital_recovery_factor(eco.discount_rate, v.lifetime_years)
            )
        parts["storage_energy"][f] = (
            ledger.storage_energy_kwh(tb, v.storage_w_per_tb, pue[f], HOURS_PER_YEAR) * price[f]
        )
        dyn_w_per_core[f] = (v.peak_w - v.idle_w) / v.cores
    fixed_cost = sum(parts.values())

    # --- latency, SLO, sovereignty, security (the one policy module) ---------------------------
    t_lat = np.array([s.sites[o.site].lat for o in options] + [r.lat for r in s.cloud_regions])
    t_lon = np.array([s.sites[o.site].lon for o in options] + [r.lon for r in s.cloud_regions])
    d_lat = np.array([d.lat for d in s.demand])
    d_lon = np.array([d.lon for d in s.demand])
    dist = distance_matrix_km(t_lat, t_lon, d_lat, d_lon)

    # --- assignment costs (the ledger's functions, on annual means) --------------------------
    cost = np.zeros((n_f, n_c))
    svc = {v.id: v for v in s.services}
    resp_kb = np.array([svc[d.service].response_kb for d in s.demand])
    req_kb = np.array([svc[d.service].payload_kb for d in s.demand])
    util = np.array([svc[d.service].target_utilization for d in s.demand])
    gb_per_year_out = ledger.gigabytes(demand.mean_rps, resp_kb, SECONDS_PER_YEAR)
    gb_per_year_in = ledger.gigabytes(demand.mean_rps, req_kb, SECONDS_PER_YEAR)
    sync_gb_per_year = np.array([d.data_gb_per_day for d in s.demand]) * HOURS_PER_YEAR / 24.0
    site_parts = {
        "site_dynamic_energy": demand.busy_cores_mean[None, :]
        * dyn_w_per_core[:n_opt, None]
        * HOURS_PER_YEAR
        / 1000.0
        * (pue[:n_opt] * price[:n_opt])[:, None],
        "site_transport": (gb_per_year_in + gb_per_year_out)[None, :]
        * ledger.transport_price_per_gb(dist[:n_opt], s.network),
        "data_sync": np.broadcast_to(sync_gb_per_year * eco.network_price_per_gb, (n_opt, n_c)).copy(),
    }
    cost[:n_opt] = sum(site_parts.values())
    cloud_parts = {
        k: np.zeros((n_cloud, n_c))
        for k in (
            "cloud_compute",
            "cloud_memory",
            "cloud_egress",
            "network_backhaul",
            "cloud_carbon",
            "cloud_storage",
        )
    }
    stored_gb = demand.storage_tb * ledger.GB_PER_TB
    for k, r in enumerate(s.cloud_regions):
        pue[n_opt + k] = r.pue
        intensity = series.mean_intensity(r.grid_zone)
        cores_billed = ledger.cloud_cores(demand.mean_rps, demand.service_s, util)
        energy_kwh = ledger.cloud_energy_kwh(cores_billed, r.watts_per_core, r.pue, HOURS_PER_YEAR)
        cloud_parts["cloud_compute"][k] = cores_billed * r.price_per_core_hour * HOURS_PER_YEAR
        cloud_parts["cloud_memory"][k] = demand.memory_gb * r.price_per_gb_hour * HOURS_PER_YEAR
        cloud_parts["cloud_egress"][k] = gb_per_year_out * r.egress_per_gb
        cloud_parts["network_backhaul"][k] = gb_per_year_in * eco.network_price_per_gb
        cloud_parts["cloud_carbon"][k] = ledger.carbon_cost(
            energy_kwh * intensity, eco.carbon_price_per_tonne
        )
        cloud_parts["cloud_storage"][k] = ledger.cloud_storage_cost(
            stored_gb, r.storage_per_gb_month, HOURS_PER_YEAR
        )
    cost[n_opt:] = sum(cloud_parts.values())

    rtt = np.empty((n_f, n_c))
    rtt[:n_opt] = device_rtt_ms("site", dist[:n_opt], s.network, lat_model)
    rtt[n_opt:] = device_rtt_ms("cloud", dist[n_opt:], s.network, lat_model)
    pool = float(min(v.cores for v in s.catalog.servers))
    p50, p95, p99 = (
        rtt + response_quantile_ms(demand.service_s, demand.cores_peak, util, q, pool)[None, :]
        for q in (0.50, 0.95, 0.99)
    )
    slo_ok = slo_mask(p95.T, demand.slo_p95_ms).T & slo_mask(p99.T, demand.slo_p99_ms).T

    tree = s.tree
    book = PolicyBook(tree, s.policies.data_classes)
    classes = [d.data_class for d in s.demand]
    origin = tree.indices(d.jurisdiction for d in s.demand)
    t_jur = tree.indices(
        [s.sites[o.site].jurisdiction for o in options] + [r.jurisdiction for r in s.cloud_regions]
    )
    t_tier = np.array(
        [s.sites[o.site].security_tier for o in options] + [r.security_tier for r in s.cloud_regions]
    )
    sovereign = book.sovereignty_mask(classes, origin, t_jur).T
    tier_ok = book.security_mask(classes, t_tier).T
    allowed = sovereign & tier_ok & slo_ok

    group = np.array([o.site if not o.existing else -1 for o in options] + [-1] * n_cloud, dtype=np.int64)
    fixed_open = np.array([o.existing for o in options] + [True] * n_cloud)
    labels = [f"{s.sites[o.site].id}:{o.module}:{o.servers}x{o.server}" for o in options] + [
        r.id for r in s.cloud_regions
    ]
    penalty = None
    if allow_unserved:
        penalty = demand.mean_rps * eco.unserved_penalty_per_rps_year
    fp = FacilityProblem(
        fixed_cost=np.asarray(fixed_cost, dtype=np.float64),
        capacity=capacity,
        usage=np.column_stack([demand.cores_peak, demand.memory_gb, demand.storage_tb]),
        assign_cost=cost,
        allowed=allowed,
        group=group,
        fixed_open=fixed_open,
        failure_domain=target_site.copy(),
        n_plus=s.policies.redundancy.n_plus,
        unserved_penalty=penalty,
        facility_names=tuple(labels),
        customer_names=tuple(d.id for d in s.demand),
        resource_names=RESOURCES,
        max_targets=s.policies.max_serving_sites,
    )
    return PlanningProblem(
        scenario=s,
        facility=fp,
        options=options,
        n_sites_options=n_opt,
        target_site=target_site,
        target_cloud=target_cloud,
        annual_pue=pue,
        fixed_parts=parts,
        raw_cost=cost,
        site_parts=site_parts,
        cloud_parts=cloud_parts,
        demand=demand,
        rtt_ms=rtt,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        sovereign=sovereign,
        tier_ok=tier_ok,
        slo_ok=slo_ok,
        labels=labels,
        series=series,
    )
