"""Score: lower current facility PUE (more cooling headroom) at the target is better."""

from __future__ import annotations

from typing import ClassVar

from microdc.placement.online.framework import (
    BoolArray,
    CycleState,
    FleetState,
    FloatArray,
    IntArray,
    ScorePlugin,
    WorkloadTable,
)
from microdc.placement.online.plugins.carbon import lower_is_better


class Cooling(ScorePlugin):
    name: ClassVar[str] = "cooling"

    def score(
        self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState, feasible: BoolArray
    ) -> FloatArray:
        return lower_is_better(fleet.pue)
