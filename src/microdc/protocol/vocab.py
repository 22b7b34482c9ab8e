"""Sensor vocabulary shared by the API, the rules and the agent (pure: no third-party imports).

Reading types and physical contexts follow Redfish (Sensor.ReadingType, PhysicalContext) with a few
additions for MDC facilities; units are UCUM codes. Discrete sensors use the dimensionless unit "1".
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import IntEnum, StrEnum

EARLIEST_READING = datetime(2000, 1, 1, tzinfo=UTC)  # no device of a fleet we run recorded anything before


class ReadingType(StrEnum):
    TEMPERATURE = "Temperature"
    HUMIDITY = "Humidity"
    POWER = "Power"
    ENERGY_KWH = "EnergykWh"
    VOLTAGE = "Voltage"
    CURRENT = "Current"
    FREQUENCY = "Frequency"
    PERCENT = "Percent"
    DOOR = "Door"  # 0 closed, 1 open
    SMOKE = "Smoke"  # 0 normal, 1 smoke detected
    LEAK = "Leak"  # 0 dry, 1 leak detected
    UPS_STATE = "UPSState"  # see UpsState
    RUNTIME = "Runtime"  # UPS minutes of battery runtime remaining at present load
    INTRUSION = "Intrusion"  # Redfish IntrusionSensor: 0 Normal, 1 HardwareIntrusion, 2 TamperingDetected


class PhysicalContext(StrEnum):
    ROOM = "Room"
    INTAKE = "Intake"
    EXHAUST = "Exhaust"
    LIQUID_INLET = "LiquidInlet"
    LIQUID_OUTLET = "LiquidOutlet"
    CPU = "CPU"
    SYSTEM_BOARD = "SystemBoard"
    POWER_SUPPLY = "PowerSupply"
    POWER_SUBSYSTEM = "PowerSubsystem"
    RECTIFIER = "Rectifier"
    CHASSIS = "Chassis"
    FAN = "Fan"
    COOLING_SUBSYSTEM = "CoolingSubsystem"
    AC_UTILITY_INPUT = "ACUtilityInput"  # facility (grid) input: numerator of PUE
    AC_INPUT = "ACInput"
    AC_OUTPUT = "ACOutput"  # UPS output feeding IT: denominator of PUE
    DC_BUS = "DCBus"
    BATTERY = "Battery"
    DOOR = "Door"
    NETWORKING_DEVICE = "NetworkingDevice"
    STORAGE_DEVICE = "StorageDevice"
    COMPUTE_BAY = "ComputeBay"
    MANAGER = "Manager"


class UpsState(IntEnum):
    ON_LINE = 0  # on mains
    ON_BATTERY = 1
    BYPASS = 2
    FAULT = 3


UNITS: dict[ReadingType, frozenset[str]] = {
    ReadingType.TEMPERATURE: frozenset({"Cel"}),
    ReadingType.HUMIDITY: frozenset({"%"}),
    ReadingType.POWER: frozenset({"W", "kW"}),
    ReadingType.ENERGY_KWH: frozenset({"kW.h"}),
    ReadingType.VOLTAGE: frozenset({"V"}),
    ReadingType.CURRENT: frozenset({"A"}),
    ReadingType.FREQUENCY: frozenset({"Hz"}),
    ReadingType.PERCENT: frozenset({"%"}),
    ReadingType.DOOR: frozenset({"1"}),
    ReadingType.SMOKE: frozenset({"1"}),
    ReadingType.LEAK: frozenset({"1"}),
    ReadingType.UPS_STATE: frozenset({"1"}),
    ReadingType.RUNTIME: frozenset({"min"}),
    ReadingType.INTRUSION: frozenset({"1"}),
}

# Power (PUE) convention: facility power is measured at the utility input, IT power at the UPS output
# (or summed power supplies when there is no UPS output meter).
FACILITY_POWER_CONTEXTS = frozenset({PhysicalContext.AC_UTILITY_INPUT.value})
IT_POWER_CONTEXTS = frozenset({PhysicalContext.AC_OUTPUT.value, PhysicalContext.POWER_SUPPLY.value})


def to_watts(value: float, unit: str) -> float:
    return value * 1000.0 if unit == "kW" else value


# --- value ranges (rule ``value-range``) -----------------------------------------------------------------
# What a reading of each type may physically be, in the type's first-listed unit (Power in W). Both the
# control plane (422, counted) and the agent (rejected before upload, counted) check readings against
# this one table. Bounds are inclusive and generous: they catch garbage and lies that are impossible, not
# merely alarming values (those raise alarms).


class Range:
    """A closed interval, or a set of allowed discrete values (enumerations)."""

    __slots__ = ("allowed", "hi", "lo")

    def __init__(self, lo: float, hi: float, allowed: frozenset[float] | None = None) -> None:
        self.lo, self.hi, self.allowed = lo, hi, allowed

    def contains(self, value: float) -> bool:
        if self.allowed is not None:
            return value in self.allowed
        return self.lo <= value <= self.hi

    def describe(self, unit: str) -> str:
        if self.allowed is not None:
            return "one of " + ", ".join(f"{v:g}" for v in sorted(self.allowed))
        return f"{self.lo:g} to {self.hi:g} {unit}".rstrip()


def _enum(*values: int) -> Range:
    return Range(min(values), max(values), frozenset(float(v) for v in values))


INLET_CONTEXTS = frozenset({PhysicalContext.INTAKE, PhysicalContext.ROOM})
INLET_RANGE = Range(-40.0, 85.0)  # air a cabinet's equipment breathes: industrial operating range
VALUE_RANGES: dict[ReadingType, Range] = {
    ReadingType.TEMPERATURE: Range(-60.0, 150.0),  # any other context (CPU, liquid, exhaust)
    ReadingType.HUMIDITY: Range(0.0, 100.0),
    ReadingType.POWER: Range(0.0, 50e6),  # W: up to 50 MW
    ReadingType.ENERGY_KWH: Range(0.0, 1e12),
    ReadingType.VOLTAGE: Range(0.0, 2000.0),
    ReadingType.CURRENT: Range(0.0, 10_000.0),
    ReadingType.FREQUENCY: Range(0.0, 1000.0),
    ReadingType.PERCENT: Range(0.0, 100.0),
    ReadingType.DOOR: _enum(0, 1),
    ReadingType.SMOKE: _enum(0, 1),
    ReadingType.LEAK: _enum(0, 1),
    ReadingType.UPS_STATE: _enum(*(int(s) for s in UpsState)),
    ReadingType.RUNTIME: Range(0.0, 10.0 * 365 * 24 * 60),  # minutes; ten years is already absurd
    ReadingType.INTRUSION: _enum(0, 1, 2),
}


def value_range(reading_type: ReadingType, physical_context: str) -> Range:
    if reading_type == ReadingType.TEMPERATURE and physical_context in INLET_CONTEXTS:
        return INLET_RANGE
    return VALUE_RANGES[reading_type]


def range_problem(reading_type: ReadingType, unit: str, physical_context: str, value: float) -> str | None:
    """Why `value` cannot be a reading of this type, or None when it can (kW is checked as W)."""
    rng = value_range(reading_type, physical_context)
    v = to_watts(value, unit) if reading_type == ReadingType.POWER else value
    if rng.contains(v):
        return None
    shown_unit = "W" if reading_type == ReadingType.POWER else ("" if unit == "1" else unit)
    where = f" at {physical_context}" if reading_type == ReadingType.TEMPERATURE else ""
    return (
        f"{value:g} {'' if unit == '1' else unit} is outside {reading_type.value}{where}'s range "
        f"({rng.describe(shown_unit)})".replace("  ", " ")
    )
