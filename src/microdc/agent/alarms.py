"""Alarms evaluated at the site, with or without an uplink, by the control plane's own pure rules.

`microdc.protocol.alarm_rules.evaluate` is called with exactly the thresholds and dwell times the server
uses (overridable in agent.yaml ``alarms.thresholds``); its JSON state is persisted in the agent's
SQLite file in the same transaction as the readings, so dwell timers survive restarts.

Every event becomes an ``AgentAlarmEventIn`` (``POST /api/v1/sites/{id}/alarm-events``) with a
deterministic ``event_id`` (a hash of site, kind, sensor, action, severity and reading time), so a
retry after a crash is recognised by the server as the same event. Rule "update" events (a change of
severity) are sent as ``raise`` (the server updates the open alarm of the same kind and sensor).
Local hooks (`on_event`) run for every event: a siren, a local display, a log line.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from microdc.agent.config import AgentConfig
from microdc.agent.readings import Reading, iso
from microdc.agent.state import State
from microdc.protocol import alarm_rules
from microdc.protocol.wire import AgentAlarmEventIn

log = logging.getLogger("microdc.agent.alarms")
STATE_KEY = "alarm_rules_state"
OPEN_KEY = "alarms_open"


def thresholds(overrides: dict[str, Any]) -> alarm_rules.Thresholds:
    known = {f.name for f in dataclasses.fields(alarm_rules.Thresholds)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown alarm thresholds: {', '.join(bad)} (known: {', '.join(sorted(known))})")
    base = alarm_rules.Thresholds()
    values: dict[str, Any] = {}
    for k, v in overrides.items():
        cur = getattr(base, k)
        values[k] = tuple(v) if isinstance(cur, tuple) else type(cur)(v)
    return dataclasses.replace(base, **values)


def _aware(v: Any) -> datetime:
    dt = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def event_id(site_id: str, ev: alarm_rules.AlarmEvent) -> str:
    key = f"{site_id}|{ev.kind}|{ev.sensor_id}|{ev.action}|{ev.severity}|{iso(ev.ts)}"
    return "a-" + hashlib.sha256(key.encode()).hexdigest()[:40]


class LocalAlarms:
    def __init__(self, state: State, cfg: AgentConfig, site_id: str):
        self.state = state
        self.site_id = site_id
        self.th = thresholds(cfg.alarms.thresholds)
        self.maintenance: list[alarm_rules.Window] = [
            (_aware(w.start), _aware(w.end)) for w in cfg.alarms.maintenance
        ]
        self._rules_state: dict[str, Any] | None = state.get(STATE_KEY)
        self.hooks: list[Callable[[alarm_rules.AlarmEvent], None]] = []

    def on_event(self, hook: Callable[[alarm_rules.AlarmEvent], None]) -> None:
        self.hooks.append(hook)

    def open_alarms(self) -> dict[str, dict[str, Any]]:
        """Alarms open at the site right now, by ``kind|sensor`` (the local view, uplink or not)."""
        return dict(self.state.get(OPEN_KEY, {}))

    def evaluate(
        self, conn: sqlite3.Connection, readings: Sequence[Reading], *, redact: Callable[[Reading], bool]
    ) -> list[dict[str, Any]]:
        """Run the rules over readings inside the caller's transaction; queue and return wire events.

        `redact(reading)` says whether the triggering value may not leave the site (its data class may
        not be synced raw, `may_sync`): the event is still sent, without the value and without the
        rule's message (which quotes the value).
        """
        rules_in = [r.for_rules() for r in readings]
        by_key = {(r.sensor_id, r.ts): r for r in readings}
        new_state, events = alarm_rules.evaluate(rules_in, self._rules_state, self.th, self.maintenance)
        self._rules_state = new_state
        self.state.set(STATE_KEY, new_state, conn)
        if not events:
            return []
        open_now = self.state.get(OPEN_KEY, {})
        out: list[dict[str, Any]] = []
        for ev in events:
            src = by_key.get((ev.sensor_id, ev.ts))
            hide = src is not None and redact(src)
            body = AgentAlarmEventIn(
                event_id=event_id(self.site_id, ev),
                action="clear" if ev.action == "clear" else "raise",
                kind=ev.kind,
                severity=ev.severity or "warning",
                sensor_id=ev.sensor_id,
                ts=ev.ts,
                message=(f"{ev.kind}: value withheld at the site (may_sync)" if hide else ev.message)[:1024],
                value=None if hide else ev.value,
                break_in=ev.break_in,
            ).model_dump(mode="json")
            self.state.enqueue_alarm(conn, body)
            self.state.bump(f"alarm_events.{ev.action}", 1, conn)
            key = f"{ev.kind}|{ev.sensor_id}"
            if ev.action == "clear":
                open_now.pop(key, None)
            else:
                open_now[key] = {
                    "kind": ev.kind,
                    "sensor_id": ev.sensor_id,
                    "severity": ev.severity,
                    "since": open_now.get(key, {}).get("since", iso(ev.ts)),
                    "message": ev.message,
                    "break_in": ev.break_in,
                }
            out.append(body)
            for hook in self.hooks:
                try:
                    hook(ev)
                except Exception:  # a local action must never stop evaluation
                    log.exception("alarm hook failed")
            log.warning("alarm %s %s %s %s: %s", ev.action, ev.kind, ev.sensor_id, ev.severity, ev.message)
        self.state.set(OPEN_KEY, open_now, conn)
        return out
