"""The fleet planner on random small scenarios: every plan passes the independent checker, never
crosses a sovereignty boundary, survives any one site failing with n_plus 1, and bound <= objective."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model import load_scenario
from microdc.placement.baselines import BASELINES
from microdc.placement.check import check_plan
from microdc.placement.planner import PlannerOptions, PlanningError, plan

DATA = Path(__file__).parents[1] / "data" / "tiny"

CITIES = {  # code, lat, lon
    "berlin": ("DE", 52.52, 13.40),
    "hamburg": ("DE", 53.55, 10.00),
    "munich": ("DE", 48.14, 11.58),
    "paris": ("FR", 48.86, 2.35),
    "lyon": ("FR", 45.76, 4.84),
    "marseille": ("FR", 43.30, 5.37),
}


def _write_scenario(
    tmp: Path, sites: list[tuple[str, int, float]], demand: list[tuple[str, str, str, int]], n_plus: int
) -> Path:
    dst = tmp / "scn"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(DATA, dst)
    rows = ["id,name,lat,lon,jurisdiction,security_tier,grid_power_kw,annual_cost"]
    for city, tier, cost in sites:
        code, lat, lon = CITIES[city]
        rows.append(f"{city},{city},{lat},{lon},{code},{tier},30,{cost}")
    (dst / "sites.csv").write_text("\n".join(rows) + "\n")
    rows = ["id,lat,lon,devices,jurisdiction,data_class,service,rate_per_device_rps"]
    for k, (city, cls, svc, devices) in enumerate(demand):
        code, lat, lon = CITIES[city]
        rows.append(f"d{k},{lat + 0.01},{lon + 0.01},{devices},{code},{cls},{svc},2")
    (dst / "demand.csv").write_text("\n".join(rows) + "\n")
    doc = yaml.safe_load((dst / "scenario.yaml").read_text())
    doc["policies"]["redundancy"] = {"n_plus": n_plus}
    (dst / "scenario.yaml").write_text(yaml.safe_dump(doc))
    return dst


site_st = st.lists(
    st.tuples(st.sampled_from(sorted(CITIES)), st.integers(1, 3), st.floats(1000, 50000)),
    min_size=1,
    max_size=5,
    unique_by=lambda t: t[0],
)
demand_st = st.lists(
    st.tuples(
        st.sampled_from(sorted(CITIES)),
        st.sampled_from(["personal", "public"]),
        st.sampled_from(["vision", "batch"]),
        st.integers(1, 400),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sites=site_st, demand=demand_st, n_plus=st.integers(0, 1))
def test_random_scenarios_plan_legally(tmp_path: Path, sites: list, demand: list, n_plus: int) -> None:
    s = load_scenario(_write_scenario(tmp_path, sites, demand, n_plus))
    try:
        p, pp, _sol = plan(s, PlannerOptions(time_limit_s=20))
    except PlanningError as exc:
        # Refusal must name a reason; then pricing unserved demand must still give a legal plan.
        assert exc.reasons
        p, pp, _sol = plan(s, PlannerOptions(time_limit_s=20, allow_unserved=True))
    assert check_plan(s, p, allow_unserved=True) == []
    assert p.lower_bound <= p.objective * (1 + 1e-9) + 1e-6
    # No assignment crosses a sovereignty boundary (checked directly, not only by the checker).
    sites_j = {x.id: x.jurisdiction for x in s.sites}
    for a in p.assignments:
        d = next(d for d in s.demand if d.id == a.demand)
        if d.data_class == "personal":
            target_j = sites_j.get(a.target) or next(
                r.jurisdiction for r in s.cloud_regions if r.id == a.target
            )
            assert target_j == d.jurisdiction, a
    if n_plus == 1 and not p.unserved:
        # Remove each opened site: primaries elsewhere plus backups must still cover every demand,
        # at legal, SLO-meeting targets other than the failed site.
        for failed in {b.site for b in p.sites}:
            for d in s.demand:
                mine = [a for a in p.assignments if a.demand == d.id]
                lost = sum(a.fraction for a in mine if a.role == "primary" and a.target == failed)
                cover = sum(a.fraction for a in mine if a.role == "backup" and a.target != failed)
                assert cover + 1e-6 >= lost, (failed, d.id, lost, cover)
    for name, baseline in BASELINES.items():
        b = baseline(pp)
        assert b.alternative == name
        assert all("sovereignty" not in v for v in check_plan(s, b)), name


def test_bound_never_exceeds_objective_on_examples() -> None:
    s = load_scenario(Path(__file__).parents[2] / "src/microdc/examples/eu-sovereign")
    p, _pp, _sol = plan(s)
    assert p.status == "optimal" and p.gap <= 1e-6
    assert p.lower_bound <= p.objective + 1e-6
    assert check_plan(s, p) == []
    assert p.n_plus == 1


def test_unservable_demand_is_named_with_reason_and_fix(tiny_dir: Path) -> None:
    # Personal data from France with only a German site and a US cloud: nowhere legal to go.
    (tiny_dir / "sites.csv").write_text(
        "id,name,lat,lon,jurisdiction,security_tier,grid_power_kw,annual_cost\nberlin,B,52.52,13.40,DE,3,30,1\n"
    )
    s = load_scenario(tiny_dir)
    with pytest.raises(PlanningError) as info:
        plan(s)
    text = "\n".join(info.value.reasons)
    assert "cams-paris" in text and "may be processed" in text and "fix:" in text
    p, _pp, _sol = plan(s, PlannerOptions(allow_unserved=True))
    assert [u.demand for u in p.unserved] == ["cams-paris"]
    assert check_plan(s, p, allow_unserved=True) == []


def test_security_tier_reason(tiny_dir: Path) -> None:
    (tiny_dir / "sites.csv").write_text(
        "id,name,lat,lon,jurisdiction,security_tier,grid_power_kw,annual_cost\n"
        "berlin,B,52.52,13.40,DE,1,30,1\nparis,P,48.86,2.35,FR,1,30,1\n"
    )
    with pytest.raises(PlanningError) as info:
        plan(load_scenario(tiny_dir))
    assert "security tier below 2" in "\n".join(info.value.reasons)


def test_check_plan_catches_tampering(tiny_dir: Path, tmp_path: Path) -> None:
    s = load_scenario(tiny_dir)
    p, _pp, _sol = plan(s)
    bad = p.model_copy(deep=True)
    cam = next(a for a in bad.assignments if a.demand == "cams-paris")
    cam.target = "berlin"  # French personal data processed in Germany
    problems = check_plan(s, bad)
    assert any(m.startswith("sovereignty: 'cams-paris'") for m in problems)
    out = tmp_path / "bad.json"
    bad.write(out)
    res = CliRunner().invoke(app, ["check-plan", str(tiny_dir), str(out)])
    assert res.exit_code == 1 and "sovereignty" in res.output


def test_cli_plan_writes_and_checks(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.json"
    runner = CliRunner()
    res = runner.invoke(app, ["plan", str(tiny_dir), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "cloud-only" in res.output and "greedy" in res.output
    assert runner.invoke(app, ["check-plan", str(tiny_dir), str(out)]).exit_code == 0


def test_cli_plan_makes_the_output_folder_and_refuses_a_folder_before_solving(
    tiny_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "new" / "deeper" / "plan.json"
    res = CliRunner().invoke(app, ["plan", str(tiny_dir), "-o", str(out), "--no-baselines"])
    assert res.exit_code == 0, res.output
    assert out.is_file()
    res = CliRunner().invoke(app, ["plan", str(tiny_dir), "-o", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in " ".join(res.output.split()), res.output
    assert "Traceback" not in res.output


def test_cli_plan_infeasible_exits_2(tiny_dir: Path, tmp_path: Path) -> None:
    (tiny_dir / "sites.csv").write_text(
        "id,name,lat,lon,jurisdiction,security_tier,grid_power_kw,annual_cost\nberlin,B,52.52,13.40,DE,3,30,1\n"
    )
    res = CliRunner().invoke(app, ["plan", str(tiny_dir), "-o", str(tmp_path / "p.json")])
    assert res.exit_code == 2 and "cams-paris" in res.output and "Traceback" not in res.output


def test_malformed_plan_file_is_a_clear_error(tiny_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "plan.json"
    bad.write_text('{"scenario": "tiny"')
    res = CliRunner().invoke(app, ["check-plan", str(tiny_dir), str(bad)])
    assert res.exit_code == 2 and "not valid JSON" in res.output


def test_capacity_split_across_sites(tiny_dir: Path) -> None:
    # Demand larger than one module forces a split; fractions must still sum to one.
    text = (
        (tiny_dir / "demand.csv")
        .read_text()
        .replace("cams-berlin,52.50,13.35,100", "cams-berlin,52.50,13.35,12000")
    )
    (tiny_dir / "demand.csv").write_text(text)
    s = load_scenario(tiny_dir)
    p, _pp, _sol = plan(s, PlannerOptions(allow_unserved=True))
    assert check_plan(s, p, allow_unserved=True) == []
    fr = [a.fraction for a in p.assignments if a.demand == "cams-berlin"]
    assert (
        len(fr) >= 1
        and abs(sum(fr) + sum(u.fraction for u in p.unserved if u.demand == "cams-berlin") - 1) < 1e-6
    )
    assert np.isfinite(p.objective)
