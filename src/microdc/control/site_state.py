"""Site liveness state machine — pure, shared with the agent and the tests.

A site's displayed state is ``untrusted`` while an admin or a break-in alarm has marked it untrusted;
otherwise it is its liveness:

``unknown``   enrolled/created but no heartbeat yet; gets no work.
``up``        heartbeat within ``heartbeat_interval × missed_intervals``; gets work.
``link_down`` heartbeats stopped but corroborating evidence says the site is alive: its agent uploaded
              buffered readings covering the gap, or (a probe/peer reached it by another path after
              the last heartbeat AND its last telemetry showed the UPS on mains with inlet temperatures
              inside the allowable band). Its work stays where it is (assumed running; no re-placement,
              which would risk running it twice); it gets no new work.
``down``      heartbeats stopped and the evidence says dead or there is none: UPS on battery, runtime
              exhausted, probes failing, or simply nothing corroborating. Its work is re-placed.

Transitions (evaluated on every heartbeat, telemetry batch, probe report and periodic check)::

    unknown|down|link_down --heartbeat--> up
    up --overdue, alive evidence--> link_down        up --overdue, no/dead evidence--> down
    link_down --overdue, dead evidence or alive evidence gone--> down
    down --alive evidence (probe + healthy telemetry, or buffered readings)--> link_down
    any --admin untrusts / break-in alarm--> untrusted (liveness still tracked underneath)
    untrusted --admin trusts again--> its liveness
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Liveness(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
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
    inlet_temps_normal: bool | None = None
    probes_reachable: int = 0  # recent reports that reached it by another path
    probes_unreachable: int = 0
    buffered_readings_cover_gap: bool = False


def assess(current: Liveness, *, heartbeat_fresh: bool, evidence: Evidence) -> tuple[Liveness, str]:
    """The next liveness and a human-readable reason for it."""
    if heartbeat_fresh:
        return Liveness.UP, "heartbeat received"
    if current == Liveness.UNKNOWN:
        return Liveness.UNKNOWN, "never heard from"
    if evidence.runtime_exhausted:
        return Liveness.DOWN, "heartbeat lost; UPS runtime exhausted"
    if evidence.buffered_readings_cover_gap:
        return Liveness.LINK_DOWN, "heartbeat lost; agent uploaded buffered readings covering the gap"
    if evidence.ups_on_battery:
        return Liveness.DOWN, "heartbeat lost; last telemetry showed the UPS on battery"
    if evidence.probes_unreachable and not evidence.probes_reachable:
        return Liveness.DOWN, "heartbeat lost; probes fail to reach the site"
    if evidence.probes_reachable and evidence.ups_on_battery is False and evidence.inlet_temps_normal:
        return (
            Liveness.LINK_DOWN,
            "heartbeat lost; a probe reached the site by another path and its last telemetry was healthy",
        )
    return Liveness.DOWN, "heartbeat lost; no corroborating evidence that the site is alive"
