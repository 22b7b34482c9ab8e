"""The sweep's work without Ray (engine='serial', the same code the Ray tasks run): rows, resume,
failures recorded, the report, and the CLI's errors."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import microdc.sweep
from microdc.cli.main import app
from microdc.sweep import SweepOptions, sweep
from microdc.sweep.runner import PARTS

VARY = ["economics.carbon_price_per_tonne=0,200", "demand.scale=0.5,1.5"]


def _sweep(scenario: Path, out: Path, **kw: object) -> pd.DataFrame:
    vary = kw.pop("vary", VARY)
    args: dict[str, object] = {"replicas": 2, "days": 0.5, "engine": "serial", "time_limit_s": 10, **kw}
    return sweep(scenario, vary, out, **args)  # type: ignore[arg-type]


def test_rows_per_point_replica_and_alternative(tiny_dir: Path, tmp_path: Path) -> None:
    df = _sweep(tiny_dir / "scenario.yaml", tmp_path / "out")
    assert len(df) == 4 * 2 * 4  # points × replicas × (microdc + 3 baselines)
    assert (df["status"] == "ok").all()
    assert list(df["alternative"][:4]) == ["microdc", "cloud-only", "nearest", "greedy"]
    for col in (
        "param.economics.carbon_price_per_tonne",
        "param.demand.scale",
        "cost_per_year.total",
        "cost_per_year.energy",
        "cost_per_year.cloud",
        "p95_ms.vision",
        "p99_ms.batch",
        "slo_violation_rate",
        "availability",
        "unserved_fraction",
        "energy_kwh",
        "pue",
        "carbon_kg",
        "sovereignty_violations",
        "fault_hours",
        "spare_capacity",
    ):
        assert col in df.columns, col
    # replicas differ in their seed (demand noise), points in their parameters
    assert df.groupby("replica")["seed"].nunique().eq(1).all() and df["seed"].nunique() == 2
    ours = df[df["alternative"] == "microdc"]
    lo = ours[ours["param.demand.scale"] == 0.5]["energy_kwh"].mean()
    hi = ours[ours["param.demand.scale"] == 1.5]["energy_kwh"].mean()
    assert hi > lo  # three times the load draws more energy
    cheap = ours[ours["param.economics.carbon_price_per_tonne"] == 0]["cost_per_year.energy"].mean()
    dear = ours[ours["param.economics.carbon_price_per_tonne"] == 200]["cost_per_year.energy"].mean()
    assert dear > cheap  # the carbon price is charged with the energy
    pd.testing.assert_frame_equal(df, pd.read_parquet(tmp_path / "out" / "sweep.parquet"))
    page = (tmp_path / "out" / "sweep.html").read_text()
    for key in ("tornado-cost_per_year.total", "heat-0-1-availability", '"availability"'):
        assert key in page
    assert "https://" not in page.split("<script>", 1)[0]  # nothing fetched before plotly is inlined


def test_resume_skips_what_is_done(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = _sweep(tiny_dir / "scenario.yaml", out, vary=["demand.scale=0.5,1"], replicas=1)
    parts = sorted((out / PARTS).iterdir())
    seen: list[int] = []
    again = _sweep(
        tiny_dir / "scenario.yaml",
        out,
        vary=["demand.scale=0.5,1"],
        replicas=1,
        progress=lambda t: seen.append(t.done),
    )
    assert sorted((out / PARTS).iterdir()) == parts  # nothing ran
    assert not seen  # nothing to report: every run was already there
    pd.testing.assert_frame_equal(first, again)
    more = _sweep(
        tiny_dir / "scenario.yaml",
        out,
        vary=["demand.scale=0.5,1"],
        replicas=2,
        progress=lambda t: seen.append(t.done),
    )
    assert len(sorted((out / PARTS).iterdir())) == len(parts) + 2  # only replica 1 of both points ran
    assert seen[0] == 2 and seen[-1] == 4
    pd.testing.assert_frame_equal(more[more["replica"] == 0].reset_index(drop=True), first)


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tiny_dir: Path, tmp_path: Path) -> None:
    # an SLO of 0.001 ms cannot be met anywhere: planning fails at that point, not at the other
    df = _sweep(
        tiny_dir / "scenario.yaml",
        tmp_path / "out",
        vary=["services.vision.slo.p95_ms=0.001,40"],
        replicas=1,
        retries=1,
    )
    failed = df[df["status"] == "failed"]
    assert len(failed) == 1 and failed["param.services.vision.slo.p95_ms"].iloc[0] == 0.001
    assert "PlanningError" in failed["error"].iloc[0] and "cannot be served" in failed["error"].iloc[0]
    assert (df[df["status"] == "ok"]["param.services.vision.slo.p95_ms"] == 40).all()
    assert "PlanningError" in (tmp_path / "out" / "sweep.html").read_text()


def test_reused_plan_and_no_faults(tiny_dir: Path, tmp_path: Path) -> None:
    from microdc.model import load_scenario
    from microdc.placement.planner import plan

    s = load_scenario(tiny_dir / "scenario.yaml")
    p, _, _ = plan(s)
    p.write(tmp_path / "plan.json")
    df = _sweep(
        s,
        tmp_path / "out",
        vary=["economics.energy_price_per_kwh=0.1,0.3"],
        replicas=1,
        plan=tmp_path / "plan.json",
        faults="none",
    )
    ours = df[df["alternative"] == "microdc"]
    assert (ours["built_sites"] == len(p.sites)).all() and (df["faults"] == 0).all()


def test_replicas_without_faults_share_a_pass_with_the_same_rows(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without faults each plan's replicas run in one pass (simulate_replicas); every row is what a
    separate run per replica gives."""
    import microdc.sweep.runner as runner
    from microdc.sim import simulate

    one_pass = _sweep(
        tiny_dir / "scenario.yaml", tmp_path / "a", vary=["demand.scale=1"], replicas=3, faults="none"
    )
    calls: list[int] = []

    def separate(s, plan, cfg, *, seeds, **kw):  # type: ignore[no-untyped-def]
        calls.append(len(seeds))
        return [simulate(s, plan, runner.replace(cfg, seed=x)) for x in seeds]

    monkeypatch.setattr(runner, "simulate_replicas", separate)
    alone = _sweep(
        tiny_dir / "scenario.yaml", tmp_path / "b", vary=["demand.scale=1"], replicas=3, faults="none"
    )
    assert calls and set(calls) == {3}  # one call per plan, all three replicas
    assert one_pass["seed"].nunique() == 3
    drop = [c for c in one_pass.columns if c.startswith("run_") or c in ("elapsed_s", "worker", "run_id")]
    pd.testing.assert_frame_equal(
        one_pass.drop(columns=drop, errors="ignore"), alone.drop(columns=drop, errors="ignore")
    )


