"""The one place that says what may run or be stored where.

Planner, online placer, simulator, control plane and agent all ask this module; none re-implements
it. Everything is vectorized: a rule is evaluated for (workloads × targets) in one call.

- Sovereignty: a data class made in jurisdiction J may be processed (and stored) only inside the
  jurisdictions its policy allows: `origin` (J itself), `any`, or named codes.
- Security: the target's physical security tier must be at least the class's minimum; an untrusted
  (broken-into) site counts as tier 1, the lowest.
- Sync: raw data may leave a site only to a place inside its store rule; aggregates may leave
  anywhere when the policy says `aggregates_may_leave`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from microdc.model.jurisdiction import JurisdictionTree
from microdc.model.policies import DataClassPolicy, Where

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

UNTRUSTED_TIER = 1  # a broken-into site is no better than a street cabinet


def _containers(where: Where, origin: int, tree: JurisdictionTree) -> BoolArray:
    """Mask over jurisdictions (J,) of the containers a rule allows for data made in `origin`."""
    out = np.zeros(len(tree.codes), dtype=bool)
    if where == "any":
        out[:] = True
    elif where == "origin":
        out[origin] = True
    else:
        for code in [where] if isinstance(where, str) else where:
            out[tree.index[code]] = True
    return out


@dataclass(frozen=True)
class PolicyBook:
    """Policies compiled against a jurisdiction tree, ready for vectorized questions."""

    tree: JurisdictionTree
    policies: dict[str, DataClassPolicy]

    def process_containers(self, data_class: Sequence[str], origin: IntArray) -> BoolArray:
        """(W, J) mask: the jurisdictions each workload may be processed in (then 'inside' applies)."""
        return self._containers(data_class, origin, store=False)

    def store_containers(self, data_class: Sequence[str], origin: IntArray) -> BoolArray:
        return self._containers(data_class, origin, store=True)

    def _containers(self, data_class: Sequence[str], origin: IntArray, *, store: bool) -> BoolArray:
        out = np.zeros((len(data_class), len(self.tree.codes)), dtype=bool)
        cache: dict[tuple[str, int], BoolArray] = {}
        for w, (cls, org) in enumerate(zip(data_class, origin.tolist(), strict=True)):
            key = (cls, org)
            if key not in cache:
                pol = self.policies[cls]
                where = pol.store_in if store and pol.store_in is not None else pol.process_in
                cache[key] = _containers(where, org, self.tree)
            out[w] = cache[key]
        return out

    def sovereignty_mask(
        self, data_class: Sequence[str], origin: IntArray, target_jurisdiction: IntArray
    ) -> BoolArray:
        """(W, T): may workload w be processed and its data stored at target t."""
        proc = self.process_containers(data_class, origin)
        store = self.store_containers(data_class, origin)
        inside = self.tree.inside[target_jurisdiction]  # (T, J)
        ok_proc = (proc.astype(np.uint8) @ inside.T.astype(np.uint8)) > 0
        ok_store = (store.astype(np.uint8) @ inside.T.astype(np.uint8)) > 0
        return np.asarray(ok_proc & ok_store)

    def min_tier(self, data_class: Sequence[str]) -> IntArray:
        return np.fromiter((self.policies[c].min_security_tier for c in data_class), dtype=np.int64)

    def security_mask(self, data_class: Sequence[str], target_tier: IntArray) -> BoolArray:
        """(W, T): target tier (1 if untrusted) meets the class's minimum."""
        return np.asarray(self.min_tier(data_class)[:, None] <= target_tier[None, :])

    def may_sync(self, data_class: str, origin: str, destination: str, *, aggregate: bool) -> bool:
        """May data of this class (raw or aggregated) made in `origin` be sent to `destination`."""
        pol = self.policies[data_class]
        if aggregate and pol.aggregates_may_leave:
            return True
        where = pol.store_in if pol.store_in is not None else pol.process_in
        containers = _containers(where, self.tree.index[origin], self.tree)
        return bool((self.tree.inside[self.tree.index[destination]] & containers).any())


def slo_mask(predicted_p95_ms: npt.NDArray[np.float64], slo_p95_ms: npt.NDArray[np.float64]) -> BoolArray:
    """(W, T): the predicted p95 response time (network + service) meets the workload's SLO."""
    return np.asarray(predicted_p95_ms <= slo_p95_ms[:, None])


def tier_with_trust(tier: IntArray, trusted: BoolArray) -> IntArray:
    """Untrusted sites (a break-in, a failed attestation) keep only what a tier-1 street cabinet may hold."""
    return np.where(trusted, tier, UNTRUSTED_TIER).astype(np.int64)
