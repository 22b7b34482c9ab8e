"""SQLAlchemy tables of the control plane (the Alembic migrations create exactly these).

Readings are a Core table without a primary key: they are only ever bulk-inserted (COPY on PostgreSQL)
and range-scanned, and each carries the integer key of its sensor rather than repeating its metadata.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Site(Base):
    __tablename__ = "sites"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    jurisdiction: Mapped[str] = mapped_column(String(64))
    jurisdiction_ancestors: Mapped[list[str]] = mapped_column(JSON, default=list)
    security_tier: Mapped[int] = mapped_column(Integer)
    grid_power_kw: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default="active")
    liveness: Mapped[str] = mapped_column(String(16), default="unknown")
    liveness_since: Mapped[datetime] = mapped_column(default=utcnow)
    # why the site is in its liveness state, and the evidence that was weighed (shown on the dashboard)
    liveness_reason: Mapped[str] = mapped_column(String(512), default="")
    liveness_evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    trusted: Mapped[bool] = mapped_column(Boolean, default=True)
    trust_reason: Mapped[str | None] = mapped_column(String(512))
    last_heartbeat_at: Mapped[datetime | None] = mapped_column()
    last_heartbeat_seq: Mapped[int | None] = mapped_column(BigInteger)
    agent_version: Mapped[str | None] = mapped_column(String(64))
    desired_version: Mapped[int] = mapped_column(Integer, default=0)
    desired_acked_version: Mapped[int | None] = mapped_column(Integer)
    desired_acked_at: Mapped[datetime | None] = mapped_column()
    desired_ack_status: Mapped[str | None] = mapped_column(String(16))
    desired_ack_message: Mapped[str | None] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    @property
    def state(self) -> str:
        return "untrusted" if not self.trusted else self.liveness


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # user | site
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_by: Mapped[str | None] = mapped_column(String(128))


class EnrollmentToken(Base):
    __tablename__ = "enrollment_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    used_by_ip: Mapped[str | None] = mapped_column(String(64))


class Module(Base):
    __tablename__ = "modules"
    __table_args__ = (UniqueConstraint("site_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    enclosure: Mapped[str] = mapped_column(String(128), default="")
    rack_units: Mapped[int] = mapped_column(Integer)
    max_it_kw: Mapped[float] = mapped_column(Float)
    cooling_kind: Mapped[str] = mapped_column(String(32))


class Server(Base):
    __tablename__ = "servers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    module_id: Mapped[int] = mapped_column(ForeignKey("modules.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    server_type: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    cores: Mapped[int] = mapped_column(Integer)
    memory_gb: Mapped[float] = mapped_column(Float)
    idle_w: Mapped[float] = mapped_column(Float)
    peak_w: Mapped[float] = mapped_column(Float)


class PowerFeed(Base):
    __tablename__ = "power_feeds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    voltage_v: Mapped[float] = mapped_column(Float)
    amps_a: Mapped[float] = mapped_column(Float)
    phase: Mapped[int] = mapped_column(Integer)
    utilization: Mapped[float] = mapped_column(Float, default=0.8)


class MaintenanceWindow(Base):
    __tablename__ = "maintenance_windows"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    starts_at: Mapped[datetime] = mapped_column()
    ends_at: Mapped[datetime] = mapped_column()
    reason: Mapped[str] = mapped_column(String(512), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sensor(Base):
    __tablename__ = "sensors"
    __table_args__ = (UniqueConstraint("site_id", "sensor_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    sensor_id: Mapped[str] = mapped_column(String(128))
    reading_type: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(16))
    physical_context: Mapped[str] = mapped_column(String(32))
    first_seen: Mapped[datetime] = mapped_column()
    latest_ts: Mapped[datetime] = mapped_column()
    latest_value: Mapped[float] = mapped_column(Float)


# No foreign key to sensors: checking it costs PostgreSQL more than the COPY itself (measured ~1 ms of
# ~1.8 ms per 200-reading batch). Readings are removed explicitly with their site (inventory.delete_site).
readings = Table(
    "readings",
    Base.metadata,
    Column("sensor_pk", Integer, nullable=False),
    Column("ts", UTCDateTime(), nullable=False),
    Column("value", Float, nullable=False),
    Index("ix_readings_sensor_ts", "sensor_pk", "ts"),
    Index("ix_readings_ts", "ts", postgresql_using="brin"),
)


class TelemetryBatch(Base):
    __tablename__ = "telemetry_batches"
    __table_args__ = (UniqueConstraint("site_id", "batch_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(index=True)
    reading_count: Mapped[int] = mapped_column(Integer)
    first_ts: Mapped[datetime | None] = mapped_column()
    last_ts: Mapped[datetime | None] = mapped_column()
    # SHA-256 of the batch's content (seq and readings), so a reused batch_id with other data is a 409
    content_sha256: Mapped[str | None] = mapped_column(String(64))


class Rollup(Base):
    __tablename__ = "rollups"
    sensor_pk: Mapped[int] = mapped_column(ForeignKey("sensors.id", ondelete="CASCADE"), primary_key=True)
    bucket_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    bucket_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    sum: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(BigInteger)


class RollupState(Base):
    __tablename__ = "rollup_state"
    bucket_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    watermark: Mapped[int] = mapped_column(BigInteger)  # epoch seconds: buckets before it are final
    batch_mark: Mapped[datetime | None] = mapped_column()  # batches received before it were seen


class SiteRuleState(Base):
    __tablename__ = "site_rule_state"
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alarm(Base):
    __tablename__ = "alarms"
    __table_args__ = (Index("ix_alarms_site_state", "site_id", "state"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    sensor_id: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(16), default="raised")
    source: Mapped[str] = mapped_column(String(16), default="rules")
    message: Mapped[str] = mapped_column(String(1024), default="")
    value: Mapped[float | None] = mapped_column(Float)
    break_in: Mapped[bool] = mapped_column(Boolean, default=False)
    raised_at: Mapped[datetime] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    cleared_at: Mapped[datetime | None] = mapped_column()
    cleared_by: Mapped[str | None] = mapped_column(String(128))


class AgentAlarmEvent(Base):
    __tablename__ = "agent_alarm_events"
    __table_args__ = (UniqueConstraint("site_id", "event_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    alarm_id: Mapped[int | None] = mapped_column(ForeignKey("alarms.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProbeReport(Base):
    __tablename__ = "probe_reports"
    __table_args__ = (Index("ix_probe_reports_target_observed", "target_site_id", "observed_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    observer: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(8), default="peer")  # peer | uplink
    target_site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    reachable: Mapped[bool] = mapped_column(Boolean)
    path: Mapped[str] = mapped_column(String(256), default="")
    observed_at: Mapped[datetime] = mapped_column()
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class SiteStateEvent(Base):
    __tablename__ = "site_state_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(512))
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column()


class Workload(Base):
    __tablename__ = "workloads"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    data_class: Mapped[str] = mapped_column(String(64))
    origin_jurisdiction: Mapped[str] = mapped_column(String(64))
    allowed_jurisdictions: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_security_tier: Mapped[int] = mapped_column(Integer, default=1)
    cores: Mapped[float] = mapped_column(Float)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"), index=True)
    placement_state: Mapped[str] = mapped_column(String(16), default="pending")
    placement_reason: Mapped[str] = mapped_column(String(512), default="")
    placed_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # what to run (microdc.protocol.workload.WorkloadRunSpec as JSON); NULL: a planning-only workload
    spec: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    spec_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class WorkloadRunStatus(Base):
    """What a site's agent last reported of a workload it was told to run (replaced by each report)."""

    __tablename__ = "workload_status"
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    workload_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    spec_hash: Mapped[str] = mapped_column(String(64), default="")
    restarts: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    healthy: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    message: Mapped[str] = mapped_column(String(1024), default="")
    since: Mapped[str] = mapped_column(String(40), default="")
    desired_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    observed_at: Mapped[datetime] = mapped_column()
    reported_at: Mapped[datetime] = mapped_column()


