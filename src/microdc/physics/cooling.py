"""Facility power around the IT load: cooling, UPS, distribution and miscellaneous.

All functions are vectorized: ``it_w`` is typically ``(steps, sites)`` and the outdoor
dry-bulb temperature broadcasts against it (``(steps, 1)`` for one weather file).

Energy balance per step (every term ≥ 0, so PUE ≥ 1)::

    ups_loss_w          = rated · (a + b·f + c·f²),  f = it_w / rated            (UpsParams)
    distribution_loss_w = distribution_loss_fraction · (it_w + ups_loss_w)        (PDU, transformer)
    heat_w              = it_w + ups_loss_w + distribution_loss_w                 (all inside the MDC shell)
    fan_w               = fan_fraction · rated · max(f, fan_min_speed)³           (affinity law, speed floor)
    cooling_w           = fan_w + mech_w / (COP(T) · PLF),  mech_w = mechanical_share(T, T_dew) · heat_w
    PLF                 = 1 − C_d · (1 − min(1, mech_w / rated))                   (compressor cycling)
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

Humidity (direct air-side economizers, ``direct_air=True``, i.e. ``kind="free_air"``): outdoor
air may enter the IT space only inside the module's ASHRAE TC 9.9 (2021) supply envelope
(``ashrae_class``: the recommended envelope, 18–27 °C, dew point −9 to 15 °C and ≤ 70 % RH, or
the allowable classes A1–A4, see :data:`ASHRAE_ENVELOPES`). Full free cooling needs the outdoor
dry bulb ≤ ``min(economizer_max_c, dry_bulb_max_c)`` and its humidity ratio ≤ the envelope's
(dew point limit, and the RH limit at the supply temperature). Air that is too cold or too dry
is mixed with return air (humidification energy is not counted: adiabatic humidifiers draw
little).
Air that is too wet must be dehumidified on the cooling coil; with ``x`` the share of the
design air flow taken from outdoors, the coil load per unit of heat is::

    q(x) = max(0, 1 − x·s) + x·L
    s = (T_return − T) / (T_return − T_econ)                 sensible cooling the outdoor air brings
    L = (h(T, W_out) − h(T, W_max)) / (h(T_return, W_s) − h(T_econ, W_s))   latent load it brings

(``h`` moist-air enthalpy, ``W_s = min(W_out, W_max)``, ``T_return = economizer_max_c +
transition_band_c``). The plant picks the cheapest ``x ∈ [0, 1]`` (an enthalpy economizer), so
``mechanical_share = min(1, max(0, 1 − s) + L / max(s, 1))`` when ``s > L`` and 1 (closed
dampers, recirculation) otherwise; ``L = 0`` gives back the dry-bulb band above exactly. The
dehumidifying coil is assumed to reach the envelope's dew point at the same evaporating
temperature (12 °C), so the COP stays a function of the dry bulb. Without a dew point (a
weather file with no humidity, or NaN entries) the dry-bulb-only rule applies. Water-side and
dry-cooler economizers (``chilled_water``, ``liquid``) never bring outdoor air in: dry bulb only.
There is no evaporative or cooling-tower kind, so no COP depends on the wet bulb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from microdc.physics.psychro import (
    EPSILON,
    P_STD_PA,
    humidity_ratio,
    humidity_ratio_from_rh,
    saturation_vapor_pressure_pa,
)

FloatArray = npt.NDArray[np.float64]
CoolingKind = Literal["free_air", "dx", "chilled_water", "liquid"]
AshraeClass = Literal["recommended", "A1", "A2", "A3", "A4"]

_KELVIN = 273.15


@dataclass(frozen=True)
class AirEnvelope:
    """Allowed IT inlet (supply) air, ASHRAE TC 9.9 *Thermal Guidelines for Data Processing
    Environments*, 5th ed. (2021): dry bulb, dew point and relative humidity limits."""

    name: str
    dry_bulb_min_c: float
    dry_bulb_max_c: float
    dew_point_min_c: float
    dew_point_max_c: float
    rh_min_pct: float
    rh_max_pct: float

    def max_humidity_ratio(self, supply_c: float, pressure_pa: float = P_STD_PA) -> float:
        """Wettest air allowed at a supply temperature, kg/kg: the dew point or the RH limit."""
        return _max_humidity_ratio(self, float(supply_c), float(pressure_pa))


@lru_cache(maxsize=256)
def _max_humidity_ratio(env: AirEnvelope, supply_c: float, pressure_pa: float) -> float:
    return float(
        min(
            humidity_ratio(env.dew_point_max_c, pressure_pa),
            humidity_ratio_from_rh(supply_c, env.rh_max_pct, pressure_pa),
        )
    )


#: The 2021 envelopes: recommended (all air-cooled classes; ≤ 70 % RH with low pollutant levels),
#: and the allowable ranges of classes A1–A4.
ASHRAE_ENVELOPES: dict[str, AirEnvelope] = {
    "recommended": AirEnvelope("recommended", 18.0, 27.0, -9.0, 15.0, 0.0, 70.0),
    "A1": AirEnvelope("A1", 15.0, 32.0, -12.0, 17.0, 8.0, 80.0),
    "A2": AirEnvelope("A2", 10.0, 35.0, -12.0, 21.0, 8.0, 80.0),
    "A3": AirEnvelope("A3", 5.0, 40.0, -12.0, 24.0, 8.0, 85.0),
    "A4": AirEnvelope("A4", 5.0, 45.0, -12.0, 24.0, 8.0, 90.0),
}


#: AHRI Standard 210/240's default cyclic degradation coefficient of an untested DX unit.
DX_CYCLING_DEGRADATION = 0.25


@dataclass(frozen=True)
class CoolingParams:
    """Cooling plant parameters; ``CoolingParams.for_kind`` gives sensible presets.

    Attributes:
        kind: label of the technology ("free_air" | "dx" | "chilled_water" | "liquid").
        economizer: whether outdoor air/water can carry load (False for plain DX).
        fan_fraction: air movers and pumps at design air (or water) flow, as a fraction of the
            IT capacity: what they draw at full IT load.
        fan_min_speed: lowest fan/pump speed as a fraction of design speed. Air flow follows the
            IT load (speed ∝ load fraction) down to this floor and power follows the affinity law
            (∝ speed³), so ``fan_w = fan_fraction · capacity · max(load fraction, fan_min_speed)³``;
            1 is a constant-speed fan. Presets: 2/3 for DX plant (free_air's backup and dx), 1/2
            for chilled-water and pumped-water plant, the highest minimum speeds ASHRAE 90.1-2016
            §6.5.3.2.1 (fan airflow control) and §6.5.4.2 (hydronic variable flow) permit.
        economizer_max_c: outdoor dry bulb up to which the economizer carries 100 %.
        transition_band_c: width of the partial-economizer band above that, K.
        supply_temp_c: supply air (or coolant) temperature to the IT, °C.
        evaporator_approach_c: refrigerant evaporates this much below supply, K.
        condenser_approach_c: refrigerant condenses this much above outdoor, K.
        min_condensing_c: lowest condensing temperature (head-pressure control), °C.
        carnot_efficiency: η, achieved fraction of the Carnot COP.
        cop_min, cop_max: clip of the COP (protects against extreme inputs).
        direct_air: the economizer brings outdoor air into the IT space (free_air), so the
            ASHRAE envelope of ``ashrae_class`` limits it; False for water-side economizers.
        ashrae_class: the supply-air envelope, a key of :data:`ASHRAE_ENVELOPES`.
        cycling_degradation: ``C_d`` of a compressor that cycles on and off below full capacity:
            at part-load ratio ``PLR`` (mechanical heat over the plant's capacity, taken as the
            module's IT rating) it delivers its cooling at ``COP · PLF``, ``PLF = 1 − C_d·(1 − PLR)``
            (the part-load factor of AHRI Standard 210/240 and DOE-2/EnergyPlus single-speed DX
            coils; 0.25 is AHRI 210/240's default when a unit is not tested for it). Presets: 0.25
            for DX plant (free_air's backup and dx), 0 for chilled-water and liquid plant, whose
            capacity-controlled chillers the Carnot fraction already covers. 0 (the class default):
            no cycling loss.
    """

    kind: CoolingKind = "free_air"
    economizer: bool = True
    fan_fraction: float = 0.03
    fan_min_speed: float = 2.0 / 3.0
    economizer_max_c: float = 21.0
    transition_band_c: float = 12.0
    supply_temp_c: float = 24.0
    evaporator_approach_c: float = 12.0
    condenser_approach_c: float = 15.0
    min_condensing_c: float = 25.0
    carnot_efficiency: float = 0.35
    cop_min: float = 1.5
    cop_max: float = 8.0
    direct_air: bool = True
    ashrae_class: AshraeClass = "recommended"
    cycling_degradation: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("free_air", "dx", "chilled_water", "liquid"):
            raise ValueError(f"unknown cooling kind {self.kind!r}")
        if self.ashrae_class not in ASHRAE_ENVELOPES:
            raise ValueError(
                f"unknown ASHRAE class {self.ashrae_class!r}; expected one of {', '.join(ASHRAE_ENVELOPES)}"
            )
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"CoolingParams.{f.name} must be finite")
        if self.fan_fraction < 0.0 or self.transition_band_c < 0.0:
            raise ValueError("fan_fraction and transition_band_c must be >= 0")
        if not 0.0 <= self.fan_min_speed <= 1.0:
            raise ValueError("fan_min_speed must lie in [0, 1]")
        if not 0.0 < self.carnot_efficiency <= 1.0:
            raise ValueError("carnot_efficiency must lie in (0, 1]")
        if not 0.0 < self.cop_min <= self.cop_max:
            raise ValueError("need 0 < cop_min <= cop_max")
        if not 0.0 <= self.cycling_degradation < 1.0:
            raise ValueError("cycling_degradation must lie in [0, 1)")

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
            "free_air": {"cycling_degradation": DX_CYCLING_DEGRADATION},
            "dx": {
                "economizer": False,
                "fan_fraction": 0.05,
                "direct_air": False,
                "cycling_degradation": DX_CYCLING_DEGRADATION,
            },
            "chilled_water": {
                "direct_air": False,
                "fan_fraction": 0.04,
                "fan_min_speed": 0.5,
                "economizer_max_c": 10.0,
                "transition_band_c": 10.0,
                "supply_temp_c": 15.0,
                "evaporator_approach_c": 4.0,
                "condenser_approach_c": 12.0,
                "carnot_efficiency": 0.4,
            },
            "liquid": {
                "direct_air": False,
                "fan_fraction": 0.02,
                "fan_min_speed": 0.5,
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

    @property
    def envelope(self) -> AirEnvelope:
        """The ASHRAE supply-air envelope of ``ashrae_class``."""
        return ASHRAE_ENVELOPES[self.ashrae_class]


#: Shares of a UPS's full-load loss that are no-load, proportional and square-law (I²R) losses.
#: N. Rasmussen, "Electrical Efficiency Modeling for Data Centers", APC/Schneider White Paper 113,
#: and "Making Large UPS Systems More Efficient", White Paper 108: the three-term loss model, with
#: no-load losses "over 40 % of all UPS losses" and square-law losses of 1-4 % of the rating at high
#: load. 40 % no-load, the rest split evenly (30 % / 30 %: 1.6 % of the rating at full load for a
#: 95 % UPS, inside that 1-4 % range).
UPS_LOSS_SHARES: tuple[float, float, float] = (0.4, 0.3, 0.3)


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

    @classmethod
    def from_efficiency(cls, efficiency: float, rated_w: float | None = None) -> UpsParams:
        """The curve of a UPS whose efficiency at full (rated) load is ``efficiency``.

        The full-load loss ``ℓ = (1 − η) / η`` of the rating is split by the shares of
        :data:`UPS_LOSS_SHARES` (no-load 40 %, proportional 30 %, square-law 30 %), so
        ``efficiency(1) == η`` exactly and the efficiency falls at part load.
        """
        if not 0.0 < efficiency <= 1.0:
            raise ValueError(f"UPS efficiency must lie in (0, 1], got {efficiency}")
        full = (1.0 - efficiency) / efficiency
        a, b, c = (share * full for share in UPS_LOSS_SHARES)
        return cls(
            no_load_loss_fraction=a, proportional_loss_fraction=b, square_loss_fraction=c, rated_w=rated_w
        )

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


def fan_power_w(
    it_w: npt.ArrayLike, it_capacity_w: npt.ArrayLike, params: CoolingParams = CoolingParams()
) -> FloatArray:
    """Air movers and pumps, W: ``fan_fraction · capacity · max(it / capacity, fan_min_speed)³``.

    Flow follows the IT load down to the minimum speed (below it the fans keep turning at that
    speed), and power follows the fan affinity law, ∝ speed³.
    """
    cap = np.asarray(it_capacity_w, dtype=np.float64)
    speed = np.maximum(np.asarray(it_w, dtype=np.float64) / cap, params.fan_min_speed)
    return np.asarray(params.fan_fraction * cap * speed**3, dtype=np.float64)


def cooling_cop(outdoor_c: npt.ArrayLike, params: CoolingParams = CoolingParams()) -> FloatArray:
    """COP of the mechanical cooling at an outdoor dry bulb, °C (Carnot fraction, clipped)."""
    t_out = np.asarray(outdoor_c, dtype=np.float64)
    t_cold_k = params.supply_temp_c - params.evaporator_approach_c + _KELVIN
    t_hot_k = np.maximum(t_out + params.condenser_approach_c, params.min_condensing_c) + _KELVIN
    lift_k = t_hot_k - t_cold_k
    with np.errstate(divide="ignore", invalid="ignore"):
        cop = np.where(lift_k > 0.0, params.carnot_efficiency * t_cold_k / lift_k, params.cop_max)
    return np.asarray(np.clip(cop, params.cop_min, params.cop_max), dtype=np.float64)


def mechanical_share(
    outdoor_c: npt.ArrayLike,
    params: CoolingParams = CoolingParams(),
    dew_point_c: npt.ArrayLike | None = None,
    pressure_pa: float = P_STD_PA,
) -> FloatArray:
    """Fraction of the heat load removed by compressors (0 = full economizer, 1 = none).

    With a dew point (°C, broadcasting with ``outdoor_c``; NaN = unknown) and ``direct_air``,
    the share includes the latent load of dehumidifying outdoor air wetter than the module's
    ASHRAE envelope, as an enthalpy economizer would choose it (module docstring); it may then
    exceed the dry-bulb share but never 1. Without one, the dry-bulb rule.
    """
    t_out = np.asarray(outdoor_c, dtype=np.float64)
    dp: FloatArray | None = None
    if dew_point_c is not None:
        t_out, dp = np.broadcast_arrays(t_out, np.asarray(dew_point_c, dtype=np.float64))
    if not params.economizer:
        return np.ones(t_out.shape, dtype=np.float64)
    t_econ = params.economizer_max_c
    if params.direct_air:
        t_econ = min(t_econ, params.envelope.dry_bulb_max_c)  # hotter air may not enter uncooled
    band = params.transition_band_c + (params.economizer_max_c - t_econ)  # up to the return air
    t_return = t_econ + band
    if band == 0.0:
        sensible = (t_out > t_econ).astype(np.float64)
    else:
        sensible = np.clip((t_out - t_econ) / band, 0.0, 1.0)
    if dp is None or not params.direct_air or not np.isfinite(dp).any():
        return np.asarray(sensible, dtype=np.float64)
    known = np.isfinite(dp)
    all_known = bool(known.all())
    # Outdoor humidity ratio (a dew point above the dry bulb is read as saturation); 0 where unknown.
    dp_c = np.minimum(dp, t_out) if all_known else np.where(known, np.minimum(dp, t_out), 0.0)
    p_w = saturation_vapor_pressure_pa(np.clip(dp_c, -100.0, 200.0), check=False)
    w_out = EPSILON * p_w / (pressure_pa - p_w)
    if not all_known:
        w_out = np.where(known, w_out, 0.0)
    w_max = params.envelope.max_humidity_ratio(params.supply_temp_c, pressure_pa)
    excess = np.maximum(w_out - w_max, 0.0)
    if not excess.any():  # nothing wetter than the envelope: the dry-bulb rule holds
        return np.asarray(sensible, dtype=np.float64)
    if band == 0.0:  # no band: the economizer carries all or nothing
        return np.asarray(np.where(excess > 0.0, 1.0, sensible), dtype=np.float64)
    s = (t_return - t_out) / band  # sensible cooling that outdoor air brings, per unit of heat
    # L = (h(T, W_out) − h(T, W_max)) / (h(T_return, W_s) − h(T_econ, W_s)),
    # written out with h(t, W) = 1.006 t + W (2501 + 1.86 t)
    w_s = np.minimum(w_out, w_max)
    latent = excess * (2501.0 + 1.86 * t_out) / (band * (1.006 + 1.86 * w_s))
    mixed = sensible + latent / np.maximum(s, 1.0)  # all outdoor air (s < 1) or mixed to T_econ
    share = np.where(s > latent, np.minimum(mixed, 1.0), 1.0)  # else recirculate: cheaper
    return np.asarray(share, dtype=np.float64)


def facility_power_w(
    it_w: npt.ArrayLike,
    outdoor_c: npt.ArrayLike,
    *,
    it_capacity_w: npt.ArrayLike,
    dew_point_c: npt.ArrayLike | None = None,
    cooling: CoolingParams = CoolingParams(),
    ups: UpsParams = UpsParams(),
    facility: FacilityParams = FacilityParams(),
) -> FacilityPower:
    """Facility power breakdown for IT power ``it_w`` at outdoor temperature ``outdoor_c``.

    ``it_capacity_w`` (design IT power; broadcasts per site) sizes the UPS, the fans (their
    design flow) and the miscellaneous load. ``dew_point_c`` (outdoor dew point, °C, NaN =
    unknown) lets a direct air-side economizer respect its humidity envelope; None: dry-bulb
    limits only. Inputs broadcast together; all outputs have the broadcast shape.
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
    if dew_point_c is not None and np.any(np.isinf(np.asarray(dew_point_c, dtype=np.float64))):
        raise ValueError("dew_point_c must be finite (or NaN where unknown)")
    # the weather's terms on the weather's own shape (a twin's replicas share it), then broadcast:
    # element by element the same numbers
    share_w = mechanical_share(t_out, cooling, dew_point_c)
    cop_w = cooling_cop(t_out, cooling)
    it, t_out, cap, share, cop = np.broadcast_arrays(it, t_out, cap, share_w, cop_w)

    ups_loss = ups.loss_w(it, cap)
    dist_loss = facility.distribution_loss_fraction * (it + ups_loss)
    heat = it + ups_loss + dist_loss
    fan_w = fan_power_w(it, cap, cooling)
    mechanical_w = share * heat
    plf = 1.0 - cooling.cycling_degradation * (1.0 - np.clip(mechanical_w / cap, 0.0, 1.0))
    cooling_w = fan_w + mechanical_w / (cop * plf)
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
