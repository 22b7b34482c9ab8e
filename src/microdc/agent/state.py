"""The agent's durable local state: one SQLite file (WAL, synchronous=FULL), safe across kill -9 and reboots.

Tables:

* ``kv``         identity and credential, desired state, counters' friends (sequence numbers, watermarks,
                 alarm-rule state, capabilities of the server);
* ``counters``   monotonically increasing counts (readings ingested, rejected payloads, drops, …);
* ``pending``    readings waiting to be uploaded, oldest first (the outbound telemetry queue);
* ``batches``    readings frozen into a batch with a ``batch_id`` and a per-site ``seq`` *before* their
                 first send; a batch is deleted only when the server acknowledged it, and re-sent
                 byte-for-byte (same id) until then, so delivery is ordered and exactly-once;
* ``alarm_out``  locally evaluated alarm events waiting for upload (never dropped);
* ``raw``        every reading the site produced, tagged with data class and jurisdiction (the local
                 sovereign store; most of it never leaves the site);
* ``audit``      local audit events (enrollment, rotation, desired-state applications, drops);
* ``workloads``  the supervisor's last status of each desired workload (so restarts survive a restart);
                 ``rejected`` a sample of refused device payloads.

Moving readings from ``pending`` into a batch, and deleting an acknowledged batch, are single
transactions: a reading is in exactly one place at any instant.

**When the queue is full** (``max_queue_bytes``, counted as the JSON size of queued readings, batches and
alarm events) the agent, oldest first: (1) downsamples raw analog readings (temperatures, power, …)
into per-sensor means over ``downsample_bucket_s`` buckets, then (2) drops the oldest analog readings
(already downsampled or not). Discrete readings (door, smoke, leak, UPS state, intrusion), alarm events,
frozen batches and audit events are never downsampled or dropped. Every downsampled and dropped
reading is counted (``readings_downsampled``, ``readings_dropped``) and audited.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microdc.agent.readings import Reading, iso

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts REAL NOT NULL, sensor_id TEXT NOT NULL, reading_type TEXT NOT NULL, unit TEXT NOT NULL,
  physical_context TEXT NOT NULL, value REAL NOT NULL,
  protected INTEGER NOT NULL, weight INTEGER NOT NULL DEFAULT 1, ds INTEGER NOT NULL DEFAULT 0,
  size INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pending_unprotected ON pending (protected, ds, id);
CREATE TABLE IF NOT EXISTS batches (
  seq INTEGER PRIMARY KEY, batch_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, n INTEGER NOT NULL,
  created REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_batches (
  seq INTEGER PRIMARY KEY, batch_id TEXT NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL, at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alarm_out (
  id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL,
  created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS raw (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, sensor_id TEXT NOT NULL, reading_type TEXT NOT NULL,
  unit TEXT NOT NULL, physical_context TEXT NOT NULL, value REAL NOT NULL, data_class TEXT NOT NULL,
  agg_group TEXT NOT NULL, jurisdiction TEXT NOT NULL, source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS raw_class_ts ON raw (data_class, ts);
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, ts REAL NOT NULL, action TEXT NOT NULL, details TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS workloads (id TEXT PRIMARY KEY, body TEXT NOT NULL, started_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS rejected (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, origin TEXT NOT NULL, reason TEXT NOT NULL,
  sample TEXT NOT NULL
);
"""

RAW_ROW_BYTES = 120  # estimate per raw row, for raw_max_bytes
REJECTED_KEEP = 100


@dataclass(frozen=True)
class Batch:
    seq: int
    batch_id: str
    body: str  # the exact JSON sent (uncompressed); identical on every retry
    n: int
    attempts: int


@dataclass(frozen=True)
class AlarmOut:
    id: int
    event_id: str
    body: dict[str, Any]


@dataclass(frozen=True)
class BudgetResult:
    downsampled: int = 0
    dropped: int = 0
    queue_bytes: int = 0
    over_budget: bool = False


