"""The horizon MILP over classes of interchangeable sites: integer counts instead of one binary per site.

A city's candidate sites are a few kinds (placement.classes); over a horizon two sites are
interchangeable when they are so in *every* period and their options are the same hardware at the same
prices. The per-site horizon MILP (horizon_milp) over a hundred identical sites never closes its bound:
its LP opens fractions of many sites, and branching on one of a hundred identical binaries changes
nothing. Here, per period t and option type j (a slot of a class: one module, server type and count),
n[t, j] integer counts the class's sites built with that option:

    sum_j X[t,j,c] + u[t,c] = 1                         each customer c (aggregated sources)
    X[t,j,c] <= n[t,j];  usage_c X[t,j,.] <= cap_j n[t,j]
    sum_{j in class} n[t,j] <= m                        the class has m sites
    [R] sum_{j in J, size_j >= s} n[t,j] >= same at t-1   each class chain J and size s (no retiring)
    [M] sum_{tau live} QM[J,tau] >= sum_{j in J} n[t,j]; [S] the same for servers (size_j n[t,j])

Claim: with no retiring and no redundancy (n_plus = 0) this is exact for the split-free horizon
problem. (i) A per-site plan gives counts and sums X of its x at the same cost; every row above is a
sum of per-site rows except [R], which holds because each site's size never falls, so the number of
sites of size >= s never falls. (ii) Counts satisfying [R] are realised by sites whose size never
falls: give rank i (0-based) of chain J in period t the i-th largest size present; [R] says the i-th
largest never falls. Opex is per period and the same for any choice of sites; purchases per chain
depend only on the counts when hardware outlives the horizon, and otherwise the per-site plan is
priced again (horizon.schedule_npv), so the reported gap stays honest. The class optimum is a valid
lower bound in every case: it is a relaxation of the per-site problem.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from microdc.placement import milp
from microdc.placement.aggregate import Aggregation
from microdc.placement.classes import classify
from microdc.placement.facility import FacilityProblem, Solution, SolveStatus, make_solution
from microdc.placement.horizon import HorizonProblem, Schedule

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class HorizonClasses:
    """Types (one per class slot) and classes of sites interchangeable in every period."""

    rep: IntArray  # (T,) a facility of each type
    type_class: IntArray  # (T,)
    units: list[IntArray]  # per class: (m, slots) facility of each unit's option in each slot
    chains: list[IntArray]  # per class chain: its types, largest server count first
    chain_of: IntArray  # (K',) horizon chain (hp.chain) of the class chain's representative


def horizon_classes(hp: HorizonProblem, aggs: list[Aggregation]) -> HorizonClasses:
    """Classify the facilities of every period's merged problem and keep the classes all periods share."""
    per = [classify(a.problem).type_of for a in aggs]
    n_f = aggs[0].problem.n_facilities
    keys: dict[tuple[object, ...], int] = {}
    key = np.empty(n_f, np.int64)
    for f in range(n_f):
        k = int(hp.chain[f]) if f < hp.n_opt else -1
        hw: tuple[object, ...] = ()
        if k >= 0:
            hw = (
                hp.chain_labels[k][1:],
                int(hp.servers[f]),
                tuple(np.round(hp.module_cost[:, k], 6)),
                tuple(np.round(hp.server_cost[:, k], 6)),
                int(hp.module_life[k]),
                int(hp.server_life[k]),
            )
        else:
            hw = ("fixed", f)  # installed modules and cloud regions: no purchases; keep them apart
        key[f] = keys.setdefault((tuple(int(t[f]) for t in per), hw), len(keys))
    grp = aggs[0].problem.group
    members: dict[tuple[int, int], list[int]] = {}
    for f in range(n_f):
        members.setdefault((0, int(grp[f])) if grp[f] >= 0 else (1, f), []).append(f)
    by_sig: dict[tuple[int, ...], list[list[int]]] = {}
    for fs in members.values():
        by_sig.setdefault(tuple(int(key[f]) for f in fs), []).append(fs)
    rep: list[int] = []
    type_class: list[int] = []
    units: list[IntArray] = []
    chains: list[IntArray] = []
    chain_of: list[int] = []
    for c, unit_list in enumerate(by_sig.values()):
        table = np.array(unit_list, dtype=np.int64)
        units.append(table)
        first = len(rep)
        by_chain: dict[int, list[int]] = {}
        for j in range(table.shape[1]):
            f = int(table[0, j])
            rep.append(f)
            type_class.append(c)
            k = int(hp.chain[f]) if f < hp.n_opt else -1
            if k >= 0:
                by_chain.setdefault(k, []).append(first + j)
        for k, ts in by_chain.items():
            order = sorted(ts, key=lambda t: -int(hp.servers[rep[t]]))
            chains.append(np.array(order, np.int64))
            chain_of.append(k)
    return HorizonClasses(
        rep=np.array(rep, np.int64),
        type_class=np.array(type_class, np.int64),
        units=units,
        chains=chains,
        chain_of=np.array(chain_of, np.int64),
    )


