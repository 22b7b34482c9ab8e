"""Plan = twin when nothing fails (docs/fidelity.md): with no faults and no demand noise, the twin's
energy, PUE and every cost line match the plan's expected year within 1 %, and each service's p95 is
within the planner's prediction.

The quick test runs the tiny scenario (constant weather and grid, flat load, so day-long steps are exact)
with data to sync, site traffic beyond the metro radius and a cloud-only baseline, so every cost line is
non-zero somewhere; the slow one runs both examples over their year at hourly steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from microdc.examples import resolve_scenario
from microdc.model import Scenario, load_scenario
from microdc.placement.baselines import BASELINES
from microdc.placement.ledger import LOAD_LINES
from microdc.placement.plan import Plan
from microdc.placement.planner import plan
from microdc.placement.problem import build_problem
from microdc.sim.fidelity import Row, compare, run_quiet_year, violations

TINY = Path(__file__).parents[1] / "data" / "tiny"


def _tiny_with_sync() -> Scenario:
    s = load_scenario(TINY)
    # the cameras' raw data is a few times their request traffic, so sync is a large share of cost and
    # network energy (personal data must stay at its site, so the plan cannot dodge it)
    demand = [
        d.model_copy(update={"data_gb_per_day": 500.0 + i if d.data_class == "personal" else 5.0})
        for i, d in enumerate(s.demand)
    ]
    eco = s.economics.model_copy(update={"network_price_per_gb": 0.02, "carbon_price_per_tonne": 50.0})
    regions = [
        r.model_copy(update={"grid_zone": "grid", "price_per_gb_hour": 0.005}) for r in s.cloud_regions
    ]
    out = s.model_copy(update={"demand": demand, "economics": eco, "cloud_regions": regions})
    out._base_dir = s.base_dir
    return out


def _check(p: Plan, summary: dict[str, object]) -> list[Row]:
    rows = compare(p, summary)  # type: ignore[arg-type]
    assert violations(rows) == [], violations(rows)
    return rows


def test_tiny_plan_and_cloud_baseline_match_the_twin() -> None:
    s = _tiny_with_sync()
    p, _pp, _sol = plan(s)
    rows = _check(p, run_quiet_year(s, p, step_s=86400))
    got = {r.name: r for r in rows if r.group == "cost"}
    for line in ("site_energy", "site_transport", "data_sync"):
        assert got[line].plan and got[line].plan > 0, line  # each line really carries money here
    cloud = BASELINES["cloud-only"](build_problem(s, allow_unserved=True))
    rows = _check(cloud, run_quiet_year(s, cloud, step_s=86400))
    got = {r.name: r for r in rows if r.group == "cost"}
    for line in ("cloud_compute", "cloud_memory", "cloud_egress", "network_backhaul", "cloud_carbon"):
        assert got[line].plan and got[line].plan > 0, line
    energy = {r.name: r for r in rows if r.group == "energy_kwh"}
    assert energy["transport"].plan and energy["transport"].plan > 0  # cloud traffic is not free


def test_a_twin_that_drops_a_line_is_caught() -> None:
    """The comparison itself can fail: a summary without the sync bill breaks the rule by name."""
    s = _tiny_with_sync()
    p, _pp, _sol = plan(s)
    summary = run_quiet_year(s, p, step_s=86400)
    summary["cost"]["lines"]["data_sync"] = 0.0
    bad = violations(compare(p, summary))
    assert len(bad) == 1 and bad[0].startswith("cost.data_sync:"), bad
    summary["latency"]["vision"]["p95_ms"] = 1e4
    assert any(m.startswith("p95_ms.vision:") for m in violations(compare(p, summary)))


def test_the_plan_carries_its_expected_year() -> None:
    s = _tiny_with_sync()
    p, _pp, _sol = plan(s)
    assert p.expected is not None and p.expected.hours == 8760
    assert set(LOAD_LINES) <= set(p.expected.costs)
    # The solver's linear cost lines that are exact (fixed, transport, sync) equal the expectation's.
    for line in ("site", "module_capex", "server_capex", "site_transport", "data_sync"):
        assert p.expected.costs[line] == pytest.approx(p.costs[line], rel=1e-9, abs=0.01), line


@pytest.mark.slow
@pytest.mark.parametrize("example", ["eu-sovereign", "melbourne"])
def test_examples_plan_equals_twin_over_the_year(example: str) -> None:
    s = load_scenario(resolve_scenario(example))
    p, _pp, _sol = plan(s)
    _check(p, run_quiet_year(s, p, step_s=3600))
