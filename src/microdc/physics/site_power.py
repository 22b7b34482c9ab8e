"""Facility power of an MDC module from its catalog entry: the bridge from model to cooling physics."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from microdc.model.components import Module
from microdc.physics.cooling import CoolingParams, FacilityPower, UpsParams, facility_power_w

FloatArray = npt.NDArray[np.float64]


def cooling_params(module: Module) -> CoolingParams:
    """The physics preset for the module's cooling kind, with the catalog's overrides applied."""
    c = module.cooling
    overrides: dict[str, Any] = {
        k: v
        for k, v in (
            ("economizer_max_c", c.economizer_max_c),
            ("transition_band_c", c.transition_band_c),
            ("fan_fraction", c.fan_fraction),
            ("fan_min_speed", c.fan_min_speed),
            ("supply_temp_c", c.supply_temp_c),
            ("carnot_efficiency", c.carnot_efficiency),
            ("cycling_degradation", c.cycling_degradation),
        )
        if v is not None
    }
    return CoolingParams.for_kind(c.kind.value, ashrae_class=module.ashrae_class, **overrides)


def ups_params(module: Module) -> UpsParams:
    """The module's UPS loss curve, anchored on the catalog's ``ups.efficiency`` at rated load."""
    return UpsParams.from_efficiency(module.ups.efficiency)


def module_rating_w(module: Module, it_capacity_w: npt.ArrayLike | None = None) -> FloatArray:
    """What the module's UPS, fans and miscellaneous loads are rated for, W: its IT envelope
    (``max_it_kw``), or the installed IT capacity if that is larger. The plant belongs to the
    module, so a half-filled module carries all of it."""
    rated = module.max_it_kw * 1000.0
    if it_capacity_w is None:
        return np.asarray(rated, dtype=np.float64)
    return np.asarray(np.maximum(np.asarray(it_capacity_w, dtype=np.float64), rated), dtype=np.float64)


def module_power(
    it_w: npt.ArrayLike,
    outdoor_c: npt.ArrayLike,
    module: Module,
    it_capacity_w: npt.ArrayLike | None = None,
    dew_point_c: npt.ArrayLike | None = None,
) -> FacilityPower:
    """Facility power breakdown of a module carrying `it_w` at outdoor temperature `outdoor_c`
    (and outdoor dew point `dew_point_c`, °C; None or NaN: unknown, dry-bulb limits only).

    The UPS (the catalog's ``ups.efficiency`` at rated load, as a load curve), the fans and the
    miscellaneous loads are rated to :func:`module_rating_w`: ``it_capacity_w`` (the installed IT
    capacity) only matters where it exceeds the module's envelope, so the planner (installed
    servers), check-plan and the twin (whole module) get the same facility power."""
    return facility_power_w(
        it_w,
        outdoor_c,
        it_capacity_w=module_rating_w(module, it_capacity_w),
        dew_point_c=dew_point_c,
        cooling=cooling_params(module),
        ups=ups_params(module),
    )


def design_power_kw(it_kw: float, module: Module, outdoor_c: float) -> float:
    """Facility kW at full IT load and a design outdoor temperature (sizing the grid connection)."""
    p = module_power(it_kw * 1000.0, outdoor_c, module, it_capacity_w=max(it_kw * 1000.0, 1.0))
    return float(p.total_w) / 1000.0


def annual_pue(
    it_w: float,
    outdoor_c: FloatArray,
    module: Module,
    it_capacity_w: float,
    dew_point_c: FloatArray | None = None,
) -> float:
    """Energy-weighted PUE over a weather series at a constant IT load (with its dew points, if known)."""
    p = module_power(
        np.full_like(outdoor_c, it_w), outdoor_c, module, it_capacity_w=it_capacity_w, dew_point_c=dew_point_c
    )
    return float(p.total_w.sum() / p.it_w.sum())
