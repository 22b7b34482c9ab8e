"""Exact aggregation of interchangeable build options: a city's thousands of candidate sites are a
handful of kinds, and a MILP over thousands of identical binaries never closes its bound (symmetry).

A *unit* is a group (a site: at most one of its options is built) or an ungrouped facility. Two units
are interchangeable when their options, in order, have the same fixed cost, capacity, cost column and
allowed column (and none is pre-built). A *class* of m interchangeable units with option types
1..k becomes one small MILP with an integer count per type::

    min  sum_t fixed_t n_t + sum_{t,c} cost_tc X_tc + sum_c pen_c u_c
    s.t. sum_t X_tc + u_c = 1                     each customer c
         X_tc <= n_t                              each allowed (t, c)
         sum_c usage_cr X_tc <= cap_tr n_t        each t, finite resource r
         sum_{t in class} n_t <= m                each class
         n_t integer in [lb_t, m] (lb_t = 1 for a pre-built facility, its own class), X, u >= 0

Claim: its optimum equals the original problem's when ``n_plus = 0`` and there is no split limit.
(i) A plan of the original gives n_t = open copies of type t and X_tc = the sum of their x_fc: every
row above is a sum of original rows (x <= y, capacity, one option per unit), at the same cost.
(ii) A class solution gives a plan: open n_t copies of type t at distinct units of its class (there are
enough: sum_t n_t <= m) and serve x_fc = X_tc / n_t from each; then x_fc <= 1, each copy carries
1/n_t of the load, which fits cap_t, and the cost is the same. ∎ So the class MILP's bound is valid for
the original. With redundancy the per-domain rows [D] need X_tc + Z_tc <= n_t (1 - u_c), which is not
linear, and under a split limit spreading X over n_t copies can break it; neither case is aggregated.

Which units of a class get built does not change the cost; the planner prefers the units that most
of the original (un-aggregated) demand finds cheapest, largest option types first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from microdc.placement.facility import (
    OPTIMAL_GAP,
    FacilityProblem,
    Solution,
    SolveStatus,
    make_solution,
    pairs_to_matrix,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
DIGITS = 9  # relative precision at which two cost columns count as equal (as in placement.aggregate)


@dataclass(frozen=True)
class FacilityClasses:
    """Types (interchangeable options) and classes (interchangeable units) of a FacilityProblem."""

    type_of: IntArray  # (F,) type of each facility
    rep: IntArray  # (T,) a facility of each type (its arrays stand for the type)
    type_class: IntArray  # (T,) class of each type
    slot: IntArray  # (T,) position of the type among its class's option types
    units: list[IntArray]  # per class: (m, k) facility of each unit's option at each slot
    lower: IntArray  # (T,) least count (1 for a pre-built facility)

    @property
    def n_types(self) -> int:
        return int(self.rep.shape[0])


def _rounded(a: FloatArray) -> FloatArray:
    scale = np.maximum(np.abs(a), 1e-300)
    mag = np.power(10.0, np.floor(np.log10(scale)))
    return np.asarray(np.where(a == 0, 0.0, np.round(a / mag, DIGITS) * mag))


def classify(p: FacilityProblem) -> FacilityClasses:
    """Group facilities into types and units into classes (see the module docstring)."""
    n_f = p.n_facilities
    keys: dict[bytes, int] = {}
    type_key = np.empty(n_f, np.int64)
    cost = p.assign_cost
    for f in range(n_f):
        key = b"|".join(
            (
                _rounded(np.array([p.fixed_cost[f]])).tobytes(),
                p.capacity[f].tobytes(),
                np.packbits(p.allowed[f]).tobytes(),
                _rounded(cost[f]).tobytes(),
                b"open" + str(f).encode() if p.fixed_open[f] else b"",  # pre-built: a class of its own
            )
        )
        type_key[f] = keys.setdefault(key, len(keys))
    # Units: groups (members in facility order) and ungrouped facilities.
    grp = p.group
    members: dict[tuple[int, int], list[int]] = {}
    for f in range(n_f):
        members.setdefault((0, int(grp[f])) if grp[f] >= 0 else (1, f), []).append(f)
    classes: dict[tuple[int, ...], list[list[int]]] = {}
    for fs in members.values():
        classes.setdefault(tuple(int(type_key[f]) for f in fs), []).append(fs)
    type_of = np.empty(n_f, np.int64)
    rep: list[int] = []
    type_class: list[int] = []
    slot: list[int] = []
    lower: list[int] = []
    units: list[IntArray] = []
    for k, (_sig, unit_list) in enumerate(classes.items()):
        table = np.array(unit_list, dtype=np.int64)  # (m, slots)
        units.append(table)
        for j in range(table.shape[1]):
            t = len(rep)
            type_of[table[:, j]] = t
            rep.append(int(table[0, j]))
            type_class.append(k)
            slot.append(j)
            lower.append(int(p.fixed_open[table[0, j]]))
    return FacilityClasses(
        type_of=type_of,
        rep=np.array(rep, np.int64),
        type_class=np.array(type_class, np.int64),
        slot=np.array(slot, np.int64),
        units=units,
        lower=np.array(lower, np.int64),
    )


def applies(p: FacilityProblem, c: FacilityClasses, share: float = 0.5) -> bool:
    """Worth it and exact: no redundancy, no split limit, and at most `share` of the facilities remain."""
    return p.n_plus == 0 and p.max_targets == 0 and c.n_types <= share * p.n_facilities


@dataclass
class ClassSolution:
    status: SolveStatus
    counts: IntArray  # (T,)
    pairs: tuple[IntArray, IntArray, FloatArray]  # (type, customer, X)
    unserved: FloatArray
    bound: float
    nodes: int


def solve_classes(
    p: FacilityProblem,
    c: FacilityClasses,
    *,
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
) -> ClassSolution | None:
    """The class MILP with HiGHS; None when it finds no plan (infeasible, or nothing in time)."""
    from microdc.placement.milp import _STATUS_TEXT, _new_highs, pass_model

    n_t, n_c = c.n_types, p.n_customers
    allowed = p.allowed[c.rep]
    pt, pc = np.nonzero(allowed)
    n_p = pt.shape[0]
    pen = p.unserved_penalty
    m = np.array([c.units[k].shape[0] for k in c.type_class], dtype=np.float64)
    n_col = n_t + n_p + (n_c if pen is not None else 0)
    x0, u0 = n_t, n_t + n_p
    col_cost = np.concatenate(
        [p.fixed_cost[c.rep], p.assign_cost[c.rep[pt], pc], pen if pen is not None else np.zeros(0)]
    )
    col_lower = np.concatenate([c.lower.astype(np.float64), np.zeros(n_col - n_t)])
    col_upper = np.concatenate([m, np.full(n_col - n_t, np.inf)])
    rows: list[IntArray] = []
    cols: list[IntArray] = []
    vals: list[FloatArray] = []
    lo: list[FloatArray] = []
    hi: list[FloatArray] = []
    r0 = 0

    def block(n: int, r: IntArray, k: IntArray, v: FloatArray, lower: float, upper: float) -> None:
        nonlocal r0
        rows.append(r + r0)
        cols.append(k)
        vals.append(v)
        lo.append(np.full(n, lower))
        hi.append(np.full(n, upper))
        r0 += n

    # assignment: sum_t X_tc + u_c = 1
    ar, ak = pc, x0 + np.arange(n_p)
    if pen is not None:
        ar, ak = np.concatenate([ar, np.arange(n_c)]), np.concatenate([ak, u0 + np.arange(n_c)])
    block(n_c, ar, ak, np.ones(ar.shape[0]), 1.0, 1.0)
    # linking: X_tc - n_t <= 0
    idx = np.arange(n_p)
    block(
        n_p,
        np.concatenate([idx, idx]),
        np.concatenate([x0 + idx, pt]),
        np.concatenate([np.ones(n_p), -np.ones(n_p)]),
        -np.inf,
        0.0,
    )
    # capacity: sum_c usage_cr X_tc - cap_tr n_t <= 0
    cap = p.capacity[c.rep]
    for r in range(p.n_resources):
        fin = np.flatnonzero(np.isfinite(cap[:, r]))
        if fin.size == 0:
            continue
        local = np.full(n_t, -1, np.int64)
        local[fin] = np.arange(fin.size)
        sel = np.flatnonzero(local[pt] >= 0)
        block(
            int(fin.size),
            np.concatenate([local[pt[sel]], np.arange(fin.size)]),
            np.concatenate([x0 + sel, fin]),
            np.concatenate([p.usage[pc[sel], r], -cap[fin, r]]),
            -np.inf,
            0.0,
        )
    # one option per unit: sum_{t in class} n_t <= m
    multi = np.flatnonzero(np.bincount(c.type_class, minlength=len(c.units)) > 1)
    if multi.size:
        local = np.full(len(c.units), -1, np.int64)
        local[multi] = np.arange(multi.size)
        ts = np.flatnonzero(local[c.type_class] >= 0)
        rows.append(local[c.type_class[ts]] + r0)
        cols.append(ts)
        vals.append(np.ones(ts.size))
        lo.append(np.full(multi.size, -np.inf))
        hi.append(np.array([c.units[k].shape[0] for k in multi], dtype=np.float64))
        r0 += int(multi.size)
    a = sp.csr_array((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r0, n_col))
    a.sum_duplicates()
    h = _new_highs(False, threads, time_limit_s)
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", 1e-9)
    integrality = np.zeros(n_col, np.int32)
    integrality[:n_t] = 1
    status = pass_model(
        h, a, col_cost, col_lower, col_upper, np.concatenate(lo), np.concatenate(hi), integrality
    )
    if status == highspy.HighsStatus.kError:
        return None
    h.run()
    ms = h.getModelStatus()
    info = h.getInfo()
    if ms not in _STATUS_TEXT or info.primal_solution_status != highspy.kSolutionStatusFeasible:
        return None
    v = np.asarray(h.getSolution().col_value)
    counts = np.rint(v[:n_t]).astype(np.int64)
    xs = np.clip(v[x0 : x0 + n_p], 0.0, None)
    u = np.clip(v[u0 : u0 + n_c], 0.0, 1.0) if pen is not None else np.zeros(n_c)
    return ClassSolution(
        status=_STATUS_TEXT[ms],
        counts=counts,
        pairs=(pt.astype(np.int64), pc.astype(np.int64), xs),
        unserved=u,
        bound=float(info.mip_dual_bound),
        nodes=int(info.mip_node_count),
    )


UnitOrder = Callable[[IntArray], IntArray]


def expand(
    p: FacilityProblem, c: FacilityClasses, cs: ClassSolution, order: UnitOrder | None = None
) -> Solution:
    """Concrete facilities for the counts: per class, the units `order` ranks first (default: as listed)
    get the largest option types; each open copy of type t serves X_tc / n_t of customer c."""
    open_ = np.zeros(p.n_facilities, bool)
    chosen: list[IntArray] = [np.zeros(0, np.int64)] * c.n_types
    for k, table in enumerate(c.units):
        ts = np.flatnonzero(c.type_class == k)
        ranked = np.arange(table.shape[0])
        if order is not None and table.shape[0] > 1:
            ranked = order(table[:, 0])
        cap = p.capacity[c.rep[ts]]
        by_size = ts[np.argsort(-np.where(np.isfinite(cap), cap, 0.0).sum(axis=1), kind="stable")]
        start = 0
        for t in by_size:
            n = int(cs.counts[t])
            pick = table[ranked[start : start + n], c.slot[t]]
            open_[pick] = True
            chosen[t] = pick
            start += n
    pt, pc, xv = cs.pairs
    f_list: list[IntArray] = []
    c_list: list[IntArray] = []
    v_list: list[FloatArray] = []
    for i in np.flatnonzero(xv > 1e-12):
        t = int(pt[i])
        fs = chosen[t]
        if fs.size == 0:
            continue
        f_list.append(fs)
        c_list.append(np.full(fs.size, pc[i], np.int64))
        v_list.append(np.full(fs.size, xv[i] / fs.size))
    f_all = np.concatenate(f_list) if f_list else np.zeros(0, np.int64)
    c_all = np.concatenate(c_list) if c_list else np.zeros(0, np.int64)
    v_all = np.concatenate(v_list) if v_list else np.zeros(0)
    x = pairs_to_matrix((p.n_facilities, p.n_customers), f_all, c_all, v_all)
    sol = make_solution(
        p,
        open_,
        x,
        None,
        cs.unserved,
        lower_bound=cs.bound,
        status=cs.status,
        nodes=cs.nodes,
        method="classes",
        messages=[
            f"{p.n_facilities} facilities solved as {c.n_types} interchangeable types in "
            f"{len(c.units)} classes (integer counts)"
        ],
    )
    if sol.status == "optimal" and sol.gap > OPTIMAL_GAP:
        sol.status = "gap_limit"  # stopped by mip_rel_gap, not proven to round-off
    return sol


def preferred_units(original: FacilityProblem, block: int = 1 << 22) -> UnitOrder:
    """Rank units by the usage of the original customers that find them cheapest among the candidates
    (each customer votes for its cheapest allowed candidate), most first; ties keep the listed order."""

    def order(firsts: IntArray) -> IntArray:
        votes = np.zeros(firsts.size)
        step = max(1, block // max(firsts.size, 1))
        for a in range(0, original.n_customers, step):
            cols = slice(a, a + step)
            cost = np.where(original.allowed[firsts, cols], original.assign_cost[firsts, cols], np.inf)
            best = np.argmin(cost, axis=0)
            ok = np.isfinite(cost[best, np.arange(cost.shape[1])])
            votes += np.bincount(best[ok], weights=original.usage[cols, 0][ok], minlength=firsts.size)
        return np.argsort(-votes, kind="stable").astype(np.int64)

    return order


def time_left(t0: float, limit: float | None) -> float | None:
    return None if limit is None else max(limit - (time.perf_counter() - t0), 0.05)
