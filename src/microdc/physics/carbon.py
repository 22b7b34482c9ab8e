"""Operational and embodied carbon.

Operational: energy drawn in a step times the grid's intensity in that step; both
arrays must be aligned on the same (hourly) steps, use
``microdc.model.timeseries.align_hourly`` to put a year of intensity onto a
simulation window first.

Embodied: a module's manufacturing/transport/end-of-life footprint (kgCO2e) spread
evenly over its service life (straight-line amortisation, the usual convention in
e.g. the Green Software Foundation SCI specification).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

HOURS_PER_YEAR = 8760.0


def operational_carbon_g(energy_kwh: npt.ArrayLike, intensity_g_per_kwh: npt.ArrayLike) -> FloatArray:
    """gCO2e per step = energy (kWh) × grid intensity (gCO2e/kWh), aligned element-wise.

    Broadcasting is allowed (e.g. ``(steps, sites)`` energy with ``(steps, 1)``
    intensity); a mismatch in the step count is an error, not a silent broadcast.
    """
    e = np.asarray(energy_kwh, dtype=np.float64)
    ci = np.asarray(intensity_g_per_kwh, dtype=np.float64)
    if e.ndim and ci.ndim and e.shape[0] != ci.shape[0] and 1 not in (e.shape[0], ci.shape[0]):
        raise ValueError(f"energy and intensity are not aligned: {e.shape[0]} vs {ci.shape[0]} steps")
    if np.any(ci < 0.0):
        raise ValueError("intensity must be >= 0")
    return np.asarray(e * ci, dtype=np.float64)


def embodied_carbon_annual_kg(embodied_kgco2e: npt.ArrayLike, lifetime_years: npt.ArrayLike) -> FloatArray:
    """Annualised embodied carbon, kgCO2e per year (straight-line over the lifetime)."""
    total = np.asarray(embodied_kgco2e, dtype=np.float64)
    life = np.asarray(lifetime_years, dtype=np.float64)
    if np.any(total < 0.0) or np.any(life <= 0.0):
        raise ValueError("need embodied_kgco2e >= 0 and lifetime_years > 0")
    return np.asarray(total / life, dtype=np.float64)


def embodied_carbon_g(
    embodied_kgco2e: npt.ArrayLike, lifetime_years: npt.ArrayLike, duration_h: npt.ArrayLike
) -> FloatArray:
    """Embodied carbon attributed to a period of ``duration_h`` hours, gCO2e (365-day years)."""
    dur = np.asarray(duration_h, dtype=np.float64)
    if np.any(dur < 0.0):
        raise ValueError("duration_h must be >= 0")
    return np.asarray(
        embodied_carbon_annual_kg(embodied_kgco2e, lifetime_years) * 1000.0 * dur / HOURS_PER_YEAR,
        dtype=np.float64,
    )
