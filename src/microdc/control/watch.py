"""The control plane's own liveness: process starts and periodic ticks, kept in the database.

While the control plane is not running (or its periodic loop stalls), agents' heartbeats cannot arrive,
so silence in that time says nothing about the sites. Every process start and every periodic tick
records itself in the single `ControlPlaneWatch` row; when the previous record is older than
`Settings.watch_gap_s` there was a gap, and ``watching_since`` moves to now. A site whose last heartbeat
precedes ``watching_since`` is then not judged until `Settings.restart_grace_s` has passed (see
`in_restart_grace`): it is judged by what arrives after the control plane is back, never by the outage.

Several workers share the row (ticks take a row lock), so a worker restarting while another keeps
ticking is no gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from microdc.control import audit
from microdc.control.models import ControlPlaneWatch
from microdc.control.settings import Settings

WATCH_ROW = 1


@dataclass(frozen=True)
class WatchView:
    """What the health check needs to know about the control plane's own liveness."""

    watching_since: datetime | None = None  # None: never recorded (no gap known)
    last_gap_from: datetime | None = None
    last_gap_to: datetime | None = None


def _view(row: ControlPlaneWatch | None) -> WatchView:
    if row is None:
        return WatchView()
    return WatchView(row.watching_since, row.last_gap_from, row.last_gap_to)


def record(
    session: Session, now: datetime, settings: Settings, *, start: bool, actor: str, busy: bool = False
) -> WatchView:
    """Record a process start (`start`) or a periodic tick; detect and audit a gap since the last one.

    `busy`: the tick that ends a health pass. The time since the previous tick was spent working on the
    pass while requests (heartbeats) were still served, so it is no gap, however long the pass took.

    A first-ever record (new database, or an upgrade from a version without the watch) counts as a gap
    that ends now: whatever happened before it was not watched.
    """
    row = session.get(ControlPlaneWatch, WATCH_ROW, with_for_update=True)
    if row is None:
        row = ControlPlaneWatch(id=WATCH_ROW, started_at=now, last_tick_at=now, watching_since=now, gaps=0)
        session.add(row)
        session.flush()
        return _view(row)
    silent_s = (now - row.last_tick_at).total_seconds()
    if silent_s > settings.watch_gap_s and not busy:
        row.last_gap_from = row.last_tick_at
        row.last_gap_to = now
        row.watching_since = now
        row.gaps += 1
        audit.append(
            session,
            actor=actor,
            action="control_plane.gap",
            target="control_plane",
            details={
                "from": row.last_gap_from.isoformat(),
                "to": now.isoformat(),
                "seconds": round(silent_s, 3),
                "cause": "process start" if start else "periodic watch stalled",
                "grace_s": settings.restart_grace_s,
            },
            now=now,
        )
    if start:
        row.started_at = now
    row.last_tick_at = max(row.last_tick_at, now)
    session.flush()
    return _view(row)


def current(session: Session) -> WatchView:
    return _view(session.get(ControlPlaneWatch, WATCH_ROW))


def in_restart_grace(
    watch: WatchView, last_heartbeat_at: datetime | None, now: datetime, settings: Settings
) -> bool:
    """True while a site may not be judged: not heard from since the control plane resumed watching,
    and the grace (heartbeat timeout + margin) since then has not passed."""
    if watch.watching_since is None:
        return False
    if last_heartbeat_at is not None and last_heartbeat_at >= watch.watching_since:
        return False  # heard from since we are back: judged by its own heartbeats
    return now < watch.watching_since + timedelta(seconds=settings.restart_grace_s)
