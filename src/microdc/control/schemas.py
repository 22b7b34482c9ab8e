"""Pydantic request/response models of the HTTP API (inputs forbid unknown fields)."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from microdc.control.security import MIN_PASSWORD_LENGTH, Role, password_problem
from microdc.protocol.wire import (  # noqa: F401
    AgentAlarmEventIn,
    AuditCheckpointOut,
    Code,
    DesiredAckIn,
    DesiredAckOut,
    DesiredStateOut,
    DesiredWorkload,
    EnrollIn,
    Finite,
    HeartbeatIn,
    HeartbeatOut,
    Id,
    In,
    Name,
    Out,
    ProbeIn,
    ReadingIn,
    SiteCredentialOut,
    SiteState,
    TelemetryAck,
    TelemetryBatchIn,
    Text,
    WorkloadStatusReportIn,
    WorkloadStatusReportOut,
)

# the wire schemas are part of the API: re-exported so API code imports its models from one place
from microdc.protocol.workload import WorkloadIn, WorkloadRunSpec  # noqa: F401


class CoolingKind(StrEnum):
    FREE_AIR = "free_air"
    DX = "dx"
    CHILLED_WATER = "chilled_water"
    LIQUID = "liquid"


class SiteStatus(StrEnum):
    PLANNED = "planned"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    DECOMMISSIONED = "decommissioned"




# --- health / auth ---------------------------------------------------------------------------


class HealthOut(Out):
    status: Literal["ok", "degraded"]
    database: Literal["ok", "unreachable"]
    version: str


class LoginIn(In):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class IssuedToken(Out):
    """A secret shown exactly once: store it now, it cannot be retrieved again."""

    token: str
    token_id: int
    kind: Literal["user", "site"]
    expires_at: datetime | None


class WhoAmI(Out):
    kind: Literal["user", "site"]
    name: str
    role: Role | None
    site_id: str | None
    token_id: int


# --- users and tokens ------------------------------------------------------------------------


def _strong(password: str) -> str:
    problem = password_problem(password)
    if problem:
        raise ValueError(problem)
    return password


Password = Annotated[
    str,
    Field(
        max_length=1024,
        json_schema_extra={"minLength": MIN_PASSWORD_LENGTH},
        description=f"{MIN_PASSWORD_LENGTH}+ characters, not a common password (rule password-strength)",
    ),
    AfterValidator(_strong),
]


class UserIn(In):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]*$", max_length=64)]
    role: Role
    password: Password | None = None

    @model_validator(mode="after")
    def _not_the_name(self) -> UserIn:
        problem = password_problem(self.password, user_name=self.name) if self.password else None
        if problem:
            raise ValueError(problem)
        return self


class UserPatch(In):
    role: Role | None = None
    disabled: bool | None = None
    password: Password | None = None


class UserOut(Out):
    id: int
    name: str
    role: Role
    disabled: bool
    created_at: datetime
    has_password: bool


class TokenCreateIn(In):
    description: Name = ""
    ttl_s: Annotated[int, Field(gt=0, le=10 * 365 * 86400)] | None = Field(
        default=None, description="lifetime in seconds; omit for a token that never expires"
    )


class TokenInfo(Out):
    id: int
    kind: Literal["user", "site"]
    user_id: int | None
    site_id: str | None
    description: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


# --- inventory -------------------------------------------------------------------------------


class ServerIn(In):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    server_type: Annotated[str, Field(min_length=1, max_length=128)]
    quantity: Annotated[int, Field(ge=1, le=10000)] = 1
    cores: Annotated[int, Field(gt=0, le=100000)]
    memory_gb: Annotated[float, Field(gt=0, le=1e7)]
    idle_w: Annotated[float, Field(ge=0, le=1e6)]
    peak_w: Annotated[float, Field(gt=0, le=1e6)]

    @model_validator(mode="after")
    def _idle_below_peak(self) -> ServerIn:
        if self.idle_w > self.peak_w:
            raise ValueError("idle_w must not exceed peak_w")
        return self


class ServerPatch(In):
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    server_type: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    quantity: Annotated[int, Field(ge=1, le=10000)] | None = None
    cores: Annotated[int, Field(gt=0, le=100000)] | None = None
    memory_gb: Annotated[float, Field(gt=0, le=1e7)] | None = None
    idle_w: Annotated[float, Field(ge=0, le=1e6)] | None = None
    peak_w: Annotated[float, Field(gt=0, le=1e6)] | None = None


class ServerOut(Out):
    id: int
    module_id: int
    name: str
    server_type: str
    quantity: int
    cores: int
    memory_gb: float
    idle_w: float
    peak_w: float


class ModuleIn(In):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    enclosure: Annotated[str, Field(max_length=128)] = ""
    rack_units: Annotated[int, Field(gt=0, le=400)]
    max_it_kw: Annotated[float, Field(gt=0, le=1e5)]
    cooling_kind: CoolingKind
    servers: list[ServerIn] = Field(default_factory=list, max_length=1000)


class ModulePatch(In):
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    enclosure: Annotated[str, Field(max_length=128)] | None = None
    rack_units: Annotated[int, Field(gt=0, le=400)] | None = None
    max_it_kw: Annotated[float, Field(gt=0, le=1e5)] | None = None
    cooling_kind: CoolingKind | None = None


class ModuleOut(Out):
    id: int
    site_id: str
    name: str
    enclosure: str
    rack_units: int
    max_it_kw: float
    cooling_kind: CoolingKind


class PowerFeedIn(In):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    voltage_v: Annotated[float, Field(gt=0, le=100000)]
    amps_a: Annotated[float, Field(gt=0, le=100000)]
    phase: Literal[1, 3]
    utilization: Annotated[float, Field(gt=0, le=1)] = 0.8


class PowerFeedPatch(In):
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    voltage_v: Annotated[float, Field(gt=0, le=100000)] | None = None
    amps_a: Annotated[float, Field(gt=0, le=100000)] | None = None
    phase: Literal[1, 3] | None = None
    utilization: Annotated[float, Field(gt=0, le=1)] | None = None


def feed_power_kw(voltage_v: float, amps_a: float, phase: int, utilization: float) -> float:
    """Usable power of a feed: V × A × utilization (× √3 for three-phase, V line-to-line), in kW."""
    return voltage_v * amps_a * utilization * (math.sqrt(3) if phase == 3 else 1.0) / 1000.0


class PowerFeedOut(Out):
    id: int
    site_id: str
    name: str
    voltage_v: float
    amps_a: float
    phase: int
    utilization: float
    power_kw: float = Field(description="V × A × utilization (× √3 if three-phase) / 1000")


class SiteIn(In):
    """A site for `POST /api/v1/sites` and for `import_sites()` (modules and feeds optional).

    ``jurisdiction`` is the legal area code (e.g. ``DE``); ``jurisdiction_ancestors`` lists the areas
    that contain it, nearest first (e.g. ``["EU"]``), so sovereignty rules naming ``EU`` match it.
    """

    id: Id
    name: Name = ""
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    jurisdiction: Code
    jurisdiction_ancestors: list[Code] = Field(default_factory=list, max_length=16)
    security_tier: Annotated[int, Field(ge=1, le=4, description="1 (street cabinet) to 4 (vault)")]
    grid_power_kw: Annotated[float, Field(gt=0, le=1e6, description="grid connection cap, kW")]
    status: SiteStatus = SiteStatus.ACTIVE
    modules: list[ModuleIn] = Field(default_factory=list, max_length=100)
    power_feeds: list[PowerFeedIn] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _unique_modules_and_acyclic_chain(self) -> SiteIn:
        names = [m.name for m in self.modules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"modules: duplicate module name(s) {', '.join(map(repr, dup))} in one site")
        chain = (self.jurisdiction, *self.jurisdiction_ancestors)
        if len(set(chain)) != len(chain):
            raise ValueError(f"jurisdiction-tree: {' ⊂ '.join(chain)} names a jurisdiction twice (a cycle)")
        return self


class SitePatch(In):
    name: Name | None = None
    lat: Annotated[float, Field(ge=-90, le=90)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180)] | None = None
    jurisdiction: Code | None = None
    jurisdiction_ancestors: list[Code] | None = Field(default=None, max_length=16)
    security_tier: Annotated[int, Field(ge=1, le=4)] | None = None
    grid_power_kw: Annotated[float, Field(gt=0, le=1e6)] | None = None
    status: SiteStatus | None = None


class SiteOut(Out):
    id: str
    name: str
    lat: float
    lon: float
    jurisdiction: str
    jurisdiction_ancestors: list[str]
    security_tier: int
    grid_power_kw: float
    status: SiteStatus
    state: SiteState
    liveness: str
    liveness_since: datetime
    liveness_reason: str = ""
    liveness_evidence: dict[str, Any] = Field(default_factory=dict)
    trusted: bool
    trust_reason: str | None
    last_heartbeat_at: datetime | None
    agent_version: str | None
    desired_version: int
    desired_acked_version: int | None
    capacity_cores: float = 0.0
    max_it_kw: float = 0.0
    power_feed_kw: float = 0.0


class TrustIn(In):
    trusted: bool
    reason: Annotated[str, Field(min_length=1, max_length=512)]


class ImportFieldChange(Out):
    field: str
    old: Any = None
    new: Any = None


class ImportSiteChange(Out):
    site_id: str
    action: Literal["added", "updated", "unchanged"]
    changes: list[ImportFieldChange] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class ImportResult(Out):
    created: list[str]
    updated: list[str]
    unchanged: list[str] = Field(default_factory=list)
    dry_run: bool = False
    sites: list[ImportSiteChange] = Field(default_factory=list)

    @classmethod
    def from_report(cls, report: Any, *, dry_run: bool) -> ImportResult:
        """From a `site_import.ImportReport` (duck-typed: schemas sit below the data layer)."""
        return cls(
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            dry_run=dry_run,
            sites=[
                ImportSiteChange(
                    site_id=c.site_id,
                    action=c.action,
                    changes=[ImportFieldChange(field=f.field, old=f.old, new=f.new) for f in c.changes],
                    notes=list(c.notes),
                )
                for c in report.sites
            ],
        )


# --- enrollment ------------------------------------------------------------------------------


class EnrollmentTokenOut(Out):
    """Give this one-time token to the site's installer; it expires at ``expires_at``."""

    token: str
    site_id: str
    expires_at: datetime






