from __future__ import annotations

import numpy as np
import pytest

from microdc.physics.thermal import ThermalParams, inlet_temperature_c, time_to_threshold_s


def test_closed_form_hand_value() -> None:
    p = ThermalParams(heat_capacity_j_per_k=2.0e5, ua_w_per_k=100.0)
    # T_ss = 20 + 10000/100 = 120; tau = 2000 s; from 24 to 32: 2000 ln(96/88)
    t = time_to_threshold_s(10_000.0, 24.0, 20.0, p)
    assert float(t) == pytest.approx(2000.0 * np.log(96.0 / 88.0))
    assert float(inlet_temperature_c(t, 10_000.0, 24.0, 20.0, p)) == pytest.approx(32.0)


def test_adiabatic_limit() -> None:
    p = ThermalParams(heat_capacity_j_per_k=1.0e5, ua_w_per_k=0.0)
    assert float(time_to_threshold_s(20_000.0, 24.0, 10.0, p)) == pytest.approx(1.0e5 * 8.0 / 20_000.0)
    assert float(inlet_temperature_c(10.0, 20_000.0, 24.0, 10.0, p)) == pytest.approx(26.0)


def test_vectorized_edge_cases() -> None:
    p = ThermalParams(heat_capacity_j_per_k=1.0e5, ua_w_per_k=1000.0)
    t = time_to_threshold_s(
        np.array([0.0, 5_000.0, 20_000.0, 20_000.0]), np.array([24.0, 24.0, 24.0, 33.0]), 20.0, p
    )
    # no load / steady state 25 °C never reaches 32; already above -> 0
    assert np.isinf(t[0]) and np.isinf(t[1]) and np.isfinite(t[2]) and t[3] == 0.0
    # hotter outdoors or more load -> sooner
    a = time_to_threshold_s([10_000.0, 20_000.0], 24.0, 20.0, p)
    assert a[1] < a[0]


def test_params_validation() -> None:
    with pytest.raises(ValueError):
        ThermalParams(heat_capacity_j_per_k=0.0)
    with pytest.raises(ValueError):
        time_to_threshold_s(-1.0, 24.0, 20.0)
