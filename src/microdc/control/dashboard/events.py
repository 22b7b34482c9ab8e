"""Live updates for the dashboard: server-sent events fed by the database.

The control plane has no in-process event bus, and with several uvicorn workers it could not have one
(a batch ingested by one worker must reach a browser connected to another). So the database is the
bus: every telemetry batch gets a row in `telemetry_batches` (autoincrement id) and every alarm,
liveness, trust, inventory and placement change gets an entry in the audit log (gap-free `seq`). A
cursor ``(batch id, audit seq)`` therefore names a point in the stream of changes, and
`changes_since(cursor)` turns what happened after it into updated fleet rows, alarms and flags.

One `Hub` per app polls that (two indexed range queries, every `poll_interval_s`, only while someone
is connected) and fans each update out to the connected streams. A stream sends its cursor as the
SSE event id, so a browser that reconnects (``Last-Event-ID``) gets exactly what it missed.

PostgreSQL can commit batch ids out of order (a sequence value is taken before the commit): an id
below the newest one may still be in flight. So the hub remembers the ids a poll did not find below
the newest ("holes": in flight, or rolled back) and looks for them again in the following polls, for
`hole_ttl_s`. SQLite serializes writers (``BEGIN IMMEDIATE``), so there ids commit in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from microdc.control.dashboard import queries
from microdc.control.models import Alarm, AuditEntry, Module, Site, TelemetryBatch
from microdc.control.services import Services

log = logging.getLogger("microdc.control.dashboard")


@dataclass(frozen=True, order=True)
class Cursor:
    batch: int
    audit: int

    def __str__(self) -> str:
        return f"{self.batch}.{self.audit}"

    @classmethod
    def parse(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            b, a = text.strip().split(".")
            c = cls(int(b), int(a))
        except ValueError:
            return None
        return c if c.batch >= 0 and c.audit >= 0 else None

    def covers(self, other: Cursor) -> bool:
        return self.batch >= other.batch and self.audit >= other.audit


@dataclass
class DashboardConfig:
    poll_interval_s: float = 0.1
    stream_lifetime_s: float = 25.0  # then the browser reconnects (bounds graceful-shutdown waits)
    keepalive_s: float = 10.0
    retry_ms: int = 500
    queue_size: int = 256
    max_catchup_batches: int = 200_000
    max_catchup_audit: int = 20_000
    hole_ttl_s: float = 60.0  # how long a batch id missing below the newest one is looked for
    max_holes: int = 10_000
    audit_verify_max_age_s: float = 300.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> DashboardConfig:
        """Defaults, overridden by ``MICRODC_DASHBOARD_<FIELD>`` variables (e.g. ..._POLL_INTERVAL_S)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"MICRODC_DASHBOARD_{f.name.upper()}")
            if raw is not None:
                values[f.name] = int(raw) if f.type in ("int", int) else float(raw)
        return cls(**values)