# --- telemetry -------------------------------------------------------------------------------












class SensorOut(Out):
    sensor_id: str
    reading_type: str
    unit: str
    physical_context: str
    first_seen: datetime
    latest_ts: datetime
    latest_value: float


class HistoryPoint(Out):
    ts: datetime
    value: float | None = Field(default=None, description="raw value (resolution=raw)")
    min: float | None = None
    mean: float | None = None
    max: float | None = None
    count: int = 1


class HistoryOut(Out):
    site_id: str
    sensor_id: str
    resolution: Literal["raw", "5m", "1h"]
    start: datetime
    end: datetime
    points: list[HistoryPoint]




class ProbeOut(Out):
    id: int
    observer: str
    target_site_id: str
    reachable: bool
    kind: str = "peer"
    path: str
    observed_at: datetime
    site_state: SiteState


class SiteStateEventOut(Out):
    id: int
    site_id: str
    from_state: str
    to_state: str
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)
    at: datetime


# --- alarms and maintenance ------------------------------------------------------------------


class AlarmState(StrEnum):
    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class AlarmOut(Out):
    id: int
    site_id: str
    kind: str
    severity: Literal["warning", "critical"]
    sensor_id: str | None
    state: AlarmState
    source: str
    message: str
    value: float | None
    break_in: bool
    raised_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    cleared_by: str | None


