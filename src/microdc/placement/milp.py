"""Exact solution of a :class:`FacilityProblem` with HiGHS: vectorized model build, MILP and LP solves.

The model is built from the arrays in whole blocks (COO triplets → one CSR matrix → one ``passModel``
call), with variables only for allowed (facility, customer) pairs, so capa (100 × 1000, 100k pairs)
builds in milliseconds. :func:`solve_milp` (alias :func:`solve`) is the planner's entry point: a
Lagrangian heuristic gives an incumbent and a bound, reduced-cost fixing and probing remove
facilities that provably cannot be in a better plan, and HiGHS proves optimality on what is left
(warm-started with the incumbent). Small problems go to HiGHS directly.

Formulation ("strong"). The benchmark baselines solve it with HiGHS alone: "textbook" drops the rows
marked * ([K], [N]; all capacity rows kept), "weak" also drops [L] (capacity rows are then the only
link between x and y, with big-M = total allowed usage where capacity is unlimited)::

    min  sum_f fixed_f y_f + sum_{allowed f,c} cost_fc x_fc + sum_c pen_c u_c
    [A]  sum_f x_fc + u_c = 1                                  each customer c
    [C]  sum_c usage_cr (x_fc + z_fc) <= cap_fr y_f            each f, r with finite capacity
    [L]  x_fc + z_fc <= y_f                                    each allowed pair (strong linking)
    [G]  sum_{f in g} y_f <= 1                                 each group g
    [K]* sum_f cap_fr y_f >= (1 + n_plus) sum_c usage_cr       each r with all capacities finite,
                                                               only when nothing may go unserved
    [N]* sum_f y_f >= k_min                                    fewest facilities (one per group) whose
                                                               capacities can reach that total
    [M]* MIR of  sum_{f finite} cap_fr y_f + s_r >= m D_r  (capacity rows + usage-weighted [A]/[B];
         s_r = sum_c usage_cr (m u_c + sum_{f uncapacitated} (x_fc + z_fc)), m = 1 + n_plus), once per
         distinct capacity, only when [K] does not apply (unserved demand or uncapacitated targets)
    [T]* sum_{f of kind t} y_f = N_t, N_t integer        each capacity kind t (identical capacity
                                                         vectors; only with [M], only when kinds are few)
    y_f = 1 for fixed_open, y binary, x, z, u in [0, 1].

Capacity rows that [L] makes redundant (all allowed usage fits) are skipped. The x ≤ y rows are what
makes the LP bound useful; [K] and [N] are valid only for integer y and cut off fractional "6.4
facilities" solutions of capacity-tight instances. [M] does the same where some demand may go to the
cloud or unserved (the city: a constant [K] would be invalid there), and [T] adds no constraint (N_t is
integer whenever y is) but gives the search one variable per kind to branch on: `solve_restricted`
branches on the LP's most fractional N_t itself before HiGHS (HiGHS would pick one of thousands of
near-identical y instead), the second branch stopped once its bound reaches the first one's plan.

Redundancy (``n_plus = 1``): dedicated backup assignment with reserved capacity::

    [B]  sum_f z_fc + u_c = 1                                  each customer c (backup fractions)
    [L]  x_fc + z_fc <= y_f                                    (primary and backup of c not stacked)
    [D]  sum_{f in d} (x_fc + z_fc) + u_c <= 1                 each customer c, failure domain d >= 0
    [C]  capacity counts x + z: backup capacity is *reserved*, not shared between failure scenarios
         (conservative: a pooled-backup model that shares spare capacity across failures would need
         one capacity row per failure scenario; this one is simpler and never over-commits).

Claim: for any feasible (y, x, z, u) and any failure domain d, there is an assignment using only
open facilities outside d that serves every customer to the same level 1 - u_c within capacity.
Proof: fix d and c. Let L = sum_{f in d} x_fc (primary lost) and S = sum_{f not in d} z_fc (backup
that survives). By [B], S = 1 - u_c - sum_{f in d} z_fc, and by [D], L + sum_{f in d} z_fc <= 1 - u_c,
so L <= S. Put x'_fc = x_fc + (L / S) z_fc for f not in d (x' = x_fc if S = 0, then L = 0 too).
Then sum_{f not in d} x'_fc = (1 - u_c - L) + L = 1 - u_c; x'_fc <= x_fc + z_fc <= y_f, so only open,
allowed pairs are used; and for every surviving f and r, sum_c usage_cr x'_fc <= sum_c usage_cr
(x_fc + z_fc) <= cap_fr y_f by [C]. Facilities with failure_domain = -1 are never in d. ∎
(tests/placement/test_facility_redundancy.py re-solves that LP for every domain to check it.)
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import highspy
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from microdc.placement.facility import (
    OPTIMAL_GAP,
    FacilityProblem,
    Solution,
    SolveStatus,
    diagnose_infeasibility,
    infeasible_solution,
    make_solution,
    pairs_to_matrix,
)

Formulation = Literal["strong", "textbook", "weak"]


@dataclass(frozen=True)
class ProgressEvent:
    """What a progress hook sees: phase ("lagrangian" | "milp"), elapsed seconds, incumbent, bound."""

    phase: str
    seconds: float
    objective: float
    bound: float
    nodes: int = 0
    message: str = ""

    @property
    def gap(self) -> float:
        if not np.isfinite(self.objective):
            return float("inf")
        return max(0.0, (self.objective - self.bound) / max(abs(self.objective), 1e-9))


#: A progress hook; returning True asks the solver to stop early (e.g. the user pressed Ctrl-C).
ProgressHook = Callable[[ProgressEvent], bool | None]


# ------------------------------------------------------------------------------------------------
# Model building
# ------------------------------------------------------------------------------------------------
@dataclass
class _Rows:
    """COO accumulator for constraint blocks (one append per block, never per coefficient)."""

    rows: list[NDArray[np.int64]] = field(default_factory=list)
    cols: list[NDArray[np.int64]] = field(default_factory=list)
    vals: list[NDArray[np.float64]] = field(default_factory=list)
    lower: list[NDArray[np.float64]] = field(default_factory=list)
    upper: list[NDArray[np.float64]] = field(default_factory=list)
    n: int = 0

    def block(
        self,
        n_rows: int,
        rows: NDArray[np.int64],
        cols: NDArray[np.int64],
        vals: NDArray[np.float64],
        lower: NDArray[np.float64] | float,
        upper: NDArray[np.float64] | float,
    ) -> int:
        """Append n_rows rows (row ids local to the block); returns the first global row id."""
        start = self.n
        self.rows.append(np.asarray(rows, np.int64) + start)
        self.cols.append(np.asarray(cols, np.int64))
        self.vals.append(np.asarray(vals, np.float64))
        self.lower.append(np.broadcast_to(np.asarray(lower, np.float64), (n_rows,)))
        self.upper.append(np.broadcast_to(np.asarray(upper, np.float64), (n_rows,)))
        self.n += n_rows
        return start


@dataclass
class Model:
    """A built HiGHS model and the map from its columns back to the problem's arrays."""

    problem: FacilityProblem
    facilities: NDArray[np.int64]  # problem facility index of each y column (or of each open facility)
    pf: NDArray[np.int64]  # facility of each pair column
    pc: NDArray[np.int64]  # customer of each pair column
    y0: int  # first y column (-1 when y is fixed, i.e. an assignment LP)
    x0: int
    z0: int  # -1 without redundancy
    u0: int  # -1 without unserved penalty
    num_col: int
    num_row: int
    col_cost: NDArray[np.float64]
    col_lower: NDArray[np.float64]
    col_upper: NDArray[np.float64]
    row_lower: NDArray[np.float64]
    row_upper: NDArray[np.float64]
    matrix: sp.csr_array
    integer: bool
    assign_row0: int = 0
    cap_rows: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    cap_facility: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    cap_resource: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))
    w0: int = -1  # first "serves" indicator column (-1 without a split limit)
    w_pairs: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))  # pair of each w
    t0: int = -1  # first kind-count column [T] (-1 without)
    kind: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, np.int64))  # kind of each y (-1)

    @property
    def n_kinds(self) -> int:
        return int(self.kind.max(initial=-1)) + 1

    @property
    def n_pairs(self) -> int:
        return int(self.pf.shape[0])

    def to_highs(self, highs: highspy.Highs) -> None:
        """Pass the whole model in one call (rowwise CSR)."""
        a = self.matrix
        integrality = np.zeros(self.num_col, np.int32)
        if self.integer and self.y0 >= 0:
            integrality[self.y0 : self.y0 + self.facilities.shape[0]] = 1
        if self.integer and self.w0 >= 0:
            integrality[self.w0 : self.w0 + self.w_pairs.shape[0]] = 1
        if self.integer and self.t0 >= 0:
            integrality[self.t0 : self.t0 + self.n_kinds] = 1
        _check(
            pass_model(
                highs, a, self.col_cost, self.col_lower, self.col_upper, self.row_lower, self.row_upper,
                integrality,
            ),
            "passModel",
        )  # fmt: skip

    def column_values(self, solution: Solution) -> NDArray[np.float64]:
        """Column vector of a Solution in this model (for HiGHS warm starts)."""
        v = np.zeros(self.num_col)
        x = solution.x_dense()
        if self.y0 >= 0:
            v[self.y0 : self.y0 + self.facilities.shape[0]] = solution.open[self.facilities].astype(float)
        v[self.x0 : self.x0 + self.n_pairs] = x[self.pf, self.pc]
        if self.z0 >= 0:
            z = solution.z_dense()
            if z is not None:
                v[self.z0 : self.z0 + self.n_pairs] = z[self.pf, self.pc]
        if self.u0 >= 0:
            v[self.u0 : self.u0 + self.problem.n_customers] = solution.unserved
        if self.w0 >= 0:
            served = x[self.pf[self.w_pairs], self.pc[self.w_pairs]] > 0
            v[self.w0 : self.w0 + self.w_pairs.shape[0]] = served.astype(float)
        if self.t0 >= 0:
            k = self.kind >= 0
            opened = solution.open[self.facilities[k]].astype(float)
            v[self.t0 : self.t0 + self.n_kinds] = np.bincount(
                self.kind[k], weights=opened, minlength=self.n_kinds
            )
        return v

    def extract(
        self, values: NDArray[np.float64]
    ) -> tuple[
        NDArray[np.bool_],
        NDArray[np.float64] | sp.csr_array,
        NDArray[np.float64] | sp.csr_array | None,
        NDArray[np.float64],
    ]:
        """(open, x, z, unserved) in problem shape from a HiGHS column vector (rounded/clipped)."""
        p = self.problem
        shape = (p.n_facilities, p.n_customers)
        open_ = p.fixed_open.copy()
        if self.y0 >= 0:
            open_[self.facilities] |= values[self.y0 : self.y0 + self.facilities.shape[0]] > 0.5
        else:
            open_[self.facilities] = True
        xv = np.clip(values[self.x0 : self.x0 + self.n_pairs], 0.0, 1.0)
        if self.w0 >= 0:  # a pair whose indicator is off serves nothing (drop solver round-off)
            off = values[self.w0 : self.w0 + self.w_pairs.shape[0]] < 0.5
            xv[self.w_pairs[off]] = 0.0
        x = pairs_to_matrix(shape, self.pf, self.pc, xv)
        z = None
        if self.z0 >= 0:
            zv = np.clip(values[self.z0 : self.z0 + self.n_pairs], 0.0, 1.0)
            z = pairs_to_matrix(shape, self.pf, self.pc, zv)
        u = np.zeros(p.n_customers)
        if self.u0 >= 0:
            u = np.clip(values[self.u0 : self.u0 + p.n_customers], 0.0, 1.0)
        return open_, x, z, u


