"""Filter (not now): the target has the free cores and memory the workload reserves.

The framework applies capacity while it commits workloads (a running free-capacity vector); this
plugin gives the mask for a given free vector and the reason when nothing had room."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from microdc.placement.online.framework import (
    BoolArray,
    CycleState,
    FilterPlugin,
    FleetState,
    FloatArray,
    IntArray,
    Kind,
    WorkloadTable,
)


class Capacity(FilterPlugin):
    name: ClassVar[str] = "capacity"
    kind: ClassVar[Kind] = Kind.NOT_NOW

    def filter(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> BoolArray:
        free: FloatArray = state.chunk.get("free", fleet.free)
        return np.asarray(np.all(wl.demand[rows][:, None, :] <= free[None, :, :] + 1e-9, axis=2))

    def reasons(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> list[str]:
        return [
            f"not now: no allowed site has {c:.2f} free cores and {m:.1f} GB free memory"
            for c, m in wl.demand[rows][:, :2].tolist()
        ]