class AlarmNoteIn(In):
    note: Annotated[str, Field(max_length=1024)] = ""


class BreakInIn(In):
    break_in: bool = True
    note: Annotated[str, Field(max_length=1024)] = ""




class MaintenanceWindowIn(In):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: Annotated[str, Field(max_length=512)] = ""

    @model_validator(mode="after")
    def _ordered(self) -> MaintenanceWindowIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class MaintenanceWindowOut(Out):
    id: int
    site_id: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime


# --- workloads, placements, desired state ----------------------------------------------------


class WorkloadPatch(In):
    name: Name | None = None
    data_class: Code | None = None
    allowed_jurisdictions: list[Code] | None = Field(default=None, max_length=64)
    min_security_tier: Annotated[int, Field(ge=1, le=4)] | None = None
    cores: Annotated[float, Field(gt=0, le=1e6)] | None = None
    spec: WorkloadRunSpec | None = Field(None, description="a new spec: the site replaces the running copy")


class WorkloadOut(Out):
    id: str
    name: str
    data_class: str
    origin_jurisdiction: str
    allowed_jurisdictions: list[str]
    min_security_tier: int
    cores: float
    site_id: str | None
    placement_state: str
    placement_reason: str
    placed_at: datetime | None
    spec: WorkloadRunSpec | None = None
    spec_hash: str | None = None


class WorkloadRunStatusOut(Out):
    site_id: str
    workload_id: str
    state: str
    spec_hash: str
    restarts: int
    exit_code: int | None
    healthy: bool | None
    message: str
    since: str
    desired_version: int | None
    observed_at: datetime
    reported_at: datetime


class PlacementChange(Out):
    workload_id: str
    from_site: str | None
    to_site: str | None
    state: str
    reason: str


class RecomputeOut(Out):
    changes: list[PlacementChange]










# --- audit and admin -------------------------------------------------------------------------


class AuditEntryOut(Out):
    seq: int
    ts: str
    actor: str
    action: str
    target: str
    outcome: str
    client_ip: str
    details: str
    prev_hash: str
    hash: str


class AuditVerifyOut(Out):
    ok: bool
    checked: int
    first_bad_seq: int | None
    reason: str


class CheckpointPublishedOut(Out):
    checkpoint: AuditCheckpointOut
    path: str | None = Field(description="file written, or null when no audit_checkpoint_dir is set")


class MaintenanceRunOut(Out):
    transitions: list[str]
    rollup_5m_buckets: int
    rollup_1h_buckets: int
    deleted_raw: int
    deleted_rollups: int
    deleted_batches: int
