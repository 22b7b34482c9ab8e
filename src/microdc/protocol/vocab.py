"""Sensor vocabulary shared by the API, the rules and the agent (pure: no third-party imports).

Reading types and physical contexts follow Redfish (Sensor.ReadingType, PhysicalContext) with a few
additions for MDC facilities; units are UCUM codes. Discrete sensors use the dimensionless unit "1".
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


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
