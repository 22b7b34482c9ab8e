"""Staged expansion over a multi-year horizon: what to build in which period, at least net present cost.

Every period is the single-period planning problem of its period scenario (``build_problem``: demand,
prices and servers of that year), so every single-period rule (sovereignty, tier, SLO, capacity, grid
cap, redundancy, split limit) holds in every period by construction: the periods' HiGHS models
(``milp.build_model``) are stacked block-diagonally and tied together by the horizon's rows.

Decisions: y[f, t] = build option f (site × module × server type × count) stands in period t. Options
at a site form chains (same module and server type); per chain k and period t:

    [M]  sum_{tau in (t - Lm_k, t]} qm[k, tau] >= sum_{f in k} y[f, t]         module bought, still alive
    [S]  sum_{tau in (t - Ls_k, t]} qs[k, tau] >= sum_{f in k} n_f y[f, t]     servers bought, still alive
    [R]  sum_{f in k} y[f, t] >= sum_{f in k} y[f, t-1]                        unless allow_retire:
         sum_{f in k} n_f y[f, t] >= sum_{f in k} n_f y[f, t-1]                the chain stays and grows

Lm, Ls are the lifetimes in whole periods (at least one): hardware bought in period tau must be bought
again in period tau + L if it is still needed. Purchases are continuous; the rows form an interval
matrix, so for integer y the cheapest purchases are integer. The objective is the net present cost:

    sum_t D_t * (site, idle and assignment cost of period t per year)              opex, end of each year
  + sum_{k,t} (capex_kt * disc(start of t) - salvage_kt * disc(end of horizon)) * q[k, t]

with salvage the straight-line value left at the end of the horizon (without it, buying in the last
year would look like buying for one year). Brownfield modules are open in every period at no capex;
their age is not known, so they are not replaced within the horizon.

The rolling heuristic (:func:`myopic`) plans period by period with what stands already as sunk cost;
it warm-starts HiGHS, which then proves the bound of the whole horizon. When sites are interchangeable
in every period, HiGHS solves the same problem over counts of alike sites (placement.horizon_classes):
a hundred identical binaries per period never close the bound, a count does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from microdc.model import Scenario
from microdc.model.components import ServerType
from microdc.model.horizon import Horizon
from microdc.placement.facility import FacilityProblem, Solution
from microdc.placement.periods import horizon_of, period_scenario, shared_options
from microdc.placement.problem import PlanningProblem, build_problem

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


# ------------------------------------------------------------------------------------------------
# Discounting and purchases (pure)
# ------------------------------------------------------------------------------------------------
def opex_factor(rate: float, start_year: int, years: int) -> float:
    """Present value of one currency unit a year paid at the end of each year of a period."""
    return float(sum((1.0 + rate) ** -(y + 1) for y in range(start_year, start_year + years)))


def discount(rate: float, year: float) -> float:
    """Present value of one currency unit paid at the start of 0-based `year`."""
    return float((1.0 + rate) ** -year)


def life_periods(lifetime_years: float, step_years: int) -> int:
    """Whole periods a piece of hardware serves (it is replaced at the start of the period it would
    wear out in; at least one)."""
    return max(1, int(lifetime_years // step_years))


def salvage_fraction(start_year: int, lifetime_years: float, h: Horizon) -> float:
    """Share of the price left at the end of the horizon (straight line over the periods it serves)."""
    life = life_periods(lifetime_years, h.step_years) * h.step_years
    return max(0.0, (start_year + life - h.years) / life)


def server_price(v: ServerType) -> float:
    """Price of one server with its drives: storage capex per TB is bought with the server and lives as
    long (as the single-period planner annualizes it), so retained data that grows buys servers."""
    return float(v.capex + v.storage_tb * v.storage_capex_per_tb)


def greedy_purchases(counts: npt.ArrayLike, life: int) -> IntArray:
    """Fewest purchases per period so that what was bought in the last `life` periods covers `counts`:
    buy as late as possible (also the cheapest: a later unit costs less and is worth more at the end)."""
    n = np.asarray(counts, np.int64)
    q = np.zeros(n.shape[0], np.int64)
    for t in range(n.shape[0]):
        alive = int(q[max(0, t - life + 1) : t].sum())
        q[t] = max(0, int(n[t]) - alive)
    return q


# ------------------------------------------------------------------------------------------------
# The problem
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HorizonProblem:
    scenario: Scenario
    horizon: Horizon
    periods: list[PlanningProblem]  # one single-period problem per period (annualized capex, per year)
    n_opt: int  # site options (the same in every period); facilities [n_opt, F) are cloud regions
    chain: IntArray  # (n_opt,) chain of each site option, -1 for installed (brownfield) modules
    servers: IntArray  # (n_opt,) server count of each option
    chain_labels: list[tuple[str, str, str]]  # (site, module, server) per chain
    module_life: IntArray  # (K,) periods
    server_life: IntArray  # (K,)
    module_cost: FloatArray  # (T, K) net present cost of buying the module in period t
    server_cost: FloatArray  # (T, K) net present cost of buying one server in period t
    module_price: FloatArray  # (T, K) undiscounted
    server_price: FloatArray  # (T, K)
    module_salvage: FloatArray  # (T, K) undiscounted value left at the end
    server_salvage: FloatArray  # (T, K)
    opex: FloatArray  # (T,) present value of one unit of yearly cost in period t
    allow_unserved: bool = False

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    @property
    def n_chains(self) -> int:
        return len(self.chain_labels)


def build_horizon(s: Scenario, *, allow_unserved: bool = False) -> HorizonProblem:
    h = horizon_of(s)
    scen = [period_scenario(s, t) for t in range(h.n_periods)]
    opts = shared_options(scen)
    periods = [
        build_problem(p, allow_unserved=allow_unserved, options=o) for p, o in zip(scen, opts, strict=True)
    ]
    first = opts[0]
    n_opt = len(first)
    keys: dict[tuple[int, str, str], int] = {}
    chain = np.full(n_opt, -1, np.int64)
    for f, o in enumerate(first):
        if not o.existing:
            chain[f] = keys.setdefault((o.site, o.module, o.server), len(keys))
    labels = [(s.sites[i].id, m, v) for (i, m, v) in keys]
    n_k, n_t = len(keys), h.n_periods
    rate = s.economics.discount_rate
    mod_life = np.zeros(n_k, np.int64)
    srv_life = np.zeros(n_k, np.int64)
    mod_price = np.zeros((n_t, n_k))
    srv_price = np.zeros((n_t, n_k))
    mod_salv = np.zeros((n_t, n_k))
    srv_salv = np.zeros((n_t, n_k))
    for (_, m_id, v_id), k in keys.items():
        m0 = s.module(m_id)
        mod_life[k] = life_periods(m0.lifetime_years, h.step_years)
        srv_life[k] = life_periods(s.server(v_id).lifetime_years, h.step_years)
        for t, p in enumerate(scen):
            a = h.start_year(t)
            m, v = p.module(m_id), p.server(v_id)
            mod_price[t, k] = m.capex
            srv_price[t, k] = server_price(v)
            mod_salv[t, k] = m.capex * salvage_fraction(a, m.lifetime_years, h)
            srv_salv[t, k] = srv_price[t, k] * salvage_fraction(a, v.lifetime_years, h)
    start = np.array([discount(rate, h.start_year(t)) for t in range(n_t)])
    end = discount(rate, h.years)
    return HorizonProblem(
        scenario=s,
        horizon=h,
        periods=periods,
        n_opt=n_opt,
        chain=chain,
        servers=np.array([o.servers for o in first], np.int64),
        chain_labels=labels,
        module_life=mod_life,
        server_life=srv_life,
        module_cost=mod_price * start[:, None] - mod_salv * end,
        server_cost=srv_price * start[:, None] - srv_salv * end,
        module_price=mod_price,
        server_price=srv_price,
        module_salvage=mod_salv,
        server_salvage=srv_salv,
        opex=np.array([opex_factor(rate, h.start_year(t), h.step_years) for t in range(n_t)]),
        allow_unserved=allow_unserved,
    )


def yearly_opex_problem(pp: PlanningProblem) -> FacilityProblem:
    """The period's facility problem without annualized capex (the horizon buys hardware explicitly:
    modules, and servers with their drives, see :func:`server_price`). Storage energy is opex."""
    fixed = pp.fixed_parts["site"] + pp.fixed_parts["idle_energy"] + pp.fixed_parts["storage_energy"]
    return replace(pp.facility, fixed_cost=np.asarray(fixed, np.float64))


def _scaled(fp: FacilityProblem, factor: float) -> FacilityProblem:
    pen = None if fp.unserved_penalty is None else fp.unserved_penalty * factor
    return replace(
        fp, fixed_cost=fp.fixed_cost * factor, assign_cost=fp.assign_cost * factor, unserved_penalty=pen
    )


# ------------------------------------------------------------------------------------------------
# Schedules and their net present cost
# ------------------------------------------------------------------------------------------------
@dataclass
class Schedule:
    """A plan over the horizon: per period the open facilities and the assignment (a Solution of the
    period's single-period problem), and the purchases that keep the open hardware alive."""

    solutions: list[Solution]
    module_buys: IntArray  # (T, K)
    server_buys: IntArray  # (T, K)


def chain_counts(hp: HorizonProblem, opens: list[npt.NDArray[np.bool_]]) -> tuple[IntArray, IntArray]:
    """(T, K) modules (0/1) and servers standing in each chain per period."""
    n_t, n_k = hp.n_periods, hp.n_chains
    mods = np.zeros((n_t, n_k), np.int64)
    srvs = np.zeros((n_t, n_k), np.int64)
    for t, o in enumerate(opens):
        f = np.flatnonzero(o[: hp.n_opt] & (hp.chain >= 0))
        np.add.at(mods[t], hp.chain[f], 1)
        np.add.at(srvs[t], hp.chain[f], hp.servers[f])
    return mods, srvs


def schedule_from(hp: HorizonProblem, solutions: list[Solution]) -> Schedule:
    """Add the cheapest purchases to per-period solutions."""
    mods, srvs = chain_counts(hp, [s.open for s in solutions])
    mb = np.zeros_like(mods)
    sb = np.zeros_like(srvs)
    for k in range(hp.n_chains):
        mb[:, k] = greedy_purchases(mods[:, k], int(hp.module_life[k]))
        sb[:, k] = greedy_purchases(srvs[:, k], int(hp.server_life[k]))
    return Schedule(solutions, mb, sb)


def period_opex(hp: HorizonProblem, t: int, sol: Solution) -> float:
    """Yearly cost of period t without capex: site, idle energy, assignment and unserved penalty."""
    fp = yearly_opex_problem(hp.periods[t])
    fixed, assign, pen = fp.cost_parts(sol.open, sol.x, sol.unserved)
    return float(fixed + assign + pen)


def schedule_npv(hp: HorizonProblem, sch: Schedule) -> tuple[float, FloatArray, FloatArray]:
    """(net present cost, discounted capex per period, discounted opex per period)."""
    capex = (sch.module_buys * hp.module_cost).sum(axis=1) + (sch.server_buys * hp.server_cost).sum(axis=1)
    opex = np.array([hp.opex[t] * period_opex(hp, t, s) for t, s in enumerate(sch.solutions)])
    return float(capex.sum() + opex.sum()), capex, opex


def capacity_never_shrinks(hp: HorizonProblem, opens: list[npt.NDArray[np.bool_]]) -> bool:
    """Every chain's modules and servers are non-decreasing over the periods."""
    mods, srvs = chain_counts(hp, opens)
    return bool(np.all(np.diff(mods, axis=0) >= 0) and np.all(np.diff(srvs, axis=0) >= 0))