def classes_apply(
    hp: HorizonProblem, aggs: list[Aggregation], hc: HorizonClasses, share: float = 0.5
) -> bool:
    """Exact (no retiring, no redundancy) and worth it (at most `share` of the facilities remain)."""
    return (
        not hp.horizon.allow_retire
        and all(a.problem.n_plus == 0 for a in aggs)
        and hc.rep.shape[0] <= share * aggs[0].problem.n_facilities
    )


@dataclass
class ClassModel:
    n0: IntArray  # (T_periods,) first count column of each period
    pairs: list[tuple[IntArray, IntArray]]  # per period: (type, customer) of each X column
    x0: IntArray  # first X column per period
    u0: IntArray  # first u column per period (-1 without a penalty)
    qm0: int
    qs0: int
    num_col: int
    cost: FloatArray
    lower: FloatArray
    upper: FloatArray
    integrality: npt.NDArray[np.int32]
    matrix: sp.csr_array
    row_lower: FloatArray
    row_upper: FloatArray


class _Rows:
    def __init__(self) -> None:
        self.r: list[IntArray] = []
        self.c: list[IntArray] = []
        self.v: list[FloatArray] = []
        self.lo: list[float] = []
        self.hi: list[float] = []

    def block(
        self, n: int, local: IntArray, cols: IntArray, vals: FloatArray | None, lo: float, hi: float
    ) -> None:
        """n rows at once: entry i is in row `local[i]` of the block (vals None: all ones)."""
        self.r.append(len(self.lo) + np.asarray(local, np.int64))
        self.c.append(np.asarray(cols, np.int64))
        self.v.append(np.ones(len(cols)) if vals is None else np.asarray(vals, np.float64))
        self.lo.extend([lo] * n)
        self.hi.extend([hi] * n)

    def add(self, cols: npt.ArrayLike, vals: npt.ArrayLike, lo: float, hi: float) -> None:
        c = np.asarray(cols, np.int64)
        self.r.append(np.full(c.size, len(self.lo), np.int64))
        self.c.append(c)
        self.v.append(np.asarray(vals, np.float64))
        self.lo.append(lo)
        self.hi.append(hi)


