"""Periodic work: liveness checks (every `maintenance_interval_s`) and rollups/retention."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from microdc.control import checkpoints, health, rollups, watch
from microdc.control.schemas import MaintenanceRunOut
from microdc.control.services import Services

log = logging.getLogger("microdc.control.jobs")
_JOB_LOCK_KEY = 0x6D646A  # PostgreSQL advisory lock: one worker at a time runs the jobs


def _try_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _JOB_LOCK_KEY}).scalar())


def run_health(services: Services) -> list[str]:
    ctx = services.ctx("system:health")
    with services.db.session() as s:
        if not _try_lock(s):
            return []
        return health.check_all(s, ctx)


def record_watch(services: Services, *, start: bool, busy: bool = False) -> watch.WatchView:
    """Record a process start or a periodic tick of the control plane's own watch (see watch.py)."""
    with services.db.session() as s:
        return watch.record(
            s, services.clock(), services.settings, start=start, actor="system:watch", busy=busy
        )


def run_rollups(services: Services) -> rollups.RollupReport:
    ctx = services.ctx("system:rollup")
    with services.db.session() as s:
        if not _try_lock(s):
            return rollups.RollupReport()
        return rollups.run_rollups(s, ctx)


def publish_checkpoint(services: Services) -> tuple[checkpoints.Checkpoint, Path | None]:
    """Sign the audit chain's head; write it to `audit_checkpoint_dir` when one is set."""
    with services.db.read_session() as s:
        cp = services.checkpoints.current(s, services.db.audit_keyring, services.clock())
    folder = services.settings.audit_checkpoint_dir
    return cp, (checkpoints.publish(Path(folder), cp) if folder else None)


def run_all(services: Services) -> MaintenanceRunOut:
    transitions = run_health(services)
    rep = run_rollups(services)
    d = asdict(rep)
    d.pop("late_ranges", None)
    return MaintenanceRunOut(transitions=transitions, **d)


async def periodic(services: Services, stop: asyncio.Event) -> None:
    """Tick the control plane's own watch, check site liveness and, less often, roll up telemetry."""
    s = services.settings
    last_rollup = last_checkpoint = time.monotonic()
    if s.audit_checkpoint_dir:
        await asyncio.to_thread(publish_checkpoint, services)
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=s.maintenance_interval_s)
            return
        except TimeoutError:
            pass
        try:
            await asyncio.to_thread(record_watch, services, start=False)
            moved = await asyncio.to_thread(run_health, services)
            for m in moved:
                log.info("site state: %s", m)
            if time.monotonic() - last_rollup >= s.rollup_interval_s:
                last_rollup = time.monotonic()
                rep = await asyncio.to_thread(run_rollups, services)
                log.info(
                    "rollups: %d 5m, %d 1h buckets; deleted %d raw readings",
                    rep.rollup_5m_buckets,
                    rep.rollup_1h_buckets,
                    rep.deleted_raw,
                )
            if s.audit_checkpoint_dir and time.monotonic() - last_checkpoint >= s.audit_checkpoint_interval_s:
                last_checkpoint = time.monotonic()
                cp, path = await asyncio.to_thread(publish_checkpoint, services)
                log.info("audit checkpoint seq=%d written to %s", cp.seq, path)
            # again after the work: a long pass is no blindness (requests are served meanwhile), so the
            # next tick measures only the wait between passes
            await asyncio.to_thread(record_watch, services, start=False, busy=True)
        except Exception:
            log.exception("periodic maintenance failed; will retry")
