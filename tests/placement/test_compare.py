"""The plan summary: far service beyond the metro radius, and plans compared with each baseline only on
the demand both serve completely and legally."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model import load_scenario
from microdc.placement.baselines import BASELINES
from microdc.placement.compare import compare, far_service, source_ledger
from microdc.placement.planner import PlannerOptions, plan

LYON = (
    "sensors-lyon,45.76,4.84,500,FR,public,batch,0.5",
    "sensors-lyon,45.76,4.84,30000,FR,public,batch,0.5",
)


@pytest.fixture
def lyon_dir(tiny_dir: Path) -> Path:
    demand = tiny_dir / "demand.csv"
    demand.write_text(demand.read_text().replace(*LYON))
    return tiny_dir


def test_source_costs_add_up_to_the_plan_cost(lyon_dir: Path) -> None:
    s = load_scenario(lyon_dir)
    p, pp, _sol = plan(s, PlannerOptions(allow_unserved=True))
    for q in [p, *(fn(pp) for fn in BASELINES.values())]:
        led = source_ledger(pp, q)
        # Every cost line except unserved penalties is either a source's or an idle site's.
        assert led.cost.sum() + led.idle_fixed == pytest.approx(
            q.objective - q.costs["unserved_penalty"], rel=1e-9
        )


def test_baselines_are_compared_on_common_legal_demand_only(lyon_dir: Path) -> None:
    s = load_scenario(lyon_dir)
    p, pp, _sol = plan(s, PlannerOptions(allow_unserved=True))
    cloud = BASELINES["cloud-only"](pp)
    # The US cloud may not hold the cameras' personal data: cloud-only leaves them unserved and looks
    # cheap on them; on the common legal demand (Lyon's public sensors) only Lyon counts.
    (cmp,) = compare(pp, p, [cloud])
    lyon = [i for i, d in enumerate(s.demand) if d.id == "sensors-lyon"]
    assert cmp.common_sources == 1
    assert cmp.common_rps_share == pytest.approx(
        float(pp.demand.mean_rps[lyon].sum() / pp.demand.mean_rps.sum())
    )
    mine, theirs = source_ledger(pp, p), source_ledger(pp, cloud)
    assert cmp.plan_cost == pytest.approx(float(mine.cost[lyon].sum()) + mine.idle_fixed)
    assert cmp.baseline_cost == pytest.approx(float(theirs.cost[lyon].sum()) + theirs.idle_fixed)
    assert not theirs.legal[[i for i, d in enumerate(s.demand) if d.data_class == "personal"]].any()
    assert mine.legal.all()


def test_far_service_beyond_the_metro_radius(lyon_dir: Path) -> None:
    s = load_scenario(lyon_dir)
    p, pp, _sol = plan(s, PlannerOptions(allow_unserved=True))
    far = far_service(pp, p)
    lyon_rps = float(pp.demand.mean_rps[[i for i, d in enumerate(s.demand) if d.id == "sensors-lyon"]].sum())
    assert far.sources == 1 and far.farthest.startswith("sensors-lyon → ")  # Lyon has no site within 80 km
    assert far.rps == pytest.approx(lyon_rps) and 900 < far.farthest_km < 1100
    wide = s.model_copy(update={"network": s.network.model_copy(update={"metro_radius_km": 2000.0})})
    p2, pp2, _sol = plan(wide, PlannerOptions(allow_unserved=True))
    assert far_service(pp2, p2).sources == 0
    assert np.isfinite(far.share) and 0 < far.share <= 1


def test_cli_prints_the_digest(lyon_dir: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["plan", str(lyon_dir), "-o", str(tmp_path / "p.json")], terminal_width=200)
    assert res.exit_code == 0, res.output
    assert "beyond the 80 km metro radius" in res.output and "sensors-lyon → " in res.output
    assert "serve completely and legally" in res.output


def test_vectorized_add_step_gain_equals_the_loop() -> None:
    from microdc.placement.baselines import _capacity_gain

    rng = np.random.default_rng(11)
    saving = np.where(rng.random((40, 60)) < 0.6, rng.uniform(0, 50, (40, 60)), 0.0)
    usage = rng.uniform(0.5, 4.0, 60)
    capacity = rng.uniform(5.0, 60.0, 40)
    rows = np.arange(0, 40, 3)
    got = _capacity_gain(saving, usage, capacity, rows, chunk=4, head=8)  # some rows need the full sort
    assert np.array_equal(got, _capacity_gain(saving, usage, capacity, rows, chunk=4, head=1000))
    for k, f in enumerate(rows.tolist()):  # the loop the baseline used before (commit 90154c2)
        idx = np.flatnonzero(saving[f] > 0)
        idx = idx[np.argsort(-saving[f, idx] / usage[idx], kind="stable")]
        take = idx[np.cumsum(usage[idx]) <= capacity[f]]
        assert got[k] == pytest.approx(saving[f, take].sum())