def build_class_model(hp: HorizonProblem, aggs: list[Aggregation], hc: HorizonClasses) -> ClassModel:
    n_per, n_ty, n_kc = hp.n_periods, hc.rep.shape[0], len(hc.chains)
    m_units = np.array([u.shape[0] for u in hc.units], np.float64)
    cost: list[FloatArray] = []
    lower: list[FloatArray] = []
    upper: list[FloatArray] = []
    n0 = np.zeros(n_per, np.int64)
    x0 = np.zeros(n_per, np.int64)
    u0 = np.full(n_per, -1, np.int64)
    pairs: list[tuple[IntArray, IntArray]] = []
    col = 0
    rows = _Rows()
    for t, a in enumerate(aggs):
        p: FacilityProblem = a.problem
        rep = hc.rep
        n0[t] = col
        cost.append(p.fixed_cost[rep].astype(np.float64))
        lower.append(p.fixed_open[rep].astype(np.float64))
        upper.append(m_units[hc.type_class])
        col += n_ty
        pt, pc = np.nonzero(p.allowed[rep])
        pairs.append((pt.astype(np.int64), pc.astype(np.int64)))
        x0[t] = col
        cost.append(np.asarray(p.assign_cost[rep[pt], pc], np.float64))
        lower.append(np.zeros(pt.size))
        upper.append(np.ones(pt.size))
        col += pt.size
        pen = p.unserved_penalty
        if pen is not None:
            u0[t] = col
            cost.append(np.asarray(pen, np.float64))
            lower.append(np.zeros(p.n_customers))
            upper.append(np.ones(p.n_customers))
            col += p.n_customers
        xc = x0[t] + np.arange(pt.size)
        # [A] each customer served (or unserved), [L] X <= n.
        a_rows, a_cols = [pc], [xc]
        if u0[t] >= 0:
            a_rows.append(np.arange(p.n_customers))
            a_cols.append(u0[t] + np.arange(p.n_customers))
        rows.block(p.n_customers, np.concatenate(a_rows), np.concatenate(a_cols), None, 1.0, 1.0)
        idx = np.arange(pt.size)
        rows.block(
            pt.size,
            np.concatenate([idx, idx]),
            np.concatenate([xc, n0[t] + pt]),
            np.concatenate([np.ones(pt.size), -np.ones(pt.size)]),
            -np.inf,
            0.0,
        )
        for j in range(n_ty):  # [C]
            on = pt == j
            for r in range(p.n_resources):
                cap = float(p.capacity[rep[j], r])
                use = p.usage[pc[on], r]
                if not np.isfinite(cap) or use.sum() <= cap * (1 + 1e-12):
                    continue
                rows.add(np.concatenate([xc[on], [n0[t] + j]]), np.concatenate([use, [-cap]]), -np.inf, 0.0)
        for c, u in enumerate(hc.units):  # each class has m sites
            ts = np.flatnonzero(hc.type_class == c)
            if ts.size > 1:
                rows.add(n0[t] + ts, np.ones(ts.size), -np.inf, float(u.shape[0]))
    qm0 = col
    qs0 = qm0 + n_per * n_kc
    num_col = qs0 + n_per * n_kc
    k = hc.chain_of
    cost += [hp.module_cost[:, k].ravel(), hp.server_cost[:, k].ravel()]
    lower.append(np.zeros(2 * n_per * n_kc))
    upper.append(np.full(2 * n_per * n_kc, np.inf))
    size = hp.servers[np.minimum(hc.rep, hp.n_opt - 1)].astype(np.float64)
    for i, ts in enumerate(hc.chains):
        kk = int(k[i])
        for t in range(n_per):
            live_m = np.arange(max(0, t - int(hp.module_life[kk]) + 1), t + 1)
            rows.add(
                np.concatenate([qm0 + live_m * n_kc + i, n0[t] + ts]),
                np.concatenate([np.ones(live_m.size), -np.ones(ts.size)]),
                0.0,
                np.inf,
            )
            live_s = np.arange(max(0, t - int(hp.server_life[kk]) + 1), t + 1)
            rows.add(
                np.concatenate([qs0 + live_s * n_kc + i, n0[t] + ts]),
                np.concatenate([np.ones(live_s.size), -size[ts]]),
                0.0,
                np.inf,
            )
            if t == 0:
                continue
            for s in range(1, ts.size + 1):  # [R] sites of at least the s-th largest size never fewer
                top = ts[:s]
                rows.add(
                    np.concatenate([n0[t] + top, n0[t - 1] + top]),
                    np.concatenate([np.ones(s), -np.ones(s)]),
                    0.0,
                    np.inf,
                )
    integrality = np.zeros(num_col, np.int32)
    for t in range(n_per):
        integrality[n0[t] : n0[t] + n_ty] = 1
    matrix = sp.csr_array(
        (np.concatenate(rows.v), (np.concatenate(rows.r), np.concatenate(rows.c))),
        shape=(len(rows.lo), num_col),
    )
    matrix.sum_duplicates()
    return ClassModel(
        n0=n0,
        pairs=pairs,
        x0=x0,
        u0=u0,
        qm0=qm0,
        qs0=qs0,
        num_col=num_col,
        cost=np.concatenate(cost),
        lower=np.concatenate(lower),
        upper=np.concatenate(upper),
        integrality=integrality,
        matrix=matrix,
        row_lower=np.asarray(rows.lo, np.float64),
        row_upper=np.asarray(rows.hi, np.float64),
    )


def warm_class_columns(
    cm: ClassModel, hp: HorizonProblem, hc: HorizonClasses, merged: list[Solution], sch: Schedule
) -> FloatArray:
    """A per-site schedule (its solutions on the merged problems) as class-model columns."""
    v = np.zeros(cm.num_col)
    n_ty = hc.rep.shape[0]
    type_of = np.full(merged[0].open.shape[0], -1, np.int64)
    for c, u in enumerate(hc.units):
        ts = np.flatnonzero(hc.type_class == c)
        for j in range(u.shape[1]):
            type_of[u[:, j]] = ts[j]
    for t, sol in enumerate(merged):
        counts = np.bincount(type_of[np.flatnonzero(sol.open)], minlength=n_ty)
        v[cm.n0[t] : cm.n0[t] + n_ty] = counts
        xs = np.zeros((n_ty, sol.x_dense().shape[1]))
        np.add.at(xs, type_of, sol.x_dense())
        pt, pc = cm.pairs[t]
        v[cm.x0[t] : cm.x0[t] + pt.size] = xs[pt, pc]
        if cm.u0[t] >= 0:
            v[cm.u0[t] : cm.u0[t] + sol.unserved.size] = sol.unserved
    n_kc = len(hc.chains)
    for i, ts in enumerate(hc.chains):
        # The class chain's sites: every horizon chain whose options are of these types.
        ks = np.unique(hp.chain[np.isin(type_of[: hp.n_opt], ts)])
        ks = ks[ks >= 0]
        for t in range(hp.n_periods):
            v[cm.qm0 + t * n_kc + i] = sch.module_buys[t, ks].sum()
            v[cm.qs0 + t * n_kc + i] = sch.server_buys[t, ks].sum()
    return v


