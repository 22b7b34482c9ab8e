"""The one cost ledger (placement.ledger) by hand: distance classes and their boundaries, GB, energy and
cloud bills; and the scenario settings that feed it reject bad class lists by name."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from microdc.model.scenario import Network, TransportClass
from microdc.placement import ledger


def test_distance_classes_by_hand() -> None:
    net = Network()  # metro ≤ 80 km free, regional ≤ 1,000 km 0.01/GB, long haul 0.02/GB
    km = np.array([0.0, 79.9, 80.0, 80.01, 999.0, 1000.0, 1000.5, 5000.0])
    np.testing.assert_array_equal(ledger.transport_class(km, net), [0, 0, 0, 1, 1, 1, 2, 2])
    np.testing.assert_allclose(
        ledger.transport_price_per_gb(km, net), [0, 0, 0, 0.01, 0.01, 0.01, 0.02, 0.02]
    )


def test_gigabytes_energy_and_cloud_by_hand() -> None:
    assert float(ledger.gigabytes(10.0, 100.0, 3600.0)) == pytest.approx(3.6)  # 10 req/s × 100 kB × 1 h
    cost = ledger.energy_cost(np.array([100.0]), 0.2, np.array([30_000.0]), 85.0)  # 100 kWh, 30 kg CO2
    assert float(cost[0]) == pytest.approx(20.0 + 2.55)
    assert float(ledger.cloud_cores(50.0, 0.01, 0.5)) == pytest.approx(1.0)
    assert float(ledger.cloud_energy_kwh(2.0, 5.0, 1.2, 10.0)) == pytest.approx(0.12)


def test_bad_class_lists_are_named() -> None:
    with pytest.raises(ValidationError, match=r"last class .* must be unbounded"):
        Network(transport_classes=[TransportClass(name="metro", max_km=80, price_per_gb=0)])
    with pytest.raises(ValidationError, match="must increase strictly"):
        Network(
            transport_classes=[
                TransportClass(name="a", max_km=500, price_per_gb=0),
                TransportClass(name="b", max_km=100, price_per_gb=0),
                TransportClass(name="c", price_per_gb=0.02),
            ]
        )
    with pytest.raises(ValidationError, match="only the last class may omit max_km"):
        Network(
            transport_classes=[
                TransportClass(name="a", price_per_gb=0),
                TransportClass(name="c", price_per_gb=0.02),
            ]
        )
