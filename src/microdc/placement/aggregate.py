"""Exact aggregation of interchangeable customers before solving.

Two customers whose allowed facilities are the same and whose cost row, usage row and unserved
penalty are all proportional to one scale (same service and profile: cost and use both grow with the
load) can be merged into one customer carrying the sum: any plan of the merged problem gives each of
them the same fractions at the same total cost and load, and any plan of the original problem maps to
the merged one by load-weighted averaging of their fractions (every per-customer constraint is convex,
and capacity and cost only see sums). So the optimum, the bound and the plan are unchanged — but a
city's hundreds of demand sources become a handful of customers, and the MILP shrinks accordingly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from microdc.placement.facility import (
    DENSE_LIMIT,
    FacilityProblem,
    Solution,
    infeasible_solution,
    make_solution,
)

IntArray = npt.NDArray[np.int64]
Matrix: TypeAlias = npt.NDArray[np.float64] | sp.csr_array
DIGITS = 9  # relative precision at which two normalized rows count as equal


@dataclass(frozen=True)
class Aggregation:
    problem: FacilityProblem  # the merged problem
    members: IntArray  # (C,) index of the merged customer each original customer belongs to

    @property
    def reduced(self) -> bool:
        return self.problem.n_customers < len(self.members)


def _signatures(p: FacilityProblem, scale: npt.NDArray[np.float64], block: int = 1 << 22) -> Iterator[bytes]:
    """Each customer's signature, in order (a generator: only the distinct ones are ever kept); columns
    are cut out in blocks and transposed once, so a customer's column is contiguous (reading (F, C)
    arrays column by column is what made this slow at city size)."""
    step = max(1, block // max(p.n_facilities, 1))
    for a in range(0, p.n_customers, step):
        b = min(a + step, p.n_customers)
        al = np.ascontiguousarray(p.allowed[:, a:b].T)
        co = np.ascontiguousarray(p.assign_cost[:, a:b].T)
        for c in range(a, b):
            yield _signature(p, c, float(scale[c]), al[c - a], co[c - a])


def _signature(
    p: FacilityProblem, c: int, scale: float, allowed: npt.NDArray[np.bool_], cost: npt.NDArray[np.float64]
) -> bytes:
    parts = [
        np.packbits(allowed).tobytes(),
        np.round(p.usage[c] / scale, DIGITS).tobytes(),
        np.round(np.where(allowed, cost, 0.0) / scale, DIGITS).tobytes(),
    ]
    if p.unserved_penalty is not None:
        parts.append(np.round(np.array([p.unserved_penalty[c] / scale]), DIGITS).tobytes())
    return b"|".join(parts)


def _merged_names(p: FacilityProblem, members: IntArray, k: int, shown: int = 3) -> tuple[str, ...]:
    """A merged customer is named by the customers it holds ("a + b + c + 4 more"), so a message about
    it (e.g. why the problem is infeasible) still names things the user wrote, never an index."""
    heads: list[list[str]] = [[] for _ in range(k)]
    for c, g in enumerate(members.tolist()):
        if len(heads[g]) < shown:
            heads[g].append(p.customer_label(c))
    sizes = np.bincount(members, minlength=k)
    return tuple(
        " + ".join(head) + (f" + {int(n) - shown} more" if n > shown else "")
        for head, n in zip(heads, sizes, strict=True)
    )


def aggregate_customers(p: FacilityProblem) -> Aggregation:
    """Merge customers with identical allowed sets and proportional cost/usage/penalty rows."""
    n_c = p.n_customers
    scale = p.usage.sum(axis=1)
    members = np.arange(n_c, dtype=np.int64)
    if np.any(scale <= 0):
        return Aggregation(p, members)  # a zero-use customer has no scale to compare by; keep as is
    groups: dict[bytes, int] = {}
    for c, sig in enumerate(_signatures(p, scale)):
        members[c] = groups.setdefault(sig, len(groups))
    k = len(groups)
    if k == n_c:
        return Aggregation(p, members)
    onehot = np.zeros((n_c, k))
    onehot[np.arange(n_c), members] = 1.0
    first = np.array([np.flatnonzero(members == g)[0] for g in range(k)])
    merged = replace(
        p,
        usage=onehot.T @ p.usage,
        assign_cost=p.assign_cost @ onehot,
        allowed=p.allowed[:, first],
        unserved_penalty=None if p.unserved_penalty is None else onehot.T @ p.unserved_penalty,
        customer_names=_merged_names(p, members, k),
    )
    return Aggregation(merged, members)


def expand_solution(original: FacilityProblem, agg: Aggregation, sol: Solution) -> Solution:
    """Give every original customer its merged customer's fractions; costs are recomputed on the original."""
    if not agg.reduced:
        return sol
    if not np.isfinite(sol.objective):
        # No plan (infeasible, or none found within the time limit): stay "no plan". Recomputing the
        # objective from the all-zero arrays would turn it into a plan that costs 0 and serves nothing.
        none = infeasible_solution(original, seconds=sol.seconds, method=sol.method, messages=sol.messages)
        none.status = sol.status
        none.lower_bound = sol.lower_bound
        none.nodes = sol.nodes
        return none
    m = agg.members

    def widen(a: Matrix | None) -> Matrix | None:
        """Merged columns back to the original customers; CSR when the result would be large."""
        if a is None:
            return None
        if sp.issparse(a) or original.n_facilities * original.n_customers > DENSE_LIMIT:
            return sp.csr_array(sp.csr_array(a)[:, m])
        return np.asarray(a)[:, m]

    x = widen(sol.x)
    z = widen(sol.z)
    out = make_solution(
        original,
        sol.open,
        x,
        z,
        np.asarray(sol.unserved)[m],
        lower_bound=sol.lower_bound,
        status=sol.status,
        seconds=sol.seconds,
        nodes=sol.nodes,
        method=sol.method,
        messages=sol.messages,
    )
    out.messages.append(
        f"{original.n_customers} demand sources solved as {agg.problem.n_customers} exact aggregates"
    )
    return out
