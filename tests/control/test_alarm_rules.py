"""Pure alarm rules (shared with the agent): thresholds, dwell, escalation, maintenance windows."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from microdc.protocol.alarm_rules import (
    Reading,
    Thresholds,
    evaluate,
    heartbeat_overdue,
    inlet_temperatures_normal,
)

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TH = Thresholds()


def temp(v: float, s: float, sensor: str = "inlet-1") -> Reading:
    return Reading(sensor, "Temperature", "Intake", T0 + timedelta(seconds=s), v, "Cel")


def run(readings: list[Reading], state: dict | None = None, th: Thresholds = TH, maint=()):  # type: ignore[no-untyped-def]
    return evaluate(readings, state, th, maint)


def test_module_is_pure() -> None:
    code = (
        "import sys, microdc.protocol.alarm_rules, microdc.control.site_state, microdc.control.desired;"
        "bad=[m for m in ('fastapi','sqlalchemy','starlette','pydantic') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_normal_readings_raise_nothing_and_keep_no_state() -> None:
    state, events = run([temp(22, i) for i in range(10)])
    assert events == [] and state == {"keys": {}}


def test_warning_needs_dwell() -> None:
    state, events = run([temp(28, 0), temp(28, 100), temp(28, 299)])
    assert events == []
    state, events = run([temp(28.5, 300)], state)
    assert [(e.action, e.severity, e.kind) for e in events] == [("raise", "warning", "inlet_temperature")]


def test_dwell_restarts_after_a_normal_reading() -> None:
    state, events = run([temp(28, 0), temp(22, 200), temp(28, 250), temp(28, 500)])
    assert events == []
    state, events = run([temp(28, 550)], state)
    assert [e.action for e in events] == ["raise"]


def test_escalate_then_deescalate_then_clear() -> None:
    th = Thresholds(temperature_dwell_s=60)
    state, ev = run([temp(28, 0), temp(28, 60)], th=th)
    assert [(e.action, e.severity) for e in ev] == [("raise", "warning")]
    state, ev = run([temp(33, 70), temp(33, 100)], state, th)
    assert ev == []  # critical not yet held for the dwell time
    state, ev = run([temp(33, 130)], state, th)
    assert [(e.action, e.severity) for e in ev] == [("update", "critical")]
    state, ev = run([temp(29, 140)], state, th)
    assert [(e.action, e.severity) for e in ev] == [("update", "warning")]
    state, ev = run([temp(21, 150)], state, th)
    assert [(e.action, e.severity) for e in ev] == [("clear", None)]
    assert state == {"keys": {}}


def test_allowable_band_goes_straight_to_critical_after_dwell() -> None:
    th = Thresholds(temperature_dwell_s=0)
    _, ev = run([temp(14, 0)], th=th)
    assert [(e.action, e.severity) for e in ev] == [("raise", "critical")]


def test_out_of_order_readings_are_ignored() -> None:
    th = Thresholds(temperature_dwell_s=0)
    state, ev = run([temp(28, 10)], th=th)
    assert len(ev) == 1
    state, ev = run([temp(22, 5)], state, th)  # older than what we saw: no clear
    assert ev == []


def test_only_intake_temperatures_count() -> None:
    r = Reading("cpu", "Temperature", "CPU", T0, 80.0, "Cel")
    assert run([r], th=Thresholds(temperature_dwell_s=0))[1] == []


def test_humidity_bounds() -> None:
    th = Thresholds(humidity_dwell_s=0)
    h = lambda v, s: Reading("rh", "Humidity", "Room", T0 + timedelta(seconds=s), v, "%")  # noqa: E731
    _, ev = run([h(85, 0)], th=th)
    assert [(e.kind, e.severity) for e in ev] == [("humidity", "critical")]
    _, ev = run([h(65, 0)], th=th)
    assert [(e.kind, e.severity) for e in ev] == [("humidity", "warning")]
    _, ev = run([h(5, 0)], th=th)
    assert [(e.kind, e.severity) for e in ev] == [("humidity", "critical")]


def test_door_outside_maintenance_window_only() -> None:
    door = Reading("door-1", "Door", "Door", T0 + timedelta(minutes=30), 1.0, "1")
    window = [(T0, T0 + timedelta(hours=1))]
    assert run([door], maint=window)[1] == []
    _, ev = run([door], maint=[(T0 + timedelta(hours=2), T0 + timedelta(hours=3))])
    assert [(e.kind, e.severity, e.break_in) for e in ev] == [("door_open", "critical", False)]


def test_smoke_leak_tamper_immediate() -> None:
    rs = [
        Reading("sm", "Smoke", "Room", T0, 1.0, "1"),
        Reading("lk", "Leak", "Room", T0, 1.0, "1"),
        Reading("tp", "Intrusion", "Chassis", T0, 2.0, "1"),
    ]
    _, ev = run(rs)
    assert {(e.kind, e.severity) for e in ev} == {
        ("smoke", "critical"),
        ("leak", "critical"),
        ("tamper", "critical"),
    }
    assert [e.break_in for e in ev if e.kind == "tamper"] == [True]


def test_ups_on_battery_with_dwell_and_low_runtime() -> None:
    ups = lambda v, s: Reading("ups", "UPSState", "PowerSupply", T0 + timedelta(seconds=s), v, "1")  # noqa: E731
    rt = lambda v, s: Reading("rt", "Runtime", "Battery", T0 + timedelta(seconds=s), v, "min")  # noqa: E731
    state, ev = run([ups(1, 0), ups(1, 10)])
    assert ev == []
    state, ev = run([ups(1, 30), rt(12, 30)], state)
    assert {(e.kind, e.severity) for e in ev} == {
        ("ups_on_battery", "warning"),
        ("ups_low_runtime", "warning"),
    }
    state, ev = run([rt(4, 60)], state)
    assert [(e.kind, e.action, e.severity) for e in ev] == [("ups_low_runtime", "update", "critical")]
    state, ev = run([ups(0, 90), rt(30, 90)], state)
    assert {(e.kind, e.action) for e in ev} == {("ups_on_battery", "clear"), ("ups_low_runtime", "clear")}
    _, ev = run([ups(3, 0)], th=Thresholds(ups_dwell_s=0))
    assert [(e.kind, e.severity) for e in ev] == [("ups_fault", "critical")]


def test_heartbeat_overdue() -> None:
    th = Thresholds(heartbeat_interval_s=10, heartbeat_missed_intervals=3)
    assert not heartbeat_overdue(None, T0, th)
    assert not heartbeat_overdue(T0, T0 + timedelta(seconds=30), th)
    assert heartbeat_overdue(T0, T0 + timedelta(seconds=31), th)


def test_inlet_temperatures_normal() -> None:
    assert inlet_temperatures_normal([], TH) is None
    assert inlet_temperatures_normal([temp(25, 0)], TH) is True
    assert inlet_temperatures_normal([temp(25, 0), temp(40, 0, "b")], TH) is False


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=5, max_value=45, allow_nan=False), min_size=1, max_size=60))
def test_events_per_sensor_are_well_formed(values: list[float]) -> None:
    """Whatever the readings, a sensor's events go raise → (update)* → clear → raise …"""
    th = Thresholds(temperature_dwell_s=20)
    state: dict | None = None  # type: ignore[type-arg]
    open_ = False
    for i, v in enumerate(values):
        state, events = evaluate([temp(v, i * 10)], state, th)
        for e in events:
            if e.action == "raise":
                assert not open_
                open_ = True
            else:
                assert open_
                open_ = e.action != "clear"
    if 18 <= values[-1] <= 27:
        assert not open_
