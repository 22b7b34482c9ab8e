from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdc.physics.latency import (
    FIBRE_RTT_MS_PER_KM,
    FIBRE_SPEED_KM_S,
    LatencyModel,
    fibre_bound_rtt_ms,
)

PAIRS = (
    Path(__file__).resolve().parents[2]
    / "benchmarks"
    / "data"
    / "latency-wonderproxy"
    / "pairs_calibration.csv"
)


def test_fibre_constants() -> None:
    assert abs(FIBRE_SPEED_KM_S - 204_218) < 1.0
    # ≈ 0.98 ms of round trip per 100 km
    assert fibre_bound_rtt_ms(100.0) == pytest.approx(0.979, abs=0.001)
    assert abs(FIBRE_RTT_MS_PER_KM * 1000 - 9.79) < 0.01


def test_hand_computed_rtt() -> None:
    m = LatencyModel(base_ms=5.0, extra_inflation=1.0, inflation_scale_km=1000.0, access_ms=10.0)
    # d = 1000 km: bound 9.7934 ms, inflation 1 + 1/2 = 1.5
    bound = 2 * 1000 / FIBRE_SPEED_KM_S * 1000
    assert m.rtt_ms(1000.0) == pytest.approx(5.0 + 1.5 * bound)
    assert m.one_way_ms(1000.0) == pytest.approx((5.0 + 1.5 * bound) / 2)
    assert m.rtt_ms(1000.0, access=True) == pytest.approx(15.0 + 1.5 * bound)
    assert m.rtt_ms(0.0) == pytest.approx(5.0)


def test_inflation_decreases_with_distance() -> None:
    m = LatencyModel()
    d = np.array([10.0, 100.0, 500.0, 5000.0, 15000.0])
    infl = m.route_inflation(d)
    assert np.all(np.diff(infl) < 0) and np.all(infl >= 1.0)
    ratio = m.rtt_ms(d) / fibre_bound_rtt_ms(d)
    assert np.all(np.diff(ratio) < 0)
    assert 3.0 < ratio[2] < 6.0  # data: ~4.6x below 500 km
    assert 1.5 < ratio[3] < 2.2  # data: ~1.8x above 5,000 km


def test_matrix_matches_rtt_of_distances() -> None:
    m = LatencyModel()
    rtt = m.matrix_ms([-37.8136], [144.9631], [-33.8688, -37.8136], [151.2093, 144.9631])
    assert rtt.shape == (1, 2)
    assert rtt[0, 1] == pytest.approx(m.base_ms)
    assert rtt[0, 0] == pytest.approx(float(m.rtt_ms(713.4)), rel=1e-3)


def test_invalid_parameters_and_inputs() -> None:
    with pytest.raises(ValueError):
        LatencyModel(base_ms=-1.0)
    with pytest.raises(ValueError):
        LatencyModel(inflation_scale_km=0.0)
    with pytest.raises(ValueError):
        LatencyModel().rtt_ms(-5.0)


@given(
    d=st.floats(0.0, 20_100.0),
    base=st.floats(0.0, 50.0),
    extra=st.floats(0.0, 10.0),
    scale=st.floats(1.0, 1e6),
    access=st.booleans(),
)
def test_never_below_fibre_bound(d: float, base: float, extra: float, scale: float, access: bool) -> None:
    m = LatencyModel(base_ms=base, extra_inflation=extra, inflation_scale_km=scale)
    assert float(m.rtt_ms(d, access=access)) >= float(fibre_bound_rtt_ms(d))


def test_default_model_beats_straight_line_on_measurements() -> None:
    pairs = pd.read_csv(PAIRS)
    d = pairs["gc_km"].to_numpy()
    y = pairs["rtt_avg_ms"].to_numpy()
    ours = np.median(np.abs(LatencyModel().rtt_ms(d) - y) / y)
    line = np.median(np.abs(26.3 + 0.0171 * d - y) / y)
    assert line == pytest.approx(0.235, abs=0.01)
    assert ours < 0.18 < line


def test_metro_fibre_only_within_the_metro_radius() -> None:
    """An MDC 2,000 km away is not on the device's metro network: it costs the Internet path (plus the
    hop into the MDC), not twice the fibre bound; within the radius it is metro fibre."""
    from microdc.physics.latency import METRO_INFLATION, device_rtt_ms, fibre_bound_rtt_ms

    model = LatencyModel()
    km = np.array([50.0, 2000.0])
    got = device_rtt_ms(km, False, access_ms=10.0, edge_extra_ms=0.5, metro_radius_km=80.0)
    assert got[0] == pytest.approx(10.5 + METRO_INFLATION * float(fibre_bound_rtt_ms(50.0)))
    assert got[1] == pytest.approx(10.5 + float(model.rtt_ms(2000.0)))
    assert got[1] > 10.5 + METRO_INFLATION * float(fibre_bound_rtt_ms(2000.0))
    cloud = device_rtt_ms(km, True, access_ms=10.0, edge_extra_ms=0.5, metro_radius_km=80.0)
    np.testing.assert_allclose(cloud, 10.0 + model.rtt_ms(km))  # a cloud region pays no edge hop
