"""One sweep row per (point, replica, alternative): the figures a planner compares, flat and typed.

Built from the simulator's summary (docs/simulator.md) and the plan, so the sweep reports exactly what
`microdc simulate` would. Cost lines are annualized from the simulated period (× 8760 h / period).
"""

from __future__ import annotations

import math
from typing import Any

from microdc.model import Scenario
from microdc.placement.plan import Plan
from microdc.report.comparison import sovereignty_violations

HOURS_PER_YEAR = 8760.0
COST_LINES = ("energy", "fixed_pro_rata", "cloud", "network", "total")


def _f(x: Any) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def spare_capacity(s: Scenario, plan: Plan) -> float:
    """Installed MDC cores over the CPU the plan's MDC-served demand needs at its mean rate, minus one
    (0.5 = 50 % headroom). NaN for an alternative without micro data centers (the cloud is elastic)."""
    cores = sum(b.cores for b in plan.sites)
    if cores <= 0:
        return math.nan
    demand = {d.id: d for d in s.demand}
    cpu = {sv.id: sv.cpu_seconds_per_request for sv in s.services}
    need = 0.0
    for a in plan.assignments:
        d = demand.get(a.demand)
        if a.kind == "site" and a.role == "primary" and d is not None:
            need += a.fraction * d.mean_rate_rps * cpu.get(d.service, 0.0)
    return cores / need - 1.0 if need > 0 else math.inf


def row(s: Scenario, plan: Plan, summary: dict[str, Any], exposure: dict[str, Any]) -> dict[str, Any]:
    """The metric columns of one simulated alternative."""
    cost = summary.get("cost", {})
    period_h = _f(cost.get("period_hours")) or math.nan
    scale = HOURS_PER_YEAR / period_h if period_h and period_h > 0 else math.nan
    out: dict[str, Any] = {
        "plan_status": plan.status,
        "plan_gap": _f(plan.gap),
        "built_sites": len(plan.sites),
        "spare_capacity": spare_capacity(s, plan),
    }
    for line in COST_LINES:
        out[f"cost_per_year.{line}"] = _f(cost.get(line)) * scale
    offered = within = 0.0
    for svc, lat in summary.get("latency", {}).items():
        out[f"p95_ms.{svc}"] = _f(lat.get("p95_ms"))
        out[f"p99_ms.{svc}"] = _f(lat.get("p99_ms"))
        out[f"slo_violation_rate.{svc}"] = _f(lat.get("slo_violation_rate"))
        n = _f(lat.get("served_requests")) + _f(lat.get("unserved_requests"))
        over = _f(lat.get("requests_over_slo_fraction"))
        if math.isfinite(n) and math.isfinite(over):
            offered += n
            within += n * (1.0 - over)
    energy = summary.get("energy_kwh", {})
    pue = summary.get("pue", {})
    unserved = summary.get("unserved", {})
    out.update(
        {
            "slo_violation_rate": _f(summary.get("slo_violation_rate")),
            "availability": within / offered if offered > 0 else math.nan,
            "unserved_fraction": _f(unserved.get("fraction")),
            "unserved_requests": _f(unserved.get("requests")),
            "energy_kwh": _f(energy.get("facility")),
            "it_energy_kwh": _f(energy.get("it")),
            "pue": _f(pue.get("overall")),
            "pue_sites": _f(pue.get("sites_annualized")),
            "carbon_kg": _f(summary.get("carbon_kg", {}).get("total")),
            "sovereignty_violations": len(sovereignty_violations(s, plan.assignments))
            + int(summary.get("sovereignty_violations") or 0),
            "faults": int(exposure.get("faults", 0)),
            "fault_hours": _f(exposure.get("fault_hours")),
            "demand_affected_rps_hours": _f(exposure.get("demand_affected_rps_hours")),
        }
    )
    return out
