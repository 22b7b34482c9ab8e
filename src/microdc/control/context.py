"""Per-request/per-job context handed to the data layer: settings, placer, clock, actor."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from microdc.control.desired import Placer
from microdc.control.settings import Settings
from microdc.protocol.alarm_rules import Thresholds


@dataclass(frozen=True)
class Ctx:
    settings: Settings
    placer: Placer
    now: datetime
    actor: str = "system"
    client_ip: str = ""
    dialect: str = "sqlite"

    def as_actor(self, actor: str, client_ip: str = "") -> Ctx:
        return replace(self, actor=actor, client_ip=client_ip)

    @property
    def thresholds(self) -> Thresholds:
        return thresholds_from(self.settings)


def thresholds_from(s: Settings) -> Thresholds:
    return Thresholds(
        temperature_dwell_s=s.temperature_dwell_s,
        humidity_dwell_s=s.humidity_dwell_s,
        door_dwell_s=s.door_dwell_s,
        ups_dwell_s=s.ups_dwell_s,
        ups_runtime_warning_min=s.ups_runtime_warning_min,
        ups_runtime_critical_min=s.ups_runtime_critical_min,
        tamper_is_break_in=s.tamper_is_break_in,
        heartbeat_interval_s=s.heartbeat_interval_s,
        heartbeat_missed_intervals=s.heartbeat_missed_intervals,
    )
