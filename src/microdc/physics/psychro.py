"""Psychrometrics of moist air, vectorized: dew point, humidity ratio, enthalpy, wet bulb.

SI units throughout: temperatures in °C, pressure in Pa, relative humidity in percent, humidity
ratio in kg of water vapour per kg of dry air, enthalpy in kJ per kg of dry air. Every function
broadcasts like numpy. The formulas are those of the 2017 ASHRAE Handbook — Fundamentals,
chapter 1 ("Psychrometrics"):

* saturation vapour pressure: Hyland–Wexler, eq. (5) over ice below 0 °C and eq. (6) over
  liquid water from 0 °C (ASHRAE states them within 300 ppm of the reference values of its
  Table 3 from −100 to 200 °C);
* humidity ratio ``W = 0.621945 p_w / (p − p_w)`` (eq. 20/22);
* enthalpy ``h = 1.006 t + W (2501 + 1.86 t)`` kJ/kg (eq. 30);
* dew point: the temperature at which ``p_ws(t_d) = p_w``, solved by Newton's method on the
  Hyland–Wexler curve (to < 1e-6 K; ASHRAE's own closed form, eq. 39–40, is an approximation
  of the same inverse), starting from the Magnus form of Alduchov & Eskridge (1996),
  ``p_ws ≈ 610.94 exp(17.625 t / (t + 243.04))``, which alone is within 0.4 % of eq. (6)
  between −40 and 50 °C;
* thermodynamic wet bulb: the root of the psychrometric equation, eq. (33) (35 below freezing),
  found by bisection between the dew point and the dry bulb to < 1e-6 K.

``wet_bulb_stull_c`` is R. Stull's empirical fit (J. Appl. Meteor. Climatol. 50, 2011,
doi:10.1175/JAMC-D-11-0143.1) from dry bulb and RH at sea-level pressure; Stull states its error
as −1 K to +0.65 K for RH 5–99 % and −20 to 50 °C (mean absolute error 0.28 K), except when both
cold and dry. Against ``wet_bulb_c`` on 10–45 °C and 10–95 % RH it is within −0.65 to +1.01 K
(mean absolute 0.28 K; tested). It is kept as an independent cross-check, not used by the models.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Standard sea-level atmospheric pressure, Pa.
P_STD_PA = 101_325.0
#: Ratio of the molar masses of water vapour and dry air (ASHRAE 2017, eq. 20).
EPSILON = 0.621945
_KELVIN = 273.15

# Hyland–Wexler coefficients, ASHRAE 2017 Fundamentals ch. 1, eq. (5) (ice) and (6) (water).
_C1, _C2, _C3, _C4 = -5.6745359e03, 6.3925247e00, -9.6778430e-03, 6.2215701e-07
_C5, _C6, _C7 = 2.0747825e-09, -9.4840240e-13, 4.1635019e00
_C8, _C9, _C10 = -5.8002206e03, 1.3914993e00, -4.8640239e-02
_C11, _C12, _C13 = 4.1764768e-05, -1.4452093e-08, 6.5459673e00

_T_MIN_C, _T_MAX_C = -100.0, 200.0


def _f(x: npt.ArrayLike) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _ln_pws_ice(t_k: FloatArray) -> FloatArray:
    return np.asarray(
        _C1 / t_k + _C2 + t_k * (_C3 + t_k * (_C4 + t_k * (_C5 + t_k * _C6))) + _C7 * np.log(t_k),
        dtype=np.float64,
    )


def _ln_pws_water(t_k: FloatArray) -> FloatArray:
    return np.asarray(
        _C8 / t_k + _C9 + t_k * (_C10 + t_k * (_C11 + t_k * _C12)) + _C13 * np.log(t_k), dtype=np.float64
    )


def _ln_pws(t_k: FloatArray) -> FloatArray:
    """ln p_ws (Pa) at absolute temperature ``t_k``: over ice below 0 °C, over water from 0 °C."""
    ice = t_k < _KELVIN
    if not ice.any():  # the common case (weather above freezing): one branch only
        return _ln_pws_water(t_k)
    if ice.all():
        return _ln_pws_ice(t_k)
    return np.asarray(np.where(ice, _ln_pws_ice(t_k), _ln_pws_water(t_k)), dtype=np.float64)


def _dln_pws_ice(t_k: FloatArray) -> FloatArray:
    return np.asarray(
        -_C1 / t_k**2 + _C3 + t_k * (2 * _C4 + t_k * (3 * _C5 + t_k * 4 * _C6)) + _C7 / t_k, dtype=np.float64
    )


def _dln_pws_water(t_k: FloatArray) -> FloatArray:
    return np.asarray(-_C8 / t_k**2 + _C10 + t_k * (2 * _C11 + t_k * 3 * _C12) + _C13 / t_k, dtype=np.float64)


def saturation_vapor_pressure_pa(t_c: npt.ArrayLike, *, check: bool = True) -> FloatArray:
    """Saturation vapour pressure, Pa, over ice below 0 °C and over water from 0 °C (Hyland–Wexler).

    ``check=False`` skips the range check (for callers that already bound their inputs, in loops).
    """
    t = _f(t_c)
    if check and (not np.all(np.isfinite(t)) or np.any((t < _T_MIN_C) | (t > _T_MAX_C))):
        raise ValueError(f"temperature must be finite and within [{_T_MIN_C}, {_T_MAX_C}] °C")
    return np.asarray(np.exp(_ln_pws(t + _KELVIN)), dtype=np.float64)


def dew_point_from_vapor_pressure_c(p_w_pa: npt.ArrayLike) -> FloatArray:
    """Dew (frost, below 0 °C) point, °C, of air whose vapour partial pressure is ``p_w_pa`` (> 0)."""
    pw = _f(p_w_pa)
    if not np.all(np.isfinite(pw)) or np.any(pw <= 0.0):
        raise ValueError("vapour pressure must be finite and > 0")
    target = np.log(pw)
    # Each branch (ice below 0 °C, water above) is smooth and increasing: Newton on each, from the
    # Magnus (Alduchov & Eskridge 1996) inverse, then take the root that lies on its own side of
    # 0 °C. (The two curves differ by 0.01 % at 0 °C; a pressure in that gap has its dew point at 0.)
    g = np.log(pw / 610.94)
    start = np.clip(243.04 * g / (17.625 - g), _T_MIN_C, _T_MAX_C) + _KELVIN
    lo_k, hi_k = _T_MIN_C + _KELVIN, _T_MAX_C + _KELVIN
    t_ice, t_water = start.copy(), start.copy()
    for _ in range(8):
        t_ice = np.clip(t_ice - (_ln_pws_ice(t_ice) - target) / _dln_pws_ice(t_ice), lo_k, hi_k)
        t_water = np.clip(t_water - (_ln_pws_water(t_water) - target) / _dln_pws_water(t_water), lo_k, hi_k)
    t_k = np.where(t_water >= _KELVIN, t_water, np.where(t_ice < _KELVIN, t_ice, _KELVIN))
    return np.asarray(t_k - _KELVIN, dtype=np.float64)


def dew_point_c(t_c: npt.ArrayLike, rh_pct: npt.ArrayLike) -> FloatArray:
    """Dew point, °C, from dry bulb (°C) and relative humidity (%, in (0, 100])."""
    rh = _f(rh_pct)
    if not np.all(np.isfinite(rh)) or np.any((rh <= 0.0) | (rh > 100.0)):
        raise ValueError("relative humidity must lie in (0, 100] %")
    return dew_point_from_vapor_pressure_c(saturation_vapor_pressure_pa(t_c) * rh / 100.0)


def relative_humidity_pct(t_c: npt.ArrayLike, dew_point_c: npt.ArrayLike) -> FloatArray:
    """Relative humidity, %, of air at dry bulb ``t_c`` with dew point ``dew_point_c`` (both °C)."""
    return np.asarray(
        100.0 * saturation_vapor_pressure_pa(dew_point_c) / saturation_vapor_pressure_pa(t_c),
        dtype=np.float64,
    )


def humidity_ratio_from_vapor_pressure(
    p_w_pa: npt.ArrayLike, pressure_pa: npt.ArrayLike = P_STD_PA
) -> FloatArray:
    """Humidity ratio W, kg/kg dry air, from the vapour partial pressure (ASHRAE eq. 20)."""
    pw, p = _f(p_w_pa), _f(pressure_pa)
    if np.any(pw < 0.0) or np.any(pw >= p):
        raise ValueError("need 0 <= vapour pressure < total pressure")
    return np.asarray(EPSILON * pw / (p - pw), dtype=np.float64)


def humidity_ratio(dew_point_c: npt.ArrayLike, pressure_pa: npt.ArrayLike = P_STD_PA) -> FloatArray:
    """Humidity ratio W, kg/kg dry air, of air with dew point ``dew_point_c`` (°C)."""
    return humidity_ratio_from_vapor_pressure(saturation_vapor_pressure_pa(dew_point_c), pressure_pa)


def humidity_ratio_from_rh(
    t_c: npt.ArrayLike, rh_pct: npt.ArrayLike, pressure_pa: npt.ArrayLike = P_STD_PA
) -> FloatArray:
    """Humidity ratio W, kg/kg dry air, from dry bulb (°C) and relative humidity (%)."""
    rh = _f(rh_pct)
    if not np.all(np.isfinite(rh)) or np.any((rh < 0.0) | (rh > 100.0)):
        raise ValueError("relative humidity must lie in [0, 100] %")
    return humidity_ratio_from_vapor_pressure(saturation_vapor_pressure_pa(t_c) * rh / 100.0, pressure_pa)


def dew_point_from_humidity_ratio_c(w: npt.ArrayLike, pressure_pa: npt.ArrayLike = P_STD_PA) -> FloatArray:
    """Dew point, °C, of air with humidity ratio ``w`` (kg/kg, > 0)."""
    w_, p = _f(w), _f(pressure_pa)
    if np.any(w_ <= 0.0):
        raise ValueError("humidity ratio must be > 0")
    return dew_point_from_vapor_pressure_c(p * w_ / (EPSILON + w_))


def enthalpy_kj_per_kg(t_c: npt.ArrayLike, w: npt.ArrayLike) -> FloatArray:
    """Moist-air enthalpy, kJ per kg of dry air, at dry bulb ``t_c`` (°C) and humidity ratio ``w``."""
    t, w_ = _f(t_c), _f(w)
    return np.asarray(1.006 * t + w_ * (2501.0 + 1.86 * t), dtype=np.float64)


def _w_from_wet_bulb(t: FloatArray, twb: FloatArray, p: FloatArray) -> FloatArray:
    """The psychrometric equation, ASHRAE eq. (33) above freezing, (35) below."""
    pws = np.exp(_ln_pws(twb + _KELVIN))
    ws = EPSILON * pws / (p - pws)
    above = (2501.0 - 2.326 * twb) * ws - 1.006 * (t - twb)
    above = above / (2501.0 + 1.86 * t - 4.186 * twb)
    below = (2830.0 - 0.24 * twb) * ws - 1.006 * (t - twb)
    below = below / (2830.0 + 1.86 * t - 2.1 * twb)
    return np.asarray(np.where(twb >= 0.0, above, below), dtype=np.float64)


def wet_bulb_c(
    t_c: npt.ArrayLike, dew_point_c: npt.ArrayLike, pressure_pa: npt.ArrayLike = P_STD_PA
) -> FloatArray:
    """Thermodynamic wet-bulb temperature, °C, from dry bulb and dew point (°C), by bisection."""
    t, td, p = np.broadcast_arrays(_f(t_c), _f(dew_point_c), _f(pressure_pa))
    if np.any(td > t + 1e-9):
        raise ValueError("dew point must not exceed the dry bulb")
    w = humidity_ratio(td, p)
    lo, hi = np.minimum(td, t).astype(np.float64), t.astype(np.float64)
    # W(t, twb) increases with twb: bisection on [t_d, t] (the wet bulb lies between them).
    for _ in range(48):
        mid = 0.5 * (lo + hi)
        low = _w_from_wet_bulb(t, mid, p) < w
        lo = np.where(low, mid, lo)
        hi = np.where(low, hi, mid)
    return np.asarray(0.5 * (lo + hi), dtype=np.float64)


def wet_bulb_stull_c(t_c: npt.ArrayLike, rh_pct: npt.ArrayLike) -> FloatArray:
    """Stull (2011) empirical wet bulb, °C, at sea level; error −1 to +0.65 K (RH 5–99 %, −20–50 °C)."""
    t, rh = _f(t_c), _f(rh_pct)
    return np.asarray(
        t * np.arctan(0.151977 * np.sqrt(rh + 8.313659))
        + np.arctan(t + rh)
        - np.arctan(rh - 1.676331)
        + 0.00391838 * rh**1.5 * np.arctan(0.023101 * rh)
        - 4.686035,
        dtype=np.float64,
    )