def pass_model(
    highs: highspy.Highs,
    a: sp.csr_array,
    col_cost: NDArray[np.float64],
    col_lower: NDArray[np.float64],
    col_upper: NDArray[np.float64],
    row_lower: NDArray[np.float64],
    row_upper: NDArray[np.float64],
    integrality: NDArray[np.int32],
) -> highspy.HighsStatus:
    """Hand HiGHS a whole minimisation model in one call: the rows as one CSR matrix ``a``."""
    if (
        not col_cost.shape[0]
        == col_lower.shape[0]
        == col_upper.shape[0]
        == integrality.shape[0]
        == a.shape[1]
    ):
        raise ValueError("a HiGHS model needs one cost, bound and integrality entry per column of its matrix")
    return highs.passModel(
        int(col_cost.shape[0]),
        int(a.shape[0]),
        int(a.nnz),
        int(highspy.MatrixFormat.kRowwise),
        int(highspy.ObjSense.kMinimize),
        0.0,
        col_cost,
        col_lower,
        col_upper,
        row_lower,
        row_upper,
        a.indptr.astype(np.int32),
        a.indices.astype(np.int32),
        a.data.astype(np.float64),
        integrality,
    )


def _check(status: highspy.HighsStatus, what: str) -> None:
    if status == highspy.HighsStatus.kError:
        raise RuntimeError(f"HiGHS {what} failed")


def _run(h: highspy.Highs, what: str) -> None:
    """h.run(), retrying once after resetting HiGHS's global thread pool.

    HiGHS refuses to run when the ``threads`` option differs from the pool it created on first use
    (e.g. a benchmark with --threads 1 after a default solve in the same process).
    """
    status = h.run()
    if status == highspy.HighsStatus.kError:
        highspy.Highs.resetGlobalScheduler(True)
        status = h.run()
    _check(status, what)


