"""Baselines a plan is compared with, on the same planning problem and cost model.

- cloud-only: every demand to the cheapest cloud region its sovereignty rule and tier allow (SLO
  misses are kept and shown; demand no region may legally hold is reported, never moved illegally);
- nearest: build the largest module that fits at every candidate site, send each demand to the
  nearest legal site with room, overflow to the cloud;
- greedy: the classic "add" heuristic — open the build option that saves most until none saves.
Baselines do not reserve redundancy capacity; that is noted on each plan.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from microdc.placement.facility import make_solution, pairs_to_matrix
from microdc.placement.plan import Plan
from microdc.placement.planner import solution_to_plan
from microdc.placement.problem import PlanningProblem

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]


class Pairs:
    """A baseline's assignment as (facility, customer, fraction) triplets: a baseline touches a few
    pairs per customer, so it never holds an (F, C) matrix until the plan asks for one (CSR above
    facility.DENSE_LIMIT entries)."""

    def __init__(self) -> None:
        self.f: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []

    def add(self, f: npt.ArrayLike, c: npt.ArrayLike, v: npt.ArrayLike) -> None:
        fa, ca = np.atleast_1d(np.asarray(f)), np.atleast_1d(np.asarray(c))
        va = np.broadcast_to(np.asarray(v, dtype=np.float64), fa.shape)
        self.f += fa.tolist()
        self.c += ca.tolist()
        self.v += va.tolist()

    def arrays(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
        return (
            np.array(self.f, dtype=np.int64),
            np.array(self.c, dtype=np.int64),
            np.array(self.v, dtype=np.float64),
        )

    def matrix(self, shape: tuple[int, int]) -> npt.NDArray[np.float64] | sp.csr_array:
        return pairs_to_matrix(shape, *self.arrays())


def _cloud_fallback(pp: PlanningProblem, x: Pairs, unserved: FloatArray) -> dict[int, list[str]]:
    """Send what is left of each demand to its cheapest legal cloud region; report what cannot go."""
    n_opt = pp.n_sites_options
    legal = pp.legal_rows()[pp.n_site_rows :]  # cloud rows are the regions in order
    cost = np.where(legal, pp.cloud_raw_cost(), np.inf)
    reasons: dict[int, list[str]] = {}
    s = pp.scenario
    left = unserved > 1e-9
    nowhere = left & ~legal.any(axis=0)
    for c in np.flatnonzero(nowhere).tolist():
        d = s.demand[c]
        reasons[c] = [
            f"no cloud region may hold {d.data_class!r} data from {d.jurisdiction} "
            f"(process_in={s.policy_for(d.data_class).process_in!r}); serving it from the cloud would "
            "break the sovereignty rule"
        ]
    go = np.flatnonzero(left & ~nowhere)
    if go.size:
        f = n_opt + np.argmin(cost[:, go], axis=0)
        x.add(f, go, unserved[go])
        unserved[go] = 0.0
    return reasons


def _finish(
    pp: PlanningProblem,
    open_: BoolArray,
    x: Pairs,
    unserved: FloatArray,
    name: str,
    t0: float,
    reasons: dict[int, list[str]],
    notes: list[str],
) -> Plan:
    open_ = open_ | pp.facility.fixed_open
    sol = make_solution(
        pp.facility,
        open_,
        x.matrix((pp.facility.n_facilities, pp.facility.n_customers)),
        None,
        unserved,
        lower_bound=-np.inf,
        status="heuristic",
        seconds=time.perf_counter() - t0,
        method=name,
    )
    if pp.facility.n_plus:
        notes = [*notes, "baseline reserves no redundancy capacity (n_plus ignored)"]
    return solution_to_plan(pp, sol, alternative=name, blocked=reasons, notes=notes)


def _slo_note(pp: PlanningProblem, x: Pairs) -> list[str]:
    f, c, v = x.arrays()
    missed = float((v * ~pp.pair_slo_ok(f, c) * pp.demand.mean_rps[c]).sum())
    total = float(pp.demand.mean_rps.sum())
    return (
        [f"{missed / total:.1%} of requests are routed where the predicted p95 misses the SLO"]
        if missed
        else []
    )


def cloud_only(pp: PlanningProblem) -> Plan:
    t0 = time.perf_counter()
    n_f, n_c = pp.facility.n_facilities, pp.facility.n_customers
    x = Pairs()
    unserved = np.ones(n_c)
    reasons = _cloud_fallback(pp, x, unserved)
    return _finish(pp, np.zeros(n_f, bool), x, unserved, "cloud-only", t0, reasons, _slo_note(pp, x))


OrderCost = Callable[[npt.NDArray[np.int64]], FloatArray]


def _fill(pp: PlanningProblem, open_: BoolArray, order_cost: OrderCost) -> tuple[Pairs, FloatArray]:
    """Assign demand, largest first, to open legal site options by ascending cost, within capacity;
    `order_cost(options)` gives the (len(options), C) rows to order by. Sequential by nature (each
    customer sees the room the larger ones left), but only over the open options: their rows are cut
    out once, so each customer's step works on a handful of numbers."""
    fp = pp.facility
    n_opt = pp.n_sites_options
    x = Pairs()
    unserved = np.ones(fp.n_customers)
    opened = np.flatnonzero(open_[:n_opt])
    room = fp.capacity[opened].copy()
    usage = fp.usage
    ok_t = np.ascontiguousarray(fp.allowed[opened].T)  # (C, open) so a customer's row is contiguous
    cost_t = np.ascontiguousarray(np.asarray(order_cost(opened)).T)
    use_rows = usage.tolist()  # plain floats: the step below is scalar arithmetic on a few numbers
    room_rows = room.tolist()
    left = unserved.tolist()
    for c in np.argsort(-usage[:, 0], kind="stable").tolist():
        cands = np.flatnonzero(ok_t[c])
        if cands.size == 0:
            continue
        use = use_rows[c]
        for k in cands[np.argsort(cost_t[c, cands], kind="stable")].tolist():
            if left[c] <= 1e-12:
                break
            r = room_rows[k]
            frac = min((r[i] / u if u > 0 else math.inf) for i, u in enumerate(use))
            take = min(left[c], max(frac, 0.0))
            if take <= 1e-12:
                continue
            x.add(int(opened[k]), c, take)
            left[c] -= take
            room_rows[k] = [r[i] - take * u for i, u in enumerate(use)]
    unserved = np.array(left)
    return x, unserved


