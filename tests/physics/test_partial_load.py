"""Partial load: the catalog's UPS efficiency as a load curve, fans with a minimum speed, misc fixed
per module, so PUE rises at low IT load; the planner's, check-plan's and the twin's ways of calling the
physics agree."""

from __future__ import annotations

import numpy as np
import pytest

from microdc.model.components import Cooling, CoolingKind, Module, Ups
from microdc.physics.cooling import UPS_LOSS_SHARES, CoolingParams, UpsParams, fan_power_w
from microdc.physics.site_power import annual_pue, cooling_params, module_power, ups_params


def _module(kind: CoolingKind, efficiency: float = 0.95, max_it_kw: float = 20.0) -> Module:
    return Module(
        id=f"m-{kind.value}",
        rack_units=42,
        max_it_kw=max_it_kw,
        cooling=Cooling(kind=kind),
        ups=Ups(energy_kwh=10.0, efficiency=efficiency),
        capex=0.0,
        lifetime_years=10.0,
    )


def test_ups_curve_from_the_catalog_efficiency_by_hand() -> None:
    # η = 0.95 at full load: loss = 1/19 of the rating, split 40/30/30 % -> a = 0.4/19, b = c = 0.3/19.
    assert UPS_LOSS_SHARES == (0.4, 0.3, 0.3)
    ups = UpsParams.from_efficiency(0.95)
    assert ups.no_load_loss_fraction == pytest.approx(0.4 / 19)
    assert ups.proportional_loss_fraction == pytest.approx(0.3 / 19)
    assert ups.square_loss_fraction == pytest.approx(0.3 / 19)
    eff = ups.efficiency([0.25, 0.5, 1.0])
    # 25 %: loss (0.4 + 0.075 + 0.01875)/19 = 0.49375/19 -> 4.75 / 5.24375
    # 50 %: loss (0.4 + 0.15 + 0.075)/19 = 0.625/19     -> 9.5 / 10.125
    # 100 %: 19/20
    np.testing.assert_allclose(eff, [4.75 / 5.24375, 9.5 / 10.125, 0.95], rtol=1e-12)
    np.testing.assert_allclose(eff, [0.905840, 0.938272, 0.95], atol=5e-7)
    # the module's curve is the catalog's
    m = _module(CoolingKind.DX, efficiency=0.96)
    assert ups_params(m) == UpsParams.from_efficiency(0.96)
    assert float(ups_params(m).efficiency(1.0)) == pytest.approx(0.96)
    with pytest.raises(ValueError, match="UPS efficiency"):
        UpsParams.from_efficiency(0.0)


def test_module_power_charges_the_catalog_ups() -> None:
    # A 20 kW DX module at half load: UPS loss = 20 kW · (0.4 + 0.15 + 0.075)/19 = 657.9 W (η = 0.95),
    # and a better UPS (η = 0.97: loss 3/97 of the rating) loses 20 kW · 0.625 · 3/97 = 386.6 W.
    for eff, expected in ((0.95, 20_000.0 * 0.625 / 19), (0.97, 20_000.0 * 0.625 * 3 / 97)):
        fp = module_power(10_000.0, 15.0, _module(CoolingKind.DX, efficiency=eff))
        assert float(fp.ups_loss_w) == pytest.approx(expected)


def test_fan_floor_and_affinity_law_by_hand() -> None:
    dx = CoolingParams.for_kind("dx")  # 5 % of capacity at design flow, minimum speed 2/3
    assert dx.fan_min_speed == pytest.approx(2 / 3)
    cap = 10_000.0
    w = fan_power_w([0.0, 1_000.0, 2_000.0, 8_000.0, 10_000.0], cap, dx)
    floor = 0.05 * cap * 8 / 27  # 148.1 W: below 2/3 load the fans keep turning at 2/3 speed
    np.testing.assert_allclose(w, [floor, floor, floor, 0.05 * cap * 0.512, 0.05 * cap])
    cw = CoolingParams.for_kind("chilled_water")  # 4 %, minimum speed 1/2
    np.testing.assert_allclose(fan_power_w([1_000.0, 5_000.0], cap, cw), [0.04 * cap / 8, 0.04 * cap / 8])
    assert CoolingParams(fan_min_speed=1.0).fan_min_speed == 1.0  # constant speed allowed
    with pytest.raises(ValueError, match="fan_min_speed"):
        CoolingParams(fan_min_speed=1.5)


def test_misc_is_fixed_per_module() -> None:
    m = _module(CoolingKind.FREE_AIR)
    # 0.5 % of the 20 kW module, whatever the load and however few servers are installed
    for it_w, cap in ((2_000.0, 4_000.0), (10_000.0, None), (20_000.0, 20_000.0)):
        assert float(module_power(it_w, 10.0, m, it_capacity_w=cap).misc_w) == pytest.approx(100.0)


