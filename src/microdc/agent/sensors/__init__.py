"""Sensor sources, one module per protocol. Each polls its devices and returns validated readings.

`build_source(cfg, ...)` imports a protocol's library only when a source of that kind is configured.
A source raises `SourceError` when its device cannot be reached; the runner counts it and carries on.
"""

from __future__ import annotations

from pathlib import Path

from microdc.agent.config import AgentConfig, SourceConfig
from microdc.agent.sensors.base import PollResult, Source, SourceError

__all__ = ["PollResult", "Source", "SourceError", "build_source"]


def build_source(
    cfg: SourceConfig, agent: AgentConfig, *, site_id: str, base_dir: Path | None = None
) -> Source:
    kind = cfg.kind
    if kind == "redfish":
        from microdc.agent.sensors.redfish import RedfishPoller

        return RedfishPoller(cfg, agent)  # type: ignore[arg-type]
    if kind == "snmp_ups":
        from microdc.agent.sensors.snmp_ups import SnmpUpsPoller

        return SnmpUpsPoller(cfg, agent)  # type: ignore[arg-type]
    if kind == "modbus":
        from microdc.agent.sensors.modbus import ModbusPoller

        return ModbusPoller(cfg, agent)  # type: ignore[arg-type]
    if kind == "contacts":
        from microdc.agent.sensors.contacts import ContactsPoller

        return ContactsPoller(cfg, agent, base_dir or agent.base_dir)  # type: ignore[arg-type]
    if kind == "simulated":
        from microdc.agent.sensors.simulated import SimulatedSite

        return SimulatedSite(cfg, agent, site_id=site_id, base_dir=base_dir or agent.base_dir)  # type: ignore[arg-type]
    raise ValueError(f"unknown sensor kind {kind!r}")
