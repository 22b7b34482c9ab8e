from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdc.physics.geo import (
    EARTH_RADIUS_KM,
    distance_matrix_km,
    great_circle_km,
    iter_distance_blocks_km,
    matrix_nbytes,
)

MELBOURNE = (-37.8136, 144.9631)
SYDNEY = (-33.8688, 151.2093)


def test_melbourne_sydney_about_713_km() -> None:
    d = great_circle_km(*MELBOURNE, *SYDNEY)
    assert d == pytest.approx(713.4, abs=1.0)


def test_quarter_meridian_and_antipode() -> None:
    assert great_circle_km(0.0, 0.0, 90.0, 0.0) == pytest.approx(np.pi / 2 * EARTH_RADIUS_KM)
    assert great_circle_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(np.pi * EARTH_RADIUS_KM)
    assert great_circle_km(10.0, 20.0, 10.0, 20.0) == 0.0


def test_broadcasting_shapes() -> None:
    lat = np.zeros((3, 1))
    lon = np.zeros((3, 1))
    d = great_circle_km(lat, lon, np.arange(4.0)[None, :], 0.0)
    assert d.shape == (3, 4)
    np.testing.assert_allclose(d[0], np.radians(np.arange(4.0)) * EARTH_RADIUS_KM)


def test_short_distance_accuracy() -> None:
    # 1e-5 degree of latitude is ~1.11 m
    assert distance_matrix_km([0.0], [0.0], [1e-5], [0.0])[0, 0] == pytest.approx(1.1119508e-3, rel=1e-6)


def test_matrix_1000_by_2000_single_vectorized_call() -> None:
    rng = np.random.default_rng(1)
    src_lat, src_lon = rng.uniform(-80, 80, 1000), rng.uniform(-180, 180, 1000)
    dst_lat, dst_lon = rng.uniform(-80, 80, 2000), rng.uniform(-180, 180, 2000)
    t0 = time.perf_counter()
    m = distance_matrix_km(src_lat, src_lon, dst_lat, dst_lon)
    elapsed = time.perf_counter() - t0
    assert m.shape == (1000, 2000) and m.dtype == np.float64
    ref = great_circle_km(src_lat[:, None], src_lon[:, None], dst_lat[None, :], dst_lon[None, :])
    np.testing.assert_allclose(m, ref, rtol=1e-9, atol=1e-6)
    assert elapsed < 5.0


def test_float32_and_small_blocks_agree() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.uniform(-60, 60, (2, 50))
    c, d = rng.uniform(-60, 60, (2, 70))
    full = distance_matrix_km(a, b, c, d)
    small = distance_matrix_km(a, b, c, d, block_bytes=1)  # one row per block
    np.testing.assert_array_equal(full, small)
    f32 = distance_matrix_km(a, b, c, d, dtype=np.float32)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, full, rtol=1e-6, atol=1e-3)


def test_iter_blocks_cover_matrix() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.uniform(-60, 60, (2, 37))
    c, d = rng.uniform(-60, 60, (2, 11))
    full = distance_matrix_km(a, b, c, d)
    rows_seen = 0
    for rows, block in iter_distance_blocks_km(a, b, c, d, block_bytes=11 * 8 * 4 * 5):
        np.testing.assert_array_equal(block, full[rows])
        rows_seen += block.shape[0]
    assert rows_seen == 37


def test_matrix_nbytes_documents_memory() -> None:
    assert matrix_nbytes(1000, 100_000) == 800_000_000
    assert matrix_nbytes(1000, 100_000, np.float32) == 400_000_000


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        distance_matrix_km([0.0, 1.0], [0.0], [0.0], [0.0])
    with pytest.raises(ValueError, match="finite"):
        distance_matrix_km([np.nan], [0.0], [0.0], [0.0])


coords = st.tuples(st.floats(-90, 90), st.floats(-180, 180))


@given(coords, coords, coords)
def test_metric_properties(p: tuple[float, float], q: tuple[float, float], r: tuple[float, float]) -> None:
    pq = float(great_circle_km(*p, *q))
    qp = float(great_circle_km(*q, *p))
    pr = float(great_circle_km(*p, *r))
    rq = float(great_circle_km(*r, *q))
    assert pq == pytest.approx(qp, abs=1e-6)
    assert 0.0 <= pq <= np.pi * EARTH_RADIUS_KM + 1e-6
    # haversine is ill-conditioned near antipodes (arcsin at h ~ 1: up to 2R * sqrt(eps) ~ 0.2 m of
    # round-off), so the triangle inequality holds to a metre there, not to the millimetre
    assert pq <= pr + rq + 1e-3
