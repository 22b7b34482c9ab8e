"""Filter (never): the target can meet the workload's latency SLO: network round trip plus the
service's response-time quantile at its target utilization, for p95 and p99 bounds."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

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
from microdc.placement.online.network import TargetGeometry


def geometry(state: CycleState, fleet: FleetState) -> TargetGeometry:
    geo: TargetGeometry = state.batch_value(
        "geometry",
        lambda: TargetGeometry(
            fleet.lat, fleet.lon, fleet.is_cloud, fleet.access_ms, fleet.edge_extra_ms, fleet.metro_radius_km
        ),
    )
    return geo


def chunk_rtt(
    state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState
) -> npt.NDArray[np.float32]:
    """The chunk's (K, S) device → target RTT, ms (float32), computed once per chunk and shared."""
    hit = state.chunk.get("rtt")
    if hit is not None and hit[0].size == rows.size and np.array_equal(hit[0], rows):
        cached: npt.NDArray[np.float32] = hit[1]
        return cached
    rtt = geometry(state, fleet).rtt_ms(wl.lat[rows], wl.lon[rows])
    state.chunk["rtt"] = (rows.copy(), rtt)
    return rtt


def latency_budget_ms(wl: WorkloadTable, rows: IntArray) -> FloatArray:
    """Largest RTT that still meets every SLO bound of each workload (service time subtracted)."""
    return np.asarray(
        np.minimum(
            wl.slo_p95_ms[rows] - wl.service_p95_ms[rows], wl.slo_p99_ms[rows] - wl.service_p99_ms[rows]
        ),
        dtype=np.float64,
    )


class SloReachability(FilterPlugin):
    name: ClassVar[str] = "slo_reachability"
    kind: ClassVar[Kind] = Kind.NEVER

    def filter(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> BoolArray:
        rtt = chunk_rtt(state, wl, rows, fleet)
        budget = latency_budget_ms(wl, rows).astype(np.float32)
        return np.asarray(np.less_equal(rtt, budget[:, None]))

    def reasons(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> list[str]:
        rtt = chunk_rtt(state, wl, rows, fleet).astype(np.float64)
        legal = np.ones(rtt.shape, dtype=bool)
        sov = state.batch.get("sovereignty.mask")
        if sov is not None:
            legal &= sov[state.batch["sovereignty.group"][rows]]
        sec = state.batch.get("security.mask")
        if sec is not None:
            legal &= sec[wl.data_class[rows]]
        p95 = rtt + wl.service_p95_ms[rows][:, None]
        best = np.where(legal, p95, np.inf).min(axis=1)
        out = []
        for k, w in enumerate(rows.tolist()):
            svc = wl.services[int(wl.service[w])]
            bounds = [
                f"p95 <= {wl.slo_p95_ms[w]:g} ms" if np.isfinite(wl.slo_p95_ms[w]) else "",
                f"p99 <= {wl.slo_p99_ms[w]:g} ms" if np.isfinite(wl.slo_p99_ms[w]) else "",
            ]
            slo = ", ".join(b for b in bounds if b)
            out.append(
                f"unschedulable: no allowed site meets the {svc!r} SLO ({slo}) from "
                f"({wl.lat[w]:.4f}, {wl.lon[w]:.4f}); best predicted p95 is {best[k]:.1f} ms"
            )
        return out
