"""Desired state: fetch it, keep it, hand it to the supervisor, acknowledge it.

* The desired state (``GET /api/v1/sites/{id}/desired-state``, with ``If-None-Match``) is stored in the
  agent's SQLite file before it is applied, then acknowledged (``POST …/desired-state/ack`` with
  ``applied`` or ``failed``). A version whose ack did not get through is acked again later.
* On start the agent re-applies the **last stored** desired state without asking anyone: with the uplink
  down it keeps running exactly what it ran, indefinitely. Only a newer desired state from the control
  plane ever stops a workload — never a timeout, an unreachable server or a refused credential.
* Workloads in state ``assigned`` or ``held`` run; anything else (the server lists no others today)
  does not.

"Applied" means every workload was handed to the `Supervisor` (agent/supervisor.py), which runs them
through the configured executor; a workload whose spec this site refuses — a volume its policy forbids,
an image on a host without a container engine — makes the ack ``failed``, naming it. What actually runs
(running, starting, unhealthy, failed with exit code, restarts) is reported separately.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from microdc.agent.state import State
from microdc.agent.supervisor import Supervisor, Want
from microdc.agent.uplink import Uplink, UplinkError
from microdc.protocol.workload import Volume, WorkloadRunSpec, spec_hash

log = logging.getLogger("microdc.agent.reconcile")
RUN_STATES = ("assigned", "held")
NO_SPEC = "no run spec (image or command): nothing to run"

VolumeCheck = Callable[[Volume], str | None]
ExecutorCheck = Callable[[WorkloadRunSpec], str | None]


def want_of(w: dict[str, Any], volume_check: VolumeCheck, executor_check: ExecutorCheck) -> Want:
    """One desired workload → what the supervisor should do with it (refusals say why)."""
    wid = str(w["id"])
    raw = w.get("spec")
    if raw is None:
        return Want(wid, None, "", refused=NO_SPEC)
    try:
        spec = WorkloadRunSpec.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return Want(wid, None, "", refused=f"spec.{where}: {first['msg']}")
    h = spec_hash(spec)
    for v in spec.volumes:
        why = volume_check(v)
        if why:
            return Want(wid, spec, h, refused=f"{why} (volume {v.name!r})")
    why = executor_check(spec)
    if why:
        return Want(wid, spec, h, refused=why)
    return Want(wid, spec, h)


class Reconciler:
    def __init__(
        self,
        state: State,
        supervisor: Supervisor,
        site_id: str,
        *,
        volume_check: VolumeCheck,
        executor_check: ExecutorCheck,
    ):
        self.state = state
        self.supervisor = supervisor
        self.site_id = site_id
        self.volume_check = volume_check
        self.executor_check = executor_check

    @property
    def version(self) -> int | None:
        d = self.state.get("desired")
        return int(d["version"]) if d else None

    def apply_local(self) -> tuple[bool, str]:
        """Hand the stored desired state to the supervisor (no network): at start and after every fetch."""
        desired = self.state.get("desired")
        if desired is None:
            return True, "no desired state yet"
        wants = [
            want_of(w, self.volume_check, self.executor_check)
            for w in desired.get("workloads", [])
            if w.get("state") in RUN_STATES
        ]
        restarts = {wid: int(s.get("restarts", 0)) for wid, s in self.state.workload_status().items()}
        self.supervisor.set_desired(wants, restarts)
        errors = [f"{w.workload_id}: {w.refused}" for w in wants if w.refused and w.refused != NO_SPEC]
        if errors:
            log.warning("desired state v%s: %s", desired.get("version"), "; ".join(errors))
            return False, "; ".join(errors)[:1024]
        runnable = sum(1 for w in wants if not w.refused)
        return True, f"{runnable} workload(s) handed to the supervisor"

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
