"""The one small interface every executor implements, and the labels that make adoption safe.

An executor starts, lists, stops and removes *instances* (a container, a process group). It keeps no
memory of its own: everything it needs to find its instances again is in labels on them (site id,
workload id, spec hash), so an agent that restarts lists what already runs and adopts it instead of
starting a second copy. Restart policy, health and replacement live in `microdc.agent.supervisor`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from microdc.protocol.workload import WorkloadRunSpec

LABEL_SITE = "microdc.site"
LABEL_WORKLOAD = "microdc.workload"
LABEL_SPEC = "microdc.spec"


class ExecutorError(RuntimeError):
    """The executor could not do what was asked (message says what and why)."""


@dataclass(frozen=True)
class Instance:
    """One running (or exited) copy of a workload."""

    handle: str  # container id, or "pid:<pid>:<start ticks>"
    workload_id: str
    spec_hash: str
    running: bool
    exit_code: int | None  # None while running, or when the executor cannot know (adopted process)
    started_at: float  # epoch seconds


class Executor(Protocol):
    name: str

    def check(self, spec: WorkloadRunSpec) -> str | None:
        """Why this executor cannot run `spec` (None: it can)."""
        ...

    def start(
        self, workload_id: str, spec: WorkloadRunSpec, spec_hash: str, volumes: dict[str, str]
    ) -> Instance:
        """Start one copy; `volumes` maps volume name → host directory (already created)."""
        ...

    def instances(self) -> list[Instance]:
        """Every instance labelled with this executor's site id, running or exited."""
        ...

    def stop(self, inst: Instance, timeout_s: float) -> None:
        """Stop (SIGTERM, then SIGKILL after timeout_s) and remove the instance."""
        ...

    def remove(self, inst: Instance) -> None:
        """Forget an exited instance (its exit code has been read)."""
        ...

    def exec_check(self, inst: Instance, command: list[str], timeout_s: float) -> bool:
        """Run a health-check command in the instance's context; True if it exits 0 in time."""
        ...
