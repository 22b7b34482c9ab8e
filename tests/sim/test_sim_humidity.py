"""Humidity goes from the weather file through the series layer to the same cooling physics in the planner,
check-plan and the twin; a file without humidity falls back to dry-bulb limits and says so."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.sim.twin import twin_plan, write_twin

from microdc.model import Scenario, load_scenario
from microdc.model.series import HumidityMissingWarning, ScenarioSeries
from microdc.physics.cooling import cooling_cop, fan_power_w
from microdc.physics.psychro import dew_point_c
from microdc.physics.site_power import annual_pue, cooling_params, module_rating_w
from microdc.placement.check import check_plan
from microdc.placement.planner import plan
from microdc.sim import SimConfig, simulate

TEMP_C, RH_PCT = 30.0, 80.0  # a hot, humid year: dew point 26.2 °C


def _humid_twin(root: Path, *, humidity: bool) -> Scenario:
    write_twin(root)
    hours = pd.date_range("2023-01-01", periods=8760, freq="h")
    header = "time_local,temperature_c" + (",relative_humidity_2m" if humidity else "")
    cell = f",{RH_PCT:g}" if humidity else ""
    rows = [header] + [f"{t:%Y-%m-%dT%H:%M},{TEMP_C:g}{cell}" for t in hours]
    (root / "weather.csv").write_text("\n".join(rows) + "\n")
    yaml = (root / "scenario.yaml").read_text()
    old = "mild: {format: constant, constant_c: 15.0}"
    assert old in yaml
    (root / "scenario.yaml").write_text(yaml.replace(old, "mild: {format: openmeteo, path: weather.csv}"))
    return load_scenario(root)


@pytest.fixture(scope="module")
def humid(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return _humid_twin(tmp_path_factory.mktemp("humid") / "twin", humidity=True)


@pytest.fixture(scope="module")
def dry_bulb_only(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return _humid_twin(tmp_path_factory.mktemp("dry") / "twin", humidity=False)


def test_series_carry_the_dew_point_or_say_they_cannot(humid: Scenario, dry_bulb_only: Scenario) -> None:
    dew = ScenarioSeries(humid).year_dew_point_c("mild")
    assert dew is not None
    np.testing.assert_allclose(dew, float(dew_point_c(TEMP_C, RH_PCT)))
    with pytest.warns(HumidityMissingWarning, match=r"weather\.csv: no humidity column.*'mild'"):
        assert ScenarioSeries(dry_bulb_only).year_dew_point_c("mild") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error", HumidityMissingWarning)
        ScenarioSeries(humid).year_outdoor_c("mild")  # a file with humidity says nothing


def test_planner_and_checker_use_the_humid_physics(humid: Scenario, dry_bulb_only: Scenario) -> None:
    module = humid.catalog.modules[0]
    server = humid.catalog.servers[0]
    year = ScenarioSeries(humid)
    with pytest.warns(HumidityMissingWarning):
        p_dry, _pp, _sol = plan(dry_bulb_only)
    p, _pp, _sol = plan(humid)
    dry_pue = {b.site: b.annual_pue for b in p_dry.sites}
    assert p.sites and set(dry_pue) & {b.site for b in p.sites}
    for b in p.sites:
        it_w = b.servers * (server.idle_w + 0.5 * (server.peak_w - server.idle_w))
        cap_w = b.servers * server.peak_w
        expected = annual_pue(
            it_w, year.year_outdoor_c("mild"), module, cap_w, dew_point_c=year.year_dew_point_c("mild")
        )
        assert b.annual_pue == pytest.approx(expected, abs=1e-4)
        if b.site in dry_pue:
            assert b.annual_pue > dry_pue[b.site] + 0.05  # humidity takes the economizer away
    assert check_plan(humid, p) == []  # the checker recomputes the same PUE
    # and it would notice a plan that still carries the dry-bulb PUE
    forged = p.model_copy(
        update={"sites": [b.model_copy(update={"annual_pue": dry_pue.get(b.site, 1.1)}) for b in p.sites]}
    )
    assert any(m.startswith("plan field sites[") and "annual_pue" in m for m in check_plan(humid, forged))


def test_twin_cools_humid_air_mechanically(humid: Scenario, dry_bulb_only: Scenario, tmp_path: Path) -> None:
    cfg = SimConfig(days=0.25, step_s=3600, seed=3)
    params = cooling_params(humid.catalog.modules[0])
    cop = float(cooling_cop(TEMP_C, params))
    runs = {}
    for name, s in (("humid", humid), ("dry", dry_bulb_only)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", HumidityMissingWarning)
            runs[name] = simulate(s, twin_plan(), cfg, out_dir=tmp_path / name, keep_frames=True).timeseries
    for name, share in (("humid", 1.0), ("dry", (TEMP_C - 21.0) / 12.0)):
        ts = runs[name]
        up = ts[(ts["state"].astype(str) == "up") & ~ts["site"].astype(str).str.startswith("cloud")]
        assert len(up) > 0
        heat = up["it_w"] + up["ups_loss_w"] + up["distribution_loss_w"]
        rating = module_rating_w(humid.catalog.modules[0])
        fans = fan_power_w(up["it_w"].to_numpy(), rating, params)
        # the DX backup's compressor cycles below its capacity (AHRI 210/240 part-load factor)
        plf = 1.0 - params.cycling_degradation * (1.0 - np.clip(share * heat / rating, 0.0, 1.0))
        expected = fans + share * heat / (cop * plf)
        np.testing.assert_allclose(up["cooling_w"], expected, rtol=1e-9)
