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
from microdc.physics.geo import distance_matrix_km, pairwise_km
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
IntArray = npt.NDArray[np.int64]

HOURS_PER_YEAR = 8760.0
SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600.0
RESOURCES = ("cores", "memory_gb", "storage_tb")  # also the capacity fields of a BuildOption
#: The cost lines of a pair at a site and in a cloud region (plan.json `costs` keys, in this order).
SITE_PARTS = ("site_dynamic_energy", "site_transport", "data_sync")
CLOUD_PARTS = (
    "cloud_compute",
    "cloud_memory",
    "cloud_egress",
    "network_backhaul",
    "cloud_carbon",
    "cloud_storage",
)
#: Entries of a temporary (rows × C) block while building (about 64 MB of float64).
BLOCK_ENTRIES = 8_000_000


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
    """The planner's view of a scenario. Geometry, latency and legality are kept per *target* (a site
    with at least one build option, or a cloud region) × customer, never per build option: a site's
    options share its distance, round trip, SLO and legality, so the (T, C) arrays are about a
    quarter of the old (F, C) ones. Only the solver's `facility` holds (F, C) arrays (its masked cost
    and allowed pairs); everything else is looked up per pair (`pair_*`) for the pairs a plan uses."""

    scenario: Scenario
    facility: FacilityProblem
    options: list[BuildOption]
    n_sites_options: int  # facilities [0, n) are site options, [n, F) cloud regions
    target_site: IntArray  # (F,) site index or -1
    target_cloud: IntArray  # (F,) cloud region index or -1
    target_row: IntArray  # (F,) row of the per-target arrays below
    row_site: IntArray  # (T_sites,) scenario site index of each site row; rows [T_sites, T) are regions
    annual_pue: FloatArray  # (F,)
    fixed_parts: dict[str, FloatArray]  # (F,) each; sums to facility.fixed_cost
    demand: Demand
    target_lat: FloatArray  # (T,) where each target row is (distances are computed per pair, never kept)
    target_lon: FloatArray
    demand_lat: FloatArray  # (C,)
    demand_lon: FloatArray
    queue_ms: FloatArray  # (3, C) wait + service added to the round trip for p50, p95, p99
    sovereign: BoolArray  # (T, C)
    tier_ok: BoolArray  # (T, C)
    slo_ok: BoolArray  # (T, C)
    dyn_w_per_core: FloatArray  # (n_site_options,) dynamic server watts per busy core
    energy_price: FloatArray  # (n_site_options,) energy + carbon price per kWh times the annual PUE
    traffic_gb: FloatArray  # (C,) requests + responses per year, GB (priced by distance class at a site)
    sync_cost: FloatArray  # (C,) raw data synced to the cloud per year, priced
    cloud_parts: dict[str, FloatArray]  # (n_cloud, C) each; sums to the raw cost of the cloud rows
    latency: LatencyModel
    labels: list[str] = field(default_factory=list)
    series: ScenarioSeries | None = None  # the loaded weather and carbon (reused by the expected year)

    @property
    def n_facilities(self) -> int:
        return len(self.target_site)

    @property
    def n_site_rows(self) -> int:
        return int(self.row_site.shape[0])

    def is_cloud(self) -> BoolArray:
        return np.asarray(self.target_cloud >= 0)

    # -- per target row -------------------------------------------------------------------------
    def rtt_rows(self, rows: IntArray, cols: IntArray | slice = slice(None)) -> FloatArray:
        """Round trip (len(rows), C or len(cols)) from the demand to the given target rows, ms."""
        rows = np.asarray(rows, dtype=np.int64)
        # Whole rows only when all columns are wanted: never copy rows × C to read a few columns.
        d = distance_matrix_km(
            self.target_lat[rows], self.target_lon[rows], self.demand_lat[cols], self.demand_lon[cols]
        )
        cloud = (rows >= self.n_site_rows)[:, None]
        return _rtt(d, cloud, self.scenario.network, self.latency)

    def legal_rows(self) -> BoolArray:
        """(T, C) sovereignty and security tier both allow the pair (SLO not considered)."""
        return np.asarray(self.sovereign & self.tier_ok)

    def cloud_raw_cost(self) -> FloatArray:
        """(n_cloud, C) cost of serving each customer wholly from each region, SLO and law ignored."""
        return np.asarray(sum(self.cloud_parts.values()), dtype=np.float64)

    # -- per (facility, customer) pair ------------------------------------------------------------
    def pair_rtt(self, f: IntArray, c: IntArray) -> FloatArray:
        """Round trip of each pair (f[i], c[i]), ms."""
        t = self.target_row[np.asarray(f, dtype=np.int64)]
        return _rtt(self.pair_km(t, c), t >= self.n_site_rows, self.scenario.network, self.latency)

    def pair_km(self, t: IntArray, c: IntArray) -> FloatArray:
        """Distance of each (target row t[i], customer c[i]), equal bit for bit to the build's matrix."""
        c = np.asarray(c, dtype=np.int64)
        return pairwise_km(self.target_lat[t], self.target_lon[t], self.demand_lat[c], self.demand_lon[c])

    def pair_quantile_ms(self, f: IntArray, c: IntArray, q: int) -> FloatArray:
        """Predicted response time (network + service) of each pair: q = 0, 1, 2 for p50, p95, p99."""
        return np.asarray(self.pair_rtt(f, c) + self.queue_ms[q, np.asarray(c, dtype=np.int64)])

    def pair_allowed(self, f: IntArray, c: IntArray) -> BoolArray:
        """Sovereignty, security tier and SLO of each pair (the solver's allowed set)."""
        t = self.target_row[np.asarray(f, dtype=np.int64)]
        return np.asarray(self.sovereign[t, c] & self.tier_ok[t, c] & self.slo_ok[t, c])

    def pair_slo_ok(self, f: IntArray, c: IntArray) -> BoolArray:
        return np.asarray(self.slo_ok[self.target_row[np.asarray(f, dtype=np.int64)], c])

    def pair_parts(self, f: IntArray, c: IntArray) -> dict[str, FloatArray]:
        """Every cost line (SITE_PARTS then CLOUD_PARTS) of serving all of c[i] from f[i], SLO and law
        ignored (a baseline may break an SLO and pays); 0 for the lines of the other kind of target."""
        f = np.asarray(f, dtype=np.int64)
        c = np.asarray(c, dtype=np.int64)
        n_opt = self.n_sites_options
        site = f < n_opt
        fs, cs = f[site], c[site]
        out = {k: np.zeros(f.shape) for k in (*SITE_PARTS, *CLOUD_PARTS)}
        out["site_dynamic_energy"][site] = _dynamic_energy(
            self.demand.busy_cores_mean[cs], self.dyn_w_per_core[fs], self.energy_price[fs]
        )
        out["site_transport"][site] = _transport(
            self.traffic_gb[cs], self.pair_km(self.target_row[fs], cs), self.scenario.network
        )
        out["data_sync"][site] = self.sync_cost[cs]
        k = self.target_cloud[f[~site]]
        for name in CLOUD_PARTS:
            out[name][~site] = self.cloud_parts[name][k, c[~site]]
        return out

    def pair_raw_cost(self, f: IntArray, c: IntArray) -> FloatArray:
        """Cost of serving all of c[i] from f[i], SLO and law ignored (the sum of `pair_parts`)."""
        parts = self.pair_parts(f, c)
        site = np.asarray(f) < self.n_sites_options
        site_sum = sum(parts[k] for k in SITE_PARTS)
        cloud_sum = sum(parts[k] for k in CLOUD_PARTS)
        return np.asarray(np.where(site, site_sum, cloud_sum), dtype=np.float64)


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