def test_the_package_is_callable_for_notebooks(tiny_dir: Path, tmp_path: Path) -> None:
    df = microdc.sweep(  # type: ignore[operator]
        tiny_dir / "scenario.yaml",
        ["demand.scale=1"],
        tmp_path / "o",
        engine="serial",
        days=0.5,
        baselines=["cloud-only"],
        html=False,
    )
    assert list(df["alternative"]) == ["microdc", "cloud-only"]
    assert not (tmp_path / "o" / "sweep.html").exists()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="--replicas"):
        SweepOptions(replicas=0)
    with pytest.raises(ValueError, match="--faults"):
        SweepOptions(faults="often")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown baseline"):
        SweepOptions(baselines=("magic",))


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--vary", "services.nope.slo.p95_ms=1"], "services has no entry 'nope'"),
        (["--vary", "demand.scale=1:2"], "lo:hi:n"),
        (["--vary", "demand.scale=1", "--step", "fast"], "bad step"),
        (["--vary", "demand.scale=1", "--replicas", "0"], "--replicas must be at least 1"),
    ],
)
def test_cli_errors_are_one_clear_line(tiny_dir: Path, tmp_path: Path, args: list[str], says: str) -> None:
    res = CliRunner().invoke(
        app, ["sweep", str(tiny_dir / "scenario.yaml"), "-o", str(tmp_path / "o"), *args]
    )
    assert res.exit_code == 2, res.output
    assert says in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_without_ray_the_error_says_how_to_install_it(
    tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from microdc.sweep import SweepError

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(SweepError, match=r"pip install 'microdc\[sweep\]'"):
        sweep(tiny_dir / "scenario.yaml", ["demand.scale=1"], tmp_path / "o", days=0.5)
    res = CliRunner().invoke(
        app, ["sweep", str(tiny_dir / "scenario.yaml"), "-o", str(tmp_path / "c"), "--vary", "demand.scale=1"]
    )
    assert res.exit_code == 2 and "microdc[sweep]" in " ".join(res.output.split())
