from __future__ import annotations

import numpy as np
import pytest

from microdc.physics.carbon import embodied_carbon_annual_kg, embodied_carbon_g, operational_carbon_g


def test_operational_hand_values() -> None:
    np.testing.assert_allclose(
        operational_carbon_g([1.0, 2.0, 0.5], [400.0, 350.0, 100.0]), [400.0, 700.0, 50.0]
    )


def test_operational_broadcasts_sites_but_checks_steps() -> None:
    e = np.ones((24, 3))
    ci = np.full((24, 1), 300.0)
    assert operational_carbon_g(e, ci).shape == (24, 3)
    with pytest.raises(ValueError, match="aligned"):
        operational_carbon_g(np.ones(24), np.ones(23))
    with pytest.raises(ValueError):
        operational_carbon_g(1.0, -1.0)


def test_embodied() -> None:
    assert float(embodied_carbon_annual_kg(5000.0, 5.0)) == pytest.approx(1000.0)
    assert float(embodied_carbon_g(5000.0, 5.0, 8760.0)) == pytest.approx(1.0e6)
    assert float(embodied_carbon_g(5000.0, 5.0, 1.0)) == pytest.approx(1.0e6 / 8760.0)
    with pytest.raises(ValueError):
        embodied_carbon_annual_kg(100.0, 0.0)
