"""Desired state: run the workloads the control plane assigns to this site, through a pluggable executor.

* The desired state (``GET /api/v1/sites/{id}/desired-state``, with ``If-None-Match``) is stored in the
  agent's SQLite file before it is applied, then acknowledged (``POST …/desired-state/ack`` with
  ``applied`` or ``failed``). A version whose ack did not get through is acked again later.
* On start the agent re-applies the **last stored** desired state without asking anyone: with the uplink
  down it keeps running exactly what it ran. Only a newer desired state from the control plane ever
  stops a workload — never a timeout, an unreachable server or a refused credential.
* Workloads in state ``assigned`` or ``held`` run; anything else (the server lists no others today)
  does not.

An executor implements `Executor`: ``start(workload)``, ``stop(workload_id)``, ``running()``. The
default `RecordingExecutor` records what runs in the state file (``workloads`` table) and starts nothing
— a stand-in for a container runtime or a VM manager.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from microdc.agent.state import State
from microdc.agent.uplink import Uplink, UplinkError

log = logging.getLogger("microdc.agent.reconcile")
RUN_STATES = ("assigned", "held")


class Executor(Protocol):
    def start(self, workload: dict[str, Any]) -> None: ...

    def stop(self, workload_id: str) -> None: ...

    def running(self) -> dict[str, dict[str, Any]]: ...


class RecordingExecutor:
    """Records what should run (durably); runs nothing."""

    def __init__(self, state: State):
        self.state = state

    def start(self, workload: dict[str, Any]) -> None:
        self.state.set_running(str(workload["id"]), workload)

    def stop(self, workload_id: str) -> None:
        self.state.set_running(workload_id, None)

    def running(self) -> dict[str, dict[str, Any]]:
        return self.state.running()


class Reconciler:
    def __init__(self, state: State, executor: Executor, site_id: str):
        self.state = state
        self.executor = executor
        self.site_id = site_id

    @property
    def version(self) -> int | None:
        d = self.state.get("desired")
        return int(d["version"]) if d else None

    def apply_local(self) -> tuple[bool, str]:
        """Apply the stored desired state (no network): used at start and after every fetch."""
        desired = self.state.get("desired")
        if desired is None:
            return True, "no desired state yet"
        want = {str(w["id"]): w for w in desired.get("workloads", []) if w.get("state") in RUN_STATES}
        have = self.executor.running()
        errors: list[str] = []
        for wid, w in want.items():
            if have.get(wid) != w:
                try:
                    self.executor.start(w)
                except Exception as e:
                    errors.append(f"start {wid}: {e}")
        for wid in set(have) - set(want):
            try:
                self.executor.stop(wid)
            except Exception as e:
                errors.append(f"stop {wid}: {e}")
        if errors:
            log.warning("desired state v%s: %s", desired.get("version"), "; ".join(errors))
            return False, "; ".join(errors)[:1024]
        return True, f"running {len(want)} workload(s)"

    async def sync(self, uplink: Uplink) -> bool:
        """Fetch (conditional GET), store, apply and ack. Returns True if a new version was applied.

        Raises UplinkError when the control plane cannot be reached; the local state is untouched then.
        """
        etag = self.state.get("desired_etag")
        status, body, new_etag = await uplink.get_desired(
            self.site_id, etag if self.state.get("desired") else None
        )
        changed = False
        if status != 304 and body is not None and body != self.state.get("desired"):
            with self.state.tx() as conn:
                self.state.set("desired", body, conn)
                self.state.set("desired_etag", new_etag, conn)
                self.state.audit("desired.received", {"version": body.get("version")}, conn)
            changed = True
        if changed or self.state.get("desired_applied") != self.version:
            ok, msg = self.apply_local()
            version = self.version
            if version is not None:
                self.state.set("desired_applied", version)
                ack = {"version": version, "status": "applied" if ok else "failed", "message": msg}
                self.state.set("desired_ack_pending", ack)
                self.state.audit("desired.applied", {"version": version, "ok": ok, "message": msg})
        await self.flush_ack(uplink)
        return changed

    async def flush_ack(self, uplink: Uplink) -> None:
        pending = self.state.get("desired_ack_pending")
        if not pending:
            return
        try:
            await uplink.ack_desired(self.site_id, pending["version"], pending["status"], pending["message"])
        except UplinkError as e:
            if e.kind != "rejected":
                raise
            log.warning("desired-state ack refused: %s", e)  # e.g. 409 for a version the server forgot
        self.state.delete("desired_ack_pending")
