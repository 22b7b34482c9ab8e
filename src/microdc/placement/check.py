"""An independent check of a plan against every hard rule of its scenario (`microdc check-plan`).

It trusts nothing the plan records. Capacities (cores, memory, storage, IT kW) are recomputed from the
catalog and the plan's chosen module, server type and server count; `n_plus` comes from the scenario's
redundancy policy and `allow_unserved` from the caller (the CLI's `--allow-unserved`); the annual PUE,
fixed cost of every site, every cost line, the objective, each assignment's round trip and p95 and the
per-service latency summary are recomputed, and every recorded value that disagrees is named
(`plan field sites[3].cores: plan says 640, catalog gives 320`).

It shares no sizing or latency code with the solver: demand sizes, device → target round trips and the
M/M/c response quantile come from :mod:`microdc.placement.check_physics`, a second implementation; the
sovereignty rule is read from the jurisdiction tree here, not from the policy module. Shared with the
planner are only the scenario model, its time-series loaders and the facility-power (PUE, design kW)
physics of :mod:`microdc.physics.site_power`.

Everything per assignment is numpy over arrays (grouped with bincount / unique), so a plan with 10,000
sites and 20,000 assignments checks in about a second (docs/benchmarks.md, "check-plan").

Each violation starts with the name of its rule (:data:`RULES`) and a colon.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from microdc.model import Scenario
from microdc.model.components import Module, ServerType
from microdc.model.policies import DataClassPolicy
from microdc.model.series import ScenarioSeries
from microdc.physics.site_power import annual_pue, design_power_kw
from microdc.placement.check_physics import demand_sizes, haversine_km, mmc_quantile_ms, round_trip_ms
from microdc.placement.options import DESIGN_OUTDOOR_C
from microdc.placement.plan import Plan

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: The stable name every violation message starts with (followed by ": "); "plan field" is followed by
#: the field's path (`plan field costs.total: ...`).
RULES: tuple[str, ...] = (
    "sovereignty",
    "security tier",
    "SLO",
    "capacity (cores)",
    "capacity (memory)",
    "capacity (storage)",
    "rack units",
    "module kW",
    "grid power cap",
    "redundancy",
    "unserved",
    "split",
    "catalog size",
    "modules per site",
    "unknown id",
    "plan field",
)

#: Relative tolerance on every recomputed quantity (cores, memory, kW, costs, objective, gap).
REL_TOL = 1e-6
#: Absolute floor of a cost line's tolerance, as a fraction of the recomputed total (summation noise).
COST_FLOOR = 1e-9
#: Milliseconds: the plan writes round trips, p50 and p95 rounded to 3 decimals.
MS_TOL = 1e-3
#: The plan writes the annual PUE rounded to 4 decimals.
PUE_TOL = 1e-4
#: Primary fractions plus the declared unserved fraction must sum to 1 within this.
FRACTION_TOL = 1e-5
#: Load over capacity, backup cover below the load lost, and SLO excess are violations beyond this
#: (the solver's own feasibility tolerance is ~1e-7 on these rows).
LOAD_TOL = 1e-6
#: At most this many "plan field" messages per field over the assignments (then one line with the count).
MAX_FIELD_MESSAGES = 20

HOURS_PER_YEAR = 8760.0
SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600.0
COST_LINES = (
    "site",
    "module_capex",
    "server_capex",
    "idle_energy",
    "storage_capex",
    "storage_energy",
    "site_dynamic_energy",
    "site_transport",
    "data_sync",
    "cloud_compute",
    "cloud_memory",
    "cloud_egress",
    "network_backhaul",
    "cloud_carbon",
    "cloud_storage",
    "unserved_penalty",
)


def rule_of(message: str) -> str | None:
    """The rule a violation message names (None if it names none of :data:`RULES`)."""
    for rule in RULES:
        if message.startswith(rule + (" " if rule == "plan field" else ":")):
            return rule
    return None


def _differs(plan_value: float, expected: float, rel: float = REL_TOL, floor: float = 1e-9) -> bool:
    if not (math.isfinite(plan_value) and math.isfinite(expected)):
        return plan_value != expected
    return abs(plan_value - expected) > rel * max(abs(plan_value), abs(expected)) + floor


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _money(x: float) -> str:
    return f"{x:,.2f}"


def crf(rate: float, years: float) -> float:
    """Capital recovery factor: the annual payment per unit of capex over its lifetime."""
    return 1.0 / years if rate == 0 else rate / (1.0 - (1.0 + rate) ** (-years))


def catalog_counts(m: Module, v: ServerType) -> set[int]:
    """Server counts the catalog offers for a module: its `server_counts` that fit, else quarter, half
    and full fill, where full is bounded by rack units and the module's IT envelope at peak power."""
    full = min(m.rack_units // v.rack_units, int(m.max_it_kw * 1000 // v.peak_w))
    if full <= 0:
        return set()
    if m.server_counts is not None:
        return {n for n in m.server_counts if n <= full}
    return {max(1, full // 4), max(1, full // 2), full}


def _where(pol: DataClassPolicy, store: bool) -> str | list[str]:
    return pol.store_in if store and pol.store_in is not None else pol.process_in


@dataclass
class _Record:
    """One built module as the catalog says it is (not as the plan says)."""

    index: int  # into plan.sites
    site: int  # into scenario.sites
    module: Module
    server: ServerType
    servers: int
    existing: bool  # the scenario's truth
    cores: float
    memory_gb: float
    storage_tb: float
    it_kw: float
    pue: float
    price: float  # energy + carbon price per kWh at the site
    fixed: dict[str, float]


class _Checker:
    def __init__(self, s: Scenario, plan: Plan, allow_unserved: bool):
        self.s, self.plan = s, plan
        self.allow = allow_unserved
        self.out: list[str] = []
        self.series = ScenarioSeries(s)
        self.size = demand_sizes(s)
        self.pool = float(min(v.cores for v in s.catalog.servers))
        self.site_index = {x.id: i for i, x in enumerate(s.sites)}
        self.region_index = {r.id: k for k, r in enumerate(s.cloud_regions)}
        self.demand_index = {d.id: c for c, d in enumerate(s.demand)}
        self.modules = {m.id: m for m in s.catalog.modules}
        self.servers = {v.id: v for v in s.catalog.servers}
        n_s = len(s.sites)
        self.n_sites = n_s
        tree = s.tree
        # Targets: scenario sites [0, S), then cloud regions [S, S + R).
        sites, regions = s.sites, s.cloud_regions
        self.t_lat = np.array([x.lat for x in sites] + [r.lat for r in regions], dtype=np.float64)
        self.t_lon = np.array([x.lon for x in sites] + [r.lon for r in regions], dtype=np.float64)
        self.t_jur = np.array(
            [tree.index[x.jurisdiction] for x in sites] + [tree.index[r.jurisdiction] for r in regions],
            dtype=np.int64,
        )
        self.t_tier = np.array(
            [x.security_tier for x in sites] + [r.security_tier for r in regions], dtype=np.int64
        )
        self.t_name = [x.id for x in sites] + [r.id for r in regions]
        self.t_cloud = np.arange(len(self.t_name)) >= n_s
        self.d_lat = np.array([d.lat for d in s.demand], dtype=np.float64)
        self.d_lon = np.array([d.lon for d in s.demand], dtype=np.float64)
        self.min_tier = np.array(
            [s.policy_for(d.data_class).min_security_tier for d in s.demand], dtype=np.int64
        )
        # Sovereignty: per (data class, origin), which jurisdiction codes may process AND store the data.
        combos: dict[tuple[str, str], int] = {}
        self.d_combo = np.array(
            [combos.setdefault((d.data_class, d.jurisdiction), len(combos)) for d in s.demand],
            dtype=np.int64,
        )
        self.legal = np.zeros((len(combos), len(tree.codes)), dtype=bool)
        chains = {code: set(tree.ancestors(code)) for code in tree.codes}
        for (cls, origin), k in combos.items():
            pol = s.policy_for(cls)
            for code, j in tree.index.items():
                self.legal[k, j] = all(
                    self._inside(chains[code], _where(pol, store), origin) for store in (False, True)
                )
        self.resp = {
            q: mmc_quantile_ms(self.size.service_s, self.size.cores_peak, self.size.utilization, q, self.pool)
            for q in (0.5, 0.95, 0.99)
        }
        self._intensity: dict[str | None, float] = {}
        self._year_c: dict[str, FloatArray] = {}
        self._year_dp: dict[str, FloatArray | None] = {}
        self._pue: dict[tuple[str, str, int, str], float] = {}
        self._design: dict[tuple[str, str, int], float] = {}

    @staticmethod
    def _inside(chain: set[str], where: str | list[str], origin: str) -> bool:
        if where == "any":
            return True
        codes = [origin] if where == "origin" else [where] if isinstance(where, str) else list(where)
        return any(c in chain for c in codes)

    def add(self, msg: str) -> None:
        self.out.append(msg)

    def field(
        self, name: str, plan_value: object, expected: object, source: str = "recomputed", note: str = ""
    ) -> None:
        self.add(f"plan field {name}: plan says {plan_value}, {source} {expected}{note}")

    # -- physics helpers with caches ---------------------------------------------------------------
    def intensity(self, zone: str | None) -> float:
        if zone not in self._intensity:
            self._intensity[zone] = self.series.mean_intensity(zone)
        return self._intensity[zone]

    def pue(self, m: Module, v: ServerType, n: int, climate: str) -> float:
        key = (m.id, v.id, n, climate)
        if key not in self._pue:
            if climate not in self._year_c:
                self._year_c[climate] = self.series.year_outdoor_c(climate)
                self._year_dp[climate] = self.series.year_dew_point_c(climate)
            it_w = n * (v.idle_w + 0.5 * (v.peak_w - v.idle_w))  # the planner's working point
            self._pue[key] = annual_pue(
                it_w, self._year_c[climate], m, it_capacity_w=n * v.peak_w, dew_point_c=self._year_dp[climate]
            )
        return self._pue[key]

    def design_kw(self, m: Module, v: ServerType, n: int) -> float:
        key = (m.id, v.id, n)
        if key not in self._design:
            self._design[key] = design_power_kw(n * v.peak_w / 1000.0, m, DESIGN_OUTDOOR_C)
        return self._design[key]

    # -- the plan's header ---------------------------------------------------------------------------
    def header(self) -> None:
        s, p = self.s, self.plan
        if p.scenario != s.name:
            self.add(f"plan field scenario: plan says {p.scenario!r}, the scenario is {s.name!r}")
        if p.currency != s.economics.currency:
            self.field(
                "currency", repr(p.currency), repr(s.economics.currency), "the scenario's economics say"
            )
        n_plus = s.policies.redundancy.n_plus
        if p.n_plus != n_plus:
            self.field("n_plus", p.n_plus, n_plus, "the scenario's policies.redundancy gives")

    # -- built sites ---------------------------------------------------------------------------------
    def sites(self) -> None:
        s, eco = self.s, self.s.economics
        self.records: list[_Record] = []
        installs: dict[int, Counter[tuple[str, str, int]]] = {
            i: Counter((x.module, x.server, x.count) for x in site.existing)
            for i, site in enumerate(s.sites)
            if site.existing
        }
        new_at: dict[int, list[int]] = defaultdict(list)
        for i, b in enumerate(self.plan.sites):
            where = f"sites[{i}]"
            k = self.site_index.get(b.site)
            if k is None:
                self.add(f"unknown id: built site {b.site!r} ({where}) is not a site of the scenario")
                continue
            m, v = self.modules.get(b.module), self.servers.get(b.server)
            if m is None or v is None:
                bad = f"module {b.module!r}" if m is None else f"server {b.server!r}"
                self.add(f"unknown id: site {b.site!r} ({where}) builds {bad}, which is not in the catalog")
                continue
            site, n = s.sites[k], b.servers
            existing = bool(site.existing)
            cores, mem, it_kw = n * v.cores, n * v.memory_gb, n * v.peak_w / 1000.0
            tb = n * v.storage_tb
            for name, said, truth in (
                ("cores", b.cores, cores),
                ("memory_gb", b.memory_gb, mem),
                ("storage_tb", b.storage_tb, tb),
                ("it_kw", b.it_kw, it_kw),
            ):
                if _differs(said, truth):
                    self.field(
                        f"{where}.{name}", _fmt(said), _fmt(truth), "catalog gives", f" ({n} × {v.id!r})"
                    )
            if b.existing != existing:
                truth_txt = "has installed modules" if existing else "has none installed"
                self.add(f"plan field {where}.existing: plan says {b.existing}, site {b.site!r} {truth_txt}")
            if existing:
                key = (m.id, v.id, n)
                if installs[k][key] > 0:
                    installs[k][key] -= 1
                else:
                    have = ", ".join(f"{c} × {sv!r} in {mm!r}" for mm, sv, c in site.existing)
                    self.add(
                        f"catalog size: existing site {b.site!r} ({where}) has {have} installed; the plan "
                        f"says {n} × {v.id!r} in {m.id!r}"
                    )
            else:
                new_at[k].append(i)
                if n * v.rack_units > m.rack_units:
                    self.add(
                        f"rack units: site {b.site!r} ({where}): {n} × {v.id!r} need {n * v.rack_units} U, "
                        f"module {m.id!r} has {m.rack_units} U"
                    )
                if n * v.peak_w > m.max_it_kw * 1000.0 * (1 + 1e-12):
                    self.add(
                        f"module kW: site {b.site!r} ({where}): {n} × {v.peak_w:g} W = {it_kw:g} kW at peak "
                        f"exceeds module {m.id!r}'s IT envelope of {m.max_it_kw:g} kW"
                    )
                if n > 0 and self.design_kw(m, v, n) > site.grid_power_kw * (1 + 1e-9):
                    self.add(
                        f"grid power cap: site {b.site!r} ({where}) needs {self.design_kw(m, v, n):.2f} kW "
                        "of "
                        f"facility power on a {DESIGN_OUTDOOR_C:g} °C day, its grid connection is "
                        f"{site.grid_power_kw:g} kW"
                    )
                if n not in catalog_counts(m, v):
                    sizes = ", ".join(str(c) for c in sorted(catalog_counts(m, v))) or "none"
                    self.add(
                        f"catalog size: site {b.site!r} ({where}): {n} × {v.id!r} is not a size the catalog "
                        f"offers for module {m.id!r} (it offers {sizes})"
                    )
            energy = (
                site.energy_price_per_kwh
                if site.energy_price_per_kwh is not None
                else eco.energy_price_per_kwh
            )
            price = energy + eco.carbon_price_per_tonne * self.intensity(site.grid_zone) / 1e6
            pue = self.pue(m, v, n, site.climate) if n > 0 else 1.0
            fixed = {
                "site": site.annual_cost,
                "module_capex": 0.0 if existing else m.capex * crf(eco.discount_rate, m.lifetime_years),
                "server_capex": 0.0 if existing else n * v.capex * crf(eco.discount_rate, v.lifetime_years),
                "idle_energy": n * v.idle_w * HOURS_PER_YEAR / 1000.0 * pue * price,
                # The servers' storage priced per TB where the catalog says so (docs/storage.md).
                "storage_capex": 0.0
                if existing
                else tb * v.storage_capex_per_tb * crf(eco.discount_rate, v.lifetime_years),
                "storage_energy": tb * v.storage_w_per_tb * HOURS_PER_YEAR / 1000.0 * pue * price,
            }
            if n > 0 and _differs(b.annual_pue, pue, rel=0.0, floor=PUE_TOL):
                self.field(
                    f"{where}.annual_pue",
                    b.annual_pue,
                    f"{pue:.4f}",
                    "recomputed",
                    f" (weather {site.climate!r})",
                )
            if _differs(b.fixed_cost, sum(fixed.values())):
                self.field(f"{where}.fixed_cost", _money(b.fixed_cost), _money(sum(fixed.values())))
            self.records.append(_Record(i, k, m, v, n, existing, cores, mem, tb, it_kw, pue, price, fixed))
        for k, idx in new_at.items():
            if len(idx) > 1:
                self.add(
                    f"modules per site: site {s.sites[k].id!r} gets {len(idx)} new modules "
                    f"({', '.join(f'sites[{i}]' for i in idx)}); at most one per site"
                )
        for k, left in installs.items():
            for (mm, sv, c), n_left in left.items():
                if n_left > 0:
                    self.add(
                        f"plan field sites: existing site {s.sites[k].id!r} ({c} × {sv!r} in {mm!r}) is "
                        "missing "
                        "from the plan (installed modules are always part of the fleet)"
                    )
        n_s = self.n_sites
        self.built = np.zeros(n_s, dtype=bool)
        self.cap_cores = np.zeros(n_s)
        self.cap_mem = np.zeros(n_s)
        self.cap_tb = np.zeros(n_s)
        self.what: dict[int, list[str]] = defaultdict(list)
        # Site energy per busy core-year of the assignments served there (min and max over its modules:
        # a site with several installed modules does not say which one serves a demand).
        self.dyn_lo = np.full(n_s, np.inf)
        self.dyn_hi = np.full(n_s, -np.inf)
        for r in self.records:
            self.built[r.site] = True
            self.cap_cores[r.site] += r.cores
            self.cap_mem[r.site] += r.memory_gb
            self.cap_tb[r.site] += r.storage_tb
            self.what[r.site].append(f"{r.servers} × {r.server.id!r}")
            rate = (
                (r.server.peak_w - r.server.idle_w)
                / r.server.cores
                * HOURS_PER_YEAR
                / 1000.0
                * r.pue
                * r.price
            )
            self.dyn_lo[r.site] = min(self.dyn_lo[r.site], rate)
            self.dyn_hi[r.site] = max(self.dyn_hi[r.site], rate)

    # -- assignments: ids, sovereignty, security tier, SLO, recorded latency ----------------------
    def assignments(self) -> None:
        s, n_s = self.s, self.n_sites
        rows = self.plan.assignments
        n = len(rows)
        c_idx = np.full(n, -1, dtype=np.int64)
        t_idx = np.full(n, -1, dtype=np.int64)
        backup = np.zeros(n, dtype=bool)
        frac = np.zeros(n)
        rec_rtt = np.zeros(n)
        rec_p95 = np.zeros(n)
        for i, a in enumerate(rows):
            ci = self.demand_index.get(a.demand)
            frac[i], rec_rtt[i], rec_p95[i] = a.fraction, a.rtt_ms, a.p95_ms
            backup[i] = a.role == "backup"
            if ci is None:
                self.add(
                    f"unknown id: assignments[{i}] is of demand {a.demand!r}, which is not in the scenario"
                )
                continue
            if a.kind == "site":
                k = self.site_index.get(a.target)
                if k is None:
                    self.add(
                        f"unknown id: {a.demand!r} is assigned to site {a.target!r}, "
                        "which is not a site of the scenario"
                    )
                    continue
                if not self.built[k]:
                    self.add(
                        f"unknown id: {a.demand!r} is assigned to site {a.target!r}, "
                        "which the plan does not build"
                    )
                    continue
                ti = k
            else:
                r = self.region_index.get(a.target)
                if r is None:
                    self.add(
                        f"unknown id: {a.demand!r} is assigned to cloud region {a.target!r}, "
                        "which is not in the scenario"
                    )
                    continue
                ti = n_s + r
            c_idx[i], t_idx[i] = ci, ti
        ok = c_idx >= 0
        self.a_pos: IntArray = np.flatnonzero(ok)  # positions in plan.assignments
        c, t = c_idx[ok], t_idx[ok]
        self.a_c: IntArray = c
        self.a_t: IntArray = t
        self.a_backup: npt.NDArray[np.bool_] = backup[ok]
        self.a_frac: FloatArray = frac[ok]
        role = np.where(self.a_backup, "backup", "primary")

        def name(j: int) -> tuple[str, str, str]:
            return s.demand[c[j]].id, self.t_name[t[j]], str(role[j])

        # Sovereignty (process and store inside what the data class allows for its origin).
        for j in np.flatnonzero(~self.legal[self.d_combo[c], self.t_jur[t]]):
            d = s.demand[c[j]]
            pol = s.policy_for(d.data_class)
            code = s.tree.codes[self.t_jur[t[j]]]
            store = f", store_in={pol.store_in!r}" if pol.store_in is not None else ""
            dn, tn, rl = name(int(j))
            self.add(
                f"sovereignty: {dn!r} ({d.data_class} data from {d.jurisdiction}) has its {rl} at {tn!r} in "
                f"{code}, outside process_in={pol.process_in!r}{store}"
            )
        # Security tier.
        for j in np.flatnonzero(self.t_tier[t] < self.min_tier[c]):
            dn, tn, rl = name(int(j))
            self.add(
                f"security tier: {dn!r} ({s.demand[c[j]].data_class}) needs tier {self.min_tier[c[j]]}; "
                f"its {rl} "
                f"at {tn!r} is tier {self.t_tier[t[j]]}"
            )
        # Latency: the checker's own round trip and response quantiles.
        dist = haversine_km(self.d_lat[c], self.d_lon[c], self.t_lat[t], self.t_lon[t])
        rtt = round_trip_ms(
            dist,
            self.t_cloud[t],
            access_ms=s.network.access_ms,
            edge_extra_ms=s.network.edge_extra_ms,
            metro_radius_km=s.network.metro_radius_km,
        )
        self.a_rtt = rtt
        for q, slo in ((0.95, self.size.slo_p95_ms), (0.99, self.size.slo_p99_ms)):
            pred = rtt + self.resp[q][c]
            for j in np.flatnonzero(pred > slo[c] + LOAD_TOL):
                dn, tn, rl = name(int(j))
                self.add(
                    f"SLO: {dn!r} ({s.demand[c[j]].service}) {rl} at {tn!r}: predicted p{round(q * 100)} "
                    f"{pred[j]:.3f} ms > the SLO's {slo[c[j]]:g} ms"
                )
        p95 = rtt + self.resp[0.95][c]
        for label, said, truth in (("rtt_ms", rec_rtt[ok], rtt), ("p95_ms", rec_p95[ok], p95)):
            bad = np.flatnonzero(np.abs(said - truth) > MS_TOL + REL_TOL * np.abs(truth))
            for j in bad[:MAX_FIELD_MESSAGES]:
                self.field(f"assignments[{self.a_pos[j]}].{label}", f"{said[j]:.3f}", f"{truth[j]:.3f}")
            if bad.size > MAX_FIELD_MESSAGES:
                self.add(f"plan field assignments[*].{label}: {bad.size - MAX_FIELD_MESSAGES} more disagree")

    # -- capacity --------------------------------------------------------------------------------------
    def capacity(self) -> None:
        n_s = self.n_sites
        at_site = self.a_t < n_s
        t, c, f = self.a_t[at_site], self.a_c[at_site], self.a_frac[at_site]
        primary = ~self.a_backup[at_site]
        checks = (
            ("cores", "capacity (cores)", self.size.cores_peak, self.cap_cores, "cores at peak", ""),
            ("memory", "capacity (memory)", self.size.memory_gb, self.cap_mem, "GB", " GB"),
            # Storage: each demand keeps its retained raw data where it is served (a backup keeps a copy).
            ("storage", "capacity (storage)", self.size.storage_tb, self.cap_tb, "TB stored", " TB"),
        )
        for _what, rule, usage, cap, unit, unit2 in checks:
            # Backups are reserved capacity (docs/planner.md, "Redundancy"): they count like primaries.
            total = np.bincount(t, weights=f * usage[c], minlength=n_s)
            prim = np.bincount(t[primary], weights=(f * usage[c])[primary], minlength=n_s)
            for k in np.flatnonzero(self.built & (total > cap * (1 + LOAD_TOL) + LOAD_TOL)):
                split = (
                    f" (primary {prim[k]:.3f} + reserved backup {total[k] - prim[k]:.3f})"
                    if total[k] - prim[k] > LOAD_TOL
                    else ""
                )
                self.add(
                    f"{rule}: site {self.s.sites[k].id!r} carries {total[k]:.3f} {unit}{split}, has "
                    f"{cap[k]:g}{unit2} ({' + '.join(self.what[int(k)])} in the catalog)"
                )

    # -- redundancy -----------------------------------------------------------------------------------
    def redundancy(self) -> None:
        if self.s.policies.redundancy.n_plus < 1:
            return
        n_s, n_t = self.n_sites, len(self.t_name)
        key = self.a_c * n_t + self.a_t
        prim = ~self.a_backup & (self.a_t < n_s)  # the cloud is no failure domain
        p_keys, p_inv = np.unique(key[prim], return_inverse=True)
        lost = np.bincount(p_inv, weights=self.a_frac[prim])
        b = self.a_backup
        b_keys, b_inv = np.unique(key[b], return_inverse=True)
        b_sum = np.bincount(b_inv, weights=self.a_frac[b])
        b_total = np.bincount(self.a_c[b], weights=self.a_frac[b], minlength=len(self.s.demand))
        pos: IntArray = np.asarray(np.searchsorted(b_keys, p_keys), dtype=np.int64)
        same = np.zeros(p_keys.size)
        hit = pos < b_keys.size
        hit[hit] = b_keys[pos[hit]] == p_keys[hit]
        same[hit] = b_sum[pos[hit]]
        dem: IntArray = p_keys // n_t
        site: IntArray = p_keys % n_t
        cover = b_total[dem] - same
        for j in np.flatnonzero(cover + LOAD_TOL < lost):
            self.add(
                f"redundancy: if site {self.t_name[site[j]]!r} fails, {self.s.demand[dem[j]].id!r} loses "
                f"{lost[j]:.3f} of its load but has only {cover[j]:.3f} backup elsewhere "
                f"(n_plus {self.s.policies.redundancy.n_plus} from the scenario's policies)"
            )

    # -- unserved demand ----------------------------------------------------------------------------
    def unserved(self) -> None:
        s = self.s
        n_c = len(s.demand)
        prim = ~self.a_backup
        served = np.bincount(self.a_c[prim], weights=self.a_frac[prim], minlength=n_c)
        declared = np.zeros(n_c)
        for i, u in enumerate(self.plan.unserved):
            ci = self.demand_index.get(u.demand)
            if ci is None:
                self.add(f"unknown id: unserved[{i}] is of demand {u.demand!r}, which is not in the scenario")
                continue
            if not (0.0 <= u.fraction <= 1.0):
                self.add(
                    f"plan field unserved[{i}].fraction: plan says {u.fraction:g}, a fraction is in [0, 1]"
                )
            declared[ci] += u.fraction
        self.declared = declared
        total = served + declared
        for c in np.flatnonzero(total < 1.0 - FRACTION_TOL):
            self.add(
                f"unserved: {s.demand[c].id!r} is served {served[c]:.6f} of its load and declared unserved "
                f"{declared[c]:.6f}; {1 - total[c]:.6f} of it is neither served nor declared"
            )
        for c in np.flatnonzero(total > 1.0 + FRACTION_TOL):
            self.add(
                f"plan field assignments: {s.demand[c].id!r} is served {served[c]:.6f} of its load plus "
                f"{declared[c]:.6f} declared unserved, more than all of it"
            )
        if self.allow:
            return
        dropped = np.flatnonzero(declared > 1e-9)
        if dropped.size == 0:
            return
        why = (
            " (the plan declares allow_unserved, but the check was not asked to allow it: --allow-unserved)"
            if self.plan.allow_unserved
            else ""
        )
        best = self.best_targets(dropped)
        for ci, (ti, p95) in zip(dropped.tolist(), best, strict=True):
            d = s.demand[ci]
            if ti >= 0:
                fix = (
                    f"it is servable: legal at {self.t_name[ti]!r} with predicted p95 {p95:.1f} ms "
                    f"within its {d.service!r} SLO"
                )
            else:
                fix = "no site or cloud region may serve it legally within its SLO"
            self.add(
                f"unserved: {d.id!r} leaves {declared[ci]:.6f} of its load unserved although unserved "
                f"demand is not allowed{why}; {fix}"
            )

    # -- split limit ----------------------------------------------------------------------------------
    def split(self) -> None:
        """policies.max_serving_sites: a demand source's primary load on at most K distinct targets."""
        k = self.s.policies.max_serving_sites
        said = self.plan.max_serving_sites
        if said is not None and said != k:
            self.field("max_serving_sites", said, k, "the scenario's policies.max_serving_sites is")
        prim = ~self.a_backup & (self.a_c >= 0) & (self.a_t >= 0) & (self.a_frac > 0)
        pairs = np.unique(np.stack([self.a_c[prim], self.a_t[prim]]), axis=1)
        n_targets = np.bincount(pairs[0], minlength=len(self.s.demand))
        for c in np.flatnonzero(n_targets > k).tolist():
            names = ", ".join(repr(self.t_name[t]) for t in pairs[1][pairs[0] == c].tolist())
            self.add(
                f"split: {self.s.demand[c].id!r} is served from {int(n_targets[c])} targets ({names}), more "
                f"than policies.max_serving_sites = {k}"
            )

    def unservable(self, per_source: FloatArray) -> float:
        """The part of the unserved penalty no plan can avoid: of demand with no legal, SLO-meeting target."""
        left = np.flatnonzero(per_source > 0)
        best = self.best_targets(left)
        return float(sum(per_source[c] for c, (t, _) in zip(left.tolist(), best, strict=True) if t < 0))

    def best_targets(self, demands: IntArray) -> list[tuple[int, float]]:
        """For each demand, the legal, SLO-meeting target with the lowest p95 (-1 when there is none)."""
        s = self.s
        n_s = self.n_sites
        hostable = np.ones(len(self.t_name), dtype=bool)
        smallest = min(
            (
                self.design_kw(m, v, n)
                for m in s.catalog.modules
                for v in s.catalog.servers
                for n in catalog_counts(m, v)
            ),
            default=math.inf,
        )
        hostable[:n_s] = np.array([bool(x.existing) or x.grid_power_kw >= smallest for x in s.sites])
        out: list[tuple[int, float]] = []
        for start in range(0, demands.size, 256):
            c = demands[start : start + 256]
            dist = haversine_km(
                self.d_lat[c][:, None], self.d_lon[c][:, None], self.t_lat[None], self.t_lon[None]
            )
            rtt = round_trip_ms(
                dist,
                self.t_cloud[None, :],
                access_ms=s.network.access_ms,
                edge_extra_ms=s.network.edge_extra_ms,
                metro_radius_km=s.network.metro_radius_km,
            )
            p95 = rtt + self.resp[0.95][c][:, None]
            p99 = rtt + self.resp[0.99][c][:, None]
            ok = (
                hostable[None, :]
                & self.legal[self.d_combo[c]][:, self.t_jur]
                & (self.t_tier[None, :] >= self.min_tier[c][:, None])
                & (p95 <= self.size.slo_p95_ms[c][:, None])
                & (p99 <= self.size.slo_p99_ms[c][:, None])
            )
            score = np.where(ok, p95, np.inf)
            arg = np.argmin(score, axis=1)
            for row, t in enumerate(arg.tolist()):
                out.append((t, float(score[row, t])) if ok[row, t] else (-1, math.inf))
        return out

    # -- costs, objective, bound and gap ------------------------------------------------------------
    def costs(self) -> None:
        s, p, eco = self.s, self.plan, self.s.economics
        size, n_s = self.size, self.n_sites
        lines = {k: 0.0 for k in COST_LINES}
        for rec in self.records:
            for part, v in rec.fixed.items():
                lines[part] += v
        prim = ~self.a_backup
        site_p = prim & (self.a_t < n_s)
        w = self.a_frac[site_p] * size.busy_cores_mean[self.a_c[site_p]]
        dyn_lo = float((w * self.dyn_lo[self.a_t[site_p]]).sum())
        dyn_hi = float((w * self.dyn_hi[self.a_t[site_p]]).sum())
        # Site-served traffic: requests and responses carried from the demand's access point to the MDC,
        # at the price of the first distance class whose max_km holds the distance; raw data synced.
        services = {v.id: v for v in s.services}
        kb_both = np.array(
            [services[d.service].payload_kb + services[d.service].response_kb for d in s.demand]
        )
        sc, st = self.a_c[site_p], self.a_t[site_p]
        km = haversine_km(self.d_lat[sc], self.d_lon[sc], self.t_lat[st], self.t_lon[st])
        price = np.full(km.shape, np.nan)
        for cls in reversed(s.network.transport_classes):
            bound = math.inf if cls.max_km is None else cls.max_km
            price = np.where(km <= bound, cls.price_per_gb, price)
        gb = self.a_frac[site_p] * size.mean_rps[sc] * kb_both[sc] * SECONDS_PER_YEAR / 1e6
        lines["site_transport"] = float((gb * price).sum())
        daily = np.array([d.data_gb_per_day for d in s.demand])
        lines["data_sync"] = float((self.a_frac[site_p] * daily[sc] * 365.0 * eco.network_price_per_gb).sum())
        cloud_p = prim & (self.a_t >= n_s)
        c, f = self.a_c[cloud_p], self.a_frac[cloud_p]
        regions = s.cloud_regions
        k = self.a_t[cloud_p] - n_s
        per_core = np.array([r.price_per_core_hour for r in regions] + [0.0])[k]
        per_gb = np.array([r.price_per_gb_hour for r in regions] + [0.0])[k]
        egress = np.array([r.egress_per_gb for r in regions] + [0.0])[k]
        kwh_per_core = (
            np.array([r.watts_per_core * r.pue for r in regions] + [0.0])[k] * HOURS_PER_YEAR / 1000.0
        )
        carbon = (
            np.array([self.intensity(r.grid_zone) for r in regions] + [0.0])[k]
            * eco.carbon_price_per_tonne
            / 1e6
        )
        resp_kb = np.array([services[d.service].response_kb for d in s.demand])[c]
        req_kb = np.array([services[d.service].payload_kb for d in s.demand])[c]
        billed = size.busy_cores_mean[c] / size.utilization[c]  # cloud cores at the target utilization
        lines["cloud_compute"] = float((f * billed * per_core * HOURS_PER_YEAR).sum())
        lines["cloud_memory"] = float((f * size.memory_gb[c] * per_gb * HOURS_PER_YEAR).sum())
        lines["cloud_egress"] = float(
            (f * size.mean_rps[c] * resp_kb * SECONDS_PER_YEAR / 1e6 * egress).sum()
        )
        lines["network_backhaul"] = float(
            (f * size.mean_rps[c] * req_kb * SECONDS_PER_YEAR / 1e6 * eco.network_price_per_gb).sum()
        )
        lines["cloud_carbon"] = float((f * billed * kwh_per_core * carbon).sum())
        per_gb_month = np.array([r.storage_per_gb_month for r in regions] + [0.0])[k]
        lines["cloud_storage"] = float((f * size.storage_tb[c] * 1000.0 * per_gb_month * 12.0).sum())
        per_source = size.mean_rps * eco.unserved_penalty_per_rps_year * self.declared
        priced = float(per_source.sum())
        lines["unserved_penalty"] = priced if self.allow else 0.0
        unservable = self.unservable(per_source) if (self.allow or p.allow_unserved) else 0.0
        if _differs(p.unservable_penalty, unservable, floor=COST_FLOOR * max(1.0, priced)):
            self.field(
                "unservable_penalty",
                _money(p.unservable_penalty),
                _money(unservable),
                "recomputed",
                " (the penalty of unserved demand no site or region may serve legally within its SLO)",
            )
        scale = abs(sum(lines.values()) + dyn_lo)
        floor = COST_FLOOR * max(1.0, scale)
        recorded = dict(p.costs)
        for name in COST_LINES:
            expected = lines[name]
            if name not in recorded:
                shown = expected if name != "site_dynamic_energy" else dyn_lo
                lines[name] = shown
                self.add(f"plan field costs.{name}: missing, recomputed {_money(shown)}")
                continue
            said = recorded[name]
            if name == "site_dynamic_energy":
                lo, hi = dyn_lo, dyn_hi
                if lo - (REL_TOL * abs(lo) + floor) <= said <= hi + REL_TOL * abs(hi) + floor:
                    lines[name] = said
                else:
                    lines[name] = lo
                    rng = _money(lo) if hi - lo <= floor else f"between {_money(lo)} and {_money(hi)}"
                    self.field("costs.site_dynamic_energy", _money(said), rng)
                continue
            if name == "unserved_penalty" and not self.allow and not _differs(said, priced, floor=floor):
                lines[name] = said  # unserved demand that is not allowed is reported as such, not as a cost
                continue
            if _differs(said, expected, floor=floor):
                self.field(f"costs.{name}", _money(said), _money(expected))
        for name in sorted(set(recorded) - set(COST_LINES) - {"total"}):
            self.add(
                f"plan field costs.{name}: plan says {_money(recorded[name])}, not a line of the cost model"
            )
        total = sum(lines.values())
        floor = COST_FLOOR * max(1.0, abs(total))
        if "total" not in recorded:
            self.add(f"plan field costs.total: missing, recomputed {_money(total)}")
        elif _differs(recorded["total"], total, floor=floor):
            self.field("costs.total", _money(recorded["total"]), _money(total))
        if _differs(p.objective, total, floor=floor):
            self.field(
                "objective", _money(p.objective), _money(total), "recomputed", " (the sum of the cost lines)"
            )
        if p.lower_bound is not None:
            if p.lower_bound > total * (1 + REL_TOL) + floor:
                self.add(
                    f"plan field lower_bound: plan says {_money(p.lower_bound)}, above the recomputed "
                    f"objective {_money(total)} (a lower bound cannot exceed a feasible plan's cost)"
                )
            if p.gap is not None:
                gap = (total - p.lower_bound) / max(abs(total - unservable), 1e-9)
                if abs(p.gap - gap) > REL_TOL * max(1.0, abs(gap)):
                    self.field(
                        "gap",
                        f"{p.gap:.6g}",
                        f"{gap:.6g}",
                        "recomputed",
                        " ((objective − lower_bound) / (objective − unservable_penalty))",
                    )

    # -- the per-service latency summary ----------------------------------------------------------------
    def latency(self) -> None:
        s, size = self.s, self.size
        prim = ~self.a_backup
        c, f = self.a_c[prim], self.a_frac[prim]
        rtt = self.a_rtt[prim]
        svc_of = np.array([d.service for d in s.demand], dtype=object)
        recorded = self.plan.latency
        for svc in s.services:
            where = f"latency.{svc.id}"
            lat = recorded.get(svc.id)
            if lat is None:
                self.add(f"plan field {where}: missing")
                continue
            for name, said, truth in (
                ("slo_p95_ms", lat.slo_p95_ms, svc.slo.p95_ms),
                ("slo_p99_ms", lat.slo_p99_ms, svc.slo.p99_ms),
            ):
                if said != truth:
                    self.field(f"{where}.{name}", said, truth, "the scenario's service says")
            mine = svc_of[c] == svc.id
            weight = f[mine] * size.mean_rps[c[mine]]
            keep = weight > 0
            weight = weight[keep]
            p50 = (rtt[mine] + self.resp[0.5][c[mine]])[keep]
            p95 = (rtt[mine] + self.resp[0.95][c[mine]])[keep]
            checks: list[tuple[str, float | None, Callable[[float], bool], str]] = []
            if weight.size == 0:
                for name in ("p50_ms", "p95_ms", "worst_p95_ms"):
                    checks.append((name, getattr(lat, name), lambda v: v is None, "none (nothing served)"))
            else:
                for name, values, q in (("p50_ms", p50, 0.5), ("p95_ms", p95, 0.95)):
                    lo, mid, hi = _weighted_quantile_bracket(values, weight, q)
                    checks.append((name, getattr(lat, name), _between(lo, hi), f"{mid:.3f}"))
                worst = float(p95.max())
                checks.append(("worst_p95_ms", lat.worst_p95_ms, _between(worst, worst), f"{worst:.3f}"))
            for name, said, good, shown in checks:
                if not good(said):  # type: ignore[arg-type]
                    self.field(f"{where}.{name}", said, shown)
        for name in sorted(set(recorded) - {v.id for v in s.services}):
            self.add(f"plan field latency.{name}: not a service of the scenario")

    def run(self) -> list[str]:
        self.header()
        self.sites()
        self.assignments()
        self.capacity()
        self.redundancy()
        self.unserved()
        self.split()
        self.costs()
        self.latency()
        return self.out


def _between(lo: float, hi: float) -> Callable[[float | None], bool]:
    def ok(v: float | None) -> bool:
        return v is not None and lo - MS_TOL - REL_TOL * abs(lo) <= v <= hi + MS_TOL + REL_TOL * abs(hi)

    return ok


def _weighted_quantile_bracket(
    values: FloatArray, weights: FloatArray, q: float
) -> tuple[float, float, float]:
    """The smallest value whose cumulative weight reaches q of the total, and the values a relative 1e-7
    wobble of that level would give (sums in another order, pairs below the plan's 1e-9 cut-off)."""
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(weights[order])
    level = q * cum[-1]
    last = v.size - 1
    idx = [min(int(np.searchsorted(cum, level * (1 + e))), last) for e in (-1e-7, 0.0, 1e-7)]
    return float(v[idx[0]]), float(v[idx[1]]), float(v[idx[2]])


def check_plan(s: Scenario, plan: Plan, *, allow_unserved: bool = False) -> list[str]:
    """Every violation of a hard rule and every recorded value that disagrees with the scenario, each a
    sentence that starts with its rule's name (:data:`RULES`). Empty: the plan is legal and honest.

    `allow_unserved` is whether demand may be left unserved (the CLI passes its `--allow-unserved`); it
    never comes from the plan, and neither does `n_plus`, which comes from the scenario.
    """
    return _Checker(s, plan, allow_unserved).run()