class State:
    """Thread-safe (one connection behind a lock) durable state of one agent."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30
        )
        if new:
            os.chmod(self.path, 0o600)  # it holds the site credential
        c = self._conn
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("PRAGMA busy_timeout=30000")
        c.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- transactions and key/value ------------------------------------------------------------

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set(self, key: str, value: Any, conn: sqlite3.Connection | None = None) -> None:
        sql, args = (
            "INSERT INTO kv (k, v) VALUES (?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            (
                key,
                json.dumps(value, separators=(",", ":")),
            ),
        )
        if conn is not None:
            conn.execute(sql, args)
            return
        with self.tx() as c:
            c.execute(sql, args)

    def delete(self, key: str) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM kv WHERE k = ?", (key,))

    # --- the control plane's audit checkpoints ---------------------------------------------------------

    def keep_audit_checkpoint(self, cp: Any) -> str:
        """Keep the latest signed audit checkpoint the control plane sent (evidence kept off its
        database: `microdc audit verify --checkpoints` takes it). One with a *lower* seq than the one
        kept means the server's audit log shrank: the higher one is kept, the event counted
        (``audit_checkpoint_regressions``) and audited. Returns "kept", "same", "older" or "invalid"."""
        if not isinstance(cp, dict) or not isinstance(cp.get("seq"), int) or not cp.get("signature"):
            return "invalid"
        with self.tx() as c:
            row = c.execute("SELECT v FROM kv WHERE k = 'audit_checkpoint'").fetchone()
            held = json.loads(row[0]) if row else None
            if held is not None and cp["seq"] < int(held.get("seq", 0)):
                self.bump("audit_checkpoint_regressions", conn=c)
                self.audit(
                    "audit_checkpoint.regressed",
                    {"kept_seq": held.get("seq"), "kept_hash": held.get("head_hash"), "sent": cp},
                    conn=c,
                )
                return "older"
            if (
                held is not None
                and cp["seq"] == held.get("seq")
                and cp.get("head_hash") == held.get("head_hash")
            ):
                return "same"
            self.set("audit_checkpoint", cp, conn=c)
            return "kept"

    def audit_checkpoint(self) -> dict[str, Any] | None:
        cp = self.get("audit_checkpoint")
        return cp if isinstance(cp, dict) else None

    # --- counters and audit -----------------------------------------------------------------------

    def bump(self, name: str, n: int = 1, conn: sqlite3.Connection | None = None) -> None:
        if n == 0:
            return
        sql = (
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = value + ?"
        )
        if conn is not None:
            conn.execute(sql, (name, n, n))
            return
        with self.tx() as c:
            c.execute(sql, (name, n, n))

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._conn.execute("SELECT name, value FROM counters ORDER BY name").fetchall())

    def counter(self, name: str) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def audit(self, action: str, details: dict[str, Any], conn: sqlite3.Connection | None = None) -> None:
        args = (time.time(), action, json.dumps(details, separators=(",", ":"), default=str))
        if conn is not None:
            conn.execute("INSERT INTO audit (ts, action, details) VALUES (?, ?, ?)", args)
            return
        with self.tx() as c:
            c.execute("INSERT INTO audit (ts, action, details) VALUES (?, ?, ?)", args)

    def audit_log(self, action: str | None = None) -> list[tuple[float, str, dict[str, Any]]]:
        q = "SELECT ts, action, details FROM audit"
        args: tuple[str, ...] = ()
        if action:
            q, args = q + " WHERE action = ?", (action,)
        with self._lock:
            rows = self._conn.execute(q + " ORDER BY id", args).fetchall()
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    def reject(self, origin: str, reason: str, sample: bytes | str) -> None:
        """Count a refused device payload and keep a short sample of the latest ones for diagnosis."""
        text = sample.decode("utf-8", "replace") if isinstance(sample, bytes) else sample
        with self.tx() as c:
            c.execute(
                "INSERT INTO rejected (at, origin, reason, sample) VALUES (?, ?, ?, ?)",
                (time.time(), origin[:256], reason[:512], text[:512]),
            )
            c.execute("DELETE FROM rejected WHERE id <= (SELECT MAX(id) FROM rejected) - ?", (REJECTED_KEEP,))
            self.bump("payloads_rejected", 1, c)
            self.bump(f"payloads_rejected.{reason.split(':')[0][:40]}", 1, c)

    def rejected(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return self._conn.execute("SELECT origin, reason, sample FROM rejected ORDER BY id").fetchall()

    # --- readings in: raw store and outbound queue -----------------------------------------------

    def store_raw(
        self, conn: sqlite3.Connection, readings: Sequence[Reading], jurisdiction: str, source: str
    ) -> None:
        conn.executemany(
            "INSERT INTO raw (ts, sensor_id, reading_type, unit, physical_context, value, data_class,"
            " agg_group, jurisdiction, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.epoch, r.sensor_id, r.reading_type, r.unit, r.physical_context, r.value,
                    r.data_class, r.agg_group, jurisdiction, source,
                )
                for r in readings
            ],
        )  # fmt: skip

    def enqueue(self, conn: sqlite3.Connection, readings: Iterable[Reading]) -> int:
        rows = []
        for r in readings:
            size = len(json.dumps(r.wire(), separators=(",", ":")))
            rows.append(
                (
                    r.epoch, r.sensor_id, r.reading_type, r.unit, r.physical_context, r.value,
                    int(r.protected), size,
                )
            )  # fmt: skip
        conn.executemany(
            "INSERT INTO pending (ts, sensor_id, reading_type, unit, physical_context, value, protected,"
            " size) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        return len(rows)

    def enqueue_alarm(self, conn: sqlite3.Connection, body: dict[str, Any]) -> bool:
        cur = conn.execute(
            "INSERT INTO alarm_out (event_id, body, created) VALUES (?, ?, ?)"
            " ON CONFLICT(event_id) DO NOTHING",
            (body["event_id"], json.dumps(body, separators=(",", ":")), time.time()),
        )
        return cur.rowcount > 0

    # --- outbound: batches and alarm events ------------------------------------------------------

    def pending_count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM pending").fetchone()[0])

    def batch_count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM batches").fetchone()[0])

    def alarm_count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM alarm_out").fetchone()[0])

    def backlog(self) -> int:
        """Batches that would be needed to send everything queued (frozen + pending)."""
        return self.batch_count() + (1 if self.pending_count() else 0)

    def next_batch(self, max_readings: int) -> Batch | None:
        """The oldest unacknowledged batch; if none is frozen, freeze the oldest pending readings."""
        with self._lock:
            row = self._conn.execute(
                "SELECT seq, batch_id, body, n, attempts FROM batches ORDER BY seq LIMIT 1"
            ).fetchone()
            if row:
                return Batch(*row)
        with self.tx() as c:
            rows = c.execute(
                "SELECT id, ts, sensor_id, reading_type, unit, physical_context, value FROM pending"
                " ORDER BY id LIMIT ?",
                (max_readings,),
            ).fetchall()
            if not rows:
                return None
            seq = int(self.get("next_seq", 1))
            batch_id = f"b{seq}-{uuid.uuid4().hex[:20]}"
            readings = [
                {
                    "sensor_id": r[2],
                    "reading_type": r[3],
                    "unit": r[4],
                    "physical_context": r[5],
                    "ts": iso_epoch(r[1]),
                    "value": r[6],
                }
                for r in rows
            ]
            body = json.dumps({"batch_id": batch_id, "seq": seq, "readings": readings}, separators=(",", ":"))
            c.execute(
                "INSERT INTO batches (seq, batch_id, body, n, created) VALUES (?, ?, ?, ?, ?)",
                (seq, batch_id, body, len(rows), time.time()),
            )
            # the rows are the first ones by id, so this deletes exactly them
            c.execute("DELETE FROM pending WHERE id <= ?", (rows[-1][0],))
            self.set("next_seq", seq + 1, c)
        return Batch(seq, batch_id, body, len(rows), 0)

    def attempt(self, seq: int) -> None:
        with self.tx() as c:
            c.execute("UPDATE batches SET attempts = attempts + 1 WHERE seq = ?", (seq,))

    def ack_batch(self, seq: int, accepted: int, duplicate: bool) -> None:
        with self.tx() as c:
            n = c.execute("SELECT n FROM batches WHERE seq = ?", (seq,)).fetchone()
            c.execute("DELETE FROM batches WHERE seq = ?", (seq,))
            self.set("last_acked_seq", seq, c)
            self.bump("batches_acked", 1, c)
            self.bump("readings_acked", int(n[0]) if n else 0, c)
            if duplicate:
                self.bump("batches_duplicate_acks", 1, c)

    def dead_letter(self, batch: Batch, reason: str) -> None:
        """A batch the server refuses for good (4xx other than auth/rate): set aside, never retried."""
        with self.tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO dead_batches (seq, batch_id, body, reason, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (batch.seq, batch.batch_id, batch.body, reason[:1024], time.time()),
            )
            c.execute("DELETE FROM batches WHERE seq = ?", (batch.seq,))
            self.bump("batches_dead_lettered", 1, c)
            self.audit(
                "batch.dead_letter", {"seq": batch.seq, "batch_id": batch.batch_id, "reason": reason}, c
            )

    def next_alarms(self, limit: int = 50) -> list[AlarmOut]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, event_id, body FROM alarm_out ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [AlarmOut(r[0], r[1], json.loads(r[2])) for r in rows]

    def ack_alarm(self, alarm_id: int) -> None:
        with self.tx() as c:
            c.execute("DELETE FROM alarm_out WHERE id = ?", (alarm_id,))
            self.bump("alarm_events_acked", 1, c)

    # --- bounded disk use -------------------------------------------------------------------------

    def queue_bytes(self) -> int:
        with self._lock:
            c = self._conn
            p = c.execute("SELECT COALESCE(SUM(size), 0) FROM pending").fetchone()[0]
            b = c.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM batches").fetchone()[0]
            a = c.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM alarm_out").fetchone()[0]
        return int(p) + int(b) + int(a)

    def enforce_budget(self, max_bytes: int, bucket_s: float) -> BudgetResult:
        """Downsample, then drop, the oldest analog readings until the queue fits (see module doc)."""
        total = self.queue_bytes()
        if total <= max_bytes:
            return BudgetResult(queue_bytes=total)
        downsampled = dropped = 0
        while total > max_bytes:
            n = self._downsample_oldest(bucket_s)
            if n == 0:
                break
            downsampled += n
            total = self.queue_bytes()
        if total > max_bytes:
            dropped = self._drop_oldest(total - int(max_bytes * 0.9))
            total = self.queue_bytes()
        if downsampled or dropped:
            self.audit(
                "queue.over_budget",
                {
                    "downsampled": downsampled,
                    "dropped": dropped,
                    "queue_bytes": total,
                    "max_bytes": max_bytes,
                },
            )
        return BudgetResult(downsampled, dropped, total, total > max_bytes)

    def _downsample_oldest(self, bucket_s: float) -> int:
        """Merge the oldest half of the not yet downsampled analog readings into per-sensor bucket means."""
        with self.tx() as c:
            (count,) = c.execute("SELECT COUNT(*) FROM pending WHERE protected = 0 AND ds = 0").fetchone()
            if count < 2:
                return 0
            rows = c.execute(
                "SELECT id, ts, sensor_id, reading_type, unit, physical_context, value, weight FROM pending"
                " WHERE protected = 0 AND ds = 0 ORDER BY id LIMIT ?",
                (max(2, count // 2),),
            ).fetchall()
            groups: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
            for r in rows:
                groups.setdefault((r[2], r[3], r[4], r[5], int(r[1] // bucket_s)), []).append(r)
            merged = 0
            for members in groups.values():
                if len(members) < 2:
                    # a lone reading in its bucket: mark it as downsampled so it is not revisited
                    c.execute("UPDATE pending SET ds = 1 WHERE id = ?", (members[0][0],))
                    continue
                w = sum(m[7] for m in members)
                mean = sum(m[6] * m[7] for m in members) / w
                c.execute(
                    "UPDATE pending SET value = ?, weight = ?, ds = 1 WHERE id = ?", (mean, w, members[0][0])
                )
                c.executemany("DELETE FROM pending WHERE id = ?", [(m[0],) for m in members[1:]])
                merged += len(members) - 1
            self.bump("readings_downsampled", merged, c)
            return merged or (1 if rows else 0)

    def _drop_oldest(self, need_bytes: int) -> int:
        with self.tx() as c:
            rows = c.execute(
                "SELECT id, size, weight FROM pending WHERE protected = 0 ORDER BY id"
            ).fetchall()
            freed = 0
            ids: list[tuple[int]] = []
            readings = 0
            for rid, size, weight in rows:
                if freed >= need_bytes:
                    break
                ids.append((rid,))
                freed += size
                readings += weight
            c.executemany("DELETE FROM pending WHERE id = ?", ids)
            self.bump("readings_dropped", readings, c)
            return readings

    def prune_raw(self, max_age_s: float, max_bytes: int, now: float | None = None) -> int:
        """Local raw store retention: older than max_age_s, then oldest beyond max_bytes."""
        now = time.time() if now is None else now
        with self.tx() as c:
            n = c.execute("DELETE FROM raw WHERE ts < ?", (now - max_age_s,)).rowcount
            (count,) = c.execute("SELECT COUNT(*) FROM raw").fetchone()
            excess = count - max_bytes // RAW_ROW_BYTES
            if excess > 0:
                c.execute("DELETE FROM raw WHERE id IN (SELECT id FROM raw ORDER BY id LIMIT ?)", (excess,))
                n += excess
            self.bump("raw_pruned", n, c)
        return n

    # --- raw store queries (aggregation, tests) ----------------------------------------------------

    def raw_rows(
        self, *, data_class: str | None = None, start: float | None = None, end: float | None = None
    ) -> list[tuple[Any, ...]]:
        q = (
            "SELECT ts, sensor_id, reading_type, unit, physical_context, value, data_class, agg_group,"
            " jurisdiction, source FROM raw WHERE 1=1"
        )
        args: list[Any] = []
        if data_class is not None:
            q += " AND data_class = ?"
            args.append(data_class)
        if start is not None:
            q += " AND ts >= ?"
            args.append(start)
        if end is not None:
            q += " AND ts < ?"
            args.append(end)
        with self._lock:
            return self._conn.execute(q + " ORDER BY id", args).fetchall()

    def raw_classes(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT data_class FROM raw").fetchall()]

    def oldest_raw_ts(self, data_class: str) -> float | None:
        with self._lock:
            row = self._conn.execute("SELECT MIN(ts) FROM raw WHERE data_class = ?", (data_class,)).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    # --- workloads: the supervisor's last word on each desired workload ------------------------------

    def workload_status(self) -> dict[str, dict[str, Any]]:
        """Workload id → its last reported status (state, restarts, exit code, …), durable across restarts."""
        with self._lock:
            rows = self._conn.execute("SELECT id, body FROM workloads ORDER BY id").fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def running(self) -> dict[str, dict[str, Any]]:
        """The workloads that run now (running or starting)."""
        return {k: v for k, v in self.workload_status().items() if v.get("state") in ("running", "starting")}

    def set_workload_status(self, statuses: Iterable[dict[str, Any]]) -> None:
        """Replace the whole table with the supervisor's latest round (one transaction)."""
        now = time.time()
        with self.tx() as c:
            c.execute("DELETE FROM workloads")
            c.executemany(
                "INSERT INTO workloads (id, body, started_at) VALUES (?, ?, ?)",
                [(str(st["workload_id"]), json.dumps(st, separators=(",", ":")), now) for st in statuses],
            )


def iso_epoch(t: float) -> str:
    from microdc.agent.readings import from_epoch

    return iso(from_epoch(t))
