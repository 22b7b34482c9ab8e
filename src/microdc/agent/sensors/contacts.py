"""Door, smoke, leak and tamper contacts read from files: Linux sysfs GPIO ``value`` files, or any file
holding ``0``/``1`` (what a GPIO, a relay board's daemon or a test writes).

(Contacts wired to a Modbus I/O module are Modbus points instead: ``table: discrete`` or ``coil`` in a
register map, see `microdc.agent.sensors.modbus`.)

``active_low: true`` inverts the level (a normally-closed contact reads 1 while the door is shut).
A missing or unreadable file raises `SourceError` only when every input failed; otherwise the bad
inputs are reported as invalid and the rest are read.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from microdc.agent.config import AgentConfig, ContactsSource
from microdc.agent.sensors.base import PollResult, SourceError

DEFAULT_CONTEXT = {"Door": "Door", "Smoke": "Room", "Leak": "Room", "Intrusion": "Chassis"}


def read_level(path: Path) -> int:
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if text not in ("0", "1"):
        raise ValueError(f"expected 0 or 1, got {text[:20]!r}")
    return int(text)


class ContactsPoller:
    def __init__(self, cfg: ContactsSource, agent: AgentConfig, base_dir: Path):
        self.cfg = cfg
        self.name = cfg.name
        self.interval_s = cfg.interval_s
        self.data_class = cfg.data_class
        self.base_dir = base_dir

    def _poll_sync(self, now: datetime) -> PollResult:
        out = PollResult()
        failed = 0
        for inp in self.cfg.inputs:
            path = Path(inp.path)
            path = path if path.is_absolute() else self.base_dir / path
            try:
                level = read_level(path)
            except (OSError, ValueError) as e:
                failed += 1
                out.invalid.append(f"{inp.sensor_id}: {path}: {e}")
                continue
            active = 1 - level if inp.active_low else level
            ctx = inp.physical_context.value if inp.physical_context else DEFAULT_CONTEXT[inp.reading_type]
            out.add(inp.sensor_id, inp.reading_type, "1", ctx, now, float(active))
        if failed == len(self.cfg.inputs):
            raise SourceError(f"{self.name}: no contact input could be read ({out.invalid[0]})")
        return out

    async def poll(self, now: datetime) -> PollResult:
        return await asyncio.to_thread(self._poll_sync, now)

    async def close(self) -> None:
        return None
