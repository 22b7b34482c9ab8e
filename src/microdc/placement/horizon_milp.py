"""The horizon MILP: the periods' single-period HiGHS models stacked, tied by purchases and (unless
retiring is allowed) never-shrinking capacity; see placement.horizon for the formulation."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import highspy
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from microdc.placement import milp
from microdc.placement.aggregate import Aggregation, aggregate_customers, expand_solution
from microdc.placement.facility import FacilityProblem, Solution, SolveStatus, make_solution
from microdc.placement.horizon import HorizonProblem, Schedule, _scaled, yearly_opex_problem
from microdc.placement.horizon_classes import classes_apply, horizon_classes, solve_class_milp
from microdc.placement.milp import solve_assignment, solve_restricted
from microdc.placement.solve import reassign_over_limit, targets_per_customer

IntArray = npt.NDArray[np.int64]


@dataclass
class HorizonModel:
    models: list[milp.Model]  # per period
    offsets: IntArray  # first column of each period's block
    qm0: int  # module purchase columns: qm0 + t * K + k
    qs0: int  # server purchase columns
    num_col: int
    cost: npt.NDArray[np.float64]
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    integrality: npt.NDArray[np.int32]
    matrix: sp.csr_array
    row_lower: npt.NDArray[np.float64]
    row_upper: npt.NDArray[np.float64]

    def ycol(self, t: int, f: int) -> int:
        m = self.models[t]
        return int(self.offsets[t] + m.y0 + f)


def period_aggregations(hp: HorizonProblem) -> list[Aggregation]:
    """Each period's discounted problem without the split limit, interchangeable demand sources merged
    (placement.aggregate: exact). Dropping the limit relaxes the problem, so the bound stays valid;
    :func:`within_split_limit` repairs a period whose plan splits a source over too many targets."""
    out = []
    for t, pp in enumerate(hp.periods):
        fp = _scaled(yearly_opex_problem(pp), float(hp.opex[t]))
        out.append(aggregate_customers(replace(fp, max_targets=0)))
    return out


def within_split_limit(
    fp: FacilityProblem, sol: Solution, threads: int | None = None, time_limit_s: float | None = None
) -> Solution:
    """The plan if it keeps fp's split limit; else an assignment under the limit on the same open
    facilities (so purchases and capacity over the horizon are unchanged), or the plan unchanged if
    none is found (the caller's check then names it).

    First the simplex's cheapest assignment to the open set: if it keeps the limit it is the best (the
    unlimited assignment is a relaxation). Else the sources it splits over more are re-assigned alone
    (a small MILP), and the limited MILP on the open set improves on that within `time_limit_s` (None:
    to optimality). At city scale the limited MILP over every source does not finish: hence the steps."""
    k = fp.max_targets
    if not k or int((targets_per_customer(sol.x) > k).sum()) == 0:
        return sol
    best: Solution | None = None
    vertex = solve_assignment(fp, sol.open, threads=threads)
    if vertex.feasible:
        v: Solution | None = vertex.solution(fp)
        assert v is not None
        still = np.flatnonzero(targets_per_customer(v.x) > k)
        if still.size == 0:
            return v
        if not fp.n_plus:
            v = reassign_over_limit(fp, v, still, time_limit_s, 1e-9, threads)
        if v is not None and int((targets_per_customer(v.x) > k).sum()) == 0:
            best = v
    opened = np.flatnonzero(sol.open).astype(np.int64)
    fixed = solve_restricted(
        fp, threads=threads, facilities=opened, force_open=opened, time_limit_s=time_limit_s, warm_start=best
    )
    if np.isfinite(fixed.objective) and (best is None or fixed.objective < best.objective):
        best = fixed
    return sol if best is None else best


def merge_solution(agg: Aggregation, original: FacilityProblem, sol: Solution) -> Solution:
    """A plan of the original problem as a plan of the merged one (load-weighted fractions)."""
    if not agg.reduced:
        return sol
    k = agg.problem.n_customers
    w = original.usage.sum(axis=1)
    onehot = np.zeros((original.n_customers, k))
    onehot[np.arange(original.n_customers), agg.members] = w
    onehot /= onehot.sum(axis=0, keepdims=True)
    z = sol.z_dense()
    return make_solution(
        agg.problem,
        sol.open,
        sol.x_dense() @ onehot,
        None if z is None else z @ onehot,
        np.asarray(sol.unserved) @ onehot,
        lower_bound=-np.inf,
        status="heuristic",
    )


def build_horizon_model(hp: HorizonProblem, aggs: list[Aggregation]) -> HorizonModel:
    n_t, n_k = hp.n_periods, hp.n_chains
    models = [milp.build_model(a.problem) for a in aggs]
    sizes = np.array([m.num_col for m in models], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    qm0 = int(sizes.sum())
    qs0 = qm0 + n_t * n_k
    num_col = qs0 + n_t * n_k
    cost = np.concatenate([m.col_cost for m in models] + [hp.module_cost.ravel(), hp.server_cost.ravel()])
    lower = np.concatenate([m.col_lower for m in models] + [np.zeros(2 * n_t * n_k)])
    upper = np.concatenate([m.col_upper for m in models] + [np.full(2 * n_t * n_k, np.inf)])
    integrality = np.zeros(num_col, np.int32)
    for m, o in zip(models, offsets, strict=True):
        if m.integer and m.y0 >= 0:
            integrality[o + m.y0 : o + m.y0 + m.facilities.shape[0]] = 1
        if m.integer and m.w0 >= 0:
            integrality[o + m.w0 : o + m.w0 + m.w_pairs.shape[0]] = 1

    rows: list[npt.NDArray[np.int64]] = []
    cols: list[npt.NDArray[np.int64]] = []
    vals: list[npt.NDArray[np.float64]] = []
    lo: list[float] = []
    n_rows = 0
    opt = np.flatnonzero(hp.chain >= 0)
    kf = hp.chain[opt]
    nf = hp.servers[opt].astype(np.float64)

    def add_row(c: npt.NDArray[np.int64], v: npt.NDArray[np.float64], lower_bound: float = 0.0) -> None:
        nonlocal n_rows
        rows.append(np.full(c.shape[0], n_rows, np.int64))
        cols.append(c)
        vals.append(v)
        lo.append(lower_bound)
        n_rows += 1

    for k in range(n_k):
        fk = opt[kf == k]
        nk = nf[kf == k]
        for t in range(n_t):
            y_t = np.array([hp_y(models, offsets, t, f) for f in fk], np.int64)
            # [M] the module bought within its lifetime covers the module standing in period t.
            live_m = np.arange(max(0, t - int(hp.module_life[k]) + 1), t + 1)
            add_row(
                np.concatenate([qm0 + live_m * n_k + k, y_t]),
                np.concatenate([np.ones(live_m.size), -np.ones(fk.size)]),
            )
            # [S] servers bought within their lifetime cover the servers standing in period t.
            live_s = np.arange(max(0, t - int(hp.server_life[k]) + 1), t + 1)
            add_row(
                np.concatenate([qs0 + live_s * n_k + k, y_t]), np.concatenate([np.ones(live_s.size), -nk])
            )
            if t == 0 or hp.horizon.allow_retire:
                continue
            # [R] capacity never shrinks: the chain stays built and keeps at least its servers.
            y_p = np.array([hp_y(models, offsets, t - 1, f) for f in fk], np.int64)
            add_row(np.concatenate([y_t, y_p]), np.concatenate([np.ones(fk.size), -np.ones(fk.size)]))
            add_row(np.concatenate([y_t, y_p]), np.concatenate([nk, -nk]))

    blocks = sp.block_diag([m.matrix for m in models], format="csr")
    link = sp.csr_array(
        (
            np.concatenate(vals) if vals else np.zeros(0),
            (
                np.concatenate(rows) if rows else np.zeros(0, np.int64),
                np.concatenate(cols) if cols else np.zeros(0, np.int64),
            ),
        ),
        shape=(n_rows, num_col),
    )
    blocks.resize((blocks.shape[0], num_col))
    matrix = sp.csr_array(sp.vstack([blocks, link], format="csr"))
    row_lower = np.concatenate([m.row_lower for m in models] + [np.asarray(lo, np.float64)])
    row_upper = np.concatenate([m.row_upper for m in models] + [np.full(n_rows, np.inf)])
    return HorizonModel(
        models, offsets, qm0, qs0, num_col, cost, lower, upper, integrality, matrix, row_lower, row_upper
    )


def hp_y(models: list[milp.Model], offsets: IntArray, t: int, f: int) -> int:
    """Column of y[f, t] (every period's model has a y column for every facility)."""
    return int(offsets[t] + models[t].y0 + f)


def warm_columns(
    hm: HorizonModel, hp: HorizonProblem, aggs: list[Aggregation], sch: Schedule
) -> npt.NDArray[np.float64]:
    v = np.zeros(hm.num_col)
    for t, (m, o) in enumerate(zip(hm.models, hm.offsets, strict=True)):
        merged = merge_solution(aggs[t], hp.periods[t].facility, sch.solutions[t])
        v[o : o + m.num_col] = m.column_values(merged)
    n_k = hp.n_chains
    v[hm.qm0 : hm.qm0 + sch.module_buys.size] = sch.module_buys.ravel().astype(float)
    v[hm.qs0 : hm.qs0 + sch.server_buys.size] = sch.server_buys.ravel().astype(float)
    assert sch.module_buys.shape[1] == n_k
    return v


@dataclass
class HorizonResult:
    solutions: list[Solution] | None  # per period, on the period's single-period problem
    objective: float  # HiGHS objective (net present cost), inf without a plan
    bound: float
    status: SolveStatus
    seconds: float
    nodes: int
    skipped: str | None = None  # why HiGHS did not run (the model would not fit the memory budget)


#: Peak bytes per estimated nonzero of the per-site horizon MILP: our model, HiGHS's copy of it, its
#: presolve, LP factors and the first 30 s of its search tree. Measured 932 and 995 (benchmarks/
#: horizon_memory.py, 1.5 M and 0.3 M nonzeros; docs/benchmarks.md "memory guard"), rounded up.
BYTES_PER_NONZERO = 1000.0
#: Share of the memory available when planning starts that the per-site horizon MILP may take (the
#: machine is shared, and the heuristics' plans are already held).
MEMORY_SHARE = 0.5


@dataclass(frozen=True)
class ModelSize:
    columns: int
    nonzeros: int

    @property
    def bytes(self) -> float:
        return BYTES_PER_NONZERO * self.nonzeros


def per_site_model_size(problems: list[FacilityProblem]) -> ModelSize:
    """Estimated size of the per-site horizon MILP on the periods' (merged) problems, from the allowed
    pairs alone (building it to count would take the memory the estimate is there to save). Per pair
    column (two with a backup): one assignment row, one row per resource, and the pair's x <= y link
    (two nonzeros)."""
    cols = nnz = 0
    for p in problems:
        pairs = int(np.count_nonzero(p.allowed))
        per_pair = 2 if p.n_plus > 0 else 1
        cols += p.n_facilities + p.n_customers + per_pair * pairs
        nnz += per_pair * pairs * (3 + p.n_resources) + 2 * p.n_facilities
    return ModelSize(cols, nnz)


def available_memory_bytes() -> float | None:
    """MemAvailable from /proc/meminfo (None where there is none: no guard then)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024.0
    except OSError:
        return None
    return None


def memory_budget(budget_bytes: float | None) -> float | None:
    """The budget given, else MEMORY_SHARE of the memory available now (None: unknown, no guard)."""
    if budget_bytes is not None:
        return budget_bytes
    avail = available_memory_bytes()
    return None if avail is None else MEMORY_SHARE * avail


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB"


def too_big_note(size: ModelSize, budget: float) -> str:
    return (
        f"the per-site horizon MILP was skipped: about {size.columns:,} columns and {size.nonzeros:,} "
        f"nonzeros, an estimated {_gb(size.bytes)} against a memory budget of {_gb(budget)}; "
        "the plan is the best heuristic plan and no lower bound is claimed. To get a bound: fewer "
        "candidate sites (or sites alike, so the class MILP applies), a coarser horizon (larger "
        "step_years), or a larger budget (microdc plan --memory-budget-gb) on a machine with more memory"
    )


def solve_horizon_milp(
    hp: HorizonProblem,
    *,
    warm: Schedule | None,
    time_limit_s: float | None,
    mip_rel_gap: float,
    threads: int | None,
    verbose: bool = False,
    use_classes: bool = True,
    repair_time_s: float | None = None,
    memory_budget_bytes: float | None = None,
) -> HorizonResult:
    """HiGHS on the whole horizon: over classes of interchangeable sites when that is exact
    (placement.horizon_classes), else one binary per site option and period. `repair_time_s`: time for
    each period's split-limit repair (:func:`within_split_limit`; None: to optimality). The per-site
    MILP is not built when its estimated size exceeds `memory_budget_bytes` (None: a share of the
    memory available): the result then has no plan, no bound and a `skipped` note."""
    t0 = time.perf_counter()
    aggs = period_aggregations(hp)
    if use_classes:
        hc = horizon_classes(hp, aggs)
        if classes_apply(hp, aggs, hc):
            merged_warm = None
            if warm is not None:
                merged = [
                    merge_solution(aggs[t], hp.periods[t].facility, s) for t, s in enumerate(warm.solutions)
                ]
                merged_warm = (merged, warm)
            cr = solve_class_milp(
                hp,
                aggs,
                hc,
                warm=merged_warm,
                time_limit_s=time_limit_s,
                mip_rel_gap=mip_rel_gap,
                threads=threads,
                verbose=verbose,
            )
            return _result(
                hp,
                aggs,
                cr.model_status,
                cr.merged,
                cr.objective,
                cr.bound,
                t0,
                cr.nodes,
                threads,
                repair_time_s,
            )
    size = per_site_model_size([a.problem for a in aggs])
    budget = memory_budget(memory_budget_bytes)
    if budget is not None and size.bytes > budget:
        return HorizonResult(
            None,
            float("inf"),
            -float("inf"),
            "heuristic",
            time.perf_counter() - t0,
            0,
            too_big_note(size, budget),
        )
    hm = build_horizon_model(hp, aggs)
    h = milp._new_highs(verbose, threads, time_limit_s)
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", 1e-9)
    a = hm.matrix
    status = milp.pass_model(h, a, hm.cost, hm.lower, hm.upper, hm.row_lower, hm.row_upper, hm.integrality)
    milp._check(status, "passModel (horizon)")
    if warm is not None:
        col = warm_columns(hm, hp, aggs, warm)
        milp._check(h.setSolution(hm.num_col, np.arange(hm.num_col, dtype=np.int32), col), "setSolution")
    milp._run(h, "run (horizon MILP)")
    ms = h.getModelStatus()
    info = h.getInfo()
    nodes = int(info.mip_node_count)
    bound = float(info.mip_dual_bound)
    merged_sols = None
    if info.primal_solution_status == highspy.kSolutionStatusFeasible:
        values = np.asarray(h.getSolution().col_value)
        st: SolveStatus = milp._STATUS_TEXT.get(ms, "time_limit")
        merged_sols = []
        for t, (m, o) in enumerate(zip(hm.models, hm.offsets, strict=True)):
            open_, x, z, u = m.extract(values[o : o + m.num_col])
            merged_sols.append(
                make_solution(
                    aggs[t].problem, open_, x, z, u, lower_bound=-np.inf, status=st, method="horizon"
                )
            )
    return _result(
        hp,
        aggs,
        ms,
        merged_sols,
        float(info.objective_function_value),
        bound,
        t0,
        nodes,
        threads,
        repair_time_s,
    )


def _result(
    hp: HorizonProblem,
    aggs: list[Aggregation],
    ms: highspy.HighsModelStatus,
    merged: list[Solution] | None,
    objective: float,
    bound: float,
    t0: float,
    nodes: int,
    threads: int | None,
    repair_time_s: float | None,
) -> HorizonResult:
    """Per-period plans of the original problems from plans of the merged ones (split limit repaired)."""
    seconds = time.perf_counter() - t0
    if ms in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return HorizonResult(None, float("inf"), float("inf"), "infeasible", seconds, nodes)
    st: SolveStatus = milp._STATUS_TEXT.get(ms, "time_limit")
    if merged is None:
        return HorizonResult(None, float("inf"), bound, "time_limit", seconds, nodes)
    sols = []
    for t, sol in enumerate(merged):
        full = expand_solution(hp.periods[t].facility, aggs[t], sol)
        full = within_split_limit(yearly_opex_problem(hp.periods[t]), full, threads, repair_time_s)
        sols.append(
            make_solution(
                hp.periods[t].facility,
                full.open,
                full.x,
                full.z,
                full.unserved,
                lower_bound=-np.inf,
                status=st,
                method="horizon",
                messages=full.messages,
            )
        )
    return HorizonResult(sols, objective, bound, st, time.perf_counter() - t0, nodes)
