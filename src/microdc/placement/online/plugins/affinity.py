"""Score: prefer the workload's designated target (the plan's backup for it), if any.

Already normalized: 100 on the preferred target, 0 elsewhere (what min-max would give)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from microdc.placement.online.framework import (
    BoolArray,
    CycleState,
    FleetState,
    IntArray,
    ScoreArray,
    ScorePlugin,
    WorkloadTable,
)


class PlanAffinity(ScorePlugin):
    name: ClassVar[str] = "plan_affinity"
    prenormalized: ClassVar[bool] = True

    def score(
        self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState, feasible: BoolArray
    ) -> ScoreArray:
        pref = wl.preferred[rows]
        has = np.flatnonzero(pref >= 0)
        if has.size == 0:
            return np.zeros(len(fleet), dtype=np.float32)
        out = np.zeros((rows.size, len(fleet)), dtype=np.float32)
        out[has, pref[has]] = 100.0
        return out
