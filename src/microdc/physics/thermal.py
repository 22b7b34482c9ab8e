"""How long IT can run after its cooling stops: a first-order lumped thermal model.

The enclosure (air plus the part of the equipment mass coupled to the inlet air) is one
heat capacity ``C`` (J/K) losing heat to the outdoors through ``UA`` (W/K)::

    C dT/dt = P_it − UA (T − T_out)

so ``T(t) = T_ss + (T0 − T_ss)·exp(−t/τ)`` with ``T_ss = T_out + P_it/UA`` and
``τ = C/UA``. The time to reach a threshold (ASHRAE class A1 allowable inlet maximum,
32 °C) is ``τ·ln((T_ss − T0)/(T_ss − T_th))``; infinite when ``T_ss ≤ T_th``. With
``UA = 0`` it is the adiabatic ``C (T_th − T0) / P_it``.

This is a coarse, conservative-in-shape model for ride-through planning (how long the
UPS must keep running while cooling restarts), not CFD: real rooms have hot spots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: ASHRAE TC 9.9 (2021) class A1 allowable maximum inlet dry-bulb, °C.
ASHRAE_A1_ALLOWABLE_MAX_C = 32.0


@dataclass(frozen=True)
class ThermalParams:
    """Lumped thermal properties of an enclosure.

    Defaults are order-of-magnitude for a ~20 kW single-enclosure MDC: ~15 m³ of air
    (18 kJ/K) plus ~300 kg of equipment metal effectively coupled (~150 kJ/K); a lightly
    insulated shell of ~25 m² at U ≈ 2 W/m²K. Calibrate per design when it matters.
    """

    heat_capacity_j_per_k: float = 1.7e5
    ua_w_per_k: float = 50.0

    def __post_init__(self) -> None:
        if not self.heat_capacity_j_per_k > 0.0:
            raise ValueError("heat_capacity_j_per_k must be > 0")
        if not self.ua_w_per_k >= 0.0:
            raise ValueError("ua_w_per_k must be >= 0")


def inlet_temperature_c(
    t_s: npt.ArrayLike,
    it_w: npt.ArrayLike,
    initial_c: npt.ArrayLike,
    outdoor_c: npt.ArrayLike,
    params: ThermalParams = ThermalParams(),
) -> FloatArray:
    """Inlet temperature, °C, ``t_s`` seconds after cooling stops (broadcasts)."""
    t = np.asarray(t_s, dtype=np.float64)
    p = np.asarray(it_w, dtype=np.float64)
    t0 = np.asarray(initial_c, dtype=np.float64)
    tout = np.asarray(outdoor_c, dtype=np.float64)
    c, ua = params.heat_capacity_j_per_k, params.ua_w_per_k
    if ua == 0.0:
        return np.asarray(t0 + p * t / c, dtype=np.float64)
    t_ss = tout + p / ua
    return np.asarray(t_ss + (t0 - t_ss) * np.exp(-t * ua / c), dtype=np.float64)


def time_to_threshold_s(
    it_w: npt.ArrayLike,
    initial_c: npt.ArrayLike,
    outdoor_c: npt.ArrayLike,
    params: ThermalParams = ThermalParams(),
    threshold_c: float = ASHRAE_A1_ALLOWABLE_MAX_C,
) -> FloatArray:
    """Seconds until the inlet reaches ``threshold_c`` after cooling stops (broadcasts).

    0 if already at or above it; ``inf`` if the steady state stays below it.
    """
    p = np.asarray(it_w, dtype=np.float64)
    t0 = np.asarray(initial_c, dtype=np.float64)
    tout = np.asarray(outdoor_c, dtype=np.float64)
    if np.any(p < 0.0):
        raise ValueError("it_w must be >= 0")
    p, t0, tout = np.broadcast_arrays(p, t0, tout)
    c, ua = params.heat_capacity_j_per_k, params.ua_w_per_k
    out = np.full(p.shape, np.inf, dtype=np.float64)
    already = t0 >= threshold_c
    if ua == 0.0:
        heating = (p > 0.0) & ~already
        out[heating] = c * (threshold_c - t0[heating]) / p[heating]
    else:
        t_ss = tout + p / ua
        reach = (t_ss > threshold_c) & ~already
        out[reach] = (c / ua) * np.log((t_ss[reach] - t0[reach]) / (t_ss[reach] - threshold_c))
    out[already] = 0.0
    return out
