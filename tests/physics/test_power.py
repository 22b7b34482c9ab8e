from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdc.physics.power import energy_kwh, server_power_linear_w, server_power_specpower_w


def test_linear_hand_values() -> None:
    u = np.array([[0.0, 0.5], [1.0, 0.25]])
    p = server_power_linear_w(u, 100.0, 300.0)
    np.testing.assert_allclose(p, [[100.0, 200.0], [300.0, 150.0]])


def test_specpower_hand_values() -> None:
    # 2u - u^1.4 at u=0.5: 1 - 0.5**1.4 = 0.62107
    p = server_power_specpower_w([0.0, 0.5, 1.0], 100.0, 300.0)
    np.testing.assert_allclose(p, [100.0, 100.0 + 200.0 * (1.0 - 0.5**1.4), 300.0])
    assert p[1] > float(server_power_linear_w(0.5, 100.0, 300.0))


def test_per_server_broadcast() -> None:
    u = np.full((24, 3), 0.5)
    idle = np.array([50.0, 100.0, 150.0])
    peak = np.array([100.0, 200.0, 300.0])
    p = server_power_linear_w(u, idle, peak)
    assert p.shape == (24, 3)
    np.testing.assert_allclose(p[0], [75.0, 150.0, 225.0])


def test_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError):
        server_power_linear_w(1.2, 100.0, 200.0)
    with pytest.raises(ValueError):
        server_power_linear_w(0.5, 300.0, 200.0)
    with pytest.raises(ValueError):
        server_power_specpower_w(0.5, 100.0, 200.0, r=3.0)


def test_energy() -> None:
    np.testing.assert_allclose(energy_kwh([1000.0, 500.0], 1.0), [1.0, 0.5])
    np.testing.assert_allclose(energy_kwh(1200.0, 0.25), 0.3)


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(1.0, 2.0))
def test_specpower_monotone_between_idle_and_peak(u1: float, u2: float, r: float) -> None:
    lo, hi = sorted((u1, u2))
    p = server_power_specpower_w([lo, hi], 80.0, 250.0, r=r)
    assert 80.0 - 1e-9 <= p[0] <= p[1] + 1e-9 <= 250.0 + 1e-9