def expand_classes(
    cm: ClassModel, hc: HorizonClasses, aggs: list[Aggregation], values: FloatArray, status: SolveStatus
) -> list[Solution]:
    """Per-period plans of the merged problems from the class solution: rank i of a class chain gets,
    in each period, the i-th largest option present (so no site shrinks), X split evenly over copies."""
    n_ty = hc.rep.shape[0]
    n_per = len(aggs)
    counts = np.rint(np.stack([values[cm.n0[t] : cm.n0[t] + n_ty] for t in range(n_per)])).astype(np.int64)
    n_f = aggs[0].problem.n_facilities
    opens = [np.zeros(n_f, bool) for _ in range(n_per)]
    type_fac: list[list[list[int]]] = [[[] for _ in range(n_ty)] for _ in range(n_per)]
    for c, table in enumerate(hc.units):
        ts = np.flatnonzero(hc.type_class == c)
        slot = {int(ty): j for j, ty in enumerate(ts)}
        used = 0
        groups = [ch for ch in hc.chains if hc.type_class[ch[0]] == c]
        in_chain = {int(ty) for ch in groups for ty in ch}
        groups += [np.array([ty], np.int64) for ty in ts if int(ty) not in in_chain]
        for ch in groups:
            block = int(counts[:, ch].sum(axis=1).max())
            units = table[used : used + block]
            used += block
            for t in range(n_per):
                rank = 0
                for ty in ch:
                    for _ in range(int(counts[t, ty])):
                        f = int(units[rank, slot[int(ty)]])
                        opens[t][f] = True
                        type_fac[t][int(ty)].append(f)
                        rank += 1
    out = []
    for t, a in enumerate(aggs):
        p = a.problem
        x = np.zeros((n_f, p.n_customers))
        pt, pc = cm.pairs[t]
        xv = values[cm.x0[t] : cm.x0[t] + pt.size]
        for ty, c, val in zip(pt, pc, xv, strict=True):
            fs = type_fac[t][int(ty)]
            if val > 0 and fs:
                x[fs, c] += val / len(fs)
        u = np.zeros(p.n_customers) if cm.u0[t] < 0 else values[cm.u0[t] : cm.u0[t] + p.n_customers]
        out.append(
            make_solution(
                p, opens[t], x, None, np.asarray(u), lower_bound=-np.inf, status=status, method="horizon"
            )
        )
    return out


@dataclass
class ClassResult:
    merged: list[Solution] | None  # per period, on the merged (aggregated) problem
    objective: float
    bound: float
    model_status: highspy.HighsModelStatus
    seconds: float
    nodes: int


def solve_class_milp(
    hp: HorizonProblem,
    aggs: list[Aggregation],
    hc: HorizonClasses,
    *,
    warm: tuple[list[Solution], Schedule] | None,
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
    verbose: bool = False,
) -> ClassResult:
    t0 = time.perf_counter()
    cm = build_class_model(hp, aggs, hc)
    h = milp._new_highs(verbose, threads, time_limit_s)
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", 1e-9)
    st = milp.pass_model(
        h, cm.matrix, cm.cost, cm.lower, cm.upper, cm.row_lower, cm.row_upper, cm.integrality
    )
    milp._check(st, "passModel (horizon classes)")
    if warm is not None:
        col = warm_class_columns(cm, hp, hc, *warm)
        milp._check(h.setSolution(cm.num_col, np.arange(cm.num_col, dtype=np.int32), col), "setSolution")
    milp._run(h, "run (horizon class MILP)")
    ms = h.getModelStatus()
    info = h.getInfo()
    seconds = time.perf_counter() - t0
    nodes = int(info.mip_node_count)
    bound = float(info.mip_dual_bound)
    if info.primal_solution_status != highspy.kSolutionStatusFeasible:
        return ClassResult(None, float("inf"), bound, ms, seconds, nodes)
    values = np.asarray(h.getSolution().col_value)
    text: SolveStatus = milp._STATUS_TEXT.get(ms, "time_limit")
    merged = expand_classes(cm, hc, aggs, values, text)
    return ClassResult(merged, float(info.objective_function_value), bound, ms, seconds, nodes)
