"""Alarm rules as pure functions over readings — no database, no web framework.

The site agent imports this module offline and evaluates exactly the same rules as the server.

Rules (defaults in `Thresholds`):

=================  ===========================================  =========================================
kind               condition                                    severity
=================  ===========================================  =========================================
inlet_temperature  Temperature @ Intake outside 18–27 °C         warning (ASHRAE A1 recommended)
                   … outside 15–32 °C                           critical (ASHRAE A1 allowable)
humidity           Humidity @ Intake/Room above 60 %RH          warning (ASHRAE recommended max)
                   … outside 8–80 %RH                           critical (ASHRAE A1 allowable)
door_open          Door open outside every maintenance window   critical
smoke / leak       detector reads 1                             critical
ups_on_battery     UPSState = OnBattery                         warning
ups_fault          UPSState = Bypass / Fault                    warning / critical
ups_low_runtime    Runtime (min) below 15 / 5                   warning / critical
tamper             Intrusion ≠ Normal                           critical, marked break-in
heartbeat_lost     no heartbeat for N intervals (server side)   critical
=================  ===========================================  =========================================

Dwell: a condition must hold continuously (judged by reading timestamps) for the kind's dwell time
before it is raised, and for the same time at critical level before it escalates. An alarm clears
as soon as a normal reading arrives, and de-escalates when the critical condition stops holding.
Readings older than the last one seen for the same (kind, sensor) are ignored by the rules.

`evaluate()` takes and returns a JSON-serialisable state dict, so callers can persist it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from microdc.protocol.vocab import ReadingType, UpsState

Severity = Literal["warning", "critical"]
SEVERITY_BY_LEVEL: dict[int, Severity] = {1: "warning", 2: "critical"}
Window = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Reading:
    sensor_id: str
    reading_type: str
    physical_context: str
    ts: datetime
    value: float
    unit: str = ""


@dataclass(frozen=True)
class Thresholds:
    inlet_recommended_c: tuple[float, float] = (18.0, 27.0)
    inlet_allowable_c: tuple[float, float] = (15.0, 32.0)
    humidity_allowable_pct: tuple[float, float] = (8.0, 80.0)
    humidity_recommended_max_pct: float = 60.0
    ups_runtime_warning_min: float = 15.0
    ups_runtime_critical_min: float = 5.0
    temperature_dwell_s: float = 300.0
    humidity_dwell_s: float = 600.0
    door_dwell_s: float = 0.0
    ups_dwell_s: float = 30.0
    tamper_is_break_in: bool = True
    heartbeat_interval_s: float = 30.0
    heartbeat_missed_intervals: int = 3

    def dwell_s(self, kind: str) -> float:
        return {
            "inlet_temperature": self.temperature_dwell_s,
            "humidity": self.humidity_dwell_s,
            "door_open": self.door_dwell_s,
            "ups_on_battery": self.ups_dwell_s,
            "ups_fault": self.ups_dwell_s,
        }.get(kind, 0.0)


@dataclass(frozen=True)
class Condition:
    kind: str
    level: int  # 0 normal, 1 warning, 2 critical
    message: str
    break_in: bool = False


@dataclass(frozen=True)
class AlarmEvent:
    action: Literal["raise", "update", "clear"]
    kind: str
    sensor_id: str
    severity: Severity | None
    ts: datetime
    value: float
    message: str
    break_in: bool = False


def in_maintenance(ts: datetime, windows: Iterable[Window]) -> bool:
    return any(start <= ts < end for start, end in windows)


def _band(value: float, inner: tuple[float, float], outer: tuple[float, float]) -> int:
    if value < outer[0] or value > outer[1]:
        return 2
    if value < inner[0] or value > inner[1]:
        return 1
    return 0


def conditions(reading: Reading, th: Thresholds, maintenance: Sequence[Window] = ()) -> list[Condition]:
    """The rule conditions one reading bears on (empty if no rule looks at it)."""
    rt, ctx, v = reading.reading_type, reading.physical_context, reading.value
    if rt == ReadingType.TEMPERATURE and ctx == "Intake":
        lvl = _band(v, th.inlet_recommended_c, th.inlet_allowable_c)
        lo, hi = th.inlet_allowable_c if lvl == 2 else th.inlet_recommended_c
        return [Condition("inlet_temperature", lvl, f"inlet {v:.1f} °C outside {lo:g}–{hi:g} °C")]
    if rt == ReadingType.HUMIDITY and ctx in ("Intake", "Room"):
        lo, hi = th.humidity_allowable_pct
        if v < lo or v > hi:
            return [Condition("humidity", 2, f"humidity {v:.0f} %RH outside {lo:g}–{hi:g} %RH")]
        if v > th.humidity_recommended_max_pct:
            cap = th.humidity_recommended_max_pct
            return [Condition("humidity", 1, f"humidity {v:.0f} %RH above {cap:g} %RH")]
        return [Condition("humidity", 0, "")]
    if rt == ReadingType.DOOR:
        is_open = v >= 0.5
        lvl = 2 if is_open and not in_maintenance(reading.ts, maintenance) else 0
        return [Condition("door_open", lvl, "door open outside a maintenance window")]
    if rt == ReadingType.SMOKE:
        return [Condition("smoke", 2 if v >= 0.5 else 0, "smoke detected")]
    if rt == ReadingType.LEAK:
        return [Condition("leak", 2 if v >= 0.5 else 0, "leak detected")]
    if rt == ReadingType.UPS_STATE:
        code = round(v)
        fault = 2 if code == UpsState.FAULT else 1 if code == UpsState.BYPASS else 0
        return [
            Condition("ups_on_battery", 1 if code == UpsState.ON_BATTERY else 0, "UPS on battery"),
            Condition("ups_fault", fault, "UPS fault" if fault == 2 else "UPS on bypass"),
        ]
    if rt == ReadingType.RUNTIME:
        lvl = 2 if v < th.ups_runtime_critical_min else 1 if v < th.ups_runtime_warning_min else 0
        return [Condition("ups_low_runtime", lvl, f"UPS runtime {v:.1f} min remaining")]
    if rt == ReadingType.INTRUSION:
        lvl = 2 if v >= 0.5 else 0
        msg = "enclosure intrusion/tamper detected"
        return [Condition("tamper", lvl, msg, break_in=th.tamper_is_break_in)]
    return []


def _epoch(ts: datetime) -> float:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.timestamp()


def evaluate(
    readings: Iterable[Reading],
    state: dict[str, Any] | None,
    th: Thresholds,
    maintenance: Sequence[Window] = (),
) -> tuple[dict[str, Any], list[AlarmEvent]]:
    """Feed readings through the rules; return the new state and the alarm events to apply.

    State layout: ``{"keys": {"<kind>|<sensor>": {"last": t, "warn": t|None, "crit": t|None,
    "raised": 0|1|2}}}`` with epoch-second floats.
    """
    keys: dict[str, dict[str, Any]] = {k: dict(v) for k, v in ((state or {}).get("keys") or {}).items()}
    events: list[AlarmEvent] = []
    for r in sorted(readings, key=lambda x: _epoch(x.ts)):
        t = _epoch(r.ts)
        for c in conditions(r, th, maintenance):
            key = f"{c.kind}|{r.sensor_id}"
            k = keys.get(key)
            if k is None:
                if c.level == 0:
                    continue  # nothing to remember about a sensor that was always normal
                k = keys[key] = {"last": t, "warn": None, "crit": None, "raised": 0}
            elif t < k["last"]:
                continue
            k["last"] = t
            k["warn"] = (k["warn"] if k["warn"] is not None else t) if c.level >= 1 else None
            k["crit"] = (k["crit"] if k["crit"] is not None else t) if c.level >= 2 else None
            dwell = th.dwell_s(c.kind)
            if k["crit"] is not None and t - k["crit"] >= dwell:
                effective = 2
            elif k["warn"] is not None and (t - k["warn"] >= dwell or k["raised"] >= 1):
                effective = 1
            else:
                effective = 0
            raised = k["raised"]
            if effective != raised:
                if raised == 0:
                    action: Literal["raise", "update", "clear"] = "raise"
                elif effective == 0:
                    action = "clear"
                else:
                    action = "update"
                events.append(
                    AlarmEvent(
                        action=action,
                        kind=c.kind,
                        sensor_id=r.sensor_id,
                        severity=SEVERITY_BY_LEVEL.get(effective),
                        ts=r.ts,
                        value=r.value,
                        message=c.message if effective else f"{c.kind} back to normal",
                        break_in=c.break_in and effective > 0,
                    )
                )
                k["raised"] = effective
            if c.level == 0 and k["raised"] == 0:
                del keys[key]
    return {"keys": keys}, events


def heartbeat_overdue(last_heartbeat: datetime | None, now: datetime, th: Thresholds) -> bool:
    """True once no heartbeat arrived for `heartbeat_missed_intervals` intervals."""
    if last_heartbeat is None:
        return False
    return _epoch(now) - _epoch(last_heartbeat) > th.heartbeat_interval_s * th.heartbeat_missed_intervals


def inlet_temperatures_normal(readings: Iterable[Reading], th: Thresholds) -> bool | None:
    """Whether every inlet temperature is inside the allowable band (None when there is none)."""
    temps = [
        r.value
        for r in readings
        if r.reading_type == ReadingType.TEMPERATURE and r.physical_context == "Intake"
    ]
    if not temps:
        return None
    lo, hi = th.inlet_allowable_c
    return all(lo <= v <= hi for v in temps)
