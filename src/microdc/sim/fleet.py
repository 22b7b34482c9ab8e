"""The simulated fleet: the plan's built sites and the scenario's cloud regions as arrays, the plan's
assignments as workload pieces, and the check that a plan belongs to its scenario."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from microdc.model import Scenario
from microdc.model.components import Module
from microdc.model.errors import Problem, ScenarioError
from microdc.model.series import ScenarioSeries
from microdc.physics.geo import great_circle_km
from microdc.placement import ledger
from microdc.placement.online import (
    DemandSizes,
    FleetState,
    Pieces,
    WorkloadTable,
    demand_sizes,
    fleet_from_plan,
    workloads_from_plan,
)
from microdc.placement.plan import Plan
from microdc.placement.problem import capital_recovery_factor
from microdc.sim.rows import row_chunks, rowcount

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HOURS_PER_YEAR = 8760.0


def check_plan(s: Scenario, plan: Plan, plan_path: str | Path = "plan.json") -> None:
    """Every id the plan names must exist in the scenario; raise ScenarioError listing each mismatch."""
    file_ = str(plan_path)
    problems: list[Problem] = []

    def bad(field: str, message: str) -> None:
        problems.append(Problem(file_, None, field, message))

    if plan.scenario != s.name:
        bad("scenario", f"plan was made for scenario {plan.scenario!r}, not {s.name!r}")
    sites = {x.id for x in s.sites}
    modules = {m.id for m in s.catalog.modules}
    servers = {v.id for v in s.catalog.servers}
    regions = {r.id for r in s.cloud_regions}
    demand = {d.id for d in s.demand}
    built: set[str] = set()
    for i, b in enumerate(plan.sites):
        if b.site not in sites:
            bad(f"sites.{i}.site", f"unknown site {b.site!r} (not in scenario {s.name!r})")
        if b.site in built:
            bad(f"sites.{i}.site", f"site {b.site!r} is built twice")
        built.add(b.site)
        if b.module not in modules:
            bad(
                f"sites.{i}.module", f"unknown module {b.module!r}; catalog has: {', '.join(sorted(modules))}"
            )
        if b.server not in servers:
            bad(
                f"sites.{i}.server", f"unknown server {b.server!r}; catalog has: {', '.join(sorted(servers))}"
            )
        if b.servers <= 0 or b.cores <= 0:
            bad(f"sites.{i}.servers", "a built site needs at least one server and core")
    total: dict[str, float] = {}
    for i, a in enumerate(plan.assignments):
        if a.demand not in demand:
            bad(f"assignments.{i}.demand", f"unknown demand source {a.demand!r}")
        if a.kind == "site" and a.target not in built:
            what = "not built by this plan" if a.target in sites else "unknown"
            bad(f"assignments.{i}.target", f"site {a.target!r} is {what}")
        if a.kind == "cloud" and a.target not in regions:
            bad(f"assignments.{i}.target", f"unknown cloud region {a.target!r}")
        if a.role == "primary":
            total[a.demand] = total.get(a.demand, 0.0) + a.fraction
    for d, f in total.items():
        if f > 1.0 + 1e-6:
            bad("assignments", f"primary fractions of demand {d!r} sum to {f:.4f} > 1")
    if problems:
        raise ScenarioError(problems)


@dataclass(frozen=True)
class SimFleet:
    """Targets (S = built sites, then cloud regions) with what the physics needs, and the pieces."""

    scenario: Scenario
    plan: Plan
    ids: tuple[str, ...]
    n_sites: int
    is_cloud: BoolArray
    modules: tuple[Module | None, ...]  # per target (None for cloud)
    n_servers: FloatArray
    cores: FloatArray
    idle_w: FloatArray  # per server
    peak_w: FloatArray
    it_capacity_w: FloatArray  # module IT envelope (sizes UPS and misc loads)
    # Hard limits the twin checks each step (inf for cloud regions):
    grid_power_w: FloatArray  # the site's grid connection cap (scenario `grid_power_kw`), W of facility power
    module_it_w: FloatArray  # the built module's IT envelope (catalog `max_it_kw`), W of IT power
    memory_gb: FloatArray  # memory the site has: the plan's figure, at most what its servers have (catalog)
    storage_tb: FloatArray  # storage its servers have (catalog), TB; inf for cloud regions
    ups_kwh: FloatArray
    ups_eff: FloatArray
    climate: IntArray  # index into climates (-1 for cloud)
    zone: IntArray  # index into zones (-1: no grid zone)
    climates: tuple[str, ...]
    zones: tuple[str, ...]
    energy_price: FloatArray  # per kWh
    fixed_annual: FloatArray  # lease + annualized capex + storage energy (fixed, docs/storage.md), per year
    watts_per_core: FloatArray  # cloud
    cloud_pue: FloatArray
    price_per_core_hour: FloatArray
    price_per_gb_hour: FloatArray
    egress_per_gb: FloatArray
    storage_per_gb_month: FloatArray  # cloud
    placer_fleet: FleetState
    table: WorkloadTable
    pieces: Pieces
    sizes: DemandSizes


def build_fleet(s: Scenario, plan: Plan, plan_path: str | Path = "plan.json") -> SimFleet:
    check_plan(s, plan, plan_path)
    sizes = demand_sizes(s)
    pf = fleet_from_plan(s, plan)
    table, pieces = workloads_from_plan(s, plan, pf, sizes)
    site_by_id = {x.id: x for x in s.sites}
    modules = {m.id: m for m in s.catalog.modules}
    servers = {v.id: v for v in s.catalog.servers}
    eco = s.economics
    climates = tuple(sorted(s.timeseries.weather))
    zones = tuple(sorted(s.timeseries.carbon))
    n_b, n_c = len(plan.sites), len(s.cloud_regions)
    n = n_b + n_c
    mods: list[Module | None] = []
    arr = {
        k: np.zeros(n)
        for k in (
            "n_servers",
            "cores",
            "idle_w",
            "peak_w",
            "cap",
            "grid",
            "module",
            "memory",
            "ups_kwh",
            "ups_eff",
            "price",
            "fixed",
            "wpc",
            "pue",
            "pch",
            "pgh",
            "egress",
            "storage",
            "storage_price",
        )
    }
    series: ScenarioSeries | None = None  # loaded only if some storage draws power
    climate = np.full(n, -1, dtype=np.int64)
    zone = np.full(n, -1, dtype=np.int64)
    for i, b in enumerate(plan.sites):
        site = site_by_id[b.site]
        m, v = modules[b.module], servers[b.server]
        mods.append(m)
        arr["n_servers"][i] = b.servers
        arr["cores"][i] = b.cores
        arr["idle_w"][i], arr["peak_w"][i] = v.idle_w, v.peak_w
        arr["cap"][i] = max(m.max_it_kw * 1000.0, b.servers * v.peak_w)
        arr["grid"][i] = site.grid_power_kw * 1000.0
        arr["module"][i] = m.max_it_kw * 1000.0
        arr["memory"][i] = min(b.memory_gb, b.servers * v.memory_gb)
        tb = b.servers * v.storage_tb
        arr["storage"][i] = tb
        arr["ups_kwh"][i], arr["ups_eff"][i] = m.ups.energy_kwh, m.ups.efficiency
        arr["price"][i] = (
            site.energy_price_per_kwh if site.energy_price_per_kwh is not None else eco.energy_price_per_kwh
        )
        capex = (
            0.0
            if b.existing
            else (
                m.capex * capital_recovery_factor(eco.discount_rate, m.lifetime_years)
                + b.servers * v.capex * capital_recovery_factor(eco.discount_rate, v.lifetime_years)
            )
        )
        if not b.existing:
            capex += (
                tb * v.storage_capex_per_tb * capital_recovery_factor(eco.discount_rate, v.lifetime_years)
            )
        storage_energy = 0.0
        if tb * v.storage_w_per_tb > 0:
            series = series or ScenarioSeries(s)
            price = arr["price"][i] + eco.carbon_price_per_tonne * series.mean_intensity(site.grid_zone) / 1e6
            kwh = ledger.storage_energy_kwh(tb, v.storage_w_per_tb, b.annual_pue, HOURS_PER_YEAR)
            storage_energy = float(kwh) * price
        arr["fixed"][i] = site.annual_cost + capex + storage_energy
        climate[i] = climates.index(site.climate)
        zone[i] = zones.index(site.grid_zone)
    for k, r in enumerate(s.cloud_regions):
        i = n_b + k
        mods.append(None)
        arr["grid"][i] = arr["module"][i] = arr["memory"][i] = arr["storage"][i] = np.inf
        arr["storage_price"][i] = r.storage_per_gb_month
        arr["wpc"][i], arr["pue"][i] = r.watts_per_core, r.pue
        arr["pch"][i], arr["pgh"][i], arr["egress"][i] = (
            r.price_per_core_hour,
            r.price_per_gb_hour,
            r.egress_per_gb,
        )
        arr["price"][i] = eco.energy_price_per_kwh
        zone[i] = zones.index(r.grid_zone) if r.grid_zone is not None else -1
    return SimFleet(
        scenario=s,
        plan=plan,
        ids=pf.ids,
        n_sites=n_b,
        is_cloud=pf.is_cloud.copy(),
        modules=tuple(mods),
        n_servers=arr["n_servers"],
        cores=arr["cores"],
        idle_w=arr["idle_w"],
        peak_w=arr["peak_w"],
        it_capacity_w=arr["cap"],
        grid_power_w=arr["grid"],
        module_it_w=arr["module"],
        memory_gb=arr["memory"],
        storage_tb=arr["storage"],
        ups_kwh=arr["ups_kwh"],
        ups_eff=arr["ups_eff"],
        climate=climate,
        zone=zone,
        climates=climates,
        zones=zones,
        energy_price=arr["price"],
        fixed_annual=arr["fixed"],
        watts_per_core=arr["wpc"],
        cloud_pue=arr["pue"],
        price_per_core_hour=arr["pch"],
        price_per_gb_hour=arr["pgh"],
        egress_per_gb=arr["egress"],
        storage_per_gb_month=arr["storage_price"],
        placer_fleet=pf,
        table=table,
        pieces=pieces,
        sizes=sizes,
    )


def piece_transport(
    f: SimFleet, lat: npt.ArrayLike, lon: npt.ArrayLike, target: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Per routed piece (demand at lat/lon, served at fleet target): backhaul price and network
    electricity per GB of its requests and responses (placement.ledger, as the planner prices them)."""
    pf = f.placer_fleet
    km = great_circle_km(lat, lon, pf.lat[target], pf.lon[target])
    return ledger.device_transport(np.asarray(km), f.is_cloud[target], f.scenario)


