"""Array-level capacitated facility location: the problem the fleet planner reduces a scenario to.

The scenario planner turns sites, module options, cloud regions, demand and policies into one
:class:`FacilityProblem`; the solvers (:mod:`microdc.placement.milp`, :mod:`microdc.placement.lagrangian`)
only ever see these arrays, so they can be tested and benchmarked (OR-Library) on their own.

Model (multi-source: a customer's demand may be split)::

    min  sum_f fixed_f y_f + sum_{f,c} cost_fc x_fc + sum_c penalty_c u_c
    s.t. sum_f x_fc + u_c = 1                       for every customer c   (u_c = 0 without penalty)
         sum_c usage_cr x_fc <= capacity_fr y_f     for every facility f, resource r (skipped when inf)
         x_fc <= y_f,  x_fc = 0 where not allowed
         sum_{f in g} y_f <= 1                      for every group g (mutually exclusive options)
         y_f = 1                                    where fixed_open
         y binary, x, u in [0, 1]

``cost_fc`` is the cost of serving *all* of customer c from f, so serving a fraction costs
``x_fc * cost_fc``; ``usage_cr`` likewise is the whole customer's use of resource r.

With ``n_plus = 1`` the redundancy formulation of :mod:`microdc.placement.milp` is added (backup
fractions ``z`` with reserved capacity, see there for the formulation and the proof that losing any
one failure domain leaves a feasible assignment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

SolveStatus = Literal["optimal", "time_limit", "gap_limit", "infeasible", "heuristic"]
#: Status "optimal" means a relative gap of at most this: HiGHS's MIP feasibility tolerance (1e-6), so
#: a smaller gap is its bound's round-off (a 1.5 plan came back with a bound of 1.499999 and HiGHS's own
#: status "optimal"); a larger gap within the requested mip_rel_gap gives "gap_limit".
OPTIMAL_GAP = 1e-6

#: Above this many (F x C) entries a solution's x / z are returned as scipy.sparse CSR arrays.
DENSE_LIMIT = 10_000_000


def _ro(a: NDArray) -> NDArray:
    """A read-only view, so a frozen problem cannot be changed behind the solver's back."""
    v = a.view()
    v.setflags(write=False)
    return v


