"""Modbus TCP (pymodbus 3) for cooling units, meters and contact inputs, driven by YAML register maps.

A register map lists points::

    registers:
      - {sensor_id: crac1.supply_temp, address: 0, type: int16, scale: 0.1, reading_type: Temperature,
         unit: Cel, physical_context: Intake}
      - {sensor_id: meter.power, address: 10, table: input, type: float32, word_order: little,
         reading_type: Power, unit: W, physical_context: ACUtilityInput}
      - {sensor_id: door.front, address: 0, table: discrete, reading_type: Door, unit: "1",
         physical_context: Door, invert: true}        # normally-closed contact: 1 = closed

``value = raw × scale + offset``. 32-bit types take two registers; ``word_order`` says which comes
first (big: high word first, the Modbus convention; little: "word swapped" devices), ``byte_order``
the byte order inside each register. Points of one table that lie close together are read with
one request (at most 120 registers / 2000 bits per request).
"""

from __future__ import annotations

import math
import struct
from datetime import datetime
from typing import Any

from microdc.agent.config import AgentConfig, ModbusPoint, ModbusSource
from microdc.agent.sensors.base import PollResult, SourceError

WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "bool": 1}
FORMAT = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f"}
MAX_REGS, MAX_BITS, GAP = 120, 2000, 8


def decode(regs: list[int], point: ModbusPoint) -> float:
    """Registers (16-bit ints, as the device sent them) → engineering value."""
    n = WIDTH[point.type]
    words = [r & 0xFFFF for r in regs[:n]]
    if point.word_order == "little":
        words = words[::-1]
    raw = b"".join(
        w.to_bytes(2, "big") if point.byte_order == "big" else w.to_bytes(2, "little") for w in words
    )
    (value,) = struct.unpack(">" + FORMAT[point.type], raw)
    return float(value) * point.scale + point.offset


def encode(value: float, point: ModbusPoint) -> list[int]:
    """Engineering value → registers (the inverse of `decode`; used by simulators and tests)."""
    raw_value: Any = (value - point.offset) / point.scale
    if point.type != "float32":
        raw_value = round(raw_value)
    raw = struct.pack(">" + FORMAT[point.type], raw_value)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    regs = [
        int.from_bytes(w, "big") if point.byte_order == "big" else int.from_bytes(w, "little") for w in words
    ]
    return regs[::-1] if point.word_order == "little" else regs


def _spans(points: list[ModbusPoint], limit: int) -> list[tuple[int, int, list[ModbusPoint]]]:
    """Group points of one table into (start, count, points) read requests."""
    spans: list[tuple[int, int, list[ModbusPoint]]] = []
    for p in sorted(points, key=lambda q: q.address):
        end = p.address + WIDTH[p.type]
        if spans:
            start, count, pts = spans[-1]
            if p.address <= start + count + GAP and end - start <= limit:
                spans[-1] = (start, max(count, end - start), [*pts, p])
                continue
        spans.append((p.address, end - p.address, [p]))
    return spans


class ModbusPoller:
    def __init__(self, cfg: ModbusSource, agent: AgentConfig):
        self.cfg = cfg
        self.name = cfg.name
        self.interval_s = cfg.interval_s
        self.data_class = cfg.data_class
        self._client: Any = None

    async def _connect(self) -> Any:
        from pymodbus.client import AsyncModbusTcpClient

        if self._client is None or not self._client.connected:
            if self._client is not None:
                self._client.close()
            self._client = AsyncModbusTcpClient(
                self.cfg.host, port=self.cfg.port, timeout=self.cfg.timeout_s, retries=0
            )
            ok = await self._client.connect()
            if not ok:
                self._client.close()
                self._client = None
                raise SourceError(f"{self.name}: cannot connect to {self.cfg.host}:{self.cfg.port}")
        return self._client

    async def _read(self, client: Any, table: str, start: int, count: int) -> list[Any]:
        fn = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[table]
        try:
            rr = await fn(start, count=count, device_id=self.cfg.device_id)
        except Exception as e:
            if self._client is not None:
                self._client.close()
                self._client = None
            raise SourceError(f"{self.name}: {table} {start}+{count}: {type(e).__name__}: {e}") from None
        if rr.isError():
            raise SourceError(f"{self.name}: {table} {start}+{count}: device answered {rr}")
        return list(rr.bits if table in ("coil", "discrete") else rr.registers)

    async def poll(self, now: datetime) -> PollResult:
        out = PollResult()
        client = await self._connect()
        by_table: dict[str, list[ModbusPoint]] = {}
        for p in self.cfg.registers:
            by_table.setdefault(p.table, []).append(p)
        for table, points in by_table.items():
            bits = table in ("coil", "discrete")
            for start, count, pts in _spans(points, MAX_BITS if bits else MAX_REGS):
                try:
                    data = await self._read(client, table, start, count)
                except SourceError as e:
                    if len(pts) == len(self.cfg.registers):
                        raise
                    out.invalid.append(str(e))  # one bad block (e.g. illegal address) must not hide the rest
                    continue
                for p in pts:
                    i = p.address - start
                    if bits:
                        value = float(bool(data[i]))
                        if p.invert:
                            value = 1.0 - value
                    else:
                        value = decode(data[i : i + WIDTH[p.type]], p)
                        if math.isnan(value) or math.isinf(value):
                            out.unknown += 1
                            continue
                    out.add(p.sensor_id, p.reading_type.value, p.unit, p.physical_context.value, now, value)
        return out

    async def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
