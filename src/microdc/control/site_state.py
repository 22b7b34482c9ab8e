"""Site liveness state machine — pure, shared with the agent and the tests.

A site's displayed state is ``untrusted`` while an admin or a break-in alarm has marked it untrusted;
otherwise it is its liveness:

``unknown``   enrolled/created but no heartbeat yet; gets no work.
``up``        heartbeat within ``heartbeat_interval × missed_intervals``; gets work.
``suspect``   heartbeats missed, but nothing corroborates that the site is dead yet (or the hold-down
              has not passed). Its work stays where it is (no re-placement: one lost packet never moves
              work); it gets no new work.
``link_down`` heartbeats missed but corroborating evidence says the site is alive: its agent uploaded
              buffered readings covering the gap, its uplink is reported down (the silence is the
              network's), or a probe/peer reached it by another path after the last heartbeat AND its
              last telemetry showed the UPS on mains with inlet temperatures inside the allowable band.
              Its work stays where it is (assumed running; re-placing would risk running it twice); it
              gets no new work.
``down``      heartbeats missed AND corroborated dead — peer probes fail to reach it, its uplink is
              reported up yet the agent is silent, or its UPS runtime ran out — continuously for the
              hold-down (``down_hold_s``). Only now is its work re-placed.

Transitions (evaluated on every heartbeat, telemetry batch, probe report and periodic check)::

    unknown|suspect|link_down|down --heartbeat--> up
    up|link_down --overdue, no alive evidence--> suspect       (reason names what is missing)
    up|suspect --overdue, alive evidence--> link_down
    up|suspect|link_down --overdue, dead evidence held for the hold-down--> down
    down --alive evidence (probe + healthy telemetry, buffered readings, uplink down)--> link_down
    down --no evidence either way--> down (stays: its work has already moved)
    any --admin untrusts / break-in alarm--> untrusted (liveness still tracked underneath)
    untrusted --admin trusts again--> its liveness

After a control-plane outage, sites are not judged at all until the restart grace has passed (see
``microdc.control.watch``); this module only sees sites that may be judged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Liveness(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    SUSPECT = "suspect"
    LINK_DOWN = "link_down"
    DOWN = "down"


UNTRUSTED = "untrusted"


def display_state(liveness: str, trusted: bool) -> str:
    return UNTRUSTED if not trusted else liveness


@dataclass(frozen=True)
class Evidence:
    """What is known about a site whose heartbeat is overdue (None = no data)."""

    ups_on_battery: bool | None = None
    runtime_exhausted: bool = False
    runtime_exhausted_at: datetime | None = None  # when the UPS runtime ran out (per last telemetry)
    inlet_temps_normal: bool | None = None
    probes_reachable: int = 0  # observers whose latest report reached it by another path
    probes_unreachable: int = 0  # observers whose latest report failed to reach it
    probes_failing_since: datetime | None = None  # first failure of the current run of failed probes
    uplink_up: bool | None = None  # latest report of the site's uplink state (None: no report)
    uplink_since: datetime | None = None  # when that report was observed
    buffered_readings_cover_gap: bool = False
    overdue_since: datetime | None = None  # when the heartbeats became overdue

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}

    def alive(self) -> str | None:
        """Why the site is probably alive though silent, or None."""
        if self.buffered_readings_cover_gap:
            return "agent uploaded buffered readings covering the gap"
        if self.uplink_up is False:
            return "its uplink is reported down: the silence is the network's"
        if self.probes_reachable and self.ups_on_battery is False and self.inlet_temps_normal:
            return "a probe reached the site by another path and its last telemetry was healthy"
        return None

    def dead(self) -> tuple[str, datetime | None] | None:
        """Corroboration that the site is dead (beyond its silence) and since when, or None.

        `assess` asks `alive` first (unless the UPS ran out): with the uplink reported down, failed
        probes prove nothing, as they cannot pass a dead uplink."""
        if self.runtime_exhausted:
            return "its UPS runtime ran out (last telemetry: on battery)", self.runtime_exhausted_at
        if self.probes_unreachable and not self.probes_reachable:
            return f"{self.probes_unreachable} probe observer(s) fail to reach it", self.probes_failing_since
        if self.uplink_up and not self.probes_reachable:
            return "its uplink is reported up yet the agent is silent", self.uplink_since
        return None


@dataclass(frozen=True)
class Verdict:
    liveness: Liveness
    reason: str
    hold_down_until: datetime | None = None


def _at(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t is not None else "?"


def assess(
    current: Liveness,
    *,
    heartbeat_fresh: bool,
    evidence: Evidence,
    now: datetime | None = None,
    hold_down_s: float = 0.0,
) -> Verdict:
    """The next liveness and a human-readable reason for it.

    `down` needs missed heartbeats AND corroborating dead evidence, both lasting `hold_down_s`.
    """
    if heartbeat_fresh:
        return Verdict(Liveness.UP, "heartbeat received")
    if current == Liveness.UNKNOWN:
        return Verdict(Liveness.UNKNOWN, "never heard from")
    dead = evidence.dead()
    # a site whose UPS ran out is not alive, whatever it buffered before
    alive = None if evidence.runtime_exhausted else evidence.alive()
    if alive is not None:
        return Verdict(Liveness.LINK_DOWN, f"heartbeat lost; {alive}; work held")
    if dead is not None:
        why, since = dead
        start = max((t for t in (since, evidence.overdue_since) if t is not None), default=None)
        until = start + timedelta(seconds=hold_down_s) if start is not None else None
        if until is not None and now is not None and now >= until:
            return Verdict(Liveness.DOWN, f"heartbeat lost and {why} since {_at(start)}; work re-placed")
        if current == Liveness.DOWN:
            return Verdict(Liveness.DOWN, f"still down: {why}")
        return Verdict(
            Liveness.SUSPECT,
            f"heartbeat lost and {why}; hold-down until {_at(until)} before it is declared down",
            until,
        )
    if current == Liveness.DOWN:
        return Verdict(Liveness.DOWN, "still down: no evidence that the site is alive")
    return Verdict(
        Liveness.SUSPECT,
        "heartbeat lost; not corroborated (no failed peer probe, no uplink report, UPS not exhausted): "
        "work held, no new work",
    )