def _needs_mask(cost: NDArray[np.float64], allowed: NDArray[np.bool_], block: int = 1 << 22) -> bool:
    """Whether some forbidden pair has a cost other than 0 (checked in row blocks: no (F, C) temporary)."""
    step = max(1, block // max(cost.shape[1], 1))
    rows = range(0, cost.shape[0], step)
    return any(bool(np.any(cost[a : a + step][~allowed[a : a + step]] != 0.0)) for a in rows)


@dataclass(frozen=True)
class FacilityProblem:
    """A multi-source capacitated facility location problem (arrays; F facilities, C customers, R resources).

    Shapes are validated on construction; 1-D ``capacity`` / ``usage`` are read as one resource.
    Use :meth:`build` to get sensible defaults for the optional structure (groups, domains, ...).
    """

    fixed_cost: NDArray[np.float64]
    capacity: NDArray[np.float64]
    usage: NDArray[np.float64]
    assign_cost: NDArray[np.float64]
    allowed: NDArray[np.bool_]
    group: NDArray[np.int64]
    fixed_open: NDArray[np.bool_]
    failure_domain: NDArray[np.int64]
    n_plus: int = 0
    unserved_penalty: NDArray[np.float64] | None = None
    facility_names: tuple[str, ...] | None = None
    customer_names: tuple[str, ...] | None = None
    resource_names: tuple[str, ...] | None = None  # e.g. ("cores", "memory_gb"), for messages
    #: At most this many facilities serve any one customer's primary load (0 = no limit).
    max_targets: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        fixed = np.asarray(self.fixed_cost, dtype=np.float64)
        if fixed.ndim != 1:
            raise ValueError(f"fixed_cost must be 1-D (F,), got shape {fixed.shape}")
        n_f = fixed.shape[0]
        if n_f == 0:
            raise ValueError("the problem needs at least one facility")
        if not np.all(np.isfinite(fixed)) or np.any(fixed < 0):
            raise ValueError("fixed_cost must be finite and >= 0")

        cap = np.asarray(self.capacity, dtype=np.float64)
        if cap.ndim == 1:
            cap = cap[:, None]
        if cap.ndim != 2 or cap.shape[0] != n_f:
            raise ValueError(f"capacity must have shape (F={n_f}, R), got {cap.shape}")
        n_r = cap.shape[1]
        if np.any(np.isnan(cap)) or np.any(cap < 0):
            raise ValueError("capacity must be >= 0 (np.inf for unlimited), no NaN")

        usage = np.asarray(self.usage, dtype=np.float64)
        if usage.ndim == 1:
            usage = usage[:, None]
        if usage.ndim != 2 or usage.shape[1] != n_r:
            raise ValueError(f"usage must have shape (C, R={n_r}), got {usage.shape}")
        n_c = usage.shape[0]
        if n_c == 0:
            raise ValueError("the problem needs at least one customer")
        if not np.all(np.isfinite(usage)) or np.any(usage < 0):
            raise ValueError("usage must be finite and >= 0")

        allowed = np.asarray(self.allowed)
        if allowed.dtype != np.bool_:
            raise ValueError(f"allowed must be a boolean array, got dtype {allowed.dtype}")
        if allowed.shape != (n_f, n_c):
            raise ValueError(f"allowed must have shape (F={n_f}, C={n_c}), got {allowed.shape}")

        cost = np.asarray(self.assign_cost, dtype=np.float64)
        if cost.shape != (n_f, n_c):
            raise ValueError(f"assign_cost must have shape (F={n_f}, C={n_c}), got {cost.shape}")
        step = max(1, (1 << 22) // max(n_c, 1))  # row blocks: no (F, C) temporary
        for a in range(0, n_f, step):
            bad = allowed[a : a + step] & ~np.isfinite(cost[a : a + step])
            if bad.any():
                f, c = np.argwhere(bad)[0]
                raise ValueError(f"assign_cost[{a + f}, {c}] is not finite but the pair is allowed")

        group = np.asarray(self.group)
        if group.shape != (n_f,) or not np.issubdtype(group.dtype, np.integer):
            raise ValueError(f"group must be an integer array of shape (F={n_f},)")
        group = group.astype(np.int64)
        if np.any(group < -1):
            raise ValueError("group ids must be >= 0 (or -1 for no group)")

        fixed_open = np.asarray(self.fixed_open)
        if fixed_open.shape != (n_f,) or fixed_open.dtype != np.bool_:
            raise ValueError(f"fixed_open must be a boolean array of shape (F={n_f},)")
        grouped_open = group[fixed_open & (group >= 0)]
        if grouped_open.size and np.unique(grouped_open).size != grouped_open.size:
            raise ValueError("two fixed_open facilities share a group (at most one per group may be open)")

        domain = np.asarray(self.failure_domain)
        if domain.shape != (n_f,) or not np.issubdtype(domain.dtype, np.integer):
            raise ValueError(f"failure_domain must be an integer array of shape (F={n_f},)")
        domain = domain.astype(np.int64)
        if np.any(domain < -1):
            raise ValueError("failure_domain ids must be >= 0 (or -1 = never fails)")

        if self.n_plus not in (0, 1):
            raise ValueError(f"n_plus must be 0 or 1, got {self.n_plus}")

        penalty = self.unserved_penalty
        if penalty is not None:
            penalty = np.asarray(penalty, dtype=np.float64)
            if penalty.shape != (n_c,):
                raise ValueError(f"unserved_penalty must have shape (C={n_c},), got {penalty.shape}")
            if not np.all(np.isfinite(penalty)) or np.any(penalty < 0):
                raise ValueError("unserved_penalty must be finite and >= 0")
            set_(self, "unserved_penalty", _ro(penalty))
        if self.facility_names is not None:
            if len(self.facility_names) != n_f:
                raise ValueError(f"facility_names has {len(self.facility_names)} entries, expected {n_f}")
            set_(self, "facility_names", tuple(self.facility_names))
        if self.customer_names is not None:
            if len(self.customer_names) != n_c:
                raise ValueError(f"customer_names has {len(self.customer_names)} entries, expected {n_c}")
            set_(self, "customer_names", tuple(self.customer_names))
        if self.resource_names is not None:
            if len(self.resource_names) != n_r:
                raise ValueError(f"resource_names has {len(self.resource_names)} entries, expected {n_r}")
            set_(self, "resource_names", tuple(self.resource_names))

        if self.max_targets < 0:
            raise ValueError(f"max_targets must be >= 0 (0 = no limit), got {self.max_targets}")
        # Costs where a pair is forbidden are ignored: store 0 so sums never see inf/NaN (a copy only
        # when some forbidden entry is not 0 already: the planner passes its (F, C) cost masked).
        if _needs_mask(cost, allowed):
            cost = np.where(allowed, cost, 0.0)
        for name, arr in (
            ("fixed_cost", fixed),
            ("capacity", cap),
            ("usage", usage),
            ("assign_cost", cost),
            ("allowed", allowed),
            ("group", group),
            ("fixed_open", fixed_open),
            ("failure_domain", domain),
        ):
            set_(self, name, _ro(arr))

    @classmethod
    def build(
        cls,
        fixed_cost: ArrayLike,
        capacity: ArrayLike,
        usage: ArrayLike,
        assign_cost: ArrayLike,
        *,
        allowed: ArrayLike | None = None,
        group: ArrayLike | None = None,
        fixed_open: ArrayLike | None = None,
        failure_domain: ArrayLike | None = None,
        n_plus: int = 0,
        unserved_penalty: ArrayLike | None = None,
        facility_names: Sequence[str] | None = None,
        customer_names: Sequence[str] | None = None,
        resource_names: Sequence[str] | None = None,
    ) -> FacilityProblem:
        """Construct with defaults: all pairs allowed, no groups, nothing pre-built, a domain per facility."""
        cost = np.asarray(assign_cost, dtype=np.float64)
        n_f = np.asarray(fixed_cost).shape[0]
        return cls(
            fixed_cost=np.asarray(fixed_cost, dtype=np.float64),
            capacity=np.asarray(capacity, dtype=np.float64),
            usage=np.asarray(usage, dtype=np.float64),
            assign_cost=cost,
            allowed=np.ones(cost.shape, bool) if allowed is None else np.asarray(allowed, dtype=bool),
            group=np.full(n_f, -1, np.int64) if group is None else np.asarray(group, dtype=np.int64),
            fixed_open=np.zeros(n_f, bool) if fixed_open is None else np.asarray(fixed_open, dtype=bool),
            failure_domain=(
                np.arange(n_f, dtype=np.int64)
                if failure_domain is None
                else np.asarray(failure_domain, dtype=np.int64)
            ),
            n_plus=n_plus,
            unserved_penalty=None if unserved_penalty is None else np.asarray(unserved_penalty, np.float64),
            facility_names=None if facility_names is None else tuple(facility_names),
            customer_names=None if customer_names is None else tuple(customer_names),
            resource_names=None if resource_names is None else tuple(resource_names),
        )

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n_facilities(self) -> int:
        return int(self.fixed_cost.shape[0])

    @property
    def n_customers(self) -> int:
        return int(self.usage.shape[0])

    @property
    def n_resources(self) -> int:
        return int(self.capacity.shape[1])

    def facility_label(self, f: int) -> str:
        return self.facility_names[f] if self.facility_names is not None else f"facility {f}"

    def customer_label(self, c: int) -> str:
        return self.customer_names[c] if self.customer_names is not None else f"customer {c}"

    def resource_label(self, r: int) -> str:
        return self.resource_names[r] if self.resource_names is not None else f"resource {r}"

    def amount(self, value: float, r: int) -> str:
        """`12 cores` with named resources, `12 of resource 0` without."""
        if self.resource_names is not None:
            return f"{value:.6g} {self.resource_names[r]}"
        return f"{value:.6g} of resource {r}"

    # -- evaluation ------------------------------------------------------------------------------
    def cost_parts(
        self, open_: NDArray[np.bool_], x: NDArray[np.float64] | sp.sparray, unserved: NDArray[np.float64]
    ) -> tuple[float, float, float]:
        """(fixed, assignment, unserved) cost of a solution; forbidden pairs contribute nothing."""
        fixed = float(self.fixed_cost[np.asarray(open_, bool)].sum())
        if sp.issparse(x):
            xs = sp.coo_array(x)  # only the pairs used: never a dense (F, C) product
            assign = float(np.sum(xs.data * self.assign_cost[xs.row, xs.col]))
        else:
            assign = float(np.sum(np.asarray(x) * self.assign_cost))
        pen = 0.0 if self.unserved_penalty is None else float(self.unserved_penalty @ unserved)
        return fixed, assign, pen

    def violations(self, solution: Solution, tol: float = 1e-6) -> list[str]:
        """Every constraint the solution breaks (empty list = feasible); used by tests and as a self-check."""
        out: list[str] = []
        y = np.asarray(solution.open, bool)
        x = solution.x_dense()
        u = np.asarray(solution.unserved, np.float64)
        if self.unserved_penalty is None and np.any(u > tol):
            out.append("customers left unserved although no unserved_penalty is set")
        if np.any(x < -tol) or np.any(x > 1 + tol):
            out.append("x outside [0, 1]")
        if np.any(x[~self.allowed] > tol):
            f, c = np.argwhere((x > tol) & ~self.allowed)[0]
            out.append(f"forbidden pair used: {self.facility_label(f)} serves {self.customer_label(c)}")
        if np.any(x[~y] > tol):
            out.append("a closed facility serves a customer")
        if self.max_targets:
            n_targets = (x > tol).sum(axis=0)
            for c in np.flatnonzero(n_targets > self.max_targets)[:5]:
                out.append(
                    f"{self.customer_label(c)} is served by {n_targets[c]} facilities "
                    f"(at most {self.max_targets})"
                )
        served = x.sum(axis=0) + u
        for c in np.flatnonzero(np.abs(served - 1) > tol)[:5]:
            out.append(f"{self.customer_label(c)} is served {served[c]:.6g} (expected 1)")
        if np.any(~y & self.fixed_open):
            out.append("a fixed_open facility is closed")
        g = self.group[y & (self.group >= 0)]
        if g.size != np.unique(g).size:
            out.append("two facilities of one group are open")
        load_x = x.copy()
        z = solution.z_dense()
        if self.n_plus:
            if z is None:
                out.append("n_plus=1 but the solution has no backup assignment z")
            else:
                if np.any(z < -tol) or np.any(z[~self.allowed] > tol) or np.any(z[~y] > tol):
                    out.append("backup z uses a negative, forbidden or closed pair")
                if np.any(z.sum(axis=0) + u - 1 > tol) or np.any(z.sum(axis=0) + u - 1 < -tol):
                    out.append("backup fractions do not sum to 1 - unserved")
                if np.any(x + z > 1 + tol):
                    out.append("x + z exceeds 1")
                load_x = load_x + z
                for d in np.unique(self.failure_domain[self.failure_domain >= 0]):
                    in_d = self.failure_domain == d
                    share = (x[in_d] + z[in_d]).sum(axis=0) + u
                    if np.any(share > 1 + tol):
                        c = int(np.argmax(share))
                        out.append(f"failure domain {d} holds {share[c]:.6g} > 1 of {self.customer_label(c)}")
        load = load_x @ self.usage  # (F, R)
        finite = np.isfinite(self.capacity)
        cap = np.where(finite, self.capacity, 0.0) * y[:, None]
        over = finite & (load > cap + tol * np.maximum(1.0, cap))
        for f, r in np.argwhere(over)[:5]:
            out.append(
                f"{self.facility_label(f)} {self.resource_label(r)}: load {load[f, r]:.6g} "
                f"> capacity {cap[f, r]:.6g}"
            )
        return out


@dataclass
class Solution:
    """A solution with its proof quality: objective, a valid lower bound and the relative gap between them."""

    open: NDArray[np.bool_]
    x: NDArray[np.float64] | sp.csr_array
    z: NDArray[np.float64] | sp.csr_array | None
    unserved: NDArray[np.float64]
    objective: float
    lower_bound: float
    status: SolveStatus
    seconds: float = 0.0
    nodes: int = 0
    fixed_part: float = 0.0
    assignment_part: float = 0.0
    unserved_part: float = 0.0
    #: The constant part of the objective: penalties of customers with no allowed facility at all. No
    #: plan can change it, so the relative gap leaves it out (it would make any gap look small).
    unservable_part: float = 0.0
    method: str = ""
    messages: list[str] = field(default_factory=list)
    #: Seconds per phase of the pipeline that made it (placement.solve; the planner adds its own).
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def controllable(self) -> float:
        """The cost a plan can change: objective minus the unservable penalties."""
        return self.objective - self.unservable_part

    @property
    def gap(self) -> float:
        """(objective - lower_bound) / max(|controllable cost|, 1e-9); inf when there is no solution."""
        if not np.isfinite(self.objective):
            return float("inf")
        return max(0.0, (self.objective - self.lower_bound) / max(abs(self.controllable), 1e-9))

    @property
    def open_facilities(self) -> list[int]:
        return [int(f) for f in np.flatnonzero(self.open)]

    def x_dense(self) -> NDArray[np.float64]:
        """x as a dense (F, C) array (it is stored sparse above DENSE_LIMIT entries)."""
        return self.x if isinstance(self.x, np.ndarray) else np.asarray(self.x.toarray())

    def z_dense(self) -> NDArray[np.float64] | None:
        if self.z is None or isinstance(self.z, np.ndarray):
            return self.z
        return np.asarray(self.z.toarray())

    def summary(self) -> dict[str, object]:
        """A JSON-friendly digest (what the CLI and benchmarks print)."""
        return {
            "status": self.status,
            "objective": self.objective,
            "lower_bound": self.lower_bound,
            "gap": self.gap,
            "seconds": self.seconds,
            "nodes": self.nodes,
            "open_facilities": self.open_facilities,
            "fixed_cost": self.fixed_part,
            "assignment_cost": self.assignment_part,
            "unserved_cost": self.unserved_part,
            "unservable_cost": self.unservable_part,
            "method": self.method,
        }


def pairs_to_matrix(
    shape: tuple[int, int], rows: NDArray[np.int64], cols: NDArray[np.int64], values: NDArray[np.float64]
) -> NDArray[np.float64] | sp.csr_array:
    """Scatter pair values into an (F, C) matrix: dense up to DENSE_LIMIT entries, CSR above."""
    keep = values > 1e-12
    if shape[0] * shape[1] <= DENSE_LIMIT:
        out = np.zeros(shape)
        np.add.at(out, (rows[keep], cols[keep]), values[keep])
        return out
    return sp.csr_array((values[keep], (rows[keep], cols[keep])), shape=shape)


def make_solution(
    problem: FacilityProblem,
    open_: NDArray[np.bool_],
    x: NDArray[np.float64] | sp.csr_array,
    z: NDArray[np.float64] | sp.csr_array | None,
    unserved: NDArray[np.float64],
    *,
    lower_bound: float,
    status: SolveStatus,
    seconds: float = 0.0,
    nodes: int = 0,
    method: str = "",
    messages: list[str] | None = None,
) -> Solution:
    """Assemble a Solution; objective and parts are recomputed from the arrays, not taken from a solver."""
    fixed, assign, pen = problem.cost_parts(open_, x, unserved)
    obj = fixed + assign + pen
    return Solution(
        open=np.asarray(open_, bool),
        x=x,
        z=z,
        unserved=np.asarray(unserved, np.float64),
        objective=obj,
        lower_bound=min(lower_bound, obj),
        status=status,
        seconds=seconds,
        nodes=nodes,
        fixed_part=fixed,
        assignment_part=assign,
        unserved_part=pen,
        method=method,
        messages=list(messages or []),
    )


def infeasible_solution(
    problem: FacilityProblem, *, seconds: float = 0.0, method: str = "", messages: list[str] | None = None
) -> Solution:
    """The Solution returned when no feasible plan exists (objective = +inf, bound = +inf)."""
    n_f, n_c = problem.n_facilities, problem.n_customers
    return Solution(
        open=np.zeros(n_f, bool),
        x=np.zeros((n_f, n_c)) if n_f * n_c <= DENSE_LIMIT else sp.csr_array((n_f, n_c)),
        z=None,
        unserved=np.zeros(n_c),
        objective=float("inf"),
        lower_bound=float("inf"),
        status="infeasible",
        seconds=seconds,
        method=method,
        messages=list(messages or []),
    )


def diagnose_infeasibility(problem: FacilityProblem) -> list[str]:
    """Plain-language reasons a problem cannot be feasible (empty list = no obvious reason found).

    Checks, cheapest first: customers with no allowed facility; customers whose allowed facilities
    together lack capacity for them (per resource); overall capacity shortfall (per resource, taking
    groups into account: at most the largest option of a group can be open). With ``n_plus = 1`` the
    backup needs capacity too, so demand counts twice and a customer needs two failure domains.
    Customers that may go unserved (``unserved_penalty``) never make the problem infeasible.
    """
    if problem.unserved_penalty is not None:
        return []
    msgs: list[str] = []
    allowed = problem.allowed
    mult = 1 + problem.n_plus
    for c in np.flatnonzero(~allowed.any(axis=0)):
        msgs.append(f"{problem.customer_label(int(c))} has no allowed facility")
    cap = problem.capacity
    usage = problem.usage
    grp = problem.group
    # What each customer's allowed facilities can offer at most (per group only its best option).
    is_inf = np.isinf(cap)
    capf = np.where(is_inf, 0.0, cap)
    ung = grp < 0
    al = allowed.astype(np.float64)
    total = al[ung].T @ capf[ung]  # (C, R)
    unlimited: NDArray[np.bool_] = (al[ung].T @ is_inf[ung].astype(np.float64)) > 0
    gcap = np.where(ung[:, None], capf, 0.0)  # per-facility capacity counted in the overall total
    ginf = is_inf & ung[:, None]
    for g in np.unique(grp[grp >= 0]):
        members = np.flatnonzero(grp == g)
        am = allowed[members]  # (k, C)
        total += np.max(np.where(am[:, :, None], capf[members][:, None, :], 0.0), axis=0)
        unlimited |= np.any(am[:, :, None] & is_inf[members][:, None, :], axis=0)
        gcap[members[0]] = capf[members].max(axis=0)
        ginf[members[0]] = is_inf[members].any(axis=0)
    short = ~unlimited & (total < mult * usage * (1 - 1e-12))
    reachable = np.asarray(allowed.any(axis=0), dtype=bool)
    for c, r in np.argwhere(short & reachable[:, None]):
        msgs.append(
            f"{problem.customer_label(int(c))} needs {problem.amount(mult * usage[c, r], int(r))} but its "
            f"allowed facilities offer only {total[c, r]:.6g} together"
        )
    if problem.n_plus:
        # Primary and backup together are 2 units, at most 1 per domain (and per facility).
        dom = problem.failure_domain
        n_dom = int(dom.max(initial=-1)) + 1
        units = (allowed & (dom < 0)[:, None]).sum(axis=0)
        if n_dom:
            onehot = np.zeros((n_dom, problem.n_facilities))
            onehot[dom[dom >= 0], np.flatnonzero(dom >= 0)] = 1.0
            units = units + ((onehot @ al) > 0).sum(axis=0)
        for c in np.flatnonzero(reachable & (units < 2)):
            msgs.append(
                f"{problem.customer_label(int(c))} needs a backup in another failure domain but all its "
                "allowed facilities are in one domain"
            )
    need = mult * usage.sum(axis=0)
    have = gcap.sum(axis=0)
    for r in np.flatnonzero(~ginf.any(axis=0) & (have < need * (1 - 1e-12))):
        msgs.append(
            f"total demand for {problem.resource_label(int(r))} is {need[r]:.6g} but all facilities offer "
            f"only {have[r]:.6g}"
        )
    return msgs
