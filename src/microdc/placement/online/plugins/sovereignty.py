"""Filter (never): the workload's data may be processed and stored at the target (policy.PolicyBook)."""

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


class Sovereignty(FilterPlugin):
    name: ClassVar[str] = "sovereignty"
    kind: ClassVar[Kind] = Kind.NEVER

    def pre_filter(self, state: CycleState, wl: WorkloadTable, fleet: FleetState) -> None:
        # One mask row per (data class, origin) group: W is large, groups are few.
        key = wl.data_class * (int(wl.origin.max(initial=0)) + 1) + wl.origin
        uniq, group = np.unique(key, return_inverse=True)
        first = np.zeros(uniq.size, dtype=np.int64)
        first[group[::-1]] = np.arange(len(wl))[::-1]
        classes = [wl.classes[i] for i in wl.data_class[first].tolist()]
        mask = self.ctx.policy.sovereignty_mask(classes, wl.origin[first], fleet.jurisdiction)
        state.batch["sovereignty.group"] = group.astype(np.int64)
        state.batch["sovereignty.mask"] = np.asarray(mask, dtype=bool)

    def filter(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> BoolArray:
        mask: BoolArray = state.batch["sovereignty.mask"]
        return np.asarray(mask[state.batch["sovereignty.group"][rows]])

    def reasons(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> list[str]:
        out = []
        for w in rows.tolist():
            cls = wl.classes[int(wl.data_class[w])]
            origin = self.ctx.jurisdiction_code(int(wl.origin[w]))
            out.append(f"unschedulable: no site inside the jurisdictions allowed for {cls!r} from {origin}")
        return out
