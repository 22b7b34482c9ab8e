"""Check a horizon plan: every period with the single-period checker against its own period scenario,
capacity that never shrinks (unless retiring is allowed), the purchases that keep hardware alive, and
the net present cost, all recomputed here from the scenario (not from the planner's arrays)."""

from __future__ import annotations

from microdc.model import Scenario
from microdc.placement.check import check_plan
from microdc.placement.horizon_plan import HorizonPlan
from microdc.placement.periods import period_scenario

#: Rules of the horizon (each message starts with one, then a colon).
HORIZON_RULES: tuple[str, ...] = ("periods", "capacity never shrinks", "purchases", "net present cost")

REL_TOL = 1e-6


def _differs(a: float, b: float) -> bool:
    return abs(a - b) > REL_TOL * max(1.0, abs(a), abs(b))


def _lifetime_periods(years: float, step: int) -> int:
    return max(1, int(years // step))


def check_horizon_plan(s: Scenario, plan: HorizonPlan, *, allow_unserved: bool = False) -> list[str]:
    """Every violation, each a sentence starting with its rule (the single-period checker's rules, with
    the period named at the end, or one of :data:`HORIZON_RULES`)."""
    h = s.horizon
    if h is None:
        return ["periods: the plan has periods but the scenario has no horizon"]
    out: list[str] = []
    if len(plan.periods) != h.n_periods or plan.years != h.years or plan.step_years != h.step_years:
        return [
            f"periods: the plan has {len(plan.periods)} periods of {plan.step_years} years over {plan.years} "
            f"years; the scenario's horizon has {h.n_periods} of {h.step_years} over {h.years}"
        ]
    rate = s.economics.discount_rate
    scen = [period_scenario(s, t) for t in range(h.n_periods)]
    for t, (p, ps) in enumerate(zip(plan.periods, scen, strict=True)):
        if p.period != t + 1 or p.start_year != t * h.step_years:
            out.append(
                f"periods: period {t + 1} is recorded as period {p.period} starting in year {p.start_year}"
            )
        out += [f"{m} [period {t + 1}]" for m in check_plan(ps, p.plan, allow_unserved=allow_unserved)]

    # Standing hardware per (site, module, server): (modules, servers) in every period.
    stands: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for t, p in enumerate(plan.periods):
        for b in p.plan.sites:
            if b.existing:
                continue
            row = stands.setdefault((b.site, b.module, b.server), [(0, 0)] * h.n_periods)
            m, n = row[t]
            row[t] = (m + 1, n + b.servers)
    if not h.allow_retire:
        for t in range(1, h.n_periods):
            for key, row in stands.items():
                if row[t][0] < row[t - 1][0] or row[t][1] < row[t - 1][1]:
                    out.append(
                        f"capacity never shrinks: {key[0]} ({key[1]} with {key[2]}) has {row[t - 1][1]} "
                        f"servers in period {t} but {row[t][1]} in period {t + 1}; retiring is not allowed"
                    )
            cores = _site_capacity(plan, t, "cores")
            before = _site_capacity(plan, t - 1, "cores")
            for site, c in before.items():
                if cores.get(site, 0.0) < c - 1e-9:
                    out.append(
                        f"capacity never shrinks: site {site} has {c:g} cores in period {t} but "
                        f"{cores.get(site, 0.0):g} in period {t + 1}"
                    )

    # Purchases: as late as possible, enough that what was bought within its lifetime stands.
    bought: dict[tuple[str, str, str, int], tuple[int, int]] = {}
    for t, p in enumerate(plan.periods):
        for buy in p.purchases:
            bought[(buy.site, buy.module, buy.server, t)] = (buy.modules, buy.servers)
    want: dict[tuple[str, str, str, int], tuple[int, int]] = {}
    for key, row in stands.items():
        m_life = _lifetime_periods(s.module(key[1]).lifetime_years, h.step_years)
        v_life = _lifetime_periods(s.server(key[2]).lifetime_years, h.step_years)
        qm: list[int] = []
        qs: list[int] = []
        for t in range(h.n_periods):
            qm.append(max(0, row[t][0] - sum(qm[max(0, t - m_life + 1) : t])))
            qs.append(max(0, row[t][1] - sum(qs[max(0, t - v_life + 1) : t])))
            if qm[t] or qs[t]:
                want[(*key, t)] = (qm[t], qs[t])
    for bkey in sorted(set(bought) | set(want)):
        got, need = bought.get(bkey, (0, 0)), want.get(bkey, (0, 0))
        if got != need:
            out.append(
                f"purchases: {bkey[0]} ({bkey[1]} with {bkey[2]}) in period {bkey[3] + 1}: the plan buys "
                f"{got[0]} module(s) and {got[1]} server(s); the standing hardware needs {need[0]} and "
                f"{need[1]}"
            )

    # Net present cost, recomputed from each period's own prices.
    total = 0.0
    for t, (p, ps) in enumerate(zip(plan.periods, scen, strict=True)):
        start = t * h.step_years
        capex = 0.0
        present = 0.0
        for (_site, mod, srv, tt), (nm, ns) in want.items():
            if tt != t:
                continue
            mt, vt = ps.module(mod), ps.server(srv)
            unit = vt.capex + vt.storage_tb * vt.storage_capex_per_tb  # a server with its drives
            price = nm * mt.capex + ns * unit
            salvage = nm * mt.capex * _left(start, mt.lifetime_years, h.step_years, h.years)
            salvage += ns * unit * _left(start, vt.lifetime_years, h.step_years, h.years)
            capex += price
            present += price / (1 + rate) ** start - salvage / (1 + rate) ** h.years
        costs = p.plan.costs
        capex_lines = ("module_capex", "server_capex", "storage_capex")  # bought, not annualized
        opex_year = costs["total"] - sum(costs.get(k, 0.0) for k in capex_lines)
        opex = opex_year * sum((1 + rate) ** -(y + 1) for y in range(start, start + h.step_years))
        for name, recorded, expected in (
            ("capex", p.capex, capex),
            ("opex per year", p.opex_per_year, opex_year),
            ("discounted capex", p.discounted_capex, present),
            ("discounted opex", p.discounted_opex, opex),
            ("period total", p.npv, present + opex),
        ):
            if _differs(recorded, expected):
                out.append(
                    f"net present cost: period {t + 1} records {name} {recorded:.6g}, "
                    f"recomputed {expected:.6g}"
                )
        total += present + opex
    if _differs(plan.npv, total):
        out.append(f"net present cost: the plan records {plan.npv:.8g}, recomputed {total:.8g}")
    if plan.lower_bound is not None and plan.lower_bound > plan.npv * (1 + REL_TOL) + 1e-6:
        out.append(f"net present cost: lower bound {plan.lower_bound:.8g} above the plan's {plan.npv:.8g}")
    return out


def _left(start: int, lifetime: float, step: int, years: int) -> float:
    life = _lifetime_periods(lifetime, step) * step
    return max(0.0, (start + life - years) / life)


def _site_capacity(plan: HorizonPlan, t: int, what: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for b in plan.periods[t].plan.sites:
        out[b.site] = out.get(b.site, 0.0) + float(getattr(b, what))
    return out
