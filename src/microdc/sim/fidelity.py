"""Plan = twin when nothing fails: run the twin over the planning year with no faults and no demand
noise, and set its energy, PUE, cost lines and per-service p95 beside the plan's expected year
(placement.expected) and the planner's predicted p95. docs/fidelity.md shows the table
(``python tools/fidelity_table.py``); tests/sim/test_fidelity.py holds it to 1 %.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from microdc.model import Scenario
from microdc.placement.expected import FIXED_LINES
from microdc.placement.ledger import LOAD_LINES
from microdc.placement.plan import Plan
from microdc.sim.config import SimConfig
from microdc.sim.engine import simulate

#: Energy parts compared (kWh over the year).
ENERGY = ("it", "cooling", "ups_loss", "distribution_loss", "misc", "facility", "transport")
PUE = ("sites_annualized", "overall")


def _num(x: Any) -> float | None:
    """A finite float, or None (summaries write NaN where there is nothing to divide)."""
    if x is None:
        return None
    v = float(x)
    return v if math.isfinite(v) else None


@dataclass(frozen=True)
class Row:
    """One quantity: the plan's expectation, the twin's figure and their relative difference."""

    group: str  # energy_kwh | pue | cost | p95_ms
    name: str
    plan: float | None
    twin: float | None

    @property
    def rel_diff(self) -> float | None:
        if self.plan is None or self.twin is None:
            return None
        if self.plan == 0:
            return 0.0 if self.twin == 0 else float("inf")
        return (self.twin - self.plan) / abs(self.plan)


def quiet_year(days: float = 365.0, step_s: int = 3600) -> SimConfig:
    """The twin with nothing random: no faults (none are given), no demand noise of either kind."""
    return SimConfig(days=days, step_s=step_s, noise_cv=0.0, sampling_noise=False)


def run_quiet_year(s: Scenario, plan: Plan, step_s: int = 3600) -> dict[str, Any]:
    """The twin's summary over the planning year (from the scenario's start date) with nothing random."""
    return simulate(s, plan, quiet_year(step_s=step_s)).summary


def compare(plan: Plan, summary: dict[str, Any]) -> list[Row]:
    """Every compared quantity of a plan's expected year against a twin summary of the same year."""
    exp = plan.expected
    if exp is None:
        raise ValueError("the plan has no expected year (written by a planner before this field existed)")
    rows: list[Row] = []
    for k in ENERGY:
        rows.append(Row("energy_kwh", k, _num(exp.energy_kwh.get(k)), _num(summary["energy_kwh"].get(k))))
    for k in PUE:
        rows.append(Row("pue", k, _num(exp.pue.get(k)), _num(summary["pue"].get(k))))
    cost = summary["cost"]
    fixed = sum(exp.costs.get(k, 0.0) for k in FIXED_LINES)
    rows.append(Row("cost", "fixed (site, capex)", fixed, cost["fixed_pro_rata"]))
    for k in LOAD_LINES:
        rows.append(Row("cost", k, _num(exp.costs.get(k)), _num(cost["lines"].get(k))))
    rows.append(Row("cost", "total", exp.costs.get("total"), cost["total"]))
    for svc, lat in plan.latency.items():
        twin = summary["latency"].get(svc, {}).get("p95_ms")
        rows.append(Row("p95_ms", svc, _num(lat.p95_ms), _num(twin)))
    return rows


def violations(rows: list[Row], rel_tol: float = 0.01, abs_floor: float = 1e-6) -> list[str]:
    """What breaks plan = twin: a figure more than ``rel_tol`` off the plan's (or above ``abs_floor``
    where the plan says zero), or a service's twin p95 above the planner's predicted p95."""
    out: list[str] = []
    for r in rows:
        if r.plan is None or r.twin is None:
            if r.plan != r.twin and r.group != "p95_ms":
                out.append(f"{r.group}.{r.name}: plan {r.plan}, twin {r.twin}")
            continue
        if r.group == "p95_ms":
            if r.twin > r.plan * (1 + 1e-9):
                out.append(f"p95_ms.{r.name}: twin {r.twin:.3f} ms above the planner's {r.plan:.3f} ms")
            continue
        if abs(r.twin - r.plan) > rel_tol * abs(r.plan) + abs_floor:
            out.append(f"{r.group}.{r.name}: twin {r.twin:.6g} vs plan {r.plan:.6g} ({r.rel_diff:+.2%})")
    return out


def markdown(title: str, rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [f"**{title}**", "", "| quantity | plan | twin | twin − plan |", "|---|---:|---:|---:|"]
    for r in rows:
        plan = "—" if r.plan is None else f"{r.plan:,.4g}" if r.group in ("pue",) else f"{r.plan:,.2f}"
        twin = "—" if r.twin is None else f"{r.twin:,.4g}" if r.group in ("pue",) else f"{r.twin:,.2f}"
        d = r.rel_diff
        diff = "—" if d is None else f"{d:+.3%}"
        lines.append(f"| {r.group} {r.name} | {plan} | {twin} | {diff} |")
    return "\n".join(lines)