@dataclass
class Update:
    cursor: Cursor
    sites: list[dict[str, Any]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    alarms: list[dict[str, Any]] = field(default_factory=list)
    placement: bool = False
    audit_seq: int | None = None
    summary: dict[str, Any] | None = None
    resync: bool = False
    read_at: float = 0.0  # monotonic time its read began

    @property
    def empty(self) -> bool:
        return not (
            self.sites or self.removed or self.alarms or self.placement or self.audit_seq or self.resync
        )

    def payload(self, *, admin: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"cursor": str(self.cursor)}
        if self.resync:
            out["resync"] = True
            return out
        if self.sites:
            out["sites"] = self.sites
        if self.removed:
            out["removed"] = self.removed
        if self.alarms:
            out["alarms"] = self.alarms
        if self.placement:
            out["placement"] = True
        if self.summary is not None:
            out["summary"] = self.summary
        if admin and self.audit_seq:
            out["audit_seq"] = self.audit_seq
        return out


def current_cursor(session: Session) -> Cursor:
    b = session.scalar(select(func.max(TelemetryBatch.id))) or 0
    a = session.scalar(select(func.max(AuditEntry.seq))) or 0
    return Cursor(int(b), int(a))


def _site_of(target: str) -> str | None:
    return target[5:] if target.startswith("site:") else None


def changes_since(
    session: Session,
    since: Cursor,
    *,
    config: DashboardConfig,
    holes: dict[int, float] | None = None,
    now: float | None = None,
) -> Update:
    """What changed after `since`, as an Update whose cursor is the new position.

    With `holes` (batch id → when it was first missed), ids at or below ``since.batch`` that an
    earlier poll did not find are looked for again, and the ids missing now are added (updated in
    place; entries older than `hole_ttl_s` are forgotten).
    """
    sites: set[str] = set()
    removed: set[str] = set()
    alarm_ids: set[int] = set()
    module_ids: set[int] = set()
    placement = False

    b_max = int(session.scalar(select(func.max(TelemetryBatch.id))) or 0)
    new_b = max(b_max, since.batch)
    if b_max > since.batch or holes:
        if b_max - since.batch > config.max_catchup_batches:
            return Update(Cursor(b_max, since.audit), resync=True)
        cond = TelemetryBatch.id > since.batch
        if holes:
            cond = or_(cond, TelemetryBatch.id.in_(sorted(holes)))
        fresh = session.execute(
            select(TelemetryBatch.id, TelemetryBatch.site_id).where(cond, TelemetryBatch.id <= b_max)
        ).all()
        for _bid, site_id in fresh:
            sites.add(site_id)
        if holes is not None:
            t = time.monotonic() if now is None else now
            got = {int(bid) for bid, _ in fresh}
            for bid in got & holes.keys():
                del holes[bid]
            for bid in range(since.batch + 1, b_max + 1):
                if bid not in got:
                    holes[bid] = t
            for bid in [b for b, t0 in holes.items() if t - t0 > config.hole_ttl_s]:
                del holes[bid]
            while len(holes) > config.max_holes:
                del holes[min(holes)]

    entries = session.execute(
        select(AuditEntry.seq, AuditEntry.action, AuditEntry.target, AuditEntry.details)
        .where(AuditEntry.seq > since.audit)
        .order_by(AuditEntry.seq)
        .limit(config.max_catchup_audit + 1)
    ).all()
    if len(entries) > config.max_catchup_audit:
        return Update(Cursor(new_b, since.audit), resync=True)
    new_a = int(entries[-1][0]) if entries else since.audit
    for _seq, action, target, details in entries:
        site = _site_of(target)
        if site:
            (removed if action == "site.delete" else sites).add(site)
        if action.startswith(("alarm.", "module.", "server.", "power_feed.", "placement.", "workload.")):
            try:
                d = json.loads(details)
            except ValueError:
                d = {}
            if not isinstance(d, dict):
                d = {}
            if isinstance(d.get("site_id"), str):
                sites.add(d["site_id"])
            if isinstance(d.get("module_id"), int):
                module_ids.add(d["module_id"])
            if action.startswith("alarm.") and target.startswith("alarm:"):
                with contextlib.suppress(ValueError):
                    alarm_ids.add(int(target[6:]))
            if action.startswith(("placement.", "workload.")):
                placement = True
                for c in d.get("changes", []):
                    if isinstance(c, dict):
                        sites.update(s for s in (c.get("from_site"), c.get("to_site")) if isinstance(s, str))
    if module_ids:
        sites.update(
            s for (s,) in session.execute(select(Module.site_id).where(Module.id.in_(sorted(module_ids))))
        )
    sites -= removed
    rows = queries.fleet_rows(session, sites) if sites else []
    present = {r["id"] for r in rows}
    removed |= {s for s in sites if s not in present}
    if removed:
        removed -= set(session.scalars(select(Site.id).where(Site.id.in_(sorted(removed)))))
    alarms = (
        [
            queries.alarm_json(a)
            for a in session.scalars(select(Alarm).where(Alarm.id.in_(sorted(alarm_ids))).order_by(Alarm.id))
        ]
        if alarm_ids
        else []
    )
    upd = Update(
        Cursor(new_b, new_a),
        sites=rows,
        removed=sorted(removed),
        alarms=alarms,
        placement=placement,
        audit_seq=new_a if new_a > since.audit else None,
    )
    if rows or removed or alarms:
        upd.summary = queries.summary(session)
    return upd


class Subscription:
    def __init__(self, hub: Hub, admin: bool, size: int) -> None:
        self.hub = hub
        self.admin = admin
        self.queue: asyncio.Queue[Update] = asyncio.Queue(maxsize=size)
        self.overflowed = False

    def offer(self, upd: Update) -> None:
        try:
            self.queue.put_nowait(upd)
        except asyncio.QueueFull:
            # a consumer this slow gets told to reload instead of an unbounded backlog
            self.overflowed = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(Update(upd.cursor, resync=True))


class Hub:
    """Polls the database for changes while at least one stream is open; fans updates out."""

    def __init__(self, services: Services, config: DashboardConfig, on_poll: Callable[[float], None]):
        self.services = services
        self.config = config
        self.on_poll = on_poll
        self.subs: set[Subscription] = set()
        self.cursor: Cursor | None = None
        self._holes: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.pg = services.db.dialect == "postgresql"

    @property
    def clients(self) -> int:
        return len(self.subs)

    def _read(self, fn: Callable[[Session], Any]) -> Any:
        with self.services.db.read_session() as s:
            return fn(s)

    async def subscribe(self, *, admin: bool) -> Subscription:
        """Register a stream; the hub's cursor is known (and polling runs) when this returns."""
        sub = Subscription(self, admin, self.config.queue_size)
        async with self._lock:
            if self._task is None or self._task.done():
                self.cursor = await asyncio.to_thread(self._read, current_cursor)
                self._holes = {}
                self._task = asyncio.create_task(self._run(), name="dashboard-hub")
            self.subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self.subs.discard(sub)

    def _poll(self) -> Update:
        assert self.cursor is not None
        cursor = self.cursor
        t = time.monotonic()
        upd: Update = self._read(
            lambda s: changes_since(s, cursor, config=self.config, holes=self._holes if self.pg else None)
        )
        upd.read_at = t
        return upd

    async def _run(self) -> None:
        took = 0.0
        while self.subs:
            # under load, poll less often (each poll then carries more): at most ~1/3 of the time
            await asyncio.sleep(max(self.config.poll_interval_s, min(2.0, 2.0 * took)))
            t0 = time.perf_counter()
            try:
                upd = await asyncio.to_thread(self._poll)
            except Exception:  # the database blinked: try again next tick
                log.exception("dashboard: change poll failed")
                continue
            took = time.perf_counter() - t0
            self.on_poll(took)
            self.cursor = upd.cursor
            if not upd.empty:
                for sub in list(self.subs):
                    sub.offer(upd)

    async def stop(self) -> None:
        self.subs.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None


def sse(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def stream(
    hub: Hub,
    *,
    admin: bool,
    start: Cursor | None,
    count: Callable[[str], None],
) -> AsyncIterator[str]:
    """One client's event stream: catch-up from `start`, then the hub's updates, for one lifetime."""
    cfg = hub.config
    sub = await hub.subscribe(admin=admin)
    try:
        yield f"retry: {cfg.retry_ms}\n\n"
        assert hub.cursor is not None
        position = hub.cursor
        caught_up_at = 0.0  # queued updates read before the catch-up are contained in it
        if start is not None and not start.covers(position):
            caught_up_at = time.monotonic()
            upd = await asyncio.to_thread(hub._read, lambda s: changes_since(s, start, config=cfg))
            position = upd.cursor
            count("catchup")
            yield sse("update", upd.payload(admin=admin), str(upd.cursor))
        else:
            yield sse("hello", {"cursor": str(position)}, str(position))
        deadline = time.monotonic() + cfg.stream_lifetime_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                upd = await asyncio.wait_for(sub.queue.get(), timeout=min(cfg.keepalive_s, left))
            except TimeoutError:
                yield ": keepalive\n\n"
                continue
            if not upd.resync and upd.read_at < caught_up_at:
                continue  # older than the catch-up, which contained it
            position = max(position, upd.cursor)
            count("resync" if upd.resync else "update")
            yield sse("update", upd.payload(admin=admin), str(upd.cursor))
        yield sse("bye", {"cursor": str(position)}, str(position))
    finally:
        hub.unsubscribe(sub)
