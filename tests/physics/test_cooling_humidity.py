"""The air-side economizer keeps to its ASHRAE envelope: no free cooling with air wetter than the room
may be, the latent load of dehumidifying it, and the dry-bulb fallback when humidity is unknown."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from microdc.model.components import Module
from microdc.physics.cooling import (
    ASHRAE_ENVELOPES,
    CoolingParams,
    annual_pue,
    facility_power_w,
    mechanical_share,
)
from microdc.physics.psychro import dew_point_c
from microdc.physics.site_power import annual_pue as module_annual_pue
from microdc.physics.site_power import cooling_params

FREE_AIR = CoolingParams.for_kind("free_air")  # economizer to 21 °C, band 12 K (return air 33 °C)
HOURS = 8760
IT_W, CAP_W = 10_000.0, 20_000.0


def _year_pue(temp_c: float, rh_pct: float | None, cooling: CoolingParams) -> tuple[float, float]:
    """(annual PUE, share of hours on full economizer) of a constant synthetic year."""
    t = np.full(HOURS, temp_c)
    dp = None if rh_pct is None else np.full(HOURS, float(dew_point_c(temp_c, rh_pct)))
    fp = facility_power_w(np.full(HOURS, IT_W), t, it_capacity_w=CAP_W, dew_point_c=dp, cooling=cooling)
    return annual_pue(fp.total_w, fp.it_w), float(np.mean(mechanical_share(t, cooling, dp) == 0.0))


def test_hot_humid_year_gets_no_free_cooling() -> None:
    # 30 °C, 80 % RH (dew point 26.2 °C) all year: outdoor air is far wetter than the 15 °C dew point
    # limit and its enthalpy (85 kJ/kg) exceeds the return air's (60 kJ/kg): dampers shut, all DX.
    fallback = replace(FREE_AIR, economizer=False)
    pue, free = _year_pue(30.0, 80.0, FREE_AIR)
    pue_mech, _ = _year_pue(30.0, 80.0, fallback)
    assert free == 0.0
    assert pue >= pue_mech - 1e-12
    assert pue == pytest.approx(pue_mech, rel=1e-12)
    # the old dry-bulb rule credited a quarter of the heat to outdoor air in the same year
    pue_dry, _ = _year_pue(30.0, None, FREE_AIR)
    assert pue_dry < pue_mech - 0.05


def test_cool_dry_year_gets_free_cooling_all_year() -> None:
    pue, free = _year_pue(10.0, 50.0, FREE_AIR)  # dew point 0.1 °C
    pue_mech, _ = _year_pue(10.0, 50.0, replace(FREE_AIR, economizer=False))
    assert free == 1.0
    assert pue < pue_mech - 0.1
    assert pue == pytest.approx(_year_pue(10.0, None, FREE_AIR)[0], rel=1e-12)  # humidity is no issue


def test_latent_load_by_hand() -> None:
    # 25 °C outdoors, dew point 16 °C (1 K above the recommended 15 °C limit). ASHRAE Table 3:
    # p_ws(16) = 1818.5 Pa, p_ws(15) = 1705.6 Pa → W_out = 0.011366, W_max = 0.010648 kg/kg
    # (the 70 % RH limit at the 24 °C supply, 0.01309, is looser). Sensible share as before,
    # (25 − 21)/12 = 0.3333; latent per unit of heat = (W_out − W_max)(2501 + 1.86·25) /
    # ((33 − 21)(1.006 + 1.86·W_max)) = 0.1486; together 0.4819.
    w_out = 0.621945 * 1818.5 / (101325 - 1818.5)
    w_max = 0.621945 * 1705.6 / (101325 - 1705.6)
    latent = (w_out - w_max) * (2501 + 1.86 * 25) / ((33 - 21) * (1.006 + 1.86 * w_max))
    expected = 4 / 12 + latent
    assert expected == pytest.approx(0.4819, abs=1e-4)
    assert float(mechanical_share(25.0, FREE_AIR, 16.0)) == pytest.approx(expected, abs=1e-3)
    # Dew point 20 °C at 25 °C: h_out 62.6 > h_return 60.5 kJ/kg, so recirculating is cheaper.
    assert float(mechanical_share(25.0, FREE_AIR, 20.0)) == 1.0
    # Cold but wet (18 °C, saturated): mixed down to the economizer point, the coil condenses what
    # the outdoor air brings: share = latent / s with s = (33 − 18)/12.
    share_cold_wet = float(mechanical_share(18.0, FREE_AIR, 18.0))
    assert 0.3 < share_cold_wet < 0.45
    assert float(mechanical_share(18.0, FREE_AIR, 10.0)) == 0.0


def test_unknown_humidity_is_the_dry_bulb_rule() -> None:
    t = np.array([10.0, 22.0, 25.0, 30.0, 40.0])
    dry = mechanical_share(t, FREE_AIR)
    np.testing.assert_allclose(dry, [0.0, 1 / 12, 4 / 12, 9 / 12, 1.0])
    np.testing.assert_array_equal(mechanical_share(t, FREE_AIR, np.full(5, np.nan)), dry)
    mixed = mechanical_share(t, FREE_AIR, np.array([np.nan, 20.0, np.nan, 26.0, np.nan]))
    np.testing.assert_array_equal(mixed[[0, 2, 4]], dry[[0, 2, 4]])
    assert mixed[1] > dry[1] and mixed[3] == 1.0


def test_classes_and_kinds() -> None:
    # A1 allows a 17 °C dew point: 25 °C with a 16 °C dew point is then sensible-only.
    a1 = replace(FREE_AIR, ashrae_class="A1")
    assert float(mechanical_share(25.0, a1, 16.0)) == pytest.approx(4 / 12)
    assert float(mechanical_share(25.0, a1, 18.0)) > 4 / 12
    # Water-side and dry-cooler economizers never bring outdoor air in: humidity does not matter.
    for kind in ("chilled_water", "liquid"):
        p = CoolingParams.for_kind(kind)
        t = np.array([5.0, 15.0, 25.0, 35.0])
        np.testing.assert_array_equal(mechanical_share(t, p, t - 0.5), mechanical_share(t, p))
    assert np.all(mechanical_share([5.0, 30.0], CoolingParams.for_kind("dx"), [4.0, 29.0]) == 1.0)
    # Air hotter than the envelope's dry-bulb maximum may not enter uncooled.
    hot_limit = replace(FREE_AIR, economizer_max_c=30.0)
    assert float(mechanical_share(28.0, hot_limit, 5.0)) > 0.0
    assert ASHRAE_ENVELOPES["recommended"].dew_point_max_c == 15.0
    with pytest.raises(ValueError, match="unknown ASHRAE class"):
        CoolingParams(ashrae_class="A9")  # type: ignore[arg-type]


@given(
    t=st.floats(-30.0, 50.0),
    depression=st.floats(0.0, 40.0),
    wetter=st.floats(0.0, 10.0),
    cls=st.sampled_from(sorted(ASHRAE_ENVELOPES)),
)
def test_share_bounds_and_monotone_in_humidity(t: float, depression: float, wetter: float, cls: str) -> None:
    p = replace(FREE_AIR, ashrae_class=cls)  # type: ignore[arg-type]
    dp = t - depression
    dp_wet = min(t, dp + wetter)
    dry = float(mechanical_share(t, p))
    share = float(mechanical_share(t, p, dp))
    assert dry - 1e-12 <= share <= 1.0
    assert float(mechanical_share(t, p, dp_wet)) >= share - 1e-12


def test_module_class_reaches_the_physics() -> None:
    spec = {
        "id": "m",
        "rack_units": 12,
        "max_it_kw": 10.0,
        "cooling": {"kind": "free_air"},
        "ups": {"energy_kwh": 2.0},
        "capex": 1.0,
        "lifetime_years": 10.0,
    }
    rec, a1 = Module.model_validate(spec), Module.model_validate({**spec, "ashrae_class": "A1"})
    assert cooling_params(rec).ashrae_class == "recommended" and cooling_params(a1).ashrae_class == "A1"
    t = np.full(100, 25.0)
    dp = np.full(100, 16.0)
    assert module_annual_pue(5000.0, t, a1, 10_000.0, dew_point_c=dp) < module_annual_pue(
        5000.0, t, rec, 10_000.0, dew_point_c=dp
    )
    with pytest.raises(ValueError, match=r"supply_temp_c 30.0 °C lies outside the ASHRAE recommended"):
        Module.model_validate({**spec, "cooling": {"kind": "free_air", "supply_temp_c": 30.0}})
    assert Module.model_validate(
        {**spec, "ashrae_class": "A1", "cooling": {"kind": "free_air", "supply_temp_c": 30.0}}
    )


def test_facility_power_with_humidity_balances() -> None:
    rng = np.random.default_rng(1)
    t = rng.uniform(-10.0, 45.0, (48, 1))
    dp = t - rng.uniform(0.0, 25.0, (48, 1))
    it = rng.uniform(0.0, 20_000.0, (48, 4))
    fp = facility_power_w(it, t, it_capacity_w=np.full(4, 20_000.0), dew_point_c=dp, cooling=FREE_AIR)
    assert fp.total_w.shape == (48, 4)
    np.testing.assert_array_equal(
        fp.total_w, fp.it_w + fp.cooling_w + fp.ups_loss_w + fp.distribution_loss_w + fp.misc_w
    )
    dry = facility_power_w(it, t, it_capacity_w=np.full(4, 20_000.0), cooling=FREE_AIR)
    assert np.all(fp.cooling_w >= dry.cooling_w - 1e-9)
    with pytest.raises(ValueError, match="dew_point_c must be finite"):
        facility_power_w(1000.0, 20.0, it_capacity_w=2000.0, dew_point_c=np.inf)
