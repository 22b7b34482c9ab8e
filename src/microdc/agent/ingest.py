"""The one way readings enter the agent, from any source: store, evaluate, decide what leaves, queue.

In one SQLite transaction per call:

1. every reading is stored in the local raw store, tagged with its data class and the site's
   jurisdiction (it stays there whatever else happens);
2. the local alarm rules see every reading;
3. the sovereignty gate (`PolicyBook.may_sync`) decides per data class: ``raw`` readings go on;
   ``aggregate`` and ``local`` ones stop here (aggregates are made later from the raw store, see
   `microdc.agent.dataplane.Aggregator`);
4. report-by-exception: a raw-syncable reading is queued when it differs from the last queued value of
   its sensor by more than the deadband, or ``report_every_s`` has passed, or it is discrete and changed;
5. the queue's disk budget is enforced by the runner's housekeeping (`State.enforce_budget`).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from microdc.agent.alarms import LocalAlarms
from microdc.agent.config import UplinkConfig
from microdc.agent.readings import Reading
from microdc.agent.sovereignty import SyncGate
from microdc.agent.state import State


@dataclass
class IngestResult:
    stored: int = 0
    queued: int = 0
    withheld: int = 0  # may not leave raw (aggregate-only or local-only classes)
    suppressed: int = 0  # inside the deadband
    alarm_events: int = 0


class Deadband:
    """Report by exception: is a reading different enough from the last one queued for its sensor?"""

    def __init__(self, cfg: UplinkConfig):
        self.cfg = cfg
        self.last: dict[str, tuple[float, float]] = {}  # sensor → (value, epoch)

    def changed(self, r: Reading) -> bool:
        prev = self.last.get(r.sensor_id)
        if prev is None:
            return True
        value, t = prev
        if self.cfg.report_every_s <= 0 or r.epoch - t >= self.cfg.report_every_s or r.epoch < t:
            return True
        if r.protected:
            return r.value != value
        band = self.cfg.deadband.get(r.reading_type, 0.0)
        rel = self.cfg.deadband_relative.get(r.reading_type, 0.0)
        return abs(r.value - value) > max(band, rel * abs(value))

    def mark(self, r: Reading) -> None:
        self.last[r.sensor_id] = (r.value, r.epoch)


class Ingestor:
    def __init__(
        self,
        state: State,
        gate: SyncGate,
        alarms: LocalAlarms,
        uplink_cfg: UplinkConfig,
        *,
        jurisdiction: str,
    ):
        self.state = state
        self.gate = gate
        self.alarms = alarms
        self.deadband = Deadband(uplink_cfg)
        self.jurisdiction = jurisdiction
        self._lock = threading.Lock()  # MQTT callbacks (paho thread) and pollers (event loop) both ingest

    def ingest(self, readings: Sequence[Reading], source: str) -> IngestResult:
        res = IngestResult(stored=len(readings))
        if not readings:
            return res
        with self._lock, self.state.tx() as conn:
            self.state.store_raw(conn, readings, self.jurisdiction, source)
            events = self.alarms.evaluate(
                conn, readings, redact=lambda r: self.gate.decision(r.data_class) != "raw"
            )
            res.alarm_events = len(events)
            out: list[Reading] = []
            withheld: dict[str, int] = {}
            for r in readings:
                if self.gate.decision(r.data_class) != "raw":
                    res.withheld += 1
                    withheld[r.data_class] = withheld.get(r.data_class, 0) + 1
                elif self.deadband.changed(r):
                    self.deadband.mark(r)
                    out.append(r)
                else:
                    res.suppressed += 1
            res.queued = self.state.enqueue(conn, out)
            self.state.bump("readings_ingested", res.stored, conn)
            self.state.bump("readings_queued", res.queued, conn)
            self.state.bump("readings_withheld", res.withheld, conn)
            for cls, n in withheld.items():  # refused by may_sync, per data class
                self.state.bump(f"readings_withheld.{cls[:40]}", n, conn)
            self.state.bump("readings_suppressed", res.suppressed, conn)
        return res
