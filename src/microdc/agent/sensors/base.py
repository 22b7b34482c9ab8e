"""What every sensor source has in common."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from microdc.agent.readings import InvalidReading, Reading, make_reading


class SourceError(RuntimeError):
    """The device could not be read this time (unreachable, timeout, protocol error)."""


@dataclass
class PollResult:
    readings: list[Reading] = field(default_factory=list)
    unknown: int = 0  # values the device reported as unknown (e.g. SNMP −1), mapped to None and skipped
    invalid: list[str] = field(default_factory=list)  # readings refused by validation, with the reason

    def add(
        self,
        sensor_id: str,
        reading_type: str,
        unit: str,
        physical_context: str,
        ts: datetime,
        value: float | None,
    ) -> None:
        """Validate and keep one reading; None counts as unknown, a bad one is recorded as invalid."""
        if value is None:
            self.unknown += 1
            return
        try:
            self.readings.append(make_reading(sensor_id, reading_type, unit, physical_context, ts, value))
        except InvalidReading as e:
            self.invalid.append(str(e))


class Source(Protocol):
    name: str
    interval_s: float | None
    data_class: str | None

    async def poll(self, now: datetime) -> PollResult: ...

    async def close(self) -> None: ...


_SLUG = re.compile(r"[^A-Za-z0-9_.:-]+")


def slug(text: str) -> str:
    """A sensor-id-safe version of a device's name."""
    s = _SLUG.sub("-", text.strip()).strip("-.")
    return s or "x"
