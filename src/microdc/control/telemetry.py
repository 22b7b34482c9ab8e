"""Telemetry ingest and queries.

Ingest of one batch is one transaction: claim (site, batch_id) in `telemetry_batches` (a retry with the
same content finds the row and gets the original ack back — nothing is double-counted; the same batch_id
with *different* content is a 409 `batch-conflict`, never a silent drop of the new data), upsert the
batch's sensors (one multi-row statement, returning their keys), bulk-insert the readings (PostgreSQL:
binary COPY; SQLite: one executemany), and run the alarm rules for the readings they look at. The ack
is sent only after the commit, so an acknowledged reading is durable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Float, Select, case, cast, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from microdc.control import alarms, clientclock, health, sitelimits
from microdc.control.context import Ctx
from microdc.control.models import (
    MaintenanceWindow,
    Rollup,
    RollupState,
    Sensor,
    Site,
    SiteRuleState,
    TelemetryBatch,
    readings,
)
from microdc.control.problems import ProblemError, not_found
from microdc.control.schemas import HistoryPoint, ReadingIn, TelemetryBatchIn
from microdc.control.site_state import Liveness
from microdc.protocol import alarm_rules
from microdc.protocol.vocab import ReadingType

RULE_TYPES = frozenset(
    {
        ReadingType.TEMPERATURE,
        ReadingType.HUMIDITY,
        ReadingType.DOOR,
        ReadingType.SMOKE,
        ReadingType.LEAK,
        ReadingType.UPS_STATE,
        ReadingType.RUNTIME,
        ReadingType.INTRUSION,
    }
)
RULE_BATCH_CONFLICT = "batch-conflict"


def _rule_relevant(r: ReadingIn) -> bool:
    """Cheap pre-filter mirroring alarm_rules.conditions(): only readings some rule looks at."""
    t = r.reading_type
    if t == ReadingType.TEMPERATURE:
        return r.physical_context == "Intake"
    if t == ReadingType.HUMIDITY:
        return r.physical_context in ("Intake", "Room")
    return t in RULE_TYPES


def dialect_insert(session: Session, table: Any) -> Any:
    name = session.get_bind().dialect.name
    return postgresql.insert(table) if name == "postgresql" else sqlite.insert(table)


@dataclass(frozen=True)
class IngestResult:
    site_id: str
    batch_id: str
    seq: int
    accepted: int
    duplicate: bool
    received_at: datetime


def batch_digest(batch: TelemetryBatchIn) -> str:
    """SHA-256 over the batch's meaning (seq and every reading, in order), not its bytes: a retry that
    was re-serialised or re-compressed is still the same batch."""
    lines = [str(batch.seq)]
    lines.extend(
        f"{r.sensor_id}\x1f{r.reading_type.value}\x1f{r.unit}\x1f{r.physical_context.value}"
        f"\x1f{r.ts.timestamp()!r}\x1f{r.value!r}"
        for r in batch.readings
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _existing(session: Session, site_id: str, batch: TelemetryBatchIn, digest: str) -> IngestResult:
    row = session.scalars(
        select(TelemetryBatch).where(
            TelemetryBatch.site_id == site_id, TelemetryBatch.batch_id == batch.batch_id
        )
    ).one()
    # rows stored before the digest existed (NULL) cannot be compared: treated as the same batch
    if row.content_sha256 is not None and row.content_sha256 != digest:
        raise ProblemError(
            409,
            f"{RULE_BATCH_CONFLICT}: batch_id {batch.batch_id!r} was already stored with other content "
            f"(seq {row.seq}, {row.reading_count} readings); nothing of this batch was stored — "
            "send new data under a new batch_id",
            slug=RULE_BATCH_CONFLICT,
            title="Batch id reused with different content",
            rule=RULE_BATCH_CONFLICT,
            batch_id=batch.batch_id,
            stored_sha256=row.content_sha256,
            sent_sha256=digest,
        )
    return IngestResult(site_id, row.batch_id, row.seq, row.reading_count, True, row.received_at)


def ingest(session: Session, ctx: Ctx, site_id: str, batch: TelemetryBatchIn) -> IngestResult:
    rs = batch.readings
    first_ts = min(r.ts for r in rs)
    last_ts = max(r.ts for r in rs)
    skew = ctx.settings.max_clock_skew_s
    clientclock.check_recorded("reading timestamp", last_ts, ctx.now, skew)
    clientclock.check_recorded("reading timestamp", first_ts, ctx.now, skew)
    sitelimits.check_values(rs)
    digest = batch_digest(batch)
    claim = (
        dialect_insert(session, TelemetryBatch.__table__)
        .values(
            site_id=site_id,
            batch_id=batch.batch_id,
            seq=batch.seq,
            received_at=ctx.now,
            reading_count=len(rs),
            first_ts=first_ts,
            last_ts=last_ts,
            content_sha256=digest,
        )
        .on_conflict_do_nothing(index_elements=["site_id", "batch_id"])
        # the site's liveness rides along, saving a round trip
        .returning(
            TelemetryBatch.__table__.c.id, select(Site.liveness).where(Site.id == site_id).scalar_subquery()
        )
    )
    claimed = session.execute(claim).first()
    if claimed is None:
        return _existing(session, site_id, batch, digest)
    liveness = claimed[1]
    sitelimits.check_sensors(
        session,
        site_id,
        rs,
        max_sensors=ctx.settings.site_max_sensors,
        retry_after_s=ctx.settings.site_limit_retry_s,
    )

    sensor_keys = _upsert_sensors(session, ctx, site_id, rs)
    rows = [(sensor_keys[r.sensor_id], r.ts, r.value) for r in rs]
    _bulk_insert_readings(session, rows)

    relevant = [r for r in rs if _rule_relevant(r)]
    if relevant:
        _run_rules(session, ctx, site_id, relevant, first_ts, last_ts)
    if liveness in (Liveness.DOWN.value, Liveness.LINK_DOWN.value, Liveness.SUSPECT.value):
        site = session.get(Site, site_id, with_for_update=True)
        if site is not None:
            health.check_site(session, ctx, site)
    return IngestResult(site_id, batch.batch_id, batch.seq, len(rs), False, ctx.now)


def _upsert_sensors(session: Session, ctx: Ctx, site_id: str, rs: Sequence[ReadingIn]) -> dict[str, int]:
    latest: dict[str, ReadingIn] = {}
    for r in rs:
        cur = latest.get(r.sensor_id)
        if cur is None or r.ts >= cur.ts:
            latest[r.sensor_id] = r
    values = [
        {
            "site_id": site_id,
            "sensor_id": sid,
            "reading_type": r.reading_type.value,
            "unit": r.unit,
            "physical_context": r.physical_context.value,
            "first_seen": ctx.now,
            "latest_ts": r.ts,
            "latest_value": r.value,
        }
        for sid, r in sorted(latest.items())
    ]
    if session.get_bind().dialect.name == "postgresql":
        return _upsert_sensors_pg(session, site_id, ctx.now, values)
    t = Sensor.__table__
    stmt = dialect_insert(session, t).values(values)
    ex = stmt.excluded
    newer = ex.latest_ts >= t.c.latest_ts
    stmt = stmt.on_conflict_do_update(
        index_elements=["site_id", "sensor_id"],
        set_={
            "reading_type": ex.reading_type,
            "unit": ex.unit,
            "physical_context": ex.physical_context,
            "latest_ts": func.coalesce(_case(newer, ex.latest_ts, t.c.latest_ts), ex.latest_ts),
            "latest_value": _case(newer, ex.latest_value, t.c.latest_value),
        },
    ).returning(t.c.id, t.c.sensor_id)
    return {sid: pk for pk, sid in session.execute(stmt).all()}


_PG_UPSERT_SENSORS = text(
    """
    INSERT INTO sensors (site_id, sensor_id, reading_type, unit, physical_context, first_seen, latest_ts,
                         latest_value)
    SELECT :site_id, u.sensor_id, u.reading_type, u.unit, u.physical_context, :now, u.latest_ts,
           u.latest_value
    FROM unnest(CAST(:sensor_ids AS text[]), CAST(:types AS text[]), CAST(:units AS text[]),
                CAST(:contexts AS text[]), CAST(:ts AS timestamptz[]), CAST(:vals AS float8[]))
         AS u(sensor_id, reading_type, unit, physical_context, latest_ts, latest_value)
    ON CONFLICT (site_id, sensor_id) DO UPDATE SET
        reading_type = EXCLUDED.reading_type,
        unit = EXCLUDED.unit,
        physical_context = EXCLUDED.physical_context,
        latest_ts = GREATEST(sensors.latest_ts, EXCLUDED.latest_ts),
        latest_value = CASE WHEN EXCLUDED.latest_ts >= sensors.latest_ts
                            THEN EXCLUDED.latest_value ELSE sensors.latest_value END
    RETURNING id, sensor_id
    """
)


def _upsert_sensors_pg(
    session: Session, site_id: str, now: datetime, values: list[dict[str, Any]]
) -> dict[str, int]:
    """One statement of fixed shape (arrays, not N value tuples), so it is parsed and planned once."""
    params = {
        "site_id": site_id,
        "now": now,
        "sensor_ids": [v["sensor_id"] for v in values],
        "types": [v["reading_type"] for v in values],
        "units": [v["unit"] for v in values],
        "contexts": [v["physical_context"] for v in values],
        "ts": [v["latest_ts"] for v in values],
        "vals": [v["latest_value"] for v in values],
    }
    return {sid: pk for pk, sid in session.execute(_PG_UPSERT_SENSORS, params).all()}


def _case(cond: Any, a: Any, b: Any) -> Any:
    return case((cond, a), else_=b)


def _bulk_insert_readings(session: Session, rows: list[tuple[int, datetime, float]]) -> None:
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        with (
            dbapi.cursor() as cur,
            cur.copy("COPY readings (sensor_pk, ts, value) FROM STDIN (FORMAT BINARY)") as cp,
        ):
            cp.set_types(["int4", "timestamptz", "float8"])
            for row in rows:
                cp.write_row(row)
        return
    session.execute(readings.insert(), [{"sensor_pk": s, "ts": t, "value": v} for s, t, v in rows])


def _run_rules(
    session: Session, ctx: Ctx, site_id: str, rs: Sequence[ReadingIn], first: datetime, last: datetime
) -> None:
    windows: list[tuple[datetime, datetime]] = []
    if any(r.reading_type == ReadingType.DOOR for r in rs):
        windows = [
            (w.starts_at, w.ends_at)
            for w in session.scalars(
                select(MaintenanceWindow).where(
                    MaintenanceWindow.site_id == site_id,
                    MaintenanceWindow.starts_at <= last,
                    MaintenanceWindow.ends_at > first,
                )
            )
        ]
    rt = SiteRuleState.__table__
    lock = select(rt.c.state).where(rt.c.site_id == site_id).with_for_update()
    state = session.execute(lock).scalar_one_or_none()
    if state is None:
        stmt = (
            dialect_insert(session, rt)
            .values(site_id=site_id, state={"keys": {}}, updated_at=ctx.now)
            .on_conflict_do_nothing(index_elements=["site_id"])
        )
        session.execute(stmt)
        state = session.execute(lock).scalar_one()
    readings_ = [
        alarm_rules.Reading(
            r.sensor_id, r.reading_type.value, r.physical_context.value, r.ts, r.value, r.unit
        )
        for r in rs
    ]
    new_state, events = alarm_rules.evaluate(readings_, state, ctx.thresholds, windows)
    if new_state != state:
        session.execute(
            update(SiteRuleState)
            .where(SiteRuleState.site_id == site_id)
            .values(state=new_state, updated_at=ctx.now)
            .execution_options(synchronize_session=False)
        )
    if events:
        alarms.apply_rule_events(session, ctx, site_id, events)


# --- queries ---------------------------------------------------------------------------------


def sensors_of(session: Session, site_id: str) -> list[Sensor]:
    if session.get(Site, site_id) is None:
        raise not_found(f"site {site_id!r}")
    return list(session.scalars(select(Sensor).where(Sensor.site_id == site_id).order_by(Sensor.sensor_id)))


def bucket_expr(dialect: str, col: Any, size: int) -> Any:
    """Start (epoch seconds) of the `size`-second bucket holding `col`, computed exactly."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", col) / size) * size, BigInteger)
    e = cast(func.strftime("%s", col), BigInteger)  # integer seconds: no float rounding at bucket edges
    return e - e % size


