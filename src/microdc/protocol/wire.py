"""Wire schemas the site agent and the control plane exchange (pydantic; inputs forbid unknown fields).

Both sides import these exact models, so what the agent checks offline is what the server accepts. This
module must never import `microdc.control` or `microdc.agent` (tests/test_layers.py checks the graph).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from microdc.protocol.vocab import UNITS, PhysicalContext, ReadingType
from microdc.protocol.workload import WorkloadRunSpec, WorkloadStatus

Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", min_length=1, max_length=128)]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length=1, max_length=64)]
Name = Annotated[str, Field(max_length=256)]
Text = Annotated[str, Field(max_length=1024)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class SiteState(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    SUSPECT = "suspect"
    LINK_DOWN = "link_down"
    DOWN = "down"
    UNTRUSTED = "untrusted"


# --- enrollment ---

Csr = Annotated[
    str,
    Field(
        min_length=1,
        max_length=8192,
        description="PEM certificate signing request of the site's own key (the key never leaves the site)",
    ),
]


class EnrollIn(In):
    token: Annotated[str, Field(min_length=1, max_length=256)]
    agent_version: Annotated[str, Field(max_length=64)] | None = None
    csr: Csr | None = None


class RotateIn(In):
    csr: Csr | None = None


class SiteCredentialOut(Out):
    site_id: str
    token: str
    token_id: int
    expires_at: datetime
    renew_after: datetime = Field(description="rotate (POST /api/v1/site-credentials/rotate) after this")
    client_certificate: str | None = Field(
        None, description="PEM client certificate for the CSR sent (mutual TLS), signed by the fleet CA"
    )
    ca_certificate: str | None = Field(None, description="PEM certificate of the fleet CA that signed it")


# --- telemetry, heartbeats, probes, alarms ---


class ReadingIn(In):
    sensor_id: Annotated[str, Field(min_length=1, max_length=128)]
    reading_type: ReadingType
    unit: Annotated[str, Field(max_length=16, description="UCUM: Cel, %, W, kW, kW.h, V, A, Hz, min, 1")]
    physical_context: PhysicalContext
    ts: AwareDatetime
    value: Finite

    @model_validator(mode="after")
    def _unit_matches(self) -> ReadingIn:
        if self.unit not in UNITS[self.reading_type]:
            allowed = ", ".join(sorted(UNITS[self.reading_type]))
            raise ValueError(f"unit {self.unit!r} is not valid for {self.reading_type.value} (use {allowed})")
        return self


class TelemetryBatchIn(In):
    batch_id: Annotated[
        str, Field(pattern=r"^[A-Za-z0-9_.:-]+$", min_length=1, max_length=64, description="client-generated")
    ]
    seq: Annotated[int, Field(ge=0, le=2**62, description="per-site batch sequence number")]
    readings: list[ReadingIn] = Field(min_length=1, max_length=5000)


class TelemetryAck(Out):
    site_id: str
    batch_id: str
    seq: int
    accepted: int = Field(description="readings stored by this batch (the original count on a retry)")
    duplicate: bool = Field(description="true when this batch id was already stored: nothing new written")
    received_at: datetime


class HeartbeatIn(In):
    seq: Annotated[int, Field(ge=0, le=2**62)] | None = None
    sent_at: AwareDatetime | None = None
    agent_version: Annotated[str, Field(max_length=64)] | None = None
    buffered_batches: Annotated[int, Field(ge=0, le=10**9)] = 0


class AuditCheckpointOut(Out):
    """A signed audit checkpoint (control/checkpoints.py): the agent keeps the latest it saw, off the
    control plane's database, as evidence against truncation, rewrite or wipe of the audit log."""

    format: Literal["microdc-audit-checkpoint/1"] = "microdc-audit-checkpoint/1"
    seq: Annotated[int, Field(ge=0)]
    head_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    time: Annotated[str, Field(max_length=40)]
    key_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]
    signature: Annotated[str, Field(max_length=128, description="base64 Ed25519 signature")]


class HeartbeatOut(Out):
    site_id: str
    state: SiteState
    desired_version: int
    heartbeat_interval_s: float
    server_time: datetime
    audit_checkpoint: AuditCheckpointOut | None = Field(
        default=None, description="the audit chain's latest signed checkpoint (keep it: see docs/security.md)"
    )


class ProbeIn(In):
    target_site_id: Id
    reachable: bool
    kind: Literal["peer", "uplink"] = Field(
        default="peer",
        description="peer: could the observer reach the site by another path; uplink: is the site's uplink "
        "up as the network sees it (e.g. the carrier's or upstream router's link state)",
    )
    path: Annotated[str, Field(max_length=256)] = ""
    observed_at: AwareDatetime | None = None
    observer: Annotated[str, Field(max_length=128)] | None = Field(
        default=None, description="ignored for site credentials (the observer is the calling site)"
    )


class AgentAlarmEventIn(In):
    """An alarm event the agent evaluated locally (e.g. while its link was down)."""

    event_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]+$", min_length=1, max_length=64)]
    action: Literal["raise", "clear"]
    kind: Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=32)]
    severity: Literal["warning", "critical"] = "warning"
    sensor_id: Annotated[str, Field(max_length=128)] | None = None
    ts: AwareDatetime
    message: Text = ""
    value: Finite | None = None
    break_in: bool = False


# --- desired state ---


class DesiredWorkload(Out):
    id: str
    name: str
    data_class: str
    cores: float
    state: str
    spec: WorkloadRunSpec | None = Field(None, description="what to run; None: a planning-only workload")
    spec_hash: str | None = None


class DesiredStateOut(Out):
    site_id: str
    version: int
    etag: str
    state: SiteState
    workloads: list[DesiredWorkload]


class DesiredAckIn(In):
    version: Annotated[int, Field(ge=0)]
    status: Literal["applied", "failed"]
    message: Annotated[str, Field(max_length=1024)] = ""


class DesiredAckOut(Out):
    site_id: str
    acked_version: int
    current_version: int
    status: str
    up_to_date: bool


# --- workload status (agent → control plane) ---

class WorkloadStatusReportIn(In):
    """The agent's view of every desired workload: real state, restarts, exit codes, health."""

    desired_version: Annotated[int, Field(ge=0)] | None = None
    observed_at: AwareDatetime
    workloads: list[WorkloadStatus] = Field(max_length=10000)


class WorkloadStatusReportOut(Out):
    site_id: str
    stored: int
    received_at: datetime