def allowed_pairs(
    problem: FacilityProblem, facilities: NDArray[np.int64], pair_mask: NDArray[np.bool_] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(facility, customer) of every allowed pair among the given facilities, sorted by facility."""
    sub = problem.allowed[facilities]
    if pair_mask is not None:
        sub = sub & pair_mask[facilities]
    i, c = np.nonzero(sub)
    return facilities[i].astype(np.int64), c.astype(np.int64)


def build_model(
    problem: FacilityProblem,
    *,
    facilities: NDArray[np.int64] | None = None,
    fixed_open_set: bool = False,
    integer: bool = True,
    formulation: Formulation = "strong",
    force_open: NDArray[np.int64] | None = None,
    pair_mask: NDArray[np.bool_] | None = None,
) -> Model:
    """Build the MILP (or its LP relaxation, or the assignment LP for a given open set).

    ``facilities`` restricts the candidate facilities (others are closed; used after reduced-cost
    fixing). ``fixed_open_set=True`` treats all of ``facilities`` as open with no y columns: the
    transportation LP whose optimum is the best assignment for that open set. ``force_open`` gives
    facilities whose y is fixed to 1 (besides ``fixed_open``). ``pair_mask`` (F, C) further restricts
    the pairs that get columns (a heuristic restriction: the result is a feasible plan, not a bound).
    """
    p = problem
    n_c, n_r = p.n_customers, p.n_resources
    fac = (
        np.arange(p.n_facilities, dtype=np.int64) if facilities is None else np.asarray(facilities, np.int64)
    )
    fac = np.unique(fac)
    pf, pc = allowed_pairs(p, fac, pair_mask)
    n_p = pf.shape[0]
    strong = formulation == "strong"  # our extras: cover, cardinality, redundant-row skipping
    linking = formulation in ("strong", "textbook")
    has_y = not fixed_open_set
    n_y = fac.shape[0] if has_y else 0
    redundancy = p.n_plus > 0
    pen = p.unserved_penalty

    y0 = 0 if has_y else -1
    x0 = n_y
    z0 = x0 + n_p if redundancy else -1
    u0 = (x0 + n_p * (2 if redundancy else 1)) if pen is not None else -1
    num_col = x0 + n_p * (2 if redundancy else 1) + (n_c if pen is not None else 0)
    # [S] split limit: a binary "serves" indicator w per pair of each customer with more allowed pairs
    # than the limit (others cannot break it); only in the MILP (an LP cannot express it).
    w_pairs = np.zeros(0, np.int64)
    w0 = -1
    if p.max_targets and has_y and integer:
        per_customer = np.bincount(pc, minlength=n_c)
        w_pairs = np.flatnonzero(per_customer[pc] > p.max_targets).astype(np.int64)
        if w_pairs.size:
            w0 = num_col
            num_col += int(w_pairs.size)
    ycol = np.full(p.n_facilities, -1, np.int64)  # problem facility -> y column
    ycol[fac] = np.arange(fac.shape[0]) if has_y else -1
    # [T] an integer count per capacity kind, with [M] (see count_kinds).
    rounding = has_y and strong and integer and not (pen is None and np.all(np.isfinite(p.capacity[fac])))
    kind = count_kinds(p.capacity[fac]) if rounding else np.full(fac.shape[0], -1, np.int64)
    n_kinds = int(kind.max(initial=-1)) + 1
    t0 = num_col if n_kinds else -1
    num_col += n_kinds

    cost = np.zeros(num_col)
    lower = np.zeros(num_col)
    upper = np.ones(num_col)
    if has_y:
        cost[:n_y] = p.fixed_cost[fac]
        lower[:n_y] = p.fixed_open[fac].astype(float)
        if force_open is not None:
            fo = ycol[np.asarray(force_open, np.int64)]
            lower[fo[fo >= 0]] = 1.0
    cost[x0 : x0 + n_p] = p.assign_cost[pf, pc]
    if n_kinds:
        upper[t0 : t0 + n_kinds] = np.bincount(kind[kind >= 0], minlength=n_kinds)
    if pen is not None:
        cost[u0 : u0 + n_c] = pen
    pair_cols = [x0 + np.arange(n_p)]
    if redundancy:
        pair_cols.append(z0 + np.arange(n_p))

    R = _Rows()
    assign_row0 = 0
    ones_p = np.ones(n_p)
    # [A] assignment (and [B] backup): customer rows.
    for cols in pair_cols:
        rows, cc, vv = [pc], [cols], [ones_p]
        if pen is not None:
            rows.append(np.arange(n_c))
            cc.append(u0 + np.arange(n_c))
            vv.append(np.ones(n_c))
        r0 = R.block(n_c, np.concatenate(rows), np.concatenate(cc), np.concatenate(vv), 1.0, 1.0)
        if cols is pair_cols[0]:
            assign_row0 = r0

    # [C] capacity rows, per resource; rows made redundant by the strong linking rows are skipped.
    cap_rows: list[NDArray[np.int64]] = []
    cap_fac: list[NDArray[np.int64]] = []
    cap_res: list[NDArray[np.int64]] = []
    mult = len(pair_cols)
    for r in range(n_r):
        capr = p.capacity[fac, r]
        use = p.usage[pc, r]
        load = np.bincount(np.searchsorted(fac, pf), weights=use, minlength=fac.shape[0]) * mult
        finite = np.isfinite(capr)
        if strong or fixed_open_set:
            need = finite & (load > capr * (1 + 1e-12))
        elif linking:
            need = finite  # textbook: every finite capacity row, redundant or not
        else:
            need = np.ones(fac.shape[0], bool)  # weak: the capacity row is the only linking
        idx = np.flatnonzero(need)
        if idx.size == 0:
            continue
        local = np.full(fac.shape[0], -1, np.int64)
        local[idx] = np.arange(idx.size)
        k = np.flatnonzero(local[np.searchsorted(fac, pf)] >= 0)
        rows_l = [local[np.searchsorted(fac, pf[k])]] * mult
        cols_l = [c[k] for c in pair_cols]
        vals_l = [use[k]] * mult
        # Uncapacitated facility in the textbook form: big-M = number of customers it may serve.
        capv = np.where(finite[idx], capr[idx], np.maximum(load[idx], 1.0))
        if has_y:
            rows_l.append(np.arange(idx.size))
            cols_l.append(ycol[fac[idx]])
            vals_l.append(-capv)
            ub: NDArray[np.float64] | float = 0.0
        else:
            ub = capv
        r0 = R.block(
            idx.size, np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(vals_l), -np.inf, ub
        )
        cap_rows.append(r0 + np.arange(idx.size))
        cap_fac.append(fac[idx])
        cap_res.append(np.full(idx.size, r, np.int64))

    # [L] strong linking x + z <= y (with y fixed and no backup it is just the column bound).
    if has_y and linking:
        rows_l = [np.arange(n_p)] * mult + [np.arange(n_p)]
        cols_l = [*pair_cols, ycol[pf]]
        vals_l = [ones_p] * mult + [-ones_p]
        R.block(n_p, np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(vals_l), -np.inf, 0.0)
    elif has_y:
        # Weak: the aggregated capacity rows link x to y, except for customers that use nothing.
        k = np.flatnonzero(p.usage[pc].sum(axis=1) <= 0)
        if redundancy or k.size:
            k = np.arange(n_p) if redundancy else k
            rows_l = [np.arange(k.size)] * mult + [np.arange(k.size)]
            cols_l = [c[k] for c in pair_cols] + [ycol[pf[k]]]
            vals_l = [np.ones(k.size)] * mult + [-np.ones(k.size)]
            R.block(
                k.size, np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(vals_l), -np.inf, 0.0
            )
    elif redundancy:
        R.block(n_p, np.tile(np.arange(n_p), 2), np.concatenate(pair_cols), np.ones(2 * n_p), -np.inf, 1.0)

    # [G] groups: at most one option open.
    if has_y:
        g = p.group[fac]
        _, ginv, gcnt = np.unique(g[g >= 0], return_inverse=True, return_counts=True)
        multi = gcnt >= 2
        if multi.any():
            sel = multi[ginv]
            local = np.cumsum(multi) - 1
            R.block(
                int(multi.sum()),
                local[ginv[sel]],
                ycol[fac[g >= 0][sel]],
                np.ones(int(sel.sum())),
                -np.inf,
                1.0,
            )

    # [K] aggregate capacity cover (valid only when all demand must be served).
    if has_y and strong and integer and pen is None:
        for r in range(n_r):
            capr = p.capacity[fac, r]
            total = mult * float(p.usage[:, r].sum())
            if total <= 0 or not np.all(np.isfinite(capr)):
                continue
            R.block(1, np.zeros(n_y, np.int64), ycol[fac], capr, total, np.inf)
            # Cardinality: fewer than k units (at most one open per group) cannot hold the demand.
            k_min = min_open_count(capr, p.group[fac], total)
            if k_min > 1:
                R.block(1, np.zeros(n_y, np.int64), ycol[fac], np.ones(n_y), float(k_min), np.inf)

    # [M] rounded cover when [K] cannot be used (some demand may go unserved or to an uncapacitated
    # facility): mixed-integer rounding of the capacity rows summed with the assignment rows.
    if rounding:
        for r in range(n_r):
            for rows_m, cols_m, vals_m, rhs in cover_rounding_rows(
                p, fac, ycol, pf, pc, pair_cols, u0 if pen is not None else -1, r
            ):
                R.block(1, rows_m, cols_m, vals_m, rhs, np.inf)

    # [T] sum_{f of kind t} y_f - N_t = 0, N_t integer: implied by binary y, so the optimum stays; it
    # lets HiGHS branch on "how many sites of this size" instead of on one of thousands of y.
    if n_kinds:
        k = np.flatnonzero(kind >= 0)
        R.block(
            n_kinds,
            np.concatenate([kind[k], np.arange(n_kinds)]),
            np.concatenate([ycol[fac[k]], t0 + np.arange(n_kinds)]),
            np.concatenate([np.ones(k.size), -np.ones(n_kinds)]),
            0.0,
            0.0,
        )

    # [D] failure domains: per customer, at most all of it (primary + backup) in one domain. With a
    # single allowed facility in the domain the row is implied by [L], unless part may go unserved.
    if redundancy:
        dom = p.failure_domain[pf]
        k = np.flatnonzero(dom >= 0)
        key = pc[k] * (int(p.failure_domain.max()) + 1) + dom[k]
        ukeys, inv, cnt = np.unique(key, return_inverse=True, return_counts=True)
        multi = cnt >= (1 if pen is not None else 2)
        if multi.any():
            local = np.cumsum(multi) - 1
            sel = multi[inv]
            rows_d = local[inv[sel]]
            n_d = int(multi.sum())
            rows_l = [rows_d, rows_d]
            cols_l = [pair_cols[0][k[sel]], pair_cols[1][k[sel]]]
            vals_l = [np.ones(rows_d.size)] * 2
            if pen is not None:
                cust = ukeys[multi] // (int(p.failure_domain.max()) + 1)
                rows_l.append(np.arange(n_d))
                cols_l.append(u0 + cust)
                vals_l.append(np.ones(n_d))
            R.block(n_d, np.concatenate(rows_l), np.concatenate(cols_l), np.concatenate(vals_l), -np.inf, 1.0)

    # [S] x_fc <= w_fc, w_fc <= y_f, sum_f w_fc <= K for each customer that could break the limit.
    if w0 >= 0:
        n_w = int(w_pairs.size)
        wcols = w0 + np.arange(n_w)
        idx = np.arange(n_w)
        R.block(
            n_w,
            np.concatenate([idx, idx]),
            np.concatenate([x0 + w_pairs, wcols]),
            np.concatenate([np.ones(n_w), -np.ones(n_w)]),
            -np.inf,
            0.0,
        )
        R.block(
            n_w,
            np.concatenate([idx, idx]),
            np.concatenate([wcols, ycol[pf[w_pairs]]]),
            np.concatenate([np.ones(n_w), -np.ones(n_w)]),
            -np.inf,
            0.0,
        )
        limited, local = np.unique(pc[w_pairs], return_inverse=True)
        R.block(int(limited.size), local, wcols, np.ones(n_w), -np.inf, float(p.max_targets))

    all_rows = np.concatenate(R.rows) if R.rows else np.zeros(0, np.int64)
    all_cols = np.concatenate(R.cols) if R.cols else np.zeros(0, np.int64)
    all_vals = np.concatenate(R.vals) if R.vals else np.zeros(0)
    matrix = sp.csr_array((all_vals, (all_rows, all_cols)), shape=(R.n, num_col))
    matrix.sum_duplicates()
    return Model(
        problem=p,
        facilities=fac,
        pf=pf,
        pc=pc,
        y0=y0,
        x0=x0,
        z0=z0,
        u0=u0,
        num_col=num_col,
        num_row=R.n,
        col_cost=cost,
        col_lower=lower,
        col_upper=upper,
        row_lower=np.concatenate(R.lower) if R.lower else np.zeros(0),
        row_upper=np.concatenate(R.upper) if R.upper else np.zeros(0),
        matrix=matrix,
        integer=integer and has_y,
        assign_row0=assign_row0,
        cap_rows=np.concatenate(cap_rows) if cap_rows else np.zeros(0, np.int64),
        cap_facility=np.concatenate(cap_fac) if cap_fac else np.zeros(0, np.int64),
        cap_resource=np.concatenate(cap_res) if cap_res else np.zeros(0, np.int64),
        w0=w0,
        w_pairs=w_pairs,
        t0=t0,
        kind=kind,
    )


def count_kinds(cap: NDArray[np.float64]) -> NDArray[np.int64]:
    """Kind (0..k-1) of each facility for the count rows [T]: facilities with the same finite capacity
    vector, when at least two share it; -1 for the rest (uncapacitated ones, unique capacities). No
    kinds when they would not be few (more than a quarter of the facilities): then branching on a
    count is no better than on a y."""
    out = np.full(cap.shape[0], -1, np.int64)
    finite = np.isfinite(cap).any(axis=1)
    if cap.shape[0] == 0 or not finite.any():
        return out
    rows = np.where(np.isfinite(cap[finite]), cap[finite], -1.0)
    _, inv, cnt = np.unique(rows, axis=0, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    shared = cnt >= 2
    if not shared.any() or int(shared.sum()) * 4 > cap.shape[0]:
        return out
    local = np.cumsum(shared) - 1
    out[np.flatnonzero(finite)] = np.where(shared[inv], local[inv], -1)
    return out


def cover_rounding_rows(
    p: FacilityProblem,
    fac: NDArray[np.int64],
    ycol: NDArray[np.int64],
    pf: NDArray[np.int64],
    pc: NDArray[np.int64],
    pair_cols: list[NDArray[np.int64]],
    u0: int,
    r: int,
) -> list[tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], float]]:
    """[M] rows (local row ids, columns, values, lower bound) for resource r: one per distinct finite
    capacity delta, the mixed-integer rounding (MIR) of the covering row

        sum_{f finite} (cap_fr / delta) y_f + s / delta >= m D_r / delta,
        s = sum_c usage_cr (m u_c + sum_{f uncapacitated for r} (x_fc + z_fc)),   m = 1 + n_plus,

    which is the capacity rows [C] (implied by [L] where skipped) plus usage-weighted assignment rows
    [A]/[B]. For sum_j a_j y_j + s >= b, y integer >= 0, s >= 0 and f0 = frac(b) > 0, MIR gives
    sum_j (floor(a_j) + min(frac(a_j), f0) / f0) y_j + s / f0 >= ceil(b): the LP can no longer open
    "6.14 sites" of capacity without paying for the remainder elsewhere. Valid for integer y only."""
    cap = p.capacity[fac, r]
    finite = np.isfinite(cap)
    use = p.usage[:, r]
    mult = len(pair_cols)
    demand = mult * float(use.sum())
    if demand <= 0 or not finite.any():
        return []
    uncap = ~finite[np.searchsorted(fac, pf)]
    k = np.flatnonzero(uncap & (use[pc] > 0))
    out = []
    for delta in np.unique(cap[finite & (cap > 0)]):
        b = demand / delta
        f0 = b - np.floor(b)
        if f0 < 1e-4 or f0 > 1 - 1e-4:
            continue  # nothing to round (or too close to an integer to round safely)
        a = np.where(finite, cap, 0.0) / delta
        fa = a - np.floor(a)
        coef_y = np.floor(a) + np.minimum(fa, f0) / f0
        keep_y = coef_y > 0
        cols = [ycol[fac[keep_y]]]
        vals = [coef_y[keep_y]]
        for pcols in pair_cols:
            cols.append(pcols[k])
            vals.append(use[pc[k]] / (delta * f0))
        if u0 >= 0:
            pos = np.flatnonzero(use > 0)
            cols.append(u0 + pos)
            vals.append(mult * use[pos] / (delta * f0))
        c = np.concatenate(cols)
        out.append((np.zeros(c.size, np.int64), c, np.concatenate(vals), float(np.ceil(b))))
    return out


def min_open_count(cap: NDArray[np.float64], group: NDArray[np.int64], total: float) -> int:
    """Fewest facilities whose capacities can reach ``total`` (one per group); len+1 if impossible."""
    unit = np.where(group >= 0, group, group.max(initial=-1) + 1 + np.arange(group.shape[0]))
    _, inv = np.unique(unit, return_inverse=True)
    ucap = np.zeros(int(inv.max()) + 1 if inv.size else 0)
    np.maximum.at(ucap, inv, cap)
    cum = np.cumsum(np.sort(ucap)[::-1])
    return int(np.searchsorted(cum, total * (1 - 1e-12))) + 1


_banner_shown = False


def _quiet_highs() -> highspy.Highs:
    """A Highs object; the first one per process is created with fd 1 muted.

    HiGHS prints its banner to C stdout when the first instance is constructed, before any option
    can be set, which would corrupt machine-readable output (the benchmark prints one JSON line).
    """
    global _banner_shown
    if _banner_shown:
        return highspy.Highs()
    _banner_shown = True
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:
        return highspy.Highs()
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            try:
                return highspy.Highs()
            finally:
                os.dup2(saved, 1)
    finally:
        os.close(saved)


def _new_highs(verbose: bool, threads: int | None, time_limit_s: float | None) -> highspy.Highs:
    h = _quiet_highs()
    h.setOptionValue("output_flag", bool(verbose))
    if threads is not None:
        h.setOptionValue("threads", int(threads))
    if time_limit_s is not None:
        h.setOptionValue("time_limit", max(float(time_limit_s), 1e-3))
    return h


# ------------------------------------------------------------------------------------------------
# Assignment LP for a fixed open set
# ------------------------------------------------------------------------------------------------
@dataclass
class AssignmentResult:
    """Best assignment for a given open set (an LP), with duals for local-search estimates."""

    feasible: bool
    objective: float  # includes the fixed cost of the open set; inf if infeasible
    open: NDArray[np.bool_]
    x: NDArray[np.float64] | sp.csr_array | None = None
    z: NDArray[np.float64] | sp.csr_array | None = None
    unserved: NDArray[np.float64] | None = None
    customer_dual: NDArray[np.float64] | None = None  # (C,) marginal cost of serving customer c
    capacity_dual: NDArray[np.float64] | None = None  # (F, R) <= 0: value of one more unit of capacity

    def solution(self, problem: FacilityProblem, lower_bound: float = -np.inf) -> Solution:
        assert self.feasible and self.x is not None and self.unserved is not None
        return make_solution(
            problem, self.open, self.x, self.z, self.unserved, lower_bound=lower_bound, status="heuristic"
        )


def solve_assignment(
    problem: FacilityProblem,
    open_: NDArray[np.bool_],
    *,
    threads: int | None = None,
    max_options: int | None = None,
) -> AssignmentResult:
    """Exact best assignment (x, z, u) when the open set is given: a transportation-type LP.

    ``max_options = k`` keeps only each customer's k cheapest open facilities: a much smaller LP whose
    plan is still feasible (so its cost is a valid upper bound) but possibly not the best assignment.
    """
    open_ = np.asarray(open_, bool) | problem.fixed_open
    fac = np.flatnonzero(open_).astype(np.int64)
    mask = None
    if max_options is not None and fac.size > max_options:
        sub = np.where(problem.allowed[fac], problem.assign_cost[fac], np.inf)
        kth = np.partition(sub, max_options - 1, axis=0)[max_options - 1]
        mask = np.zeros(problem.allowed.shape, bool)
        mask[fac] = sub <= kth[None, :]
    model = build_model(problem, facilities=fac, fixed_open_set=True, integer=False, pair_mask=mask)
    h = _new_highs(False, threads, None)
    h.setOptionValue("presolve", "off")  # a plain transportation LP: presolve costs more than it saves
    model.to_highs(h)
    _run(h, "run (assignment LP)")
    ms = h.getModelStatus()
    fixed = float(problem.fixed_cost[open_].sum())
    if ms != highspy.HighsModelStatus.kOptimal:
        return AssignmentResult(False, float("inf"), open_)
    sol = h.getSolution()
    values = np.asarray(sol.col_value)
    _, x, z, u = model.extract(values)
    row_dual = np.asarray(sol.row_dual)
    cdual = row_dual[model.assign_row0 : model.assign_row0 + problem.n_customers].copy()
    capd = np.zeros((problem.n_facilities, problem.n_resources))
    if model.cap_rows.size:
        capd[model.cap_facility, model.cap_resource] = row_dual[model.cap_rows]
    obj = fixed + float(h.getInfo().objective_function_value)
    return AssignmentResult(True, obj, open_, x, z, u, cdual, capd)


# ------------------------------------------------------------------------------------------------
# MILP
# ------------------------------------------------------------------------------------------------
_STATUS_TEXT: dict[highspy.HighsModelStatus, SolveStatus] = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kInterrupt: "time_limit",
    highspy.HighsModelStatus.kIterationLimit: "time_limit",
    highspy.HighsModelStatus.kSolutionLimit: "time_limit",
    highspy.HighsModelStatus.kObjectiveBound: "time_limit",
    highspy.HighsModelStatus.kObjectiveTarget: "time_limit",
    highspy.HighsModelStatus.kMemoryLimit: "time_limit",
}


def solve_milp(
    problem: FacilityProblem,
    *,
    time_limit_s: float | None = None,
    mip_rel_gap: float = 1e-9,
    threads: int | None = None,
    warm_start: Solution | NDArray[np.bool_] | None = None,
    progress: ProgressHook | None = None,
    verbose: bool = False,
    heuristic: bool | None = None,
    formulation: Formulation = "strong",
) -> Solution:
    """Solve a FacilityProblem to proven optimality (or the time limit): the planner's entry point.

    Pipeline: (1) cheap infeasibility diagnosis; (2) for larger problems the Lagrangian heuristic
    (plan + valid bound + reduced-cost fixing; ``heuristic=None`` decides by size); (3) HiGHS on the
    facilities that fixing could not rule out, warm-started with the heuristic plan.
    The returned bound is always valid for the *whole* problem. ``formulation="textbook"`` / ``"weak"``
    solve the plain textbook / weak formulation with HiGHS only (benchmark baselines: no heuristic, no
    extra cuts, no warm start unless given). ``mip_rel_gap`` defaults to 1e-9
    so published optima are reproduced exactly; use e.g. 1e-4 for interactive planning.
    """
    t0 = time.perf_counter()
    diag = diagnose_infeasibility(problem)
    if diag:
        return infeasible_solution(
            problem, seconds=time.perf_counter() - t0, method="diagnosis", messages=diag
        )
    if formulation != "strong":
        return solve_restricted(
            problem,
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
            threads=threads,
            warm_start=warm_start,
            progress=progress,
            verbose=verbose,
            formulation=formulation,
        )
    n_pairs = int(problem.allowed.sum()) * (1 + problem.n_plus)
    use_heuristic = heuristic if heuristic is not None else n_pairs > HEURISTIC_MIN_PAIRS
    # The Lagrangian knows no split limit: its plan could break the limit and its fixing would then rest
    # on a cost no limited plan reaches (placement.solve solves the relaxation first instead).
    use_heuristic = use_heuristic and not problem.max_targets
    if not use_heuristic:
        return solve_restricted(
            problem,
            time_limit_s=time_limit_s,
            mip_rel_gap=mip_rel_gap,
            threads=threads,
            warm_start=warm_start,
            progress=progress,
            verbose=verbose,
        )

    from microdc.placement.lagrangian import lagrangian_heuristic

    budget = LAGRANGIAN_MAX_S if time_limit_s is None else min(LAGRANGIAN_MAX_S, 0.5 * time_limit_s)
    initial = warm_start if isinstance(warm_start, Solution) else None
    if warm_start is not None and initial is None:
        ar = solve_assignment(problem, np.asarray(warm_start, bool))
        initial = ar.solution(problem) if ar.feasible else None
    lag = lagrangian_heuristic(
        problem, time_limit_s=budget, target_gap=mip_rel_gap, progress=progress, initial=initial
    )
    if not np.isfinite(lag.lower_bound) and lag.lower_bound > 0:
        msgs = ["the open facilities can never hold all demand (aggregate capacity)"]
        return infeasible_solution(
            problem, seconds=time.perf_counter() - t0, method="lagrangian", messages=msgs
        )
    heur = lag.solution
    if heur is not None and (heur.status == "optimal" or heur.gap <= mip_rel_gap):
        heur.status = "optimal" if heur.gap <= OPTIMAL_GAP else "gap_limit"
        heur.seconds = time.perf_counter() - t0
        return heur
    if lag.stopped and heur is not None:
        heur.status = "time_limit"
        heur.seconds = time.perf_counter() - t0
        heur.messages.append("stopped on request during the Lagrangian phase")
        return heur

    remaining = None if time_limit_s is None else max(time_limit_s - (time.perf_counter() - t0), 0.05)
    ub = heur.objective if heur is not None else np.inf
    candidates = np.flatnonzero(~lag.fix_closed).astype(np.int64)
    sol = solve_restricted(
        problem,
        time_limit_s=remaining,
        mip_rel_gap=mip_rel_gap,
        threads=threads,
        warm_start=heur,
        progress=progress,
        verbose=verbose,
        facilities=candidates if heur is not None else None,
        force_open=np.flatnonzero(lag.fix_open).astype(np.int64) if heur is not None else None,
        external_bound=lag.lower_bound,
        external_incumbent=ub,
        t0=t0,
        prove_only=heur is not None and heur.gap < PROVE_ONLY_GAP,
    )
    if heur is not None and (not np.isfinite(sol.objective) or heur.objective < sol.objective):
        # HiGHS found nothing better within its time: keep the heuristic plan, with the better bound.
        bound = max(heur.lower_bound, min(sol.lower_bound, heur.objective))
        msgs = sol.messages
        sol = make_solution(
            problem,
            heur.open,
            heur.x,
            heur.z,
            heur.unserved,
            lower_bound=bound,
            status=sol.status if sol.status != "infeasible" else "time_limit",
            nodes=sol.nodes,
            messages=msgs,
        )
    sol.seconds = time.perf_counter() - t0
    sol.method = "lagrangian+milp"
    sol.messages.append(
        f"Lagrangian: {lag.seconds:.2f} s, {lag.iterations} iterations, {lag.lp_solves} LPs, bound "
        f"{lag.lower_bound:.10g}, {int(lag.fix_closed.sum())} facilities fixed closed, "
        f"{int(lag.fix_open.sum())} open; HiGHS on {int((~lag.fix_closed).sum())} candidates"
    )
    if sol.status == "optimal" and sol.gap > OPTIMAL_GAP:
        sol.status = "gap_limit"
    return sol


#: Below this many allowed pairs HiGHS alone is faster than running the Lagrangian first.
HEURISTIC_MIN_PAIRS = 10_000
#: Below this heuristic gap the MILP phase only needs to prove: HiGHS's own heuristics are switched off.
PROVE_ONLY_GAP = 0.005
#: Upper limit on the Lagrangian phase (it usually stops much earlier, on convergence).
LAGRANGIAN_MAX_S = 20.0

#: Alias: the planner's single entry point.
solve = solve_milp


def solve_restricted(
    problem: FacilityProblem,
    *,
    time_limit_s: float | None = None,
    mip_rel_gap: float = 1e-9,
    threads: int | None = None,
    warm_start: Solution | NDArray[np.bool_] | None = None,
    progress: ProgressHook | None = None,
    verbose: bool = False,
    formulation: Formulation = "strong",
    facilities: NDArray[np.int64] | None = None,
    force_open: NDArray[np.int64] | None = None,
    external_bound: float = -np.inf,
    external_incumbent: float = np.inf,
    t0: float | None = None,
    prove_only: bool = False,
) -> Solution:
    """HiGHS alone on the (optionally restricted) MILP.

    ``facilities`` / ``force_open`` restrict the model after reduced-cost fixing; the caller then
    guarantees every excluded plan costs more than ``external_incumbent``, so the reported bound
    ``max(external_bound, min(external_incumbent, milp_bound))`` is valid for the whole problem.
    ``warm_start`` is a Solution or an open vector (completed by the assignment LP). ``prove_only``
    switches HiGHS's primal heuristics off (for when the warm start is believed optimal).
    """
    started = time.perf_counter()  # time_limit_s counts from here; t0 only dates progress events
    t0 = started if t0 is None else t0
    model = build_model(problem, facilities=facilities, formulation=formulation, force_open=force_open)
    warm_col: NDArray[np.float64] | None = None
    if warm_start is not None:
        ws: Solution | None
        if isinstance(warm_start, Solution):
            ws = warm_start
        else:
            ar = solve_assignment(problem, np.asarray(warm_start, bool), threads=threads)
            ws = ar.solution(problem) if ar.feasible else None
        if ws is not None and np.isfinite(ws.objective):
            warm_col = model.column_values(ws)
    method = "milp" if formulation == "strong" else f"milp-{formulation}"

    def run(
        lower: NDArray[np.float64],
        upper: NDArray[np.float64],
        limit: float | None,
        cutoff: float,
        other_bound: float,
    ) -> _MipRun:
        return _run_mip(
            model, lower, upper, warm_col, limit, mip_rel_gap, threads, verbose, prove_only, progress, t0,
            external_bound, min(external_incumbent, cutoff), other_bound,
        )  # fmt: skip

    split = _count_split(model, warm_col, threads) if model.n_kinds else None
    if split is None:
        r = run(model.col_lower, model.col_upper, time_limit_s, np.inf, np.inf)
    else:
        r = _solve_split(model, split, run, time_limit_s, mip_rel_gap, started)
    seconds = time.perf_counter() - t0
    if r.infeasible:
        if np.isfinite(external_incumbent):
            # Contradiction (the incumbent lies in the restricted problem): numerical trouble. Report
            # no plan and only the bound proven elsewhere; the caller keeps its incumbent.
            sol = infeasible_solution(problem, seconds=seconds, method=method)
            sol.status = "time_limit"
            sol.lower_bound = external_bound
            sol.messages.append("HiGHS reported the restricted problem infeasible (numerical trouble)")
            return sol
        msgs = diagnose_infeasibility(problem) or [
            "HiGHS proved the problem infeasible (no simple cause found)"
        ]
        return infeasible_solution(problem, seconds=seconds, method=method, messages=msgs)
    bound = max(external_bound, min(external_incumbent, r.bound))
    if r.values is None:
        sol = infeasible_solution(problem, seconds=seconds, method=method)
        sol.status = "time_limit"
        sol.lower_bound = bound
        sol.nodes = r.nodes
        sol.messages.append("no feasible plan found within the time limit")
        return sol
    open_, x, z, u = model.extract(r.values)
    sol = make_solution(
        problem,
        open_,
        x,
        z,
        u,
        lower_bound=bound,
        status=r.status,
        seconds=seconds,
        nodes=r.nodes,
        method=method,
    )
    if split is not None:
        sol.messages.append(split.note)
    if sol.gap <= OPTIMAL_GAP:
        sol.status = "optimal"
    elif sol.status == "optimal" or sol.gap <= mip_rel_gap:
        sol.status = "gap_limit"  # stopped by the mip_rel_gap tolerance, not proven optimal
    return sol


@dataclass
class _MipRun:
    """What one HiGHS MIP run (or the two runs of a count split) ended with."""

    status: SolveStatus
    bound: float  # HiGHS's dual bound of the run (inf when infeasible)
    objective: float
    values: NDArray[np.float64] | None  # column values of the best plan, None without one
    nodes: int
    infeasible: bool = False


def _run_mip(
    model: Model,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    warm_col: NDArray[np.float64] | None,
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
    verbose: bool,
    prove_only: bool,
    progress: ProgressHook | None,
    t0: float,
    external_bound: float,
    cutoff: float,
    other_bound: float,
) -> _MipRun:
    """One HiGHS run of `model` with the given column bounds. ``cutoff`` (a plan found elsewhere): the
    run stops once its bound shows it cannot beat that plan by more than the gap; ``other_bound``: the
    bound of the rest of the search (a count split's other branch), for progress events."""
    h = _new_highs(verbose, threads, time_limit_s)
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", 1e-9)
    if prove_only:
        # The incumbent is (nearly) optimal already: HiGHS's primal heuristics (RINS/RENS sub-MIPs,
        # feasibility jump) would only cost time; the bound is what is missing.
        for opt in ("rins", "rens", "root_reduced_cost", "feasibility_jump"):
            h.setOptionValue(f"mip_heuristic_run_{opt}", False)
        h.setOptionValue("mip_heuristic_effort", 0.0)
    saved = model.col_lower, model.col_upper
    model.col_lower, model.col_upper = lower, upper
    try:
        model.to_highs(h)
    finally:
        model.col_lower, model.col_upper = saved
    if warm_col is not None and np.all(warm_col >= lower - 1e-9) and np.all(warm_col <= upper + 1e-9):
        _check(
            h.setSolution(model.num_col, np.arange(model.num_col, dtype=np.int32), warm_col), "setSolution"
        )
    if progress is not None or np.isfinite(cutoff):
        _attach_progress(h, progress, t0, "milp", external_bound, cutoff, other_bound, mip_rel_gap)
    _run(h, "run (MILP)")
    ms = h.getModelStatus()
    info = h.getInfo()
    nodes = int(info.mip_node_count)
    if ms in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return _MipRun("infeasible", np.inf, np.inf, None, nodes, infeasible=True)
    if ms not in _STATUS_TEXT:
        raise RuntimeError(f"HiGHS ended with model status {h.modelStatusToString(ms)}")
    bound = float(info.mip_dual_bound)
    if info.primal_solution_status != highspy.kSolutionStatusFeasible:
        return _MipRun("time_limit", bound, np.inf, None, nodes)
    values = np.asarray(h.getSolution().col_value)
    return _MipRun(_STATUS_TEXT[ms], bound, float(info.objective_function_value), values, nodes)


@dataclass(frozen=True)
class _Split:
    """A count split: the kind whose count N_t the LP leaves fractional, and the branch order."""

    column: int
    floor: float
    first_up: bool  # solve N_t >= floor + 1 first (where the warm start or the LP points)
    lp_bound: float
    note: str


def _count_split(model: Model, warm_col: NDArray[np.float64] | None, threads: int | None) -> _Split | None:
    """The most fractional kind count [T] of the LP relaxation (None when every count is integral or
    the LP does not solve): branching on it first splits the search into "at most floor(N_t) sites of
    this kind" and "at least one more", each of which HiGHS closes far faster than the whole, because
    it would otherwise branch on one of thousands of near-identical y."""
    h = _new_highs(False, threads, None)
    saved = model.integer
    model.integer = False
    try:
        model.to_highs(h)
    finally:
        model.integer = saved
    _run(h, "run (LP relaxation)")
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    values = np.asarray(h.getSolution().col_value)
    n = values[model.t0 : model.t0 + model.n_kinds]
    # Only counts of at least one: whether to open any option of a kind HiGHS settles on a y quickly;
    # the split pays where many near-identical options share a count.
    frac = np.where(n >= 1, np.minimum(n - np.floor(n), np.ceil(n) - n), 0.0)
    t = int(np.argmax(frac))
    if frac[t] <= 1e-6:
        return None
    col = model.t0 + t
    fl = float(np.floor(n[t]))
    up = bool(warm_col[col] >= fl + 1 - 1e-9) if warm_col is not None else bool(n[t] - fl >= 0.5)
    note = (
        f"count split: the LP opens {n[t]:.3f} options of capacity kind {t}; solved as N <= {fl:.0f} "
        f"and N >= {fl + 1:.0f}"
    )
    return _Split(col, fl, up, float(h.getInfo().objective_function_value), note)


def _solve_split(
    model: Model,
    split: _Split,
    run: Callable[[NDArray[np.float64], NDArray[np.float64], float | None, float, float], _MipRun],
    time_limit_s: float | None,
    mip_rel_gap: float,
    started: float,
) -> _MipRun:
    """Both branches of a count split, each with HiGHS; the second is cut off by the first's plan.
    The bound is the smaller of the two branches' bounds (the disjunction covers every integer plan)."""
    lo_up, hi_up = model.col_lower.copy(), model.col_upper.copy()
    lo_up[split.column] = split.floor + 1
    lo_dn, hi_dn = model.col_lower.copy(), model.col_upper.copy()
    hi_dn[split.column] = split.floor
    branches = [(lo_up, hi_up), (lo_dn, hi_dn)] if split.first_up else [(lo_dn, hi_dn), (lo_up, hi_up)]
    runs: list[_MipRun] = []
    best = np.inf
    for i, (lo, hi) in enumerate(branches):
        left = None if time_limit_s is None else time_limit_s - (time.perf_counter() - started)
        if left is not None:
            left = max(left * (0.5 if i == 0 else 1.0), 0.05)
        other = split.lp_bound if i == 0 else runs[0].bound
        r = run(lo, hi, left, best, other)
        runs.append(r)
        best = min(best, r.objective)
    bound = min(r.bound for r in runs)
    nodes = sum(r.nodes for r in runs)
    if all(r.infeasible for r in runs):
        return _MipRun("infeasible", np.inf, np.inf, None, nodes, infeasible=True)
    won = min(runs, key=lambda r: r.objective)
    if won.values is None:
        return _MipRun("time_limit", bound, np.inf, None, nodes)
    gap = (won.objective - bound) / max(abs(won.objective), 1e-9)
    status: SolveStatus = "optimal" if gap <= max(mip_rel_gap, OPTIMAL_GAP) else "time_limit"
    return _MipRun(status, bound, won.objective, won.values, nodes)


def _attach_progress(
    h: highspy.Highs,
    hook: ProgressHook | None,
    t0: float,
    phase: str,
    external_bound: float = -np.inf,
    external_incumbent: float = np.inf,
    other_bound: float = np.inf,
    mip_rel_gap: float = 0.0,
) -> None:
    """Forward HiGHS MIP events to the hook: every improving solution, and about twice a second. With
    a finite ``external_incumbent`` (a plan found elsewhere) the run also stops once its bound is within
    ``mip_rel_gap`` of that plan: it cannot find a plan better by more than the gap."""
    last = [0.0]

    def emit(e: highspy.HighsCallbackEvent, message: str) -> None:
        out = e.data_out
        own = float(out.mip_dual_bound)
        if np.isfinite(external_incumbent) and own >= external_incumbent - mip_rel_gap * abs(
            external_incumbent
        ):
            e.interrupt()
        if hook is None:
            return
        obj = min(float(out.mip_primal_bound), external_incumbent)
        bound = max(external_bound, min(external_incumbent, own, other_bound))
        ev = ProgressEvent(phase, time.perf_counter() - t0, obj, bound, int(out.mip_node_count), message)
        if hook(ev):
            e.interrupt()

    def on_improving(e: highspy.HighsCallbackEvent) -> None:
        emit(e, "improved solution")

    def on_interrupt(e: highspy.HighsCallbackEvent) -> None:
        now = time.perf_counter()
        if now - last[0] >= 0.5:
            last[0] = now
            emit(e, "")

    h.cbMipImprovingSolution.subscribe(on_improving)
    h.cbMipInterrupt.subscribe(on_interrupt)
