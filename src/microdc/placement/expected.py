"""The plan's year when nothing fails: every hour of the planning year, each assignment's mean load times
its profile, that hour's weather and grid intensity, through the same functions the twin calls each
step (server power, ``physics.site_power.module_power``, ``placement.ledger``).

The solver prices energy linearly (a PUE at a fixed working point), which it must to stay a MILP; this
evaluation is what the plan predicts the fleet will really draw and pay, and what the twin is held to
(``docs/fidelity.md``): with no faults and no demand noise, the twin's energy, PUE and cost lines match
it within 1 %.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from microdc.model import Scenario
from microdc.model.profiles import factors
from microdc.model.scenario import FLAT_PROFILE
from microdc.model.series import ScenarioSeries
from microdc.physics.geo import great_circle_km
from microdc.physics.power import server_power_linear_w
from microdc.physics.site_power import module_power
from microdc.placement import ledger
from microdc.placement.plan import ExpectedYear, Plan

FloatArray = npt.NDArray[np.float64]

ENERGY_PARTS = ("it", "cooling", "ups_loss", "distribution_loss", "misc")
#: The plan's fixed cost lines (not load-dependent), carried into the expected year as priced.
FIXED_LINES = ("site", "module_capex", "server_capex", "storage_capex", "storage_energy")


def planning_hours(s: Scenario, hours: int = int(ledger.HOURS_PER_YEAR)) -> pd.DatetimeIndex:
    """The planning year's hours in UTC, from the scenario's start date."""
    return pd.date_range(pd.Timestamp(s.start, tz="UTC"), periods=hours, freq="h")


def expected_year(s: Scenario, plan: Plan, series: ScenarioSeries | None = None) -> ExpectedYear:
    """Energy, PUE, carbon and every cost line of the plan's year, hour by hour (see the module doc);
    ``series``: the scenario's weather and carbon if already loaded (the planner's)."""
    times = planning_hours(s)
    hours = float(len(times))
    series = series or ScenarioSeries(s)
    eco = s.economics
    sites = {x.id: x for x in s.sites}
    regions = {r.id: r for r in s.cloud_regions}
    demand = {d.id: d for d in s.demand}
    services = {v.id: v for v in s.services}
    built = {b.site: k for k, b in enumerate(plan.sites)}
    n_b = len(plan.sites)
    region_ids = [r.id for r in s.cloud_regions]
    n_t = n_b + len(region_ids)
    profiles = {FLAT_PROFILE: np.ones(len(times))}
    for name, prof in s.profiles.items():
        profiles[name] = factors(prof, times, s.base_dir)
    names = sorted(profiles)
    # Per target and profile: busy cores (sites) or billed cores (cloud) at a factor of 1, and the
    # request and response GB per second, so that an hour's load is weight × that hour's factor.
    busy = np.zeros((n_t, len(names)))
    billed = np.zeros((n_t, len(names)))
    transport_cost_rate = np.zeros(len(names))  # currency per second at factor 1
    transport_kwh_rate = np.zeros((n_t, len(names)))  # kWh per second at factor 1
    req_gb = np.zeros((n_t, len(names)))
    resp_gb = np.zeros((n_t, len(names)))
    memory = np.zeros(n_t)
    stored_gb = np.zeros(n_t)  # raw data kept at the target (placement.ledger.stored_gb)
    sync_gb_day = np.zeros(n_t)
    from microdc.placement.problem import size_demand

    sizes = size_demand(s)  # the memory a cloud region bills (peak-sized, as the twin reserves it)
    d_index = {d.id: i for i, d in enumerate(s.demand)}
    keep_gb = ledger.demand_stored_gb(s)
    for a in plan.primary():
        d = demand[a.demand]
        v = services[d.service]
        p = names.index(d.profile if d.profile in profiles else FLAT_PROFILE)
        rate = d.mean_rate_rps * a.fraction
        if a.kind == "site":
            t = built[a.target]
            site = sites[a.target]
            lat, lon, cloud = site.lat, site.lon, False
            busy[t, p] += rate * v.cpu_seconds_per_request
            sync_gb_day[t] += d.data_gb_per_day * a.fraction
        else:
            t = n_b + region_ids.index(a.target)
            r = regions[a.target]
            lat, lon, cloud = r.lat, r.lon, True
            billed[t, p] += float(ledger.cloud_cores(rate, v.cpu_seconds_per_request, v.target_utilization))
            memory[t] += sizes.memory_gb[d_index[d.id]] * a.fraction
            stored_gb[t] += keep_gb[d_index[d.id]] * a.fraction
        km = great_circle_km(d.lat, d.lon, lat, lon)
        price, kwh = ledger.device_transport(km, cloud, s)
        gb_per_s = float(ledger.gigabytes(rate, v.payload_kb + v.response_kb, 1.0))
        transport_cost_rate[p] += gb_per_s * float(price)
        transport_kwh_rate[t, p] += gb_per_s * float(kwh)
        req_gb[t, p] += float(ledger.gigabytes(rate, v.payload_kb, 1.0))
        resp_gb[t, p] += float(ledger.gigabytes(rate, v.response_kb, 1.0))
    fac = np.array([profiles[n] for n in names])  # (profiles, hours)
    module_of = {m.id: m for m in s.catalog.modules}
    server_of = {v.id: v for v in s.catalog.servers}
    site_pue: dict[str, float] = {}
    outdoor, dew_points, zone_intensity = {}, {}, {}  # per climate / zone: each series put on the hours once
    for b in plan.sites:
        site = sites[b.site]
        if site.climate not in outdoor:
            outdoor[site.climate] = series.outdoor_c(site.climate, times)
            dew_points[site.climate] = series.dew_point_c(site.climate, times)
        if site.grid_zone not in zone_intensity:
            zone_intensity[site.grid_zone] = series.intensity(site.grid_zone, times)
    cp = eco.carbon_price_per_tonne
    # One target at a time, hour by hour, summed as it goes: memory stays one year of one target, not
    # (targets x hours) arrays (an open-every-site baseline at 10,000 sites would need ~8 GB of those).
    e_parts = dict.fromkeys(ENERGY_PARTS, 0.0)  # Wh
    e_sites_it = e_sites = carbon_sites = site_energy = 0.0
    for k, b in enumerate(plan.sites):
        site, m, srv = sites[b.site], module_of[b.module], server_of[b.server]
        intensity = zone_intensity[site.grid_zone]
        kwh_price = (
            site.energy_price_per_kwh if site.energy_price_per_kwh is not None else eco.energy_price_per_kwh
        )
        util = np.minimum((busy[k] @ fac) / max(b.cores, 1e-9), 1.0)
        it_w = server_power_linear_w(util, srv.idle_w, srv.peak_w) * b.servers
        fp = module_power(
            it_w,
            outdoor[site.climate],
            m,
            max(m.max_it_kw * 1000.0, b.servers * srv.peak_w),
            dew_points[site.climate],
        )
        parts = {
            "it": it_w,
            "cooling": fp.cooling_w,
            "ups_loss": fp.ups_loss_w,
            "distribution_loss": fp.distribution_loss_w,
            "misc": fp.misc_w,
        }
        total_k = np.sum([np.broadcast_to(parts[x], it_w.shape) for x in ENERGY_PARTS], axis=0)
        site_pue[b.site] = round(float(total_k.sum() / max(it_w.sum(), 1e-300)), 6)
        for x in ENERGY_PARTS:
            e_parts[x] += float(np.sum(parts[x]) * (1 if np.ndim(parts[x]) else it_w.size))
        energy = total_k / 1000.0  # kWh per hour-long step
        carbon = energy * intensity
        e_sites_it += float(it_w.sum() / 1000.0)
        e_sites += float(energy.sum())
        carbon_sites += float(carbon.sum())
        site_energy += float(ledger.energy_cost(energy, kwh_price, carbon, cp).sum())
    e_cloud_it = e_cloud = carbon_cloud = cloud_compute = 0.0
    for j, rid in enumerate(region_ids):
        k, r = n_b + j, regions[rid]
        cores_h = billed[k] @ fac
        it_w = cores_h * r.watts_per_core
        cooling_w = it_w * (r.pue - 1.0)
        intensity_r = series.intensity(r.grid_zone, times) if r.grid_zone is not None else 0.0
        energy = (it_w + cooling_w) / 1000.0
        carbon = energy * intensity_r
        e_parts["it"] += float(it_w.sum())
        e_parts["cooling"] += float(cooling_w.sum())
        e_cloud_it += float(it_w.sum() / 1000.0)
        e_cloud += float(energy.sum())
        carbon_cloud += float(np.sum(carbon))
        cloud_compute += float((cores_h * r.price_per_core_hour).sum())
    is_cloud = np.arange(n_t) >= n_b
    seconds = 3600.0 * fac.sum(axis=1)  # factor-seconds per profile over the year
    sync_gb = sync_gb_day * hours / 24.0
    transport_kwh = float((transport_kwh_rate * seconds[None, :]).sum()) + float(
        sync_gb.sum()
    ) * ledger.sync_kwh_per_gb(s)
    reg = s.cloud_regions
    # Fixed lines as the plan priced them; storage energy is constant power at the annual PUE (storage.md).
    costs = {k: float(plan.costs.get(k, 0.0)) for k in FIXED_LINES}
    costs["site_energy"] = site_energy
    costs["cloud_compute"] = cloud_compute
    costs["cloud_memory"] = float(
        sum(memory[n_b + j] * r.price_per_gb_hour * hours for j, r in enumerate(reg))
    )
    costs["cloud_egress"] = float(
        sum((resp_gb[n_b + j] * seconds).sum() * r.egress_per_gb for j, r in enumerate(reg))
    )
    costs["network_backhaul"] = float((req_gb[is_cloud] * seconds[None, :]).sum() * eco.network_price_per_gb)
    costs["cloud_carbon"] = float(ledger.carbon_cost(carbon_cloud, cp))
    costs["site_transport"] = float((transport_cost_rate * seconds).sum())
    costs["data_sync"] = float(sync_gb.sum() * eco.network_price_per_gb)
    costs["cloud_storage"] = float(
        sum(
            ledger.cloud_storage_cost(stored_gb[n_b + j], r.storage_per_gb_month, hours)
            for j, r in enumerate(reg)
        )
    )
    costs["total"] = float(sum(costs.values()))
    e_parts = {k: v / 1000.0 for k, v in e_parts.items()}
    e_all = e_sites + e_cloud

    def ratio(a: float, b: float) -> float | None:
        return round(a / b, 6) if b > 0 else None

    return ExpectedYear(
        hours=len(times),
        energy_kwh={
            **{k: round(v, 3) for k, v in e_parts.items()},
            "facility": round(e_all, 3),
            "sites_it": round(e_sites_it, 3),
            "sites_facility": round(e_sites, 3),
            "cloud_it": round(e_cloud_it, 3),
            "cloud_facility": round(e_cloud, 3),
            "transport": round(transport_kwh, 3),
        },
        pue={
            "sites_annualized": ratio(e_sites, e_sites_it),
            "cloud": ratio(e_cloud, e_cloud_it),
            "overall": ratio(e_all, e_sites_it + e_cloud_it),
        },
        carbon_kg={
            "sites": round(carbon_sites / 1000.0, 3),
            "cloud": round(carbon_cloud / 1000.0, 3),
        },
        costs={k: round(v, 2) for k, v in costs.items()},
        site_pue=site_pue,
    )