def _rtt(d: FloatArray, cloud: npt.ArrayLike, network: Network, model: LatencyModel) -> FloatArray:
    return rtt_to_target(
        d,
        cloud,
        access_ms=network.access_ms,
        edge_extra_ms=network.edge_extra_ms,
        metro_radius_km=network.metro_radius_km,
        model=model,
    )


def _dynamic_energy(
    busy_cores: FloatArray, dyn_w_per_core: FloatArray | float, energy_price: FloatArray | float
) -> FloatArray:
    """Annual cost of the dynamic server power of `busy_cores` at a site (broadcasts like numpy)."""
    return np.asarray(busy_cores * dyn_w_per_core * HOURS_PER_YEAR / 1000.0 * energy_price, dtype=np.float64)


def _transport(traffic_gb: FloatArray, dist_km: FloatArray, network: Network) -> FloatArray:
    """Annual backhaul cost of `traffic_gb` carried this far, priced by distance class."""
    return np.asarray(traffic_gb * ledger.transport_price_per_gb(dist_km, network), dtype=np.float64)


def _row_blocks(n_rows: int, n_cols: int, block_entries: int = BLOCK_ENTRIES) -> list[tuple[int, int]]:
    """[start, stop) row ranges of about `block_entries` entries: temporaries stay bounded."""
    step = max(1, block_entries // max(n_cols, 1))
    return [(a, min(a + step, n_rows)) for a in range(0, n_rows, step)]


def build_problem(
    s: Scenario,
    *,
    allow_unserved: bool = False,
    latency: LatencyModel | None = None,
    options: list[BuildOption] | None = None,
) -> PlanningProblem:
    """The planning problem of a scenario (see the module docstring); ``options`` replaces the enumerated
    build options (a horizon offers the same options in every period). Memory: the per-target (T, C)
    distance and masks plus the solver's (F, C) cost and allowed pairs; every other (x, C) quantity
    is computed in row blocks of BLOCK_ENTRIES and dropped."""
    lat_model = latency or LatencyModel(access_ms=s.network.access_ms)
    options = enumerate_options(s) if options is None else options
    n_opt, n_cloud, n_c = len(options), len(s.cloud_regions), len(s.demand)
    n_f = n_opt + n_cloud
    if n_f == 0:
        raise ValueError("no site can host any module within its grid power cap and there is no cloud region")
    eco = s.economics
    demand = size_demand(s)
    series = ScenarioSeries(s)
    year_c = {c: series.year_outdoor_c(c) for c in {site.climate for site in s.sites}}
    year_dp = {c: series.year_dew_point_c(c) for c in year_c}

    opt_site = np.array([o.site for o in options], dtype=np.int64)
    target_site = np.concatenate([opt_site, np.full(n_cloud, -1, np.int64)])
    target_cloud = np.array([-1] * n_opt + list(range(n_cloud)), dtype=np.int64)
    # One row per site with an option, then one per cloud region: a site's options share its row.
    row_site = np.unique(opt_site)
    n_rows_s = int(row_site.shape[0])
    target_row = np.concatenate(
        [np.searchsorted(row_site, opt_site), n_rows_s + np.arange(n_cloud, dtype=np.int64)]
    ).astype(np.int64)

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
    dyn_w_per_core = np.zeros(n_opt)
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

    # --- geometry per target row (never per option) ------------------------------------------
    sites_t = [s.sites[int(i)] for i in row_site]
    t_lat = np.array([x.lat for x in sites_t] + [r.lat for r in s.cloud_regions])
    t_lon = np.array([x.lon for x in sites_t] + [r.lon for r in s.cloud_regions])
    d_lat = np.array([d.lat for d in s.demand])
    d_lon = np.array([d.lon for d in s.demand])
    n_t = t_lat.shape[0]

    # --- assignment cost inputs (the ledger's functions, on annual means) --------------------
    svc = {v.id: v for v in s.services}
    resp_kb = np.array([svc[d.service].response_kb for d in s.demand])
    req_kb = np.array([svc[d.service].payload_kb for d in s.demand])
    util = np.array([svc[d.service].target_utilization for d in s.demand])
    gb_per_year_out = ledger.gigabytes(demand.mean_rps, resp_kb, SECONDS_PER_YEAR)
    gb_per_year_in = ledger.gigabytes(demand.mean_rps, req_kb, SECONDS_PER_YEAR)
    traffic_gb = gb_per_year_in + gb_per_year_out
    sync_gb_per_year = np.array([d.data_gb_per_day for d in s.demand]) * HOURS_PER_YEAR / 24.0
    sync_cost = sync_gb_per_year * eco.network_price_per_gb
    site_price = pue[:n_opt] * price[:n_opt]
    cloud_parts = {k: np.zeros((n_cloud, n_c)) for k in CLOUD_PARTS}
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

    # --- SLO, sovereignty, security (the one policy module), per target row ------------------
    pool = float(min(v.cores for v in s.catalog.servers))
    queue = np.stack(
        [response_quantile_ms(demand.service_s, demand.cores_peak, util, q, pool) for q in (0.50, 0.95, 0.99)]
    )
    tree = s.tree
    book = PolicyBook(tree, s.policies.data_classes)
    classes = [d.data_class for d in s.demand]
    origin = tree.indices(d.jurisdiction for d in s.demand)
    t_jur = tree.indices([x.jurisdiction for x in sites_t] + [r.jurisdiction for r in s.cloud_regions])
    t_tier = np.array([x.security_tier for x in sites_t] + [r.security_tier for r in s.cloud_regions])
    sovereign = np.ascontiguousarray(book.sovereignty_mask(classes, origin, t_jur).T)
    tier_ok = np.ascontiguousarray(book.security_mask(classes, t_tier).T)

    # --- one pass over target row blocks: distance (never kept), SLO, and the solver's (F, C) arrays:
    # the allowed pairs and their cost, zero where not allowed ----------------------------------
    is_cloud_row = np.arange(n_t) >= n_rows_s
    slo_ok = np.zeros((n_t, n_c), dtype=bool)
    allowed = np.zeros((n_f, n_c), dtype=bool)
    cost = np.zeros((n_f, n_c))
    cloud_cost = np.zeros((n_cloud, n_c))
    for part in CLOUD_PARTS:
        cloud_cost = cloud_cost + cloud_parts[part]  # in CLOUD_PARTS order, as the plan sums them
    option_rows = target_row[:n_opt]  # options are in site order
    for a, b in _row_blocks(n_t, n_c):
        dist = distance_matrix_km(t_lat[a:b], t_lon[a:b], d_lat, d_lon)
        rtt = _rtt(dist, is_cloud_row[a:b, None], s.network, lat_model)
        slo_ok[a:b] = (
            slo_mask((rtt + queue[1][None, :]).T, demand.slo_p95_ms).T
            & slo_mask((rtt + queue[2][None, :]).T, demand.slo_p99_ms).T
        )
        ok = sovereign[a:b] & tier_ok[a:b] & slo_ok[a:b]
        sb = min(b, n_rows_s)
        if a < sb:
            transport = _transport(traffic_gb[None, :], dist[: sb - a], s.network)
            lo, hi = np.searchsorted(option_rows, [a, sb])
            for f in range(int(lo), int(hi)):
                allowed[f] = ok[option_rows[f] - a]
                row = _dynamic_energy(demand.busy_cores_mean, dyn_w_per_core[f], site_price[f])
                row += transport[option_rows[f] - a]
                row += sync_cost
                cost[f] = np.where(allowed[f], row, 0.0)
        for t in range(max(a, n_rows_s), b):
            f = n_opt + t - n_rows_s
            allowed[f] = ok[t - a]
            cost[f] = np.where(allowed[f], cloud_cost[t - n_rows_s], 0.0)

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
        target_row=target_row,
        row_site=row_site.astype(np.int64),
        annual_pue=pue,
        fixed_parts=parts,
        demand=demand,
        target_lat=t_lat,
        target_lon=t_lon,
        demand_lat=d_lat,
        demand_lon=d_lon,
        queue_ms=queue,
        sovereign=sovereign,
        tier_ok=tier_ok,
        slo_ok=slo_ok,
        dyn_w_per_core=dyn_w_per_core,
        energy_price=site_price,
        traffic_gb=traffic_gb,
        sync_cost=sync_cost,
        cloud_parts=cloud_parts,
        latency=lat_model,
        labels=labels,
        series=series,
    )
