"""Faults the demo fleet injects on a schedule, from the twin's vocabulary, so the dashboard shows alarms
and recovery in its first minutes.

A cooling failure and a door opened are driven into a site's simulated sensors (`SimulatedSite.inject`:
the inlet then heats by the lumped thermal model; the door contact reads open); an uplink cut makes
the agent's transport refuse every request, so the control plane sees the site's link go down, its
readings queue locally and arrive when the link returns. A site outage stops the site's agent (no
heartbeats, no readings) while its peers report failed probes of it: silence corroborated, so after the
hold-down the control plane declares the site down and re-places its work on legal sites; when the
outage ends the agent starts again from its state file. Each fault ends after its duration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from microdc.sim.faults import FaultKind

SENSOR_FAULTS = (FaultKind.COOLING_FAILURE.value, FaultKind.GRID_OUTAGE.value, "door_open")
LINK_FAULTS = (FaultKind.UPLINK_CUT.value,)
OUTAGE_FAULTS = (FaultKind.SITE_OUTAGE.value,)
KINDS = SENSOR_FAULTS + LINK_FAULTS + OUTAGE_FAULTS
BUSIEST = -1  # a site outage's site in the default schedule: the site holding the most work when it starts
SPEC = re.compile(r"^(?P<kind>[a-z_]+):(?P<site>\d+)@(?P<at>\d+(?:\.\d+)?)s?\+(?P<dur>\d+(?:\.\d+)?)s?$")


@dataclass(frozen=True)
class DemoFault:
    kind: str
    site: int  # index into the demo's sites
    at_s: float  # seconds after the agents start
    duration_s: float

    def describe(self, site_id: str) -> str:
        return f"{self.kind.replace('_', ' ')} at {site_id} for {self.duration_s:g} s"


def default_schedule(n_sites: int) -> list[DemoFault]:
    """One of each within the first two minutes, on different sites where there are enough.

    The site outage comes last, on the site holding the most work when it starts (`BUSIEST`), and lasts
    long enough for the hold-down to pass, so its work is re-placed and the site later comes back."""
    return [
        DemoFault("cooling_failure", 0, 20.0, 150.0),
        DemoFault("door_open", 1 % n_sites, 40.0, 60.0),
        DemoFault("uplink_cut", 2 % n_sites, 60.0, 120.0),
        DemoFault("site_outage", BUSIEST, 75.0, 120.0),
    ]


def parse_schedule(text: str, n_sites: int) -> list[DemoFault]:
    """`demo` (the default schedule), `none`, or `KIND:SITE@START+DURATION,...` (seconds; SITE an index).

    ValueError names the entry and what was expected.
    """
    text = text.strip()
    if text == "demo":
        return default_schedule(n_sites)
    if text in ("none", ""):
        return []
    out = []
    for entry in (e.strip() for e in text.split(",")):
        m = SPEC.match(entry)
        if m is None:
            raise ValueError(
                f"--faults entry {entry!r}: expected KIND:SITE@START+DURATION in seconds, e.g. "
                "cooling_failure:0@20+150, or 'demo' or 'none'"
            )
        kind, site = m["kind"], int(m["site"])
        if kind not in KINDS:
            raise ValueError(
                f"--faults entry {entry!r}: unknown fault {kind!r}; expected one of {', '.join(KINDS)}"
            )
        if site >= n_sites:
            raise ValueError(
                f"--faults entry {entry!r}: site {site} but the demo runs sites 0..{n_sites - 1}"
            )
        out.append(DemoFault(kind, site, float(m["at"]), float(m["dur"])))
    return sorted(out, key=lambda f: f.at_s)


class CuttableTransport(httpx.AsyncBaseTransport):
    """The agent's HTTP transport with a switch: while cut, every request fails as a dead link does."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.cut = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.cut:
            raise httpx.ConnectError("uplink cut (demo fault)", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def apply(fault: DemoFault, active: bool, sources: list[Any], transport: CuttableTransport) -> bool:
    """Start or end one sensor or link fault; False when the site has no simulated source to take it
    (yet). A site outage stops and restarts an agent: the fleet does that (`demo/fleet.py`)."""
    if fault.kind in OUTAGE_FAULTS:
        raise ValueError("a site outage stops the agent; demo.fleet handles it")
    if fault.kind in LINK_FAULTS:
        transport.cut = active
        return True
    hit = False
    for src in sources:
        inject = getattr(src, "inject", None)
        if inject is not None:
            inject(fault.kind, active)
            hit = True
    return hit