@pytest.mark.parametrize("kind", list(CoolingKind))
@pytest.mark.parametrize("outdoor_c", [5.0, 22.0, 35.0])
def test_pue_rises_at_low_load(kind: CoolingKind, outdoor_c: float) -> None:
    m = _module(kind)
    cap = m.max_it_kw * 1000.0
    pue = {x: float(module_power(x * cap, outdoor_c, m).pue) for x in (0.1, 0.25, 0.5, 2 / 3, 1.0)}
    assert pue[0.1] > pue[0.25] > pue[0.5] > pue[2 / 3]
    assert pue[0.1] > pue[1.0] + 0.15  # no-load UPS loss, fans at their floor and misc spread over 10 %
    # Between 2/3 and full load the fans slow down (affinity law) faster than the UPS no-load
    # loss and misc grow per IT watt, so PUE there is flat within 2 %, not rising; within 3 % where a
    # DX compressor carries the load and cycles (C_d (1 − PLR) ≈ 8 % more compressor power at 2/3).
    assert abs(pue[1.0] - pue[2 / 3]) < 0.03


def test_dx_compressor_cycling_by_hand() -> None:
    """AHRI 210/240 part-load factor: at 35 °C a DX module's compressor carries all the heat; at half
    of its rating it runs at PLF = 1 − 0.25 · 0.5 = 0.875, so its power is 1/0.875 of steady state."""
    from microdc.physics.cooling import cooling_cop, facility_power_w

    dx = CoolingParams.for_kind("dx")
    steady = dx.__class__(**{**dx.__dict__, "cycling_degradation": 0.0})
    assert dx.cycling_degradation == 0.25 and CoolingParams.for_kind("chilled_water").cycling_degradation == 0
    cap = 10_000.0
    for it_w in (2_000.0, 5_000.0, 10_000.0):
        a = facility_power_w(it_w, 35.0, it_capacity_w=cap, cooling=dx)
        b = facility_power_w(it_w, 35.0, it_capacity_w=cap, cooling=steady)
        heat = it_w + float(a.ups_loss_w) + float(a.distribution_loss_w)
        compressor = heat / float(cooling_cop(35.0, dx))
        plf = 1.0 - 0.25 * (1.0 - min(heat / cap, 1.0))
        assert float(a.cooling_w - b.cooling_w) == pytest.approx(compressor / plf - compressor, rel=1e-9)
    with pytest.raises(ValueError, match="cycling_degradation"):
        CoolingParams(cycling_degradation=1.0)


def test_planner_checker_and_twin_agree_on_a_quarter_filled_module() -> None:
    """The planner passes the installed servers' peak power as capacity, check-plan the same, the
    twin the whole module: all three get the module's UPS, fans and misc, so the same PUE."""
    rng = np.random.default_rng(1)
    temps = rng.uniform(-5.0, 40.0, 500)
    dew = temps - rng.uniform(0.0, 15.0, 500)
    for kind in CoolingKind:
        m = _module(kind)
        installed_w = 0.25 * m.max_it_kw * 1000.0  # a quarter-filled module
        it_w = 0.7 * installed_w  # servers at their planning working point
        plan = annual_pue(it_w, temps, m, it_capacity_w=installed_w, dew_point_c=dew)
        twin_cap = max(m.max_it_kw * 1000.0, installed_w)  # sim.fleet: max(module, servers · peak)
        twin = module_power(np.full(500, it_w), temps, m, np.full(500, twin_cap), dew)
        assert float(twin.total_w.sum() / twin.it_w.sum()) == pytest.approx(plan, rel=1e-12)
        # and the module's plant at 17.5 % load costs more than a module sized to its servers would
        small = _module(kind, max_it_kw=installed_w / 1000.0)
        assert plan > annual_pue(it_w, temps, small, it_capacity_w=installed_w, dew_point_c=dew) + 0.03


def test_catalog_fan_min_speed_override() -> None:
    base = _module(CoolingKind.DX)
    m = base.model_copy(update={"cooling": Cooling(kind=CoolingKind.DX, fan_min_speed=1.0)})
    assert cooling_params(m).fan_min_speed == 1.0
    # constant-speed fans: 5 % of the 20 kW module at any load, 1000 W, against 1000 · (2/3)³ = 296.3 W
    assert float(fan_power_w(2_000.0, 20_000.0, cooling_params(m))) == pytest.approx(1_000.0)
    extra = float(module_power(2_000.0, 10.0, m).cooling_w - module_power(2_000.0, 10.0, base).cooling_w)
    assert extra == pytest.approx(1_000.0 * (1.0 - 8.0 / 27.0))
    with pytest.raises(ValueError):
        Cooling(kind=CoolingKind.DX, fan_min_speed=1.2)
