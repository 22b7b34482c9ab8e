"""Facility power around the IT load: cooling, UPS, distribution and miscellaneous.

All functions are vectorized: ``it_w`` is typically ``(steps, sites)`` and the outdoor
dry-bulb temperature broadcasts against it (``(steps, 1)`` for one weather file).

Energy balance per step (every term ≥ 0, so PUE ≥ 1)::

    ups_loss_w          = rated · (a + b·f + c·f²),  f = it_w / rated            (UpsParams)
    distribution_loss_w = distribution_loss_fraction · (it_w + ups_loss_w)        (PDU, transformer)
    heat_w              = it_w + ups_loss_w + distribution_loss_w                 (all inside the MDC shell)
    cooling_w           = fan_fraction · it_w + mechanical_share(T) · heat_w / COP(T)
    misc_w              = misc_fixed_w + misc_fraction_of_capacity · capacity     (lights, controls, security)
    total_w             = it_w + cooling_w + ups_loss_w + distribution_loss_w + misc_w

Cooling modes by outdoor dry bulb ``T``:

* economizer (``T ≤ economizer_max_c``): outdoor air or water carries the whole load;
  only air movers/pumps run (``fan_fraction`` of IT).
* transition band (``economizer_max_c < T < economizer_max_c + transition_band_c``):
  outdoor air pre-cools the return stream and the compressor removes the rest; the
  compressor's share rises linearly with ``T`` (sensible heat is linear in
  temperature), reaching 1 when outdoor air is as warm as the return air.
* mechanical (above the band, or always for ``kind="dx"``): vapour-compression with
  a temperature-dependent COP: a fixed fraction ``η`` of the Carnot COP between the
  evaporator (supply − approach) and the condenser (outdoor + approach, but not below
  ``min_condensing_c``: head-pressure control keeps condensing warm in cold weather),
  clipped to ``[cop_min, cop_max]``. Second-law efficiencies of 0.3–0.55 are typical
  of real vapour-compression plant. The default η = 0.35 with 12 °C evaporating and a
  15 K condenser approach gives COP ≈ 2.6 at 35 °C outdoors (≈ 2.1 at 45 °C); with
  the DX preset's 5 % fan share that is a combined sensible COP ≈ 2.3 at 35 °C, the
  order of the ASHRAE 90.1 minimum net sensible COP of small air-cooled computer-room
  units (AHRI 1360 rating at 95 °F) — i.e. ordinary, not best-in-class, equipment.

Humidity limits on air-side economizers are not modelled (dry-bulb only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
CoolingKind = Literal["free_air", "dx", "chilled_water", "liquid"]

_KELVIN = 273.15


@dataclass(frozen=True)
class CoolingParams:
    """Cooling plant parameters; ``CoolingParams.for_kind`` gives sensible presets.

    Attributes:
        kind: label of the technology ("free_air" | "dx" | "chilled_water" | "liquid").
        economizer: whether outdoor air/water can carry load (False for plain DX).
        fan_fraction: air movers and pumps, always running, as a fraction of IT power.
        economizer_max_c: outdoor dry bulb up to which the economizer carries 100 %.
        transition_band_c: width of the partial-economizer band above that, K.
        supply_temp_c: supply air (or coolant) temperature to the IT, °C.
        evaporator_approach_c: refrigerant evaporates this much below supply, K.
        condenser_approach_c: refrigerant condenses this much above outdoor, K.
        min_condensing_c: lowest condensing temperature (head-pressure control), °C.
        carnot_efficiency: η, achieved fraction of the Carnot COP.
        cop_min, cop_max: clip of the COP (protects against extreme inputs).
    """

    kind: CoolingKind = "free_air"
    economizer: bool = True
    fan_fraction: float = 0.03
    economizer_max_c: float = 21.0
    transition_band_c: float = 12.0
    supply_temp_c: float = 24.0
    evaporator_approach_c: float = 12.0
    condenser_approach_c: float = 15.0
    min_condensing_c: float = 25.0
    carnot_efficiency: float = 0.35
    cop_min: float = 1.5
    cop_max: float = 8.0

    def __post_init__(self) -> None:
        if self.kind not in ("free_air", "dx", "chilled_water", "liquid"):
            raise ValueError(f"unknown cooling kind {self.kind!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"CoolingParams.{f.name} must be finite")
        if self.fan_fraction < 0.0 or self.transition_band_c < 0.0:
            raise ValueError("fan_fraction and transition_band_c must be >= 0")
        if not 0.0 < self.carnot_efficiency <= 1.0:
            raise ValueError("carnot_efficiency must lie in (0, 1]")
        if not 0.0 < self.cop_min <= self.cop_max:
            raise ValueError("need 0 < cop_min <= cop_max")

    @classmethod
    def for_kind(cls, kind: CoolingKind, **overrides: Any) -> CoolingParams:
        """Preset for a technology, with any field overridden.

        * free_air: direct air-side economizer with DX backup; full free cooling up to
          3 K below a 24 °C supply, partial up to the ~33 °C return air.
        * dx: air-cooled direct expansion, no economizer; larger fan share (evaporator
          and condenser fans).
        * chilled_water: CRAH + air-cooled chiller with a water-side economizer
          (dry cooler); 15 °C chilled water, full free cooling below 10 °C outdoors.
        * liquid: warm-water direct-to-chip (ASHRAE W40-class, 35 °C supply); dry
          coolers carry the load up to ~30 °C outdoors, chiller trim above.
        """
        presets: dict[str, dict[str, Any]] = {
            "free_air": {},
            "dx": {"economizer": False, "fan_fraction": 0.05},
            "chilled_water": {
                "fan_fraction": 0.04,
                "economizer_max_c": 10.0,
                "transition_band_c": 10.0,
                "supply_temp_c": 15.0,
                "evaporator_approach_c": 4.0,
                "condenser_approach_c": 12.0,
                "carnot_efficiency": 0.4,
            },
            "liquid": {
                "fan_fraction": 0.02,
                "economizer_max_c": 30.0,
                "transition_band_c": 10.0,
                "supply_temp_c": 35.0,
                "evaporator_approach_c": 5.0,
                "condenser_approach_c": 12.0,
                "carnot_efficiency": 0.4,
            },
        }
        if kind not in presets:
            raise ValueError(f"unknown cooling kind {kind!r}")
        return replace(cls(kind=kind, **presets[kind]), **overrides)


@dataclass(frozen=True)
class UpsParams:
    """UPS loss model ``loss = rated · (a + b·f + c·f²)``, f = load / rated.

    a: no-load (magnetising, control, fans); b: proportional (switching); c: resistive
    (I²R). Defaults fit a modern double-conversion UPS: 95.2 % at 25 % load, 96.6 % at
    50 %, 97.1 % at 100 %. ``rated_w=None`` sizes the UPS to the IT capacity.
    """

    no_load_loss_fraction: float = 0.01
    proportional_loss_fraction: float = 0.01
    square_loss_fraction: float = 0.01
    rated_w: float | None = None

    def __post_init__(self) -> None:
        if min(self.no_load_loss_fraction, self.proportional_loss_fraction, self.square_loss_fraction) < 0.0:
            raise ValueError("UPS loss fractions must be >= 0")
        if self.rated_w is not None and not self.rated_w > 0.0:
            raise ValueError("rated_w must be > 0")

    def loss_w(self, load_w: npt.ArrayLike, rated_w: npt.ArrayLike) -> FloatArray:
        """UPS losses, W, carrying ``load_w`` on a unit rated ``rated_w``."""
        rated = np.asarray(rated_w if self.rated_w is None else self.rated_w, dtype=np.float64)
        f = np.asarray(load_w, dtype=np.float64) / rated
        return np.asarray(
            rated
            * (
                self.no_load_loss_fraction
                + self.proportional_loss_fraction * f
                + self.square_loss_fraction * f**2
            ),
            dtype=np.float64,
        )

    def efficiency(self, load_fraction: npt.ArrayLike) -> FloatArray:
        """Output / input power at a load fraction (0 at zero load)."""
        f = np.asarray(load_fraction, dtype=np.float64)
        loss = (
            self.no_load_loss_fraction
            + self.proportional_loss_fraction * f
            + self.square_loss_fraction * f**2
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            eff = np.where(f > 0.0, f / (f + loss), 0.0)
        return np.asarray(eff, dtype=np.float64)


@dataclass(frozen=True)
class FacilityParams:
    """Electrical distribution and miscellaneous loads.

    distribution_loss_fraction: PDU, transformer and cabling losses as a fraction of
    the power flowing to IT through the UPS (1.5 % is typical of a short low-voltage path).
    misc: lighting, controls, monitoring and security: fixed W plus a fraction of the
    IT capacity.
    """

    distribution_loss_fraction: float = 0.015
    misc_fixed_w: float = 0.0
    misc_fraction_of_capacity: float = 0.005

    def __post_init__(self) -> None:
        if min(self.distribution_loss_fraction, self.misc_fixed_w, self.misc_fraction_of_capacity) < 0.0:
            raise ValueError("FacilityParams values must be >= 0")


@dataclass(frozen=True)
class FacilityPower:
    """Per-step facility power breakdown, W; ``total_w`` is exactly the sum of parts."""

    it_w: FloatArray
    cooling_w: FloatArray
    ups_loss_w: FloatArray
    distribution_loss_w: FloatArray
    misc_w: FloatArray
    total_w: FloatArray

    @property
    def pue(self) -> FloatArray:
        """Per-step PUE (nan where IT power is zero)."""
        return pue(self.total_w, self.it_w)


def cooling_cop(outdoor_c: npt.ArrayLike, params: CoolingParams = CoolingParams()) -> FloatArray:
    """COP of the mechanical cooling at an outdoor dry bulb, °C (Carnot fraction, clipped)."""
    t_out = np.asarray(outdoor_c, dtype=np.float64)
    t_cold_k = params.supply_temp_c - params.evaporator_approach_c + _KELVIN
    t_hot_k = np.maximum(t_out + params.condenser_approach_c, params.min_condensing_c) + _KELVIN
    lift_k = t_hot_k - t_cold_k
    with np.errstate(divide="ignore", invalid="ignore"):
        cop = np.where(lift_k > 0.0, params.carnot_efficiency * t_cold_k / lift_k, params.cop_max)
    return np.asarray(np.clip(cop, params.cop_min, params.cop_max), dtype=np.float64)


def mechanical_share(outdoor_c: npt.ArrayLike, params: CoolingParams = CoolingParams()) -> FloatArray:
    """Fraction of the heat load removed by compressors (0 = full economizer, 1 = none)."""
    t_out = np.asarray(outdoor_c, dtype=np.float64)
    if not params.economizer:
        return np.ones_like(t_out)
    if params.transition_band_c == 0.0:
        return np.asarray((t_out > params.economizer_max_c).astype(np.float64), dtype=np.float64)
    share = (t_out - params.economizer_max_c) / params.transition_band_c
    return np.asarray(np.clip(share, 0.0, 1.0), dtype=np.float64)


def facility_power_w(
    it_w: npt.ArrayLike,
    outdoor_c: npt.ArrayLike,
    *,
    it_capacity_w: npt.ArrayLike,
    cooling: CoolingParams = CoolingParams(),
    ups: UpsParams = UpsParams(),
    facility: FacilityParams = FacilityParams(),
) -> FacilityPower:
    """Facility power breakdown for IT power ``it_w`` at outdoor temperature ``outdoor_c``.

    ``it_capacity_w`` (design IT power; broadcasts per site) sizes the UPS and the
    miscellaneous load. Inputs broadcast together; all outputs have the broadcast shape.
    """
    it = np.asarray(it_w, dtype=np.float64)
    t_out = np.asarray(outdoor_c, dtype=np.float64)
    cap = np.asarray(it_capacity_w, dtype=np.float64)
    if not np.all(np.isfinite(it)) or np.any(it < 0.0):
        raise ValueError("it_w must be finite and >= 0")
    if not np.all(np.isfinite(t_out)):
        raise ValueError("outdoor_c must be finite")
    if np.any(cap <= 0.0):
        raise ValueError("it_capacity_w must be > 0")
    it, t_out, cap = np.broadcast_arrays(it, t_out, cap)

    ups_loss = ups.loss_w(it, cap)
    dist_loss = facility.distribution_loss_fraction * (it + ups_loss)
    heat = it + ups_loss + dist_loss
    cooling_w = cooling.fan_fraction * it + mechanical_share(t_out, cooling) * heat / cooling_cop(
        t_out, cooling
    )
    misc = facility.misc_fixed_w + facility.misc_fraction_of_capacity * cap
    total = it + cooling_w + ups_loss + dist_loss + misc
    return FacilityPower(
        it_w=np.array(it, dtype=np.float64),
        cooling_w=np.asarray(cooling_w, dtype=np.float64),
        ups_loss_w=np.asarray(ups_loss, dtype=np.float64),
        distribution_loss_w=np.asarray(dist_loss, dtype=np.float64),
        misc_w=np.asarray(misc, dtype=np.float64),
        total_w=np.asarray(total, dtype=np.float64),
    )


def pue(total_w: npt.ArrayLike, it_w: npt.ArrayLike) -> FloatArray:
    """Per-step PUE = total / IT; nan where IT is zero (PUE is undefined there)."""
    total = np.asarray(total_w, dtype=np.float64)
    it = np.asarray(it_w, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(it > 0.0, total / np.where(it > 0.0, it, 1.0), np.nan), dtype=np.float64)


def annual_pue(total_energy: npt.ArrayLike, it_energy: npt.ArrayLike) -> float:
    """Energy-weighted PUE: Σ total energy / Σ IT energy (not the mean of hourly ratios).

    Units cancel (kWh or W per fixed step). Inputs may be any shape; all elements sum.
    """
    it_sum = float(np.sum(np.asarray(it_energy, dtype=np.float64)))
    if it_sum <= 0.0:
        raise ValueError("IT energy must be > 0")
    return float(np.sum(np.asarray(total_energy, dtype=np.float64))) / it_sum


def ups_runtime_s(
    energy_kwh: npt.ArrayLike, load_w: npt.ArrayLike, efficiency: npt.ArrayLike = 0.95
) -> FloatArray:
    """Battery ride-through, s: usable stored energy × inverter efficiency / load.

    ``inf`` at zero load. Ignores Peukert and ageing effects (derate ``energy_kwh``).
    """
    e = np.asarray(energy_kwh, dtype=np.float64)
    load = np.asarray(load_w, dtype=np.float64)
    eff = np.asarray(efficiency, dtype=np.float64)
    if np.any(e < 0.0) or np.any(load < 0.0) or np.any((eff <= 0.0) | (eff > 1.0)):
        raise ValueError("need energy_kwh >= 0, load_w >= 0 and 0 < efficiency <= 1")
    with np.errstate(divide="ignore"):
        return np.asarray(
            np.where(load > 0.0, e * 3.6e6 * eff / np.where(load > 0.0, load, 1.0), np.inf), dtype=np.float64
        )
