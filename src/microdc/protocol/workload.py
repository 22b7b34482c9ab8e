"""What a workload runs: the spec both the control plane (stores, places, hands out) and the agent (runs)
read, and the per-workload state the agent reports back.

A spec names an OCI image (pinned by tag or digest) for the podman executor, or a command for the
process executor, plus limits, ports, a health check, a restart policy and the data volumes it writes.
Every volume carries the data class and jurisdiction of what it stores, so sovereignty covers stored
data: the control plane places the workload only at a site inside every volume's jurisdiction, and the
agent refuses to mount a volume its site's policy forbids.

`spec_hash` is the identity of a spec: the agent labels every container/process with it, so after its
own restart it adopts what already runs (same hash) and replaces what changed (other hash).
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", min_length=1, max_length=64)]
VolumeName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", min_length=1, max_length=63)]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=128)]
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0, le=86400)]
Arg = Annotated[str, Field(max_length=4096)]
#: name[:tag][@sha256:<64 hex>] — a tag or a digest must pin it (no implicit "latest")
IMAGE_PATTERN = (
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-f]{64})?$"
)
RESTART_POLICIES = ("always", "on-failure", "never")


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HttpCheck(Spec):
    kind: Literal["http"] = Field(description="an HTTP GET on 127.0.0.1")
    port: Port = Field(description="TCP port number to probe (dimensionless)")
    path: Annotated[str, Field(pattern=r"^/[^\s]*$", max_length=1024)] = Field(
        "/", description="request path"
    )
    expect_status: Annotated[int, Field(ge=100, le=599)] | None = Field(
        None,
        description="HTTP status code expected (dimensionless); default: any 2xx or 3xx answer is healthy",
    )


class TcpCheck(Spec):
    kind: Literal["tcp"] = Field(description="a TCP connect to 127.0.0.1")
    port: Port = Field(description="TCP port number to connect to (dimensionless)")


class CommandCheck(Spec):
    kind: Literal["command"] = Field(description="a command run inside the workload")
    command: list[Arg] = Field(min_length=1, max_length=64, description="exit 0 = healthy")


class HealthCheck(Spec):
    """Probed by the agent on 127.0.0.1 (host networking) or, for `command`, inside the workload."""

    probe: Annotated[HttpCheck | TcpCheck | CommandCheck, Field(discriminator="kind")] = Field(
        description="what to probe: http, tcp or command"
    )
    interval_s: Seconds = Field(5.0, description="seconds between probes")
    timeout_s: Seconds = Field(2.0, description="a probe slower than this many seconds fails")
    retries: Annotated[int, Field(ge=1, le=100)] = Field(
        3, description="count of consecutive failures → unhealthy"
    )
    start_period_s: Annotated[float, Field(ge=0, le=86400)] = Field(
        0.0, description="failures in this time after start do not count"
    )


class RestartPolicy(Spec):
    policy: Literal["always", "on-failure", "never"] = Field(
        "always", description="when to restart an exited copy"
    )
    backoff_initial_s: Seconds = Field(1.0, description="seconds to wait before the first restart")
    backoff_max_s: Seconds = Field(300.0, description="longest wait between restarts, in seconds")
    backoff_multiplier: Annotated[float, Field(ge=1.0, le=10.0)] = Field(
        2.0, description="ratio: each further restart waits this much longer"
    )
    reset_after_s: Seconds = Field(60.0, description="healthy this many seconds → the backoff starts over")

    def delay(self, failures: int) -> float:
        """Wait before restart number `failures` (1-based): initial × multiplier^(failures-1), capped."""
        if failures <= 0:
            return 0.0
        return float(
            min(self.backoff_max_s, self.backoff_initial_s * self.backoff_multiplier ** (failures - 1))
        )

    @model_validator(mode="after")
    def _bounds(self) -> RestartPolicy:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        return self


class Volume(Spec):
    """A data volume the workload writes; the data keeps its class and jurisdiction wherever it sits."""

    name: VolumeName = Field(description="volume name, unique in the spec")
    path: Annotated[str, Field(pattern=r"^/[^\s:]*$", max_length=1024, description="mount path inside")]
    data_class: Code = Field(description="class of the data it stores (a policies.data_classes key)")
    jurisdiction: Code = Field(description="the stored data must stay inside this jurisdiction")
    read_only: bool = Field(False, description="mount read-only")


class WorkloadRunSpec(Spec):
    """How to run a workload. Exactly one of `image` (podman) or `command` without image (process)."""

    image: Annotated[str, Field(pattern=IMAGE_PATTERN, max_length=512)] | None = Field(
        None, description="OCI image pinned by tag or digest, e.g. busybox:1.35 or x@sha256:…"
    )
    command: list[Arg] | None = Field(
        None, max_length=256, description="program and its arguments (with an image: the entrypoint)"
    )
    args: list[Arg] = Field(default_factory=list, max_length=256, description="more arguments")
    env: dict[EnvName, Annotated[str, Field(max_length=8192)]] = Field(
        default_factory=dict, max_length=256, description="environment variables"
    )
    cpus: Annotated[float, Field(gt=0, le=1024)] | None = Field(
        None, description="CPU limit (count of cores, fractions allowed)"
    )
    memory_mb: Annotated[int, Field(ge=4, le=16 * 1024 * 1024)] | None = Field(
        None, description="RAM limit: a count of MiB"
    )
    ports: list[Port] = Field(
        default_factory=list, max_length=64, description="host ports it listens on (host networking)"
    )
    health: HealthCheck | None = Field(None, description="how the agent tells it is healthy")
    restart: RestartPolicy = Field(default_factory=RestartPolicy, description="restarts and their backoff")
    volumes: list[Volume] = Field(
        default_factory=list,
        max_length=32,
        description="data volumes, each tagged with class and jurisdiction",
    )
    update: Literal["auto", "start-first", "stop-first"] = Field(
        "auto",
        description="replacing a changed spec: start-first keeps the old copy until the new one is healthy; "
        "auto does that unless old and new share a declared port (then stop-first)",
    )
    stop_timeout_s: Annotated[float, Field(ge=0, le=3600)] = Field(
        10.0, description="SIGTERM, then SIGKILL after this many seconds"
    )

    @model_validator(mode="after")
    def _runnable(self) -> WorkloadRunSpec:
        if self.image is None and not self.command:
            raise ValueError("a spec needs an image (podman) or a command (process executor)")
        if self.image is not None and ":" not in self.image.rsplit("/", 1)[-1] and "@" not in self.image:
            raise ValueError(
                f"image {self.image!r} must be pinned by a tag or a digest (name:tag or @sha256:…)"
            )
        names = [v.name for v in self.volumes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"volume names must be unique; repeated: {', '.join(dup)}")
        return self


def spec_hash(spec: WorkloadRunSpec) -> str:
    """Stable identity of a spec (16 hex digits of SHA-256 over its canonical JSON)."""
    canon = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode()).hexdigest()[:16]


def shares_port(old: WorkloadRunSpec, new: WorkloadRunSpec) -> bool:
    return bool(set(old.ports) & set(new.ports))


def start_first(old: WorkloadRunSpec | None, new: WorkloadRunSpec) -> bool:
    """Replace by starting the new copy before stopping the old one (no gap in service)?"""
    if new.update == "stop-first":
        return False
    if new.update == "start-first":
        return True
    return old is None or not shares_port(old, new)


# --- a workload as declared (API body, workloads.yaml, scenario `workloads:`) ----------------------------

WorkloadId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", min_length=1, max_length=128)]


class WorkloadIn(BaseModel):
    """One workload with its placement rules and run spec: the single format of `POST /api/v1/workloads`,
    a workloads.yaml and a scenario's `workloads:` section."""

    model_config = ConfigDict(extra="forbid")

    id: WorkloadId = Field(description="unique workload id")
    name: Annotated[str, Field(max_length=256)] = Field("", description="display name")
    data_class: Code = Field(description="class of the data it processes (a policies.data_classes key)")
    origin_jurisdiction: Code = Field(description="jurisdiction its data comes from")
    allowed_jurisdictions: list[Code] = Field(
        default_factory=list, max_length=64, description="where it may run; empty = origin only"
    )
    min_security_tier: Annotated[int, Field(ge=1, le=4)] = Field(
        1, description="lowest site security tier it may run at"
    )
    cores: Annotated[float, Field(gt=0, le=1e6)] = Field(
        description="CPU cores it needs (count, fractions allowed)"
    )
    spec: WorkloadRunSpec | None = Field(
        None, description="what to run (image or command, limits, health check, restart, volumes)"
    )


# --- what the agent reports --------------------------------------------------------------------------

RunState = Literal["pending", "starting", "running", "unhealthy", "backoff", "failed", "exited", "refused"]


class WorkloadStatus(Spec):
    """One workload as the agent sees it: real state, not what was asked for."""

    workload_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", max_length=128)]
    state: RunState
    spec_hash: Annotated[str, Field(max_length=64)] = ""
    restarts: Annotated[int, Field(ge=0)] = 0
    exit_code: int | None = None
    healthy: bool | None = Field(None, description="None: no health check, or not probed yet")
    message: Annotated[str, Field(max_length=1024)] = ""
    since: Annotated[str, Field(max_length=40)] = Field("", description="ISO 8601: when this state began")