def watermark(session: Session, bucket_s: int) -> int | None:
    st = session.get(RollupState, bucket_s)
    return st.watermark if st else None


def aggregate_raw(
    dialect: str, sensor_pks: Select[Any] | list[int], start: datetime, end: datetime, size: int
) -> Any:
    b = bucket_expr(dialect, readings.c.ts, size).label("bucket")
    q = (
        select(
            readings.c.sensor_pk,
            b,
            func.min(readings.c.value),
            func.max(readings.c.value),
            func.sum(cast(readings.c.value, Float)),
            func.count(),
        )
        .where(readings.c.ts >= start, readings.c.ts < end)
        .group_by(readings.c.sensor_pk, b)
    )
    if sensor_pks is not None:
        q = q.where(readings.c.sensor_pk.in_(sensor_pks))
    return q


def history(
    session: Session,
    site_id: str,
    sensor_id: str,
    start: datetime,
    end: datetime,
    resolution: str,
    limit: int,
    *,
    raw_retention: timedelta,
    now: datetime,
) -> tuple[str, list[HistoryPoint]]:
    sensor = session.scalars(
        select(Sensor).where(Sensor.site_id == site_id, Sensor.sensor_id == sensor_id)
    ).first()
    if sensor is None:
        raise not_found(f"sensor {sensor_id!r} at site {site_id!r}")
    if end <= start:
        raise ProblemError(422, "end must be after start")
    if resolution == "auto":
        span = end - start
        if span <= timedelta(hours=6) and start >= now - raw_retention:
            resolution = "raw"
        elif span <= timedelta(days=14):
            resolution = "5m"
        else:
            resolution = "1h"
    dialect = session.get_bind().dialect.name
    if resolution == "raw":
        rows = session.execute(
            select(readings.c.ts, readings.c.value)
            .where(readings.c.sensor_pk == sensor.id, readings.c.ts >= start, readings.c.ts < end)
            .order_by(readings.c.ts)
            .limit(limit)
        ).all()
        return "raw", [HistoryPoint(ts=ts, value=v, count=1) for ts, v in rows]
    size = 300 if resolution == "5m" else 3600
    s_epoch, e_epoch = int(start.timestamp()), int(end.timestamp())
    wm = watermark(session, size) or int(start.timestamp()) // size * size
    points: dict[int, HistoryPoint] = {}
    for r in session.scalars(
        select(Rollup)
        .where(
            Rollup.sensor_pk == sensor.id,
            Rollup.bucket_s == size,
            Rollup.bucket_start >= s_epoch // size * size,
            Rollup.bucket_start < min(e_epoch, wm),
        )
        .order_by(Rollup.bucket_start)
    ):
        points[r.bucket_start] = _point(r.bucket_start, r.min, r.max, r.sum, r.count)
    live_from = max(start, datetime.fromtimestamp(wm, tz=start.tzinfo))
    if live_from < end:
        for _pk, bucket, mn, mx, sm, cnt in session.execute(
            aggregate_raw(dialect, [sensor.id], live_from, end, size)
        ):
            points.setdefault(int(bucket), _point(int(bucket), mn, mx, sm, cnt))
    ordered = [points[k] for k in sorted(points)][:limit]
    return resolution, ordered


def _point(bucket: int, mn: float, mx: float, sm: float, cnt: int) -> HistoryPoint:
    return HistoryPoint(
        ts=datetime.fromtimestamp(bucket, tz=UTC),
        min=mn,
        max=mx,
        mean=sm / cnt if cnt else None,
        count=int(cnt),
    )
