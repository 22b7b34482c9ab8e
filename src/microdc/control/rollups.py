"""Downsampling and retention, run periodically by the app and on demand (POST /api/v1/admin/maintenance).

* 5-minute rollups (min/mean/max/count per sensor) are computed from raw readings for every complete
  bucket up to ``now - 60 s``; 1-hour rollups from the 5-minute ones. Each bucket size keeps a watermark.
* Late data (an agent uploading buffered readings after an outage) is caught by looking at batches
  received since the previous run whose readings predate the watermark: their buckets are recomputed
  from raw (only while those raw readings are still retained).
* Retention: raw readings and batch records older than ``raw_retention_days`` are deleted; rollups
  after their own retention. Everything is an upsert, so re-running is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, literal_column, select
from sqlalchemy.orm import Session

from microdc.control.context import Ctx
from microdc.control.models import ProbeReport, Rollup, RollupState, Sensor, TelemetryBatch, readings
from microdc.control.telemetry import aggregate_raw, dialect_insert

FIVE_MIN = 300
HOUR = 3600
LAG_S = 60  # buckets closing within the last minute are left for the next run
BATCH_MARK_MARGIN = timedelta(seconds=60)  # re-scan recent batches in case a commit was in flight


@dataclass
class RollupReport:
    rollup_5m_buckets: int = 0
    rollup_1h_buckets: int = 0
    deleted_raw: int = 0
    deleted_rollups: int = 0
    deleted_batches: int = 0
    late_ranges: list[tuple[str, int, int]] = field(default_factory=list)


def _ts(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def _upsert_rollups(session: Session, select_stmt: Any, size: int) -> int:
    cols = ["sensor_pk", "bucket_s", "bucket_start", "min", "max", "sum", "count"]
    ins = dialect_insert(session, Rollup.__table__).from_select(cols, select_stmt)
    ex = ins.excluded
    ins = ins.on_conflict_do_update(
        index_elements=["sensor_pk", "bucket_s", "bucket_start"],
        set_={"min": ex.min, "max": ex.max, "sum": ex.sum, "count": ex.count},
    )
    res = session.execute(ins, execution_options={"preserve_rowcount": True})
    return max(0, int(getattr(res, "rowcount", 0) or 0))


def _five_min_from_raw(session: Session, sensor_pks: Any, start: int, end: int) -> int:
    if end <= start:
        return 0
    dialect = session.get_bind().dialect.name
    agg = aggregate_raw(dialect, sensor_pks, _ts(start), _ts(end), FIVE_MIN).subquery()
    c = list(agg.c)
    # the WHERE keeps SQLite from parsing ON CONFLICT as a join constraint
    sel = select(c[0], literal_column(str(FIVE_MIN)), c[1], c[2], c[3], c[4], c[5]).where(
        literal_column("1") == literal_column("1")
    )
    return _upsert_rollups(session, sel, FIVE_MIN)


def _hour_from_five(session: Session, sensor_pks: Any, start: int, end: int) -> int:
    if end <= start:
        return 0
    r = Rollup.__table__.c
    hour = (r.bucket_start - r.bucket_start % HOUR).label("hour")
    sel = (
        select(
            r.sensor_pk,
            literal_column(str(HOUR)),
            hour,
            func.min(r.min),
            func.max(r.max),
            func.sum(r.sum),
            func.sum(r.count),
        )
        .where(r.bucket_s == FIVE_MIN, r.bucket_start >= start, r.bucket_start < end)
        .group_by(r.sensor_pk, hour)
    )
    if sensor_pks is not None:
        sel = sel.where(r.sensor_pk.in_(sensor_pks))
    return _upsert_rollups(session, sel, HOUR)


def _state(session: Session, size: int) -> RollupState | None:
    return session.get(RollupState, size, with_for_update=True)


def run_rollups(session: Session, ctx: Ctx) -> RollupReport:
    rep = RollupReport()
    now_e = int(ctx.now.timestamp())
    target5 = (now_e - LAG_S) // FIVE_MIN * FIVE_MIN
    raw_cutoff = ctx.now - timedelta(days=ctx.settings.raw_retention_days)
    raw_cutoff_e = (int(raw_cutoff.timestamp()) + FIVE_MIN - 1) // FIVE_MIN * FIVE_MIN

    st5 = _state(session, FIVE_MIN)
    if st5 is None:
        first = session.scalar(select(func.min(readings.c.ts)))
        start = int(first.timestamp()) // FIVE_MIN * FIVE_MIN if first is not None else target5
        st5 = RollupState(bucket_s=FIVE_MIN, watermark=start, batch_mark=None)
        session.add(st5)
        session.flush()
    old5 = st5.watermark

    # late data: batches received since the last run whose readings reach back before the watermark
    late_hours: list[tuple[list[int], int, int]] = []
    if st5.batch_mark is not None:
        late = session.execute(
            select(
                TelemetryBatch.site_id, func.min(TelemetryBatch.first_ts), func.max(TelemetryBatch.last_ts)
            )
            .where(TelemetryBatch.received_at >= st5.batch_mark, TelemetryBatch.first_ts < _ts(old5))
            .group_by(TelemetryBatch.site_id)
        ).all()
        for site_id, first_ts, last_ts in late:
            if first_ts is None or last_ts is None:
                continue
            lo = max(int(first_ts.timestamp()) // FIVE_MIN * FIVE_MIN, raw_cutoff_e)
            hi = min((int(last_ts.timestamp()) // FIVE_MIN + 1) * FIVE_MIN, old5)
            if hi <= lo:
                continue
            pks = list(session.scalars(select(Sensor.id).where(Sensor.site_id == site_id)))
            rep.rollup_5m_buckets += _five_min_from_raw(session, pks, lo, hi)
            rep.late_ranges.append((site_id, lo, hi))
            late_hours.append((pks, lo // HOUR * HOUR, (hi + HOUR - 1) // HOUR * HOUR))

    # new complete buckets, an hour of data per statement to bound each statement's work
    cursor = old5
    while cursor < target5:
        step_end = min(target5, cursor + HOUR)
        rep.rollup_5m_buckets += _five_min_from_raw(session, None, cursor, step_end)
        cursor = step_end
    st5.watermark = max(old5, target5)
    st5.batch_mark = ctx.now - BATCH_MARK_MARGIN

    # hourly rollups from the final 5-minute ones
    target1h = st5.watermark // HOUR * HOUR
    st1h = _state(session, HOUR)
    if st1h is None:
        first5 = session.scalar(select(func.min(Rollup.bucket_start)).where(Rollup.bucket_s == FIVE_MIN))
        start1h = first5 // HOUR * HOUR if first5 is not None else target1h
        st1h = RollupState(bucket_s=HOUR, watermark=start1h, batch_mark=None)
        session.add(st1h)
        session.flush()
    for pks, lo, hi in late_hours:
        rep.rollup_1h_buckets += _hour_from_five(session, pks, lo, min(hi, st1h.watermark))
    rep.rollup_1h_buckets += _hour_from_five(session, None, st1h.watermark, target1h)
    st1h.watermark = max(st1h.watermark, target1h)

    # retention (raw only once it is rolled up)
    raw_limit = min(raw_cutoff, _ts(st5.watermark))
    rep.deleted_raw = _rowcount(session.execute(delete(readings).where(readings.c.ts < raw_limit)))
    rep.deleted_batches = _rowcount(
        session.execute(delete(TelemetryBatch).where(TelemetryBatch.received_at < raw_cutoff))
    )
    cut5 = int((ctx.now - timedelta(days=ctx.settings.rollup_5m_retention_days)).timestamp())
    cut1h = int((ctx.now - timedelta(days=ctx.settings.rollup_1h_retention_days)).timestamp())
    rep.deleted_rollups = _rowcount(
        session.execute(delete(Rollup).where(Rollup.bucket_s == FIVE_MIN, Rollup.bucket_start < cut5))
    ) + _rowcount(session.execute(delete(Rollup).where(Rollup.bucket_s == HOUR, Rollup.bucket_start < cut1h)))
    session.execute(delete(ProbeReport).where(ProbeReport.received_at < raw_cutoff))
    session.flush()
    return rep


def _rowcount(res: Any) -> int:
    return int(getattr(res, "rowcount", 0) or 0)
