"""Network energy per GB (physics.transport): Aslan et al. (2018) by hand, and which segments a path
crosses."""

from __future__ import annotations

import numpy as np
import pytest

from microdc.physics.transport import (
    Segments,
    aslan_kwh_per_gb,
    default_segments,
    device_path_kwh_per_gb,
    sync_path_kwh_per_gb,
)


def test_aslan_trend_by_hand() -> None:
    assert aslan_kwh_per_gb(2015) == pytest.approx(0.06)
    assert aslan_kwh_per_gb(2017) == pytest.approx(0.03)
    assert aslan_kwh_per_gb(2023) == pytest.approx(0.06 / 16)  # four halvings: 0.00375 kWh/GB
    seg = default_segments(2023)
    assert seg.access + seg.metro + seg.core == pytest.approx(0.00375)
    assert seg.access == pytest.approx(0.001875) and seg.metro == seg.core == pytest.approx(0.0009375)


def test_segments_a_path_crosses() -> None:
    seg = Segments(access=3.0, metro=2.0, core=1.0)
    km = np.array([0.0, 80.0, 80.1, 2000.0])
    mdc = device_path_kwh_per_gb(km, False, 80.0, seg)
    np.testing.assert_allclose(mdc, [5.0, 5.0, 6.0, 6.0])  # beyond the metro radius the core is crossed
    cloud = device_path_kwh_per_gb(km, True, 80.0, seg)
    np.testing.assert_allclose(cloud, [6.0, 6.0, 6.0, 6.0])  # a cloud region always crosses the core
    assert sync_path_kwh_per_gb(seg) == 3.0
