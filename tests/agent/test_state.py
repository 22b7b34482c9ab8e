"""The durable queue: ordered exactly-once batches, crash safety, and the stated drop policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from microdc.agent.readings import make_reading
from microdc.agent.state import State

T0 = datetime(2026, 3, 2, 12, tzinfo=UTC)


def temps(n: int, sensor: str = "t1", start: datetime = T0, step_s: float = 10.0) -> list:
    return [
        make_reading(
            sensor, "Temperature", "Cel", "Intake", start + timedelta(seconds=i * step_s), 20 + i % 5
        )
        for i in range(n)
    ]


def doors(n: int, start: datetime = T0) -> list:
    return [make_reading("door", "Door", "1", "Door", start + timedelta(seconds=i), i % 2) for i in range(n)]


def test_batches_are_ordered_and_stable_until_acked(tmp_path: Path) -> None:
    s = State(tmp_path / "a.db")
    with s.tx() as c:
        s.enqueue(c, temps(25))
    b1 = s.next_batch(10)
    assert b1 is not None and b1.seq == 1 and b1.n == 10
    # not acked: the same batch (same id and bytes) comes back, also after a "crash" (reopen)
    assert s.next_batch(10) == b1
    s.close()
    s = State(tmp_path / "a.db")
    again = s.next_batch(10)
    assert again is not None and (again.batch_id, again.body) == (b1.batch_id, b1.body)
    s.ack_batch(b1.seq, 10, False)
    b2 = s.next_batch(10)
    assert b2 is not None and b2.seq == 2
    ts1 = [r["ts"] for r in json.loads(b1.body)["readings"]]
    ts2 = [r["ts"] for r in json.loads(b2.body)["readings"]]
    assert ts1 == sorted(ts1) and ts1[-1] < ts2[0]
    s.ack_batch(b2.seq, 10, False)
    b3 = s.next_batch(10)
    assert b3 is not None and b3.n == 5
    s.ack_batch(b3.seq, 5, False)
    assert s.next_batch(10) is None
    assert s.counter("readings_acked") == 25


def test_budget_downsamples_then_drops_oldest_analog_never_discrete_or_alarms(tmp_path: Path) -> None:
    s = State(tmp_path / "a.db")
    with s.tx() as c:
        s.enqueue(c, temps(600, step_s=10))  # 100 minutes of one sensor
        s.enqueue(c, doors(50))
        s.enqueue_alarm(c, {"event_id": "e1", "kind": "door_open", "action": "raise"})
    door_bytes = sum(len(json.dumps(r.wire(), separators=(",", ":"))) for r in doors(50))
    full = s.queue_bytes()
    # 1) a budget that downsampling alone can meet
    res = s.enforce_budget(int(full * 0.7), bucket_s=300)
    assert res.downsampled > 0 and res.dropped == 0 and not res.over_budget
    assert s.counter("readings_downsampled") == res.downsampled
    assert s.alarm_count() == 1
    # 2) a budget only dropping can meet: the oldest analog readings go, doors and the alarm stay
    res = s.enforce_budget(door_bytes + 2000, bucket_s=300)
    assert res.dropped > 0
    with s._lock:
        rows = s._conn.execute("SELECT reading_type, ts FROM pending ORDER BY id").fetchall()
    assert sum(1 for r in rows if r[0] == "Door") == 50
    temps_left = [r[1] for r in rows if r[0] == "Temperature"]
    assert temps_left and min(temps_left) > T0.timestamp() + 3000  # the oldest were dropped first
    assert s.alarm_count() == 1
    # 3) a budget below what is protected: nothing protected is touched, it stays over budget
    res = s.enforce_budget(100, bucket_s=300)
    assert res.over_budget and s.alarm_count() == 1
    with s._lock:
        assert s._conn.execute("SELECT COUNT(*) FROM pending WHERE reading_type = 'Door'").fetchone()[0] == 50
    assert any(a == "queue.over_budget" for _t, a, _d in s.audit_log())


def test_downsampled_value_is_the_bucket_mean_at_the_first_timestamp(tmp_path: Path) -> None:
    s = State(tmp_path / "a.db")
    rs = [
        make_reading("p", "Power", "W", "ACOutput", T0 + timedelta(seconds=i * 60), 100.0 + i)
        for i in range(5)
    ]
    with s.tx() as c:
        s.enqueue(c, rs)
    s._downsample_oldest(300)  # oldest half: first 2 readings → one
    b = s.next_batch(100)
    assert b is not None
    out = json.loads(b.body)["readings"]
    assert out[0]["value"] == 100.5 and out[0]["ts"].startswith("2026-03-02T12:00:00")
    assert [r["value"] for r in out[1:]] == [102.0, 103.0, 104.0]


def test_raw_store_retention(tmp_path: Path) -> None:
    s = State(tmp_path / "a.db")
    with s.tx() as c:
        s.store_raw(c, [r.tagged("operational") for r in temps(100)], "DE", "test")
    assert s.prune_raw(max_age_s=1e12, max_bytes=10**9) == 0
    n = s.prune_raw(max_age_s=500, max_bytes=10**9, now=T0.timestamp() + 995)
    assert n == 50 and len(s.raw_rows()) == 50
    s.prune_raw(max_age_s=1e12, max_bytes=120 * 10)
    assert len(s.raw_rows()) == 10
