"""Score: lower device → target round trip is better."""

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
from microdc.placement.online.plugins.slo import chunk_rtt


class Latency(ScorePlugin):
    name: ClassVar[str] = "latency"

    def score(
        self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState, feasible: BoolArray
    ) -> FloatArray:
        return np.asarray(-chunk_rtt(state, wl, rows, fleet))
