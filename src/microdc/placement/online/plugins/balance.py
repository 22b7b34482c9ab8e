"""Score (dynamic): more free capacity at the target is better (kube's LeastAllocated, per target).

The smallest free share over the resources counts, read from the running free-capacity vector as the
chunk is committed; cloud regions (unlimited) score in the middle so balance neither attracts work to
nor repels it from the cloud."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from microdc.placement.online.framework import (
    BoolArray,
    CycleState,
    FleetState,
    FloatArray,
    IntArray,
    ScorePlugin,
    WorkloadTable,
)


class Balance(ScorePlugin):
    name: ClassVar[str] = "balance"
    dynamic: ClassVar[bool] = True

    def score(
        self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState, feasible: BoolArray
    ) -> FloatArray:
        free: FloatArray = state.chunk.get("free", fleet.free)
        cap = fleet.capacity
        finite = np.asarray(np.isfinite(cap).all(axis=1), dtype=bool)
        safe_cap = np.where(np.isfinite(cap) & (cap > 0), cap, 1.0)
        share = np.min(np.where(np.isfinite(free), free, 0.0) / safe_cap, axis=1)
        return np.asarray(np.where(finite, share, 0.5), dtype=np.float64)
