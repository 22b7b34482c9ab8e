"""Filter (never): the target's security tier (1 while untrusted) meets the data class's minimum."""

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
from microdc.policy import tier_with_trust


class SecurityTier(FilterPlugin):
    name: ClassVar[str] = "security_tier"
    kind: ClassVar[Kind] = Kind.NEVER

    def pre_filter(self, state: CycleState, wl: WorkloadTable, fleet: FleetState) -> None:
        tier = tier_with_trust(fleet.tier, fleet.trusted)
        mask = self.ctx.policy.security_mask(list(wl.classes), tier)
        state.batch["security.mask"] = np.asarray(mask, dtype=bool)

    def filter(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> BoolArray:
        mask: BoolArray = state.batch["security.mask"]
        return np.asarray(mask[wl.data_class[rows]])

    def reasons(self, state: CycleState, wl: WorkloadTable, rows: IntArray, fleet: FleetState) -> list[str]:
        out = []
        for w in rows.tolist():
            cls = wl.classes[int(wl.data_class[w])]
            origin = self.ctx.jurisdiction_code(int(wl.origin[w]))
            need = int(self.ctx.policy.min_tier([cls])[0])
            out.append(
                f"unschedulable: no site allowed for {cls!r} from {origin} has security tier "
                f">= {need} (untrusted sites count as tier 1)"
            )
        return out
