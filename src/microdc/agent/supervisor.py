"""The supervisor: make what runs at the site match the desired workloads, and say truthfully how it runs.

One `step` (called every ``intervals.supervise_s`` from a worker thread) lists the executor's instances
by label and, per desired workload:

* **adopts** a running instance whose spec hash matches (after an agent restart: never a second copy;
  if two run, the older is kept and the other stopped);
* **starts** it when nothing runs; a dead instance is restarted after exponential backoff
  (``restart.backoff_initial_s × multiplier^(n-1)``, capped; reset after ``reset_after_s`` healthy),
  unless its restart policy says otherwise (``never``; ``on-failure`` and exit code 0);
* **probes** its health check: failures inside ``start_period_s`` do not count, ``retries``
  consecutive failures make it ``unhealthy``, and an unhealthy instance is restarted like a dead one;
* **replaces** a changed spec: start-first (the old copy keeps serving until the new one is healthy,
  then it is stopped — no gap) unless old and new declare the same host port, which two copies
  cannot share under host networking; then stop-first (documented in docs/agent.md);

and stops every instance whose workload is no longer desired. Pure bookkeeping apart from the executor
and the probes it is given, so it is tested with a fake clock against the real process executor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from microdc.agent.executors.base import Executor, ExecutorError, Instance
from microdc.protocol.workload import RunState, WorkloadRunSpec, WorkloadStatus, start_first

log = logging.getLogger("microdc.agent.supervisor")
Probe = Callable[[WorkloadRunSpec, Instance], bool]


@dataclass(frozen=True)
class Want:
    workload_id: str
    spec: WorkloadRunSpec | None
    spec_hash: str
    refused: str = ""  # why it must not run here (policy, executor); reported as state "refused"


@dataclass
class Slot:
    """What the supervisor knows of one workload (in memory; restarts are persisted by the agent)."""

    want: Want
    state: RunState = "pending"
    message: str = ""
    since: float = 0.0
    restarts: int = 0
    failures: int = 0  # deaths since the backoff last reset
    exit_code: int | None = None
    next_start_at: float = 0.0
    done: bool = False  # ended for good under its restart policy (until the spec changes)
    live: str | None = None  # handle of the current instance
    counted: set[str] = field(default_factory=set)  # handles whose death was already counted
    started_at: float = 0.0  # supervisor clock, current instance
    last_probe_at: float | None = None
    fails_in_row: int = 0
    healthy: bool | None = None
    healthy_since: float | None = None
    old_spec: WorkloadRunSpec | None = None  # spec being replaced (to decide start-first)
    old_healthy: bool | None = None


class Supervisor:
    def __init__(
        self,
        executor: Executor,
        volumes_dir: Path,
        *,
        probe: Probe,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ):
        self.executor = executor
        self.volumes_dir = volumes_dir
        self.probe = probe
        self.clock = clock
        self.wall = wall
        self.slots: dict[str, Slot] = {}
        self._lock = threading.Lock()
        self._step_lock = threading.Lock()
        self.ready = False  # no desired state known yet: touch nothing (never stop what may be wanted)
        self._probed: dict[str, bool] = {}

    # --- desired -------------------------------------------------------------------------------------

    def set_desired(self, wants: list[Want], restarts: dict[str, int] | None = None) -> None:
        """Replace the desired set (thread-safe; takes effect at the next step)."""
        with self._lock:
            new: dict[str, Slot] = {}
            for w in wants:
                slot = self.slots.get(w.workload_id)
                if slot is None:
                    slot = Slot(w, restarts=(restarts or {}).get(w.workload_id, 0), since=self.wall())
                elif slot.want.spec_hash != w.spec_hash or slot.want.refused != w.refused:
                    slot.old_spec = slot.want.spec if slot.live else None
                    slot.old_healthy = slot.healthy if slot.live else None
                    slot.live, slot.healthy, slot.healthy_since = (
                        None,
                        None,
                        None,
                    )  # the old copy is "old" now
                    slot.want = w
                    slot.done = False
                    slot.failures = 0
                    slot.next_start_at = 0.0
                new[w.workload_id] = slot
            self.slots = new
            self.ready = True

    # --- one reconciliation round ---------------------------------------------------------------------

    def step(self) -> list[WorkloadStatus]:
        """List, adopt, start, probe, replace, restart, stop. Returns every desired workload's status."""
        with self._step_lock:
            with self._lock:
                slots = dict(self.slots)
                if not self.ready:
                    return []
            try:
                insts = self.executor.instances()
            except ExecutorError as e:  # the engine itself fails (podman missing, storage broken)
                for slot in slots.values():
                    self._set(slot, "failed", f"executor: {e}")
                return [self._status(s) for s in slots.values()]
            by_wid: dict[str, list[Instance]] = {}
            for i in insts:
                by_wid.setdefault(i.workload_id, []).append(i)
            self._probed = self._probe_due(slots, insts)
            for wid, slot in slots.items():
                try:
                    self._reconcile(slot, by_wid.get(wid, []))
                except ExecutorError as e:
                    self._set(slot, "failed", str(e))
                    log.warning("workload %s: %s", wid, e)
            for wid, group in by_wid.items():
                if wid not in slots:
                    for i in group:
                        self._stop(i, 10.0 if i.running else 0.0, why="no longer desired")
            return [self._status(s) for s in slots.values()]

    def _probe_due(self, slots: dict[str, Slot], insts: list[Instance]) -> dict[str, bool]:
        """Run every health probe due this round at once, so one slow or hanging service cannot hold
        up the others' restarts; results are used by `_health` for the same instance."""
        running = {i.handle: i for i in insts if i.running}
        now = self.clock()
        due: list[tuple[WorkloadRunSpec, Instance]] = []
        for slot in slots.values():
            spec, inst = slot.want.spec, running.get(slot.live or "")
            if spec is None or spec.health is None or inst is None or inst.spec_hash != slot.want.spec_hash:
                continue
            if slot.last_probe_at is None or now - slot.last_probe_at >= spec.health.interval_s:
                due.append((spec, inst))
        if len(due) < 2:
            return {}  # nothing to overlap: probed in line
        with ThreadPoolExecutor(max_workers=min(16, len(due)), thread_name_prefix="probe") as pool:
            results = list(pool.map(lambda d: self.probe(*d), due))
        return {inst.handle: ok for (_spec, inst), ok in zip(due, results, strict=True)}

    def _set(self, slot: Slot, state: RunState, message: str = "") -> None:
        if state != slot.state or message != slot.message:
            if state != slot.state:
                slot.since = self.wall()
                log.info(
                    "workload %s: %s%s", slot.want.workload_id, state, f" ({message})" if message else ""
                )
            slot.state = state
            slot.message = message[:1024]

    def _stop(self, inst: Instance, timeout_s: float, *, why: str) -> None:
        log.info("stopping %s of %s (%s)", inst.handle[:24], inst.workload_id, why)
        if inst.running:
            self.executor.stop(inst, timeout_s)
        else:
            self.executor.remove(inst)

    def _reconcile(self, slot: Slot, insts: list[Instance]) -> None:
        want = slot.want
        now = self.clock()
        if want.refused or want.spec is None:
            for i in insts:
                self._stop(i, 10.0, why="refused")
            slot.live = None
            self._set(slot, "refused", want.refused or "no image or command in the spec")
            return
        spec = want.spec
        cur = [i for i in insts if i.spec_hash == want.spec_hash]
        old_running = [i for i in insts if i.spec_hash != want.spec_hash and i.running]
        for i in insts:
            if i.spec_hash != want.spec_hash and not i.running:
                self.executor.remove(i)
        running = [i for i in cur if i.running]
        # the copy we track first, then the oldest: any other running copy is a duplicate
        running.sort(key=lambda i: (i.handle != slot.live, i.started_at, i.handle))
        for dup in running[1:]:
            self._stop(dup, spec.stop_timeout_s, why="duplicate copy")
        live = running[0] if running else None
        counted = False
        for dead in (i for i in cur if not i.running):
            self.executor.remove(dead)
            if dead.handle in slot.counted:
                continue
            if not counted and (dead.handle == slot.live or live is None):
                counted = True  # one death per round, however many exited copies are listed
                if len(slot.counted) > 256:
                    slot.counted.clear()  # removed instances are never listed again; this only bridges a race
                slot.counted.add(dead.handle)
                code = dead.exit_code
                why = f"exited with code {code}" if code is not None else "ended (exit code unknown: adopted)"
                self._died(slot, code, why)
        if live is None and slot.live is not None and not any(i.handle == slot.live for i in cur):
            slot.counted.add(slot.live)
            self._died(slot, None, "vanished (killed outside the agent)")
        if live is not None and live.handle != slot.live:  # adopted, or started by us last round
            slot.live = live.handle
            slot.started_at = now - max(0.0, self.wall() - live.started_at) if live.started_at else now
            slot.last_probe_at, slot.fails_in_row, slot.healthy, slot.healthy_since = None, 0, None, None
        if live is None:
            slot.live = None
            if slot.done:
                return
            if now < slot.next_start_at:
                return  # state "backoff", set with its reason when it died
            if old_running and not start_first(slot.old_spec, spec):
                for i in old_running:
                    self._stop(i, spec.stop_timeout_s, why="stop-first replacement (shared port)")
                old_running = []
            self._start(slot, now)
            return
        self._health(slot, spec, live, now)
        if slot.live is None:
            return  # restarted for being unhealthy
        ready = slot.healthy is True or (spec.health is None and slot.state == "running")
        if old_running and ready:
            for i in old_running:
                self._stop(i, spec.stop_timeout_s, why=f"replaced by {want.spec_hash}")
            slot.old_spec, slot.old_healthy = None, None
        elif old_running and slot.state in ("starting", "unhealthy") and slot.old_healthy is not False:
            slot.message = f"updating to {want.spec_hash}: new copy {slot.state}; old copy still serving"

    def _start(self, slot: Slot, now: float) -> None:
        want = slot.want
        assert want.spec is not None
        volumes: dict[str, str] = {}
        for v in want.spec.volumes:
            d = self.volumes_dir / want.workload_id / v.name
            d.mkdir(parents=True, exist_ok=True)
            volumes[v.name] = str(d)
        try:
            inst = self.executor.start(want.workload_id, want.spec, want.spec_hash, volumes)
        except ExecutorError as e:
            self._died(slot, None, f"start failed: {e}")
            return
        slot.live = inst.handle
        slot.started_at = now
        slot.last_probe_at, slot.fails_in_row, slot.healthy, slot.healthy_since = None, 0, None, None
        if want.spec.health is None:
            slot.healthy_since = now
            self._set(slot, "running")
        else:
            self._set(slot, "starting")

    def _died(self, slot: Slot, exit_code: int | None, why: str) -> None:
        spec = slot.want.spec
        assert spec is not None
        slot.live = None
        slot.exit_code = exit_code
        slot.healthy, slot.healthy_since = None, None
        policy = spec.restart.policy
        if policy == "never" or (policy == "on-failure" and exit_code == 0):
            slot.done = True
            self._set(slot, "exited" if exit_code == 0 else "failed", why)
            return
        slot.failures += 1
        slot.restarts += 1
        delay = spec.restart.delay(slot.failures)
        slot.next_start_at = self.clock() + delay
        self._set(slot, "backoff", f"{why}; restart {slot.restarts} in {delay:g} s")

    def _health(self, slot: Slot, spec: WorkloadRunSpec, live: Instance, now: float) -> None:
        hc = spec.health
        if hc is None:
            if slot.state != "running":
                slot.healthy_since = slot.healthy_since or now
                self._set(slot, "running")
            self._maybe_reset(slot, spec, now)
            return
        if slot.last_probe_at is not None and now - slot.last_probe_at < hc.interval_s:
            self._maybe_reset(slot, spec, now)
            return
        slot.last_probe_at = now
        ok = self._probed.pop(live.handle, None)
        if ok is None:  # not probed ahead (adopted or started this round)
            ok = self.probe(spec, live)
        if ok:
            slot.fails_in_row = 0
            if slot.healthy is not True:
                slot.healthy_since = now
            slot.healthy = True
            self._set(slot, "running")
            self._maybe_reset(slot, spec, now)
            return
        in_grace = now - slot.started_at < hc.start_period_s and slot.healthy is not True
        if in_grace:
            self._set(slot, "starting", "health check not passing yet (start period)")
            return
        slot.fails_in_row += 1
        if slot.fails_in_row < hc.retries:
            if slot.healthy is not True:
                self._set(slot, "starting", f"health check failed {slot.fails_in_row}/{hc.retries}")
            return
        slot.healthy, slot.healthy_since = False, None
        why = f"unhealthy: {slot.fails_in_row} health checks failed in a row"
        self._set(slot, "unhealthy", why)
        if spec.restart.policy != "never":
            self._stop(live, spec.stop_timeout_s, why=why)
            self._died(slot, None, why)

    def _maybe_reset(self, slot: Slot, spec: WorkloadRunSpec, now: float) -> None:
        if (
            slot.failures
            and slot.healthy_since is not None
            and now - slot.healthy_since >= spec.restart.reset_after_s
        ):
            slot.failures = 0

    def _status(self, slot: Slot) -> WorkloadStatus:
        return WorkloadStatus(
            workload_id=slot.want.workload_id,
            state=slot.state,
            spec_hash=slot.want.spec_hash,
            restarts=slot.restarts,
            exit_code=slot.exit_code,
            healthy=slot.healthy
            if slot.want.spec is not None and slot.want.spec.health is not None
            else None,
            message=slot.message,
            since=datetime.fromtimestamp(slot.since or self.wall(), UTC).isoformat(timespec="seconds"),
        )

    def stop_all(self, timeout_s: float = 10.0) -> int:
        """Stop every instance of this site (tests, decommissioning). The agent never does this on exit."""
        n = 0
        for i in self.executor.instances():
            self._stop(i, timeout_s, why="stop_all")
            n += 1
        return n
