"""Filter (not now): the target is up and accepting work; a workload may stay on its current target
while that target is alive even if it takes no new work (cut off, throttled, on battery)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from microdc.placement.online.framework import (
    BoolArray,
    CycleState,
    FilterPlugin,
    FleetState,
    IntArray,
    Kind,
    WorkloadTable,
)


class SiteHealth(FilterPlugin):
    name: ClassVar[str] = "site_health"
    kind: ClassVar[Kind] = Kind.NOT_NOW

    def filter(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> BoolArray:
        ok = np.repeat((fleet.accepting & fleet.alive)[None, :], rows.size, axis=0)
        cur = wl.current[rows]
        here = np.flatnonzero(cur >= 0)
        ok[here, cur[here]] |= fleet.alive[cur[here]]
        return ok

    def reasons(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> list[str]:
        return ["not now: every allowed site is down, cut off or not accepting work"] * rows.size