class AuditEntry(Base):
    __tablename__ = "audit_log"
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))  # ISO 8601 UTC text: hashed exactly as stored
    actor: Mapped[str] = mapped_column(String(160))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256), default="")
    outcome: Mapped[str] = mapped_column(String(16))
    client_ip: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON text
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # id of the audit key whose HMAC made `hash`; NULL only for entries written before keying
    key_id: Mapped[str | None] = mapped_column(String(32), nullable=True, default=None)


class AuditHead(Base):
    """Single row (id=1): the chain head. Appends lock it (FOR UPDATE) so the chain never forks."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))


class ControlPlaneWatch(Base):
    """Single row (id=1): the control plane's own liveness, so a gap in it (it was not running, or its
    periodic watch stalled) is known and sites are not judged on heartbeats it could not receive."""

    __tablename__ = "control_plane_watch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    started_at: Mapped[datetime] = mapped_column()  # the latest process start
    last_tick_at: Mapped[datetime] = mapped_column()  # the latest process start or periodic tick
    watching_since: Mapped[datetime] = mapped_column()  # end of the latest gap: judged from here on
    last_gap_from: Mapped[datetime | None] = mapped_column()
    last_gap_to: Mapped[datetime | None] = mapped_column()
    gaps: Mapped[int] = mapped_column(Integer, default=0)