@dataclass(frozen=True)
class StepCost:
    """Cost lines (placement.ledger.LOAD_LINES) per step of a block, its energy bill per step and
    target (MDC energy at its price plus the carbon price on all emissions) and its network
    electricity per step, kWh."""

    lines: dict[str, FloatArray]
    energy_cost: FloatArray
    transport_kwh: FloatArray


def _carried_sums(
    served_r: FloatArray, kb: FloatArray, secs: float, per_gb: tuple[FloatArray, ...]
) -> list[FloatArray]:
    """Per row, Σ over pieces of the GB each carries (ledger.gigabytes) times each of ``per_gb``, a
    chunk of rows at a time (sim.rows.row_chunks): every row is summed on its own, so the same sums
    as over the whole block, without block-sized temporaries."""
    b, p = served_r.shape
    out = [np.empty(b) for _ in per_gb]
    for sl in row_chunks(b, p):
        gb = ledger.gigabytes(served_r[sl], kb, secs)
        for o, x in zip(out, per_gb, strict=True):
            o[sl] = (gb * x).sum(axis=1)
    return out


def step_cost_lines(
    sim: Any,
    *,
    energy: FloatArray,
    carbon: FloatArray,
    served_r: FloatArray,
    synced: FloatArray,
    cloud_cores: FloatArray,
) -> StepCost:
    """Price twin steps (every argument steps × …, one step a row) with the planner's ledger: the
    plan's expected year is the sum of these."""
    f: SimFleet = sim.fleet
    eco = f.scenario.economics
    h, secs = sim.step_h, sim.step_s
    b, n = energy.shape
    cp = eco.carbon_price_per_tonne
    site_energy = np.where(f.is_cloud, 0.0, ledger.energy_cost(energy, f.energy_price, carbon, cp))
    cloud_carbon = np.where(f.is_cloud, ledger.carbon_cost(carbon, cp), 0.0)
    c = sim.r_cloud
    egress = np.zeros(b)
    req_gb = np.zeros(b)
    if c.size:
        svc = sim.r_service[c]
        resp = rowcount(sim.r_target[c], ledger.gigabytes(served_r[:, c], sim.v_response_kb[svc], secs), n)
        egress = (resp * f.egress_per_gb).sum(axis=1)
        req_gb = ledger.gigabytes(served_r[:, c], sim.v_payload_kb[svc], secs).sum(axis=1)
    transport_cost, transport_kwh = _carried_sums(
        served_r, sim.r_kb_both, secs, (sim.r_transport_price, sim.r_transport_kwh)
    )
    synced_gb = synced.sum(axis=1)
    memory = float(np.sum(sim.cloud_memory_gb * f.price_per_gb_hour * h))
    lines = {
        "site_energy": site_energy.sum(axis=1),
        "cloud_compute": (cloud_cores * f.price_per_core_hour * h).sum(axis=1),
        "cloud_memory": np.full(b, memory),
        "cloud_egress": egress,
        "network_backhaul": req_gb * eco.network_price_per_gb,
        "cloud_carbon": cloud_carbon.sum(axis=1),
        "site_transport": transport_cost,
        "data_sync": synced_gb * eco.network_price_per_gb,
        # Raw data kept in the cloud regions for this routing (sim.stored_gb, placement.ledger.stored_gb).
        "cloud_storage": np.full(
            b,
            float(
                ledger.cloud_storage_cost(
                    sim.stored_gb[f.is_cloud], f.storage_per_gb_month[f.is_cloud], h
                ).sum()
            ),
        ),
    }
    kwh = transport_kwh + synced_gb * ledger.sync_kwh_per_gb(f.scenario)
    return StepCost(lines=lines, energy_cost=site_energy + cloud_carbon, transport_kwh=kwh)