def nearest(pp: PlanningProblem) -> Plan:
    t0 = time.perf_counter()
    n_opt = pp.n_sites_options
    open_ = np.zeros(pp.facility.n_facilities, bool)
    cores = pp.facility.capacity[:n_opt, 0]
    for site in np.unique(pp.target_site[:n_opt]):
        options = np.flatnonzero(pp.target_site[:n_opt] == site)
        open_[options[np.argmax(cores[options])]] = True
    x, unserved = _fill(pp, open_, lambda fs: pp.rtt_rows(pp.target_row[fs]))
    reasons = _cloud_fallback(pp, x, unserved)
    # Options that ended up serving nothing are still built: that is what "open every site" costs.
    return _finish(pp, open_, x, unserved, "nearest", t0, reasons, _slo_note(pp, x))


def _capacity_gain(
    saving: FloatArray,
    usage: FloatArray,
    capacity: FloatArray,
    rows: npt.NDArray[np.int64],
    chunk: int = 256,
    head: int = 256,
) -> FloatArray:
    """For each option in `rows`: the saving of its best customers by saving per core (ties by customer
    order), taken while their cores fit — the capacity-aware estimate of the add step, whole rows at once.
    Only the `head` best customers of a row are sorted (a partition finds them); a row whose capacity
    those do not fill is sorted in full."""
    out = np.zeros(rows.size)
    per_unit = np.maximum(usage, 1e-9)
    n_c = saving.shape[1]

    def gain(
        s: FloatArray, key: FloatArray, cols: npt.NDArray[np.int64], cap: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        order = np.take_along_axis(
            cols, np.argsort(np.take_along_axis(key, cols, axis=1), axis=1, kind="stable"), axis=1
        )
        s_sorted = np.take_along_axis(s, order, axis=1)
        used = np.cumsum(np.where(s_sorted > 0, usage[order], 0.0), axis=1)
        return np.asarray(np.where(used <= cap[:, None], s_sorted, 0.0).sum(axis=1)), used[:, -1]

    for start in range(0, rows.size, chunk):
        r = rows[start : start + chunk]
        s = saving[r]
        key = np.where(s > 0, -s / per_unit[None, :], np.inf)  # customers that save nothing go last
        cap = capacity[r]
        if head < n_c:
            cols = np.sort(np.argpartition(key, head - 1, axis=1)[:, :head], axis=1)
            g, used = gain(s, key, cols, cap)
            full = np.flatnonzero(used <= cap)  # the head did not fill the option: sort the whole row
        else:
            g, full = np.zeros(r.size), np.arange(r.size)
        if full.size:
            every = np.broadcast_to(np.arange(n_c), (full.size, n_c))
            g[full], _ = gain(s[full], key[full], np.ascontiguousarray(every), cap[full])
        out[start : start + chunk] = g
    return out


def greedy(pp: PlanningProblem, max_rounds: int = 500) -> Plan:
    t0 = time.perf_counter()
    fp = pp.facility
    n_opt = pp.n_sites_options
    cloud = np.where(pp.legal_rows()[pp.n_site_rows :] & fp.allowed[n_opt:], fp.assign_cost[n_opt:], np.inf)
    current = cloud.min(axis=0) if cloud.size else np.full(fp.n_customers, np.inf)
    current = np.where(
        np.isfinite(current), current, fp.unserved_penalty if fp.unserved_penalty is not None else 1e12
    )
    open_ = np.zeros(fp.n_facilities, bool)
    closed_groups: set[int] = set()

    def site_cost(rows: npt.NDArray[np.int64]) -> FloatArray:
        return np.where(fp.allowed[rows], fp.assign_cost[rows], np.inf)

    group = fp.group[:n_opt]
    # Savings in row blocks of about 4M entries, each block's gains computed before the next is filled:
    # never an (options x demand) buffer (3.5 GB at 10,000 sites).
    step = max(1, (1 << 22) // max(fp.n_customers, 1))
    for _ in range(max_rounds):
        blocked = open_[:n_opt] | np.isin(group, list(closed_groups))
        best_gain = np.full(n_opt, -np.inf)
        for a in range(0, n_opt, step):
            b = min(a + step, n_opt)
            block = np.subtract(current[None, :], fp.assign_cost[a:b])
            np.maximum(block, 0.0, out=block)
            block[~fp.allowed[a:b]] = 0.0
            # Only an option whose whole saving beats its fixed cost can gain (the loop stops at gain <= 0).
            rows = np.flatnonzero(~blocked[a:b] & (block.sum(axis=1) > fp.fixed_cost[a:b]))
            best_gain[a + rows] = (
                _capacity_gain(block, fp.usage[:, 0], fp.capacity[a:b, 0], rows) - fp.fixed_cost[a + rows]
            )
        f_best = int(np.argmax(best_gain))
        if best_gain[f_best] <= 0:
            break
        open_[f_best] = True
        closed_groups.add(int(fp.group[f_best]))
        x_try, _ = _fill(pp, open_, site_cost)
        f, c, v = x_try.arrays()  # allowed pairs only
        served = np.where(v > 0, fp.assign_cost[f, c], 0.0)
        served_cost = np.bincount(c, weights=served, minlength=fp.n_customers)
        frac = np.bincount(c, weights=v, minlength=fp.n_customers)
        current = np.where(frac >= 1 - 1e-9, served_cost, current)
    x, unserved = _fill(pp, open_, site_cost)
    reasons = _cloud_fallback(pp, x, unserved)
    return _finish(pp, open_, x, unserved, "greedy", t0, reasons, _slo_note(pp, x))


BASELINES = {"cloud-only": cloud_only, "nearest": nearest, "greedy": greedy}
