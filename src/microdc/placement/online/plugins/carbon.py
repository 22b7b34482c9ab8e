"""Score: lower current grid carbon intensity at the target is better (unknown counts as the worst)."""

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


def lower_is_better(values: FloatArray) -> FloatArray:
    """(S,) raw score from a per-target value where lower is better; nan counts as the worst."""
    v = np.asarray(values, dtype=np.float64)
    worst = np.nanmax(v) if np.isfinite(v).any() else 0.0
    return np.asarray(-np.where(np.isfinite(v), v, worst), dtype=np.float64)


class Carbon(ScorePlugin):
    name: ClassVar[str] = "carbon"

    def score(
        self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState, feasible: BoolArray
    ) -> FloatArray:
        return lower_is_better(fleet.carbon_g_per_kwh)
