"""One reading as the agent handles it, validated against the control plane's own wire schema.

Every source (Redfish, SNMP, Modbus, contacts, MQTT devices, the simulated twin) produces `Reading`s;
`make_reading` checks them with `microdc.protocol.wire.ReadingIn` (the exact model the server
validates batches with), so a reading the server would refuse never enters the durable queue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from microdc.protocol.alarm_rules import Reading as RuleReading
from microdc.protocol.vocab import EARLIEST_READING, ReadingType, range_problem
from microdc.protocol.wire import ReadingIn

# Discrete / event-like reading types: a change is an event, so they are never downsampled or dropped.
PROTECTED_TYPES = frozenset(
    {
        ReadingType.DOOR.value,
        ReadingType.SMOKE.value,
        ReadingType.LEAK.value,
        ReadingType.UPS_STATE.value,
        ReadingType.INTRUSION.value,
    }
)


class InvalidReading(ValueError):
    """A reading the control plane would refuse (unknown type, wrong unit, non-finite value, …)."""


@dataclass(frozen=True, slots=True)
class Reading:
    sensor_id: str
    reading_type: str
    unit: str
    physical_context: str
    ts: datetime
    value: float
    data_class: str = ""
    agg_group: str = ""  # sensors aggregated together when only aggregates may leave

    @property
    def epoch(self) -> float:
        return self.ts.timestamp()

    @property
    def protected(self) -> bool:
        return self.reading_type in PROTECTED_TYPES

    def wire(self) -> dict[str, Any]:
        """The JSON object of a telemetry batch (`ReadingIn`)."""
        return {
            "sensor_id": self.sensor_id,
            "reading_type": self.reading_type,
            "unit": self.unit,
            "physical_context": self.physical_context,
            "ts": iso(self.ts),
            "value": self.value,
        }

    def for_rules(self) -> RuleReading:
        return RuleReading(
            sensor_id=self.sensor_id,
            reading_type=self.reading_type,
            physical_context=self.physical_context,
            ts=self.ts,
            value=self.value,
            unit=self.unit,
        )

    def tagged(self, data_class: str, agg_group: str = "") -> Reading:
        return replace(self, data_class=data_class, agg_group=agg_group or self.agg_group)


def iso(ts: datetime) -> str:
    """UTC ISO 8601 with milliseconds and a Z (compact and unambiguous on the wire)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def from_epoch(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def make_reading(
    sensor_id: str,
    reading_type: str,
    unit: str,
    physical_context: str,
    ts: datetime,
    value: float,
    *,
    data_class: str = "",
    agg_group: str = "",
) -> Reading:
    """A validated reading; raises InvalidReading with the server's own message otherwise."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidReading(f"{sensor_id}: value must be a finite number, got {value!r}")
    if ts.tzinfo is None:
        raise InvalidReading(f"{sensor_id}: timestamp needs a time zone")
    try:
        ReadingIn(
            sensor_id=sensor_id,
            reading_type=reading_type,
            unit=unit,
            physical_context=physical_context,
            ts=ts,
            value=float(value),
        )
    except ValidationError as e:
        first = e.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "reading"
        raise InvalidReading(f"{sensor_id}: {where}: {first.get('msg')}") from None
    # the control plane's own checks (protocol/vocab.py), so a reading it would refuse never queues
    why = range_problem(ReadingType(reading_type), unit, physical_context, float(value))
    if why is not None:
        raise InvalidReading(f"{sensor_id}: value-range: {why}")
    if ts < EARLIEST_READING:
        raise InvalidReading(
            f"{sensor_id}: timestamp-window: {ts.isoformat()} is before {EARLIEST_READING.date()}"
        )
    return Reading(
        sensor_id=sensor_id,
        reading_type=reading_type,
        unit=unit,
        physical_context=physical_context,
        ts=ts.astimezone(UTC),
        value=float(value),
        data_class=data_class,
        agg_group=agg_group,
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
