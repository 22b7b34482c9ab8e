"""Psychrometrics against hand-computed values from the 2017 ASHRAE Handbook — Fundamentals, ch. 1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from microdc.physics.psychro import (
    P_STD_PA,
    dew_point_c,
    dew_point_from_humidity_ratio_c,
    enthalpy_kj_per_kg,
    humidity_ratio,
    humidity_ratio_from_rh,
    relative_humidity_pct,
    saturation_vapor_pressure_pa,
    wet_bulb_c,
    wet_bulb_stull_c,
)


def test_saturation_pressure_matches_ashrae_table_3() -> None:
    # ASHRAE 2017 F1 Table 3 (Pa); the Hyland-Wexler fits are stated within 300 ppm.
    t = np.array([-20.0, -5.0, 5.0, 25.0, 50.0, 100.0])
    table = np.array([103.24, 401.74, 872.6, 3169.7, 12351.3, 101418.0])
    np.testing.assert_allclose(saturation_vapor_pressure_pa(t), table, rtol=3e-4)


def test_25c_50pct_by_hand() -> None:
    # By hand: p_ws(25 °C) = 3169.7 Pa, p_w = 1584.9 Pa; W = 0.621945·1584.9/(101325 − 1584.9)
    # = 0.009883 kg/kg; h = 1.006·25 + 0.009883·(2501 + 1.86·25) = 50.33 kJ/kg; t_d where
    # p_ws(t_d) = 1584.9 Pa: 13.86 °C (table 3: 1.5990 kPa at 14 °C, 1.4973 at 13 °C).
    # The psychrometric chart reads 13.9 °C, 9.9 g/kg, 50.3 kJ/kg.
    w = humidity_ratio_from_rh(25.0, 50.0)
    assert float(w) * 1000.0 == pytest.approx(9.883, abs=0.005)
    assert float(enthalpy_kj_per_kg(25.0, w)) == pytest.approx(50.33, abs=0.02)
    assert float(dew_point_c(25.0, 50.0)) == pytest.approx(13.86, abs=0.02)
    # The dew point gives back the same humidity ratio (it is where the vapour saturates).
    assert float(humidity_ratio(dew_point_c(25.0, 50.0))) == pytest.approx(float(w), rel=1e-9)


def test_ashrae_example_1() -> None:
    # ASHRAE 2017 F1, Example 1: 40 °C dry bulb, 20 °C thermodynamic wet bulb, 101.325 kPa:
    # W = 0.0065 kg/kg, h = 56.7 kJ/kg, relative humidity 14 %.
    # W from the psychrometric equation (33): p_ws(20) = 2339.3 Pa → W_s* = 0.014701;
    # W = ((2501 − 2.326·20)·0.014701 − 1.006·20) / (2501 + 1.86·40 − 4.186·20) = 0.006401.
    w = ((2501 - 2.326 * 20) * 0.014701 - 1.006 * 20) / (2501 + 1.86 * 40 - 4.186 * 20)
    td = dew_point_from_humidity_ratio_c(w)
    assert w == pytest.approx(0.0065, abs=0.0001)
    assert float(enthalpy_kj_per_kg(40.0, w)) == pytest.approx(56.7, abs=0.1)
    assert float(relative_humidity_pct(40.0, td)) == pytest.approx(14.0, abs=0.5)
    # and the iteration finds the wet bulb again
    assert float(wet_bulb_c(40.0, td)) == pytest.approx(20.0, abs=0.01)


def test_wet_bulb_below_freezing_and_at_saturation() -> None:
    # At saturation the wet bulb equals the dry bulb and the dew point.
    np.testing.assert_allclose(
        wet_bulb_c([-5.0, 10.0, 30.0], [-5.0, 10.0, 30.0]), [-5.0, 10.0, 30.0], atol=1e-6
    )
    # Below freezing (eq. 35): the wet bulb lies between the frost point and the dry bulb.
    twb = float(wet_bulb_c(-1.0, -10.0))
    assert -10.0 < twb < -1.0


def test_wet_bulb_agrees_with_stulls_fit() -> None:
    # Stull (2011) reports his fit within -1 .. +0.65 K of his reference (mean absolute error 0.28 K),
    # except when both cold and dry. Against the exact psychrometric equation here, on 10-45 °C and
    # 10-95 % RH, it is within -0.65 .. +1.01 K with a mean absolute difference of 0.28 K, and gives
    # his worked example (20 °C, 50 % → 13.7 °C).
    t, rh = np.meshgrid(np.linspace(10.0, 45.0, 36), np.linspace(10.0, 95.0, 18))
    exact = wet_bulb_c(t, dew_point_c(t, rh))
    err = wet_bulb_stull_c(t, rh) - exact
    assert exact.shape == t.shape
    assert err.min() >= -1.0 and err.max() <= 1.05 and np.abs(err).mean() <= 0.3
    assert float(wet_bulb_stull_c(20.0, 50.0)) == pytest.approx(13.7, abs=0.05)
    assert float(exact[0, 0]) < float(exact[-1, 0])  # wetter air, warmer wet bulb


def test_magnus_start_is_within_its_stated_accuracy() -> None:
    # Alduchov & Eskridge (1996): within 0.4 % of the reference between -40 and 50 °C over water.
    t = np.linspace(0.0, 50.0, 51)
    magnus = 610.94 * np.exp(17.625 * t / (t + 243.04))
    np.testing.assert_allclose(magnus, saturation_vapor_pressure_pa(t), rtol=4e-3)


@example(t=17.615234375, rh=30.333984375)  # dew point in the ice/water gap at 0 °C
@given(t=st.floats(-30.0, 50.0), rh=st.floats(1.0, 100.0))
def test_round_trips(t: float, rh: float) -> None:
    td = dew_point_c(t, rh)
    assert float(td) <= t + 1e-9
    # a vapour pressure in the 0.01 % gap between the ice and water curves at 0 °C has its dew point at
    # exactly 0 (documented in dew_point_from_vapor_pressure_c), so the round trip is exact only elsewhere
    at_gap = float(td) == 0.0
    assert float(relative_humidity_pct(t, td)) == pytest.approx(rh, rel=2e-4 if at_gap else 1e-6)
    w = humidity_ratio(td)
    assert float(dew_point_from_humidity_ratio_c(w)) == pytest.approx(float(td), abs=1e-6)
    twb = float(wet_bulb_c(t, td))
    assert float(td) - 1e-6 <= twb <= t + 1e-6


def test_vectorized_and_bad_input() -> None:
    t = np.full((3, 4), 20.0)
    assert dew_point_c(t, 60.0).shape == (3, 4)
    assert humidity_ratio(np.zeros(5), P_STD_PA).shape == (5,)
    for rh in (0.0, 101.0, float("nan")):
        with pytest.raises(ValueError, match="relative humidity"):
            dew_point_c(20.0, rh)
    with pytest.raises(ValueError, match="temperature"):
        saturation_vapor_pressure_pa(250.0)
    with pytest.raises(ValueError, match="dew point must not exceed"):
        wet_bulb_c(20.0, 25.0)
