"""The site's data plane: devices publish to the site's MQTT broker; the agent ingests, keeps raw data
local, and syncs upstream only what `PolicyBook.may_sync` lets leave.

**MQTT ingest** (`MqttIngest`, paho-mqtt 2, MQTT v5). The agent subscribes with a stable client id and
a persistent session (``clean_start=False`` plus a session expiry), QoS 1, and *manual acks*: a
message is acknowledged to the broker only after its readings are committed to SQLite. So a
``kill -9`` of the agent loses nothing: the broker redelivers what was not acknowledged, and keeps
queueing for the session while the agent is down (Mosquitto: up to ``max_queued_messages``).

Payload: one JSON object or a list of them (at most 1000, at most 64 KiB per message)::

    {"reading_type": "Power", "unit": "W", "physical_context": "ACInput", "value": 412.5,
     "sensor_id": "meter-17", "ts": "2026-03-02T12:00:00Z"}

``sensor_id`` defaults to the topic below the matched rule's prefix (``/`` → ``.``); ``ts`` defaults
to the time of arrival and may be ISO 8601 with a zone or epoch seconds. The data class comes from the
first topic rule whose filter matches (devices cannot declare their own class). Anything else —
not JSON, unknown fields, types or units outside the control plane's vocabulary, non-finite values,
timestamps without a zone or more than 5 minutes ahead, no matching rule — is refused *per reading*,
counted (``payloads_rejected`` and ``payloads_rejected.<reason>``) with a sample kept for diagnosis,
and never stops the agent.

**Sovereign sync** (`Aggregator`). For a data class whose raw data may not leave but whose
aggregates may (`may_sync(..., aggregate=True)`), closed windows of ``aggregate_window_s`` are
aggregated from the local raw store per (aggregate group, reading type, unit, context) over *all
sensors of the group*: the mean of all readings (``agg.<group>.<type>.<context>.mean``) and, for
additive quantities (Power, EnergykWh, Current), the sum of the per-sensor means (``….sum``). A group
with fewer than ``min_group_size`` distinct sensors in a window is withheld (counted), so an
"aggregate" is never one person's series. A per-class watermark in SQLite makes this exactly-once
across restarts.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from microdc.agent.config import MqttConfig, PolicyConfig
from microdc.agent.ingest import Ingestor
from microdc.agent.readings import InvalidReading, Reading, from_epoch, make_reading, now_utc
from microdc.agent.sovereignty import SyncGate
from microdc.agent.state import State

log = logging.getLogger("microdc.agent.dataplane")
MAX_PAYLOAD = 64 * 1024
MAX_ITEMS = 1000
FIELDS = {"sensor_id", "reading_type", "unit", "physical_context", "ts", "value"}
ADDITIVE = {"Power", "EnergykWh", "Current"}
MAX_FUTURE = timedelta(minutes=5)


class Rejected(ValueError):
    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


def topic_matches(filter_: str, topic: str) -> bool:
    f, t = filter_.split("/"), topic.split("/")
    for i, part in enumerate(f):
        if part == "#":
            return True
        if i >= len(t) or (part != "+" and part != t[i]):
            return False
    return len(f) == len(t)


def _prefix(filter_: str) -> list[str]:
    out = []
    for part in filter_.split("/"):
        if part in ("#", "+"):
            break
        out.append(part)
    return out


def _ts(value: Any, now: datetime) -> datetime:
    if value is None:
        return now
    if isinstance(value, bool):
        raise Rejected("bad_ts", repr(value))
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise Rejected("bad_ts", repr(value))
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except (OverflowError, OSError, ValueError):
            raise Rejected("bad_ts", repr(value)) from None
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise Rejected("bad_ts", value[:40]) from None
        if dt.tzinfo is None:
            raise Rejected("bad_ts", "timestamp needs a time zone")
        return dt
    raise Rejected("bad_ts", type(value).__name__)


class MqttIngest:
    """Subscribe to the site's broker; validate, store and only then acknowledge device messages."""

    def __init__(
        self,
        cfg: MqttConfig,
        site_id: str,
        ingestor: Ingestor,
        state: State,
        *,
        facility_class: str,
        clock: Callable[[], datetime] = now_utc,
        on_ingest: Callable[[], None] | None = None,
    ):
        self.cfg = cfg
        self.site_id = site_id
        self.ingestor = ingestor
        self.state = state
        self.clock = clock
        self.on_ingest = on_ingest
        rules = cfg.topics or []
        self.rules: list[tuple[str, str, str]] = [
            (r.filter, r.data_class or facility_class, r.aggregate_group or "") for r in rules
        ] or [(f"mdc/{site_id}/#", facility_class, "")]
        self.client: Any = None
        self.connected = threading.Event()

    # --- parsing (no broker needed: unit-testable) ------------------------------------------------

    def handle(self, topic: str, payload: bytes) -> int:
        """Ingest one message; returns the number of readings accepted. Never raises on bad input."""
        try:
            readings = self.parse(topic, payload)
        except Rejected as e:
            self.state.reject(topic, str(e), payload)
            return 0
        if readings:
            self.ingestor.ingest(readings, source=f"mqtt:{topic}"[:200])
            if self.on_ingest is not None:
                self.on_ingest()
        return len(readings)

    def parse(self, topic: str, payload: bytes) -> list[Reading]:
        rule = next((r for r in self.rules if topic_matches(r[0], topic)), None)
        if rule is None:
            raise Rejected("no_rule", topic)
        filter_, data_class, group = rule
        if len(payload) > MAX_PAYLOAD:
            raise Rejected("too_large", f"{len(payload)} bytes")
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as e:
            raise Rejected("not_json", str(e)[:80]) from None
        items = doc if isinstance(doc, list) else [doc]
        if len(items) > MAX_ITEMS:
            raise Rejected("too_many", f"{len(items)} readings")
        now = self.clock()
        default_sensor = ".".join(topic.split("/")[len(_prefix(filter_)) :]) or topic.replace("/", ".")
        out: list[Reading] = []
        for item in items:
            try:
                out.append(self._one(item, default_sensor, data_class, group, now))
            except Rejected as e:
                self.state.reject(topic, str(e), json.dumps(item, default=str)[:512])
        return out

    def _one(self, item: Any, default_sensor: str, data_class: str, group: str, now: datetime) -> Reading:
        if not isinstance(item, dict):
            raise Rejected("not_object", type(item).__name__)
        unknown = set(item) - FIELDS
        if unknown:
            raise Rejected("unknown_field", ", ".join(sorted(map(str, unknown)))[:80])
        missing = {"reading_type", "unit", "value"} - set(item)
        if missing:
            raise Rejected("missing_field", ", ".join(sorted(missing)))
        ts = _ts(item.get("ts"), now)
        if ts - now > MAX_FUTURE:
            raise Rejected("future_ts", ts.isoformat())
        sensor = item.get("sensor_id", default_sensor)
        value = item["value"]
        if not isinstance(sensor, str) or not isinstance(value, int | float) or isinstance(value, bool):
            raise Rejected("bad_type", "sensor_id must be a string and value a number")
        try:
            return make_reading(
                sensor,
                str(item["reading_type"]),
                str(item["unit"]),
                str(item.get("physical_context", "Room")),
                ts,
                value,
                data_class=data_class,
                agg_group=group,
            )
        except InvalidReading as e:
            raise Rejected("invalid", str(e)[:200]) from None

    # --- the broker connection --------------------------------------------------------------------

    def start(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client_id = self.cfg.client_id or f"microdc-agent-{self.site_id}"
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.cfg.username:
            c.username_pw_set(self.cfg.username, self.cfg.password)
        c.reconnect_delay_set(1, 30)

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if getattr(reason, "is_failure", False):
                log.warning("MQTT connect refused: %s", reason)
                return
            client.subscribe([(f, self.cfg.qos) for f, _, _ in self.rules])
            self.connected.set()

        def on_disconnect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            self.connected.clear()

        def on_message(client: Any, userdata: Any, msg: Any) -> None:
            try:
                self.handle(msg.topic, msg.payload)
            except Exception:  # storage failure: do not ack, the broker will redeliver
                log.exception("could not store MQTT message on %s", msg.topic)
                self.state.bump("mqtt_store_failures")
                return
            if msg.qos > 0:
                client.ack(msg.mid, msg.qos)

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        c.on_message = on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.cfg.session_expiry_s
        c.connect_async(self.cfg.host, self.cfg.port, keepalive=30, clean_start=False, properties=props)
        c.loop_start()
        self.client = c

    def stop(self) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()
            self.client = None


class Aggregator:
    """Windowed, k-anonymous aggregates of aggregate-only data classes, from the local raw store."""

    def __init__(self, state: State, gate: SyncGate, cfg: PolicyConfig):
        self.state = state
        self.gate = gate
        self.window = cfg.aggregate_window_s
        self.k = cfg.min_group_size
        self.grace = min(60.0, self.window / 5)

    def run(self, now: float, max_windows: int = 288) -> int:
        """Aggregate every closed window not yet done; returns the number of aggregate readings queued."""
        queued = 0
        for cls in self.state.raw_classes():
            if self.gate.decision(cls) != "aggregate":
                continue
            key = f"agg_watermark.{cls}"
            wm = self.state.get(key)
            if wm is None:
                oldest = self.state.oldest_raw_ts(cls)
                if oldest is None:
                    continue
                wm = math.floor(oldest / self.window) * self.window
            done = 0
            while wm + self.window <= now - self.grace and done < max_windows:
                out, withheld = self._window(cls, wm)
                with self.state.tx() as conn:
                    self.state.enqueue(conn, out)
                    self.state.set(key, wm + self.window, conn)
                    self.state.bump("aggregates_queued", len(out), conn)
                    self.state.bump("aggregates_withheld_small_group", withheld, conn)
                queued += len(out)
                wm += self.window
                done += 1
        return queued

    def _window(self, cls: str, start: float) -> tuple[list[Reading], int]:
        rows = self.state.raw_rows(data_class=cls, start=start, end=start + self.window)
        groups: dict[tuple[str, str, str, str], dict[str, list[float]]] = {}
        for _ts, sensor, rtype, unit, ctx, value, _cls, group, _j, _src in rows:
            groups.setdefault((group or cls, rtype, unit, ctx), {}).setdefault(sensor, []).append(value)
        out: list[Reading] = []
        withheld = 0
        ts = from_epoch(start)
        for (group, rtype, unit, ctx), per_sensor in sorted(groups.items()):
            if len(per_sensor) < self.k:
                withheld += 1
                continue
            values = [v for vs in per_sensor.values() for v in vs]
            base = f"agg.{group}.{rtype}.{ctx}"[:120]
            stats = [("mean", sum(values) / len(values))]
            if rtype in ADDITIVE:
                stats.append(("sum", sum(sum(vs) / len(vs) for vs in per_sensor.values())))
            for name, value in stats:
                try:
                    out.append(make_reading(f"{base}.{name}", rtype, unit, ctx, ts, value, data_class=cls))
                except InvalidReading:
                    withheld += 1
        return out, withheld
