from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from microdc.physics.cooling import (
    CoolingParams,
    FacilityParams,
    UpsParams,
    annual_pue,
    cooling_cop,
    facility_power_w,
    mechanical_share,
    pue,
    ups_runtime_s,
)


def test_mechanical_share_modes() -> None:
    p = CoolingParams(economizer_max_c=20.0, transition_band_c=10.0)
    np.testing.assert_allclose(mechanical_share([10.0, 20.0, 25.0, 30.0, 40.0], p), [0, 0, 0.5, 1, 1])
    assert np.all(mechanical_share([-10.0, 40.0], CoolingParams.for_kind("dx")) == 1.0)


def test_cop_carnot_fraction_hand_value() -> None:
    p = CoolingParams(
        supply_temp_c=24.0, evaporator_approach_c=12.0, condenser_approach_c=15.0, carnot_efficiency=0.35
    )
    # T_cold = 285.15 K, T_hot = 35 + 15 = 50 °C = 323.15 K
    assert float(cooling_cop(35.0, p)) == pytest.approx(0.35 * 285.15 / 38.0)
    # head-pressure floor at 25 °C condensing caps the COP in cold weather, then the clip
    assert float(cooling_cop(-20.0, p)) == pytest.approx(min(8.0, 0.35 * 285.15 / 13.0))
    cops = cooling_cop(np.linspace(-10, 50, 61), p)
    assert np.all(np.diff(cops) <= 0) and cops.min() >= 1.5 and cops.max() <= 8.0


def test_hand_computed_breakdown() -> None:
    cooling = CoolingParams(fan_fraction=0.05, economizer_max_c=20.0, transition_band_c=10.0)
    ups = UpsParams(no_load_loss_fraction=0.01, proportional_loss_fraction=0.02, square_loss_fraction=0.0)
    fac = FacilityParams(distribution_loss_fraction=0.02, misc_fixed_w=50.0, misc_fraction_of_capacity=0.01)
    fp = facility_power_w(5000.0, 10.0, it_capacity_w=10_000.0, cooling=cooling, ups=ups, facility=fac)
    assert float(fp.ups_loss_w) == pytest.approx(10_000 * (0.01 + 0.02 * 0.5))  # 200 W
    assert float(fp.distribution_loss_w) == pytest.approx(0.02 * 5200.0)
    # economizer: fans only, at their 2/3 minimum speed (half load is below it): 0.05 · 10 kW · (2/3)³
    fans = 0.05 * 10_000.0 * 8.0 / 27.0  # 148.1 W
    assert float(fp.cooling_w) == pytest.approx(fans)
    assert float(fp.misc_w) == pytest.approx(150.0)
    assert float(fp.total_w) == pytest.approx(5000 + fans + 200 + 104 + 150)
    hot = facility_power_w(5000.0, 40.0, it_capacity_w=10_000.0, cooling=cooling, ups=ups, facility=fac)
    heat = 5000 + 200 + 104
    assert float(hot.cooling_w) == pytest.approx(fans + heat / float(cooling_cop(40.0, cooling)))


def test_total_is_exact_sum_and_shapes() -> None:
    rng = np.random.default_rng(0)
    it = rng.uniform(0, 20_000, (48, 5))
    temp = rng.uniform(-5, 45, (48, 1))
    fp = facility_power_w(
        it, temp, it_capacity_w=np.full(5, 20_000.0), cooling=CoolingParams.for_kind("free_air")
    )
    assert fp.total_w.shape == (48, 5)
    np.testing.assert_array_equal(
        fp.total_w, fp.it_w + fp.cooling_w + fp.ups_loss_w + fp.distribution_loss_w + fp.misc_w
    )


def test_ups_efficiency_curve() -> None:
    ups = UpsParams()
    eff = ups.efficiency([0.0, 0.25, 0.5, 1.0])
    assert eff[0] == 0.0
    np.testing.assert_allclose(eff[1:], [0.25 / 0.263125, 0.5 / 0.5175, 1 / 1.03])
    assert np.all(np.diff(eff) > 0)


def test_pue_and_annual_pue_energy_weighted() -> None:
    total = np.array([110.0, 300.0])
    it = np.array([100.0, 200.0])
    np.testing.assert_allclose(pue(total, it), [1.1, 1.5])
    assert annual_pue(total, it) == pytest.approx(410 / 300)  # not the mean of ratios (1.3)
    assert np.isnan(pue(10.0, 0.0))
    with pytest.raises(ValueError):
        annual_pue([1.0], [0.0])


def test_ups_runtime() -> None:
    # 10 kWh, 95 % inverter, 20 kW load: 10*3.6e6*0.95/20000 = 1710 s
    np.testing.assert_allclose(ups_runtime_s(10.0, [20_000.0, 0.0], 0.95), [1710.0, np.inf])


def test_presets_and_validation() -> None:
    for kind in ("free_air", "dx", "chilled_water", "liquid"):
        assert CoolingParams.for_kind(kind).kind == kind
    assert CoolingParams.for_kind("dx", fan_fraction=0.1).fan_fraction == 0.1
    with pytest.raises(ValueError):
        CoolingParams(kind="swamp")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CoolingParams(carnot_efficiency=0.0)
    with pytest.raises(ValueError):
        facility_power_w(-1.0, 20.0, it_capacity_w=1000.0)


def test_climate_ordering() -> None:
    it = np.full(100, 10_000.0)
    cool = annual_pue(*_tot_it(it, np.full(100, 8.0), "free_air"))
    hot_dx = annual_pue(*_tot_it(it, np.full(100, 35.0), "dx"))
    assert 1.05 < cool < 1.15
    assert 1.3 < hot_dx < 1.7


def _tot_it(it: np.ndarray, temp: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    fp = facility_power_w(it, temp, it_capacity_w=20_000.0, cooling=CoolingParams.for_kind(kind))  # type: ignore[arg-type]
    return fp.total_w, fp.it_w


@given(
    it=arrays(np.float64, 12, elements=st.floats(1e-3, 1e6)),
    temp=arrays(np.float64, 12, elements=st.floats(-40, 55)),
    cap=st.floats(1.0, 1e6),
    kind=st.sampled_from(["free_air", "dx", "chilled_water", "liquid"]),
    fan=st.floats(0.0, 0.3),
    dist=st.floats(0.0, 0.1),
)
def test_pue_at_least_one(
    it: np.ndarray, temp: np.ndarray, cap: float, kind: str, fan: float, dist: float
) -> None:
    fp = facility_power_w(
        it,
        temp,
        it_capacity_w=cap,
        cooling=CoolingParams.for_kind(kind, fan_fraction=fan),  # type: ignore[arg-type]
        facility=FacilityParams(distribution_loss_fraction=dist),
    )
    assert np.all(fp.pue >= 1.0)
    assert annual_pue(fp.total_w, fp.it_w) >= 1.0
    parts = fp.it_w + fp.cooling_w + fp.ups_loss_w + fp.distribution_loss_w + fp.misc_w
    np.testing.assert_array_equal(fp.total_w, parts)
