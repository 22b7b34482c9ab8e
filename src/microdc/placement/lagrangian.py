"""Lagrangian relaxation heuristic for :class:`FacilityProblem`: a good plan fast plus a valid bound.

Why: the strong LP relaxation of capa-sized problems (100k x ≤ y rows) costs HiGHS tens of seconds,
while the Lagrangian dual gets a bound at least as strong (it keeps y integral in its subproblem) in
a second or two, its open sets are near-optimal plans, and its reduced costs and probes prove most
facilities' y in advance, leaving HiGHS a small MILP or nothing at all.

Relaxation (valid for every problem variant, also ``n_plus = 1`` and ``unserved_penalty``): drop the
backup variables z and their rows (they carry no cost), keep x ≤ y, groups, fixed_open and capacity;
several resources are merged into one surrogate knapsack row (a non-negative combination of the
capacity rows, so still a relaxation); the aggregate cover ``sum_f cap_f y_f >= (1 + n_plus) D`` is kept
for the tightest fully-capacitated resource when all demand must be served, together with the
cardinality bound it implies (at least k_min facilities). Dualizing the assignment rows
``sum_f x_fc + u_c = 1`` with multipliers λ gives

    L(λ) = sum_c λ_c + sum_c min(0, pen_c - λ_c) + min_y { sum_f v_f(λ) y_f : groups, fixed_open, cover }
    v_f(λ) = fixed_f + min { sum_c (cost_fc - λ_c) x_c : sum_c w_fc x_c <= W_f, 0 <= x <= 1 }

The inner problem per facility is a continuous knapsack (greedy on reduced cost per unit weight,
vectorized over all facilities: only the best ~K items per facility are partitioned out and sorted);
the y problem is solved exactly with groups and the cardinality bound, the cover dualized with a
multiplier μ found by bisection (any μ ≥ 0 gives a valid bound). λ follows Polyak subgradient steps.

Primal side: Lagrangian open sets are repaired into plans by the exact assignment LP (skipped when an
LP-dual bound shows the set cannot win), and good plans are improved by local search (single and
double close/open/swap moves, ranked by LP-dual bounds, checked by the LP, from several starts).
Fixing: every iterate proves facilities closed/open against the incumbent (reduced-cost fixing); at
the end, probing re-optimizes the multipliers with each undecided y forced the other way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from microdc.placement.facility import FacilityProblem, Solution
from microdc.placement.milp import AssignmentResult, ProgressEvent, ProgressHook, solve_assignment


@dataclass
class LagrangianResult:
    """Best plan, best bound, and the facility fixings they prove."""

    solution: Solution | None  # status "heuristic"; None if no feasible plan was found
    lower_bound: float
    multipliers: NDArray[np.float64]
    fix_closed: NDArray[np.bool_]  # y_f = 0 in every plan cheaper than solution.objective
    fix_open: NDArray[np.bool_]  # y_f = 1 in every plan cheaper than solution.objective
    iterations: int = 0
    lp_solves: int = 0
    stopped: bool = False  # the progress hook asked to stop
    seconds: float = 0.0
    history: list[tuple[float, float, int]] = field(default_factory=list)  # (bound, incumbent, n fixed)

    @property
    def upper_bound(self) -> float:
        return self.solution.objective if self.solution is not None else float("inf")


class _Relaxation:
    """Precomputed arrays of the Lagrangian subproblem (one surrogate knapsack row per facility)."""

    def __init__(self, p: FacilityProblem):
        self.p = p
        n_f, n_c = p.n_facilities, p.n_customers
        cap = p.capacity
        usage = p.usage
        finite = np.isfinite(cap)
        # Surrogate weights: resources weighted by how scarce they are overall.
        tot_use = usage.sum(axis=0)
        tot_cap = np.where(finite, cap, 0.0).sum(axis=0)
        pressure = np.where(tot_cap > 0, tot_use / np.maximum(tot_cap, 1e-300), 0.0)
        pressure = np.where(finite.any(axis=0), pressure, 0.0)
        alpha = pressure / pressure.sum() if pressure.sum() > 0 else np.zeros_like(pressure)
        # W_f = 1 and w_fc = sum_r alpha_r usage_cr / cap_fr over finite resources of f.
        allowed = p.allowed.copy()
        w = np.zeros((n_f, n_c))
        self.capacitated = np.zeros(n_f, bool)
        for r in np.flatnonzero(alpha > 0):
            fin = finite[:, r]
            zero_cap = fin & (cap[:, r] <= 0)
            # A facility with no capacity for r cannot serve a customer that uses r.
            allowed[np.ix_(zero_cap, usage[:, r] > 0)] = False
            ok = fin & ~zero_cap
            w[ok] += alpha[r] * usage[None, :, r] / cap[ok, r][:, None]
            self.capacitated |= ok
        # Resources with alpha = 0 but finite capacity still forbid zero-capacity pairs.
        for r in np.flatnonzero(alpha == 0):
            zero_cap = finite[:, r] & (cap[:, r] <= 0)
            allowed[np.ix_(zero_cap, usage[:, r] > 0)] = False
        self.allowed = allowed
        self.w = w
        self.uncap_rows = np.flatnonzero(~self.capacitated)
        self.cap_rows = np.flatnonzero(self.capacitated)
        self.w_cap = w[self.cap_rows]
        with np.errstate(divide="ignore"):
            self.inv_w = np.where(self.w_cap > 0, 1.0 / np.where(self.w_cap > 0, self.w_cap, 1.0), np.inf)
        self._k = 64
        self.cost = np.where(allowed, p.assign_cost, np.inf)
        self.fixed = p.fixed_cost
        fin_cost = p.assign_cost[p.allowed]
        self.cost_scale = (
            float(p.fixed_cost.max(initial=0.0)) + float(np.abs(fin_cost).max(initial=0.0)) + 1.0
        )
        self.pen = p.unserved_penalty
        # Cover on the scarcest resource whose capacity is finite everywhere.
        self.cover_cap: NDArray[np.float64] | None = None
        self.cover_d = 0.0
        if p.unserved_penalty is None:
            best = -1.0
            for res in range(p.n_resources):
                if np.all(finite[:, res]) and tot_use[res] > 0:
                    pr = tot_use[res] / max(tot_cap[res], 1e-300)
                    if pr > best:
                        best = pr
                        self.cover_cap = cap[:, res].copy()
                        self.cover_d = (1 + p.n_plus) * float(tot_use[res])
        # Units for the y problem: a group, or a single ungrouped facility.
        grp = p.group
        unit = np.where(grp >= 0, grp, grp.max(initial=-1) + 1 + np.arange(n_f))
        _, self.unit = np.unique(unit, return_inverse=True)
        self.n_units = int(self.unit.max()) + 1
        self.unit_member = np.zeros(self.n_units, np.int64)  # with one facility per unit: its facility
        self.unit_member[self.unit] = np.arange(n_f)
        forced_unit = np.zeros(self.n_units, bool)
        forced_unit[self.unit[p.fixed_open]] = True
        self.forced_unit = forced_unit
        self.fixed_open = p.fixed_open
        # Cardinality: with the cover, at least k_min units must be open (the k_min largest capacities).
        self.k_min: int = 0
        self.cover_impossible = False
        if self.cover_cap is not None:
            ucap = np.zeros(self.n_units)
            np.maximum.at(ucap, self.unit, self.cover_cap)
            cum = np.cumsum(np.sort(ucap)[::-1])
            k = int(np.searchsorted(cum, self.cover_d * (1 - 1e-12)))
            if k >= self.n_units:
                self.cover_impossible = True
            self.k_min = k + 1
        self.mu = 0.0

    # -- inner problems -----------------------------------------------------------------------
    def knapsacks(
        self, lam: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """Continuous knapsack per facility: (value K_f, and f, c, x of the items taken).

        Items are customers with negative reduced cost cost_fc - λ_c; a capacitated facility takes them
        in order of reduced cost per unit of (surrogate) weight until its capacity W_f = 1 is used.
        Only the best ~K items per facility can matter, so they are partitioned out and only those
        sorted; K adapts to how many items the last iteration took (rows that need more are redone
        with a full sort).
        """
        rc = self.cost - lam[None, :]
        n_f, n_c = rc.shape
        kval = np.zeros(n_f)
        rows: list[NDArray[np.int64]] = []
        cols: list[NDArray[np.int64]] = []
        vals: list[NDArray[np.float64]] = []

        def emit(fi: NDArray[np.int64], ci: NDArray[np.int64], xv: NDArray[np.float64]) -> None:
            rows.append(fi)
            cols.append(ci)
            vals.append(xv)
            kval[:] += np.bincount(fi, weights=rc.ravel()[fi * n_c + ci] * xv, minlength=n_f)

        unc = self.uncap_rows
        if unc.size:
            # Uncapacitated facilities take every item with negative reduced cost.
            hi, ci = np.nonzero(rc[unc] < 0)
            emit(unc[hi], ci, np.ones(hi.shape[0]))
        cap_rows = self.cap_rows
        if cap_rows.size:
            sub = rc if cap_rows.size == n_f else rc[cap_rows]
            neg = sub < 0
            # Rows whose negative items all fit take them all: no sorting needed.
            fits = np.where(neg, self.w_cap, 0.0).sum(axis=1) <= 1.0
            if fits.any():
                hi, ci = np.nonzero(neg & fits[:, None])
                emit(cap_rows[hi], ci, np.ones(hi.shape[0]))
                if fits.all():
                    return self._pack(kval, rows, cols, vals)
                keep = np.flatnonzero(~fits)
                cap_rows, sub, inv = cap_rows[keep], sub[keep], self.inv_w[keep]
                w_cap = self.w_cap[keep]
            else:
                inv, w_cap = self.inv_w, self.w_cap
            with np.errstate(invalid="ignore"):
                ratio = np.where(sub < 0, sub * inv, np.inf)
            k = min(n_c, self._k)
            if k < n_c:
                part = np.argpartition(ratio, k - 1, axis=1)[:, :k]
            else:
                part = np.broadcast_to(np.arange(n_c), ratio.shape)
            hi, ci, xv, ok, taken = self._greedy_rows(ratio, w_cap, part)
            sel = ok[hi]
            emit(cap_rows[hi[sel]], ci[sel], xv[sel])
            rest = np.flatnonzero(~ok)
            if rest.size:
                order = np.argsort(ratio[rest], axis=1)
                hi2, ci2, xv2, _, taken2 = self._greedy_rows(ratio[rest], w_cap[rest], order)
                emit(cap_rows[rest[hi2]], ci2, xv2)
                taken = np.maximum(taken, taken2.max(initial=0))
                self._k = min(n_c, max(self._k * 2, int(1.3 * taken.max()) + 16))
            else:
                self._k = min(n_c, max(64, int(1.3 * taken.max(initial=0)) + 16))
        return self._pack(kval, rows, cols, vals)

    @staticmethod
    def _pack(
        kval: NDArray[np.float64],
        rows: list[NDArray[np.int64]],
        cols: list[NDArray[np.int64]],
        vals: list[NDArray[np.float64]],
    ) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        return (
            kval,
            np.concatenate(rows) if rows else np.zeros(0, np.int64),
            np.concatenate(cols) if cols else np.zeros(0, np.int64),
            np.concatenate(vals) if vals else np.zeros(0),
        )

    @staticmethod
    def _greedy_rows(
        ratio: NDArray[np.float64], w: NDArray[np.float64], cols: NDArray[np.int64]
    ) -> tuple[
        NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.bool_], NDArray[np.int64]
    ]:
        """Greedy fill of capacity 1 along the given columns of each row (sorted here by ratio).

        Returns (row, col, x) of the items taken; per row whether the answer is final (capacity reached
        within these columns, or every candidate item was among them); and per row the items taken.
        """
        n_rows, n_c = ratio.shape
        k = cols.shape[1]
        # Flat indexing: much cheaper than take_along_axis on these shapes.
        flat = cols + (np.arange(n_rows) * n_c)[:, None]
        r = ratio.ravel()[flat]
        o = np.argsort(r, axis=1)
        flat = flat.ravel()[(o + (np.arange(n_rows) * k)[:, None]).ravel()].reshape(n_rows, k)
        rs = ratio.ravel()[flat]
        ws = w.ravel()[flat]
        cols = flat - (np.arange(n_rows) * n_c)[:, None]
        live = rs < np.inf
        ws = np.where(live, ws, 0.0)
        cum = np.cumsum(ws, axis=1)
        prev = cum - ws
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(ws > 0, (1.0 - prev) / np.where(ws > 0, ws, 1.0), 1.0)
        xs = np.where(live, np.clip(frac, 0.0, 1.0), 0.0)
        full = (cum[:, -1] >= 1.0) | ~live[:, -1] | (cols.shape[1] == ratio.shape[1])
        hi, pos = np.nonzero(xs > 0)
        taken = np.bincount(hi, minlength=ratio.shape[0])
        return hi, cols[hi, pos], xs[hi, pos], full, taken

    def y_problem(
        self, v: NDArray[np.float64]
    ) -> tuple[float, NDArray[np.bool_], NDArray[np.float64], _YSol]:
        """min sum v_f y_f over groups, fixed_open, the cardinality bound and the dualized cover.

        For a given μ the problem is exact (per unit pick the best member; take every unit with a
        negative value, then the cheapest others until k_min units are open). μ maximizes the concave
        φ(μ) = μD + Y(v - μ cap) by bisection on its slope; any μ ≥ 0 gives a valid bound.
        Returns (value, chosen y, reduced costs v - μ cap, the unit-level solution for fixing).
        """
        if self.cover_cap is None:
            ys = self._y_given(v)
            return ys.value, ys.y, v, ys
        if self.cover_impossible:
            ys = self._y_given(v)
            return np.inf, ys.y, v, ys
        capc = self.cover_cap
        d = self.cover_d

        def solve_at(mu: float) -> tuple[float, NDArray[np.float64], _YSol, float]:
            rc = v - mu * capc
            ys = self._y_given(rc)
            return ys.value + mu * d, rc, ys, d - float(capc[ys.y].sum())

        val, rc, ys, slope = solve_at(0.0)
        if slope <= 0:
            self.mu = 0.0
            return val, ys.y, rc, ys
        best = (val, rc, ys, 0.0)
        # Bracket [lo, hi] with slope(lo) > 0 >= slope(hi), starting from the last μ.
        lo = 0.0
        if self.mu > 0:
            hi = self.mu * 1.5
        else:
            hi = (float(np.abs(v).max()) + 1.0) / max(float(capc[capc > 0].min(initial=np.inf)), 1e-12)
        for _ in range(200):
            vh, rch, ysh, sh = solve_at(hi)
            if vh > best[0]:
                best = (vh, rch, ysh, hi)
            if sh <= 0:
                break
            lo = hi
            hi *= 4.0
        else:
            return np.inf, ys.y, rc, ys
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            vm, rcm, ysm, sm = solve_at(mid)
            if vm > best[0]:
                best = (vm, rcm, ysm, mid)
            if sm > 0:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-7 * hi:
                break
        val, rc, ys, self.mu = best
        return val, ys.y, rc, ys

    def _y_given(self, rc: NDArray[np.float64]) -> _YSol:
        """Exact min over y of sum rc_f y_f: one member per unit, fixed_open forced, >= k_min units."""
        n_f = rc.shape[0]
        if self.n_units == n_f:
            # No groups: every facility is its own unit (the common case; no sorting needed).
            member = self.unit_member
            b = rc[member]
            second = np.full(n_f, np.inf)
            return self._select(rc, member, b, second)
        unit = self.unit
        key = np.where(self.fixed_open, -np.inf, rc)
        order = np.lexsort((key, unit))
        su = unit[order]
        first = np.ones(n_f, bool)
        first[1:] = su[1:] != su[:-1]
        pos = np.flatnonzero(first)
        member = order[pos]  # best member of each unit (units are 0..U-1 in order)
        b = rc[member]
        second = np.full(self.n_units, np.inf)
        nxt = pos + 1
        ok = nxt < n_f
        ok[ok] = su[nxt[ok]] == su[pos[ok]]
        second[ok] = rc[order[nxt[ok]]]
        return self._select(rc, member, b, second)

    def _select(
        self,
        rc: NDArray[np.float64],
        member: NDArray[np.int64],
        b: NDArray[np.float64],
        second: NDArray[np.float64],
    ) -> _YSol:
        selected = self._choose(b, 0.0)
        # The y handed to the subgradient ignores units that are only round-off below zero: with
        # tied reduced costs (e.g. many identical sites) they would all "open" and serve the same
        # customers, and the step would zigzag. The bound itself uses the exact choice.
        tol = 1e-9 * self.cost_scale
        chosen = selected if not np.any((b < 0) & (b >= -tol)) else self._choose(b, tol)
        y = np.zeros(rc.shape[0], bool)
        y[member[chosen]] = True
        return _YSol(float(b[selected].sum()), y, b, member, second, selected, int(selected.sum()))

    def _choose(self, b: NDArray[np.float64], tol: float) -> NDArray[np.bool_]:
        """Units to open: forced ones, those below -tol, then the cheapest others up to k_min."""
        selected = self.forced_unit | (b < -tol)
        cnt = int(selected.sum())
        if cnt < self.k_min:
            rest = np.flatnonzero(~selected)
            need = min(self.k_min - cnt, rest.size)
            pick = rest[np.argpartition(b[rest], need - 1)[:need]] if need < rest.size else rest
            selected[pick] = True
        return selected


@dataclass
class _YSol:
    """Unit-level solution of the relaxed y problem (what reduced-cost fixing needs)."""

    value: float
    y: NDArray[np.bool_]
    b: NDArray[np.float64]  # best member's reduced cost per unit
    member: NDArray[np.int64]  # best member per unit
    second: NDArray[np.float64]  # second-best member's reduced cost per unit (inf if none)
    selected: NDArray[np.bool_]
    count: int


def _fixing_bounds(
    rel: _Relaxation, rc: NDArray[np.float64], total: float, ys: _YSol
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Lagrangian bound with y_f forced to 1 (l1) and to 0 (l0), for every facility.

    For fixed multipliers the relaxed y problem is a choice of units with a count bound, so forcing y_f
    changes only f's unit plus, through the count, at most one cheapest "filler" unit:
    forcing a new unit open may drop the dearest non-negative filler; closing a chosen unit either
    switches to its second member or leaves the unit out (and, if the count falls below k_min, takes
    the cheapest unchosen unit). Units holding a fixed_open facility cannot change at all.
    """
    n_f = rc.shape[0]
    u = rel.unit
    sel = ys.selected
    droppable = sel & ~rel.forced_unit & (ys.b >= 0)
    max_fill = float(ys.b[droppable].max()) if droppable.any() else 0.0
    unsel = ~sel
    n1 = float(ys.b[unsel].min()) if unsel.any() else np.inf
    is_member = ys.member[u] == np.arange(n_f)
    su = sel[u]
    bu = ys.b[u]
    l1 = np.where(
        su,
        np.where(is_member, total, total - bu + rc),
        total + rc - max(0.0, max_fill) * (ys.count + 1 > rel.k_min),
    )
    leave_out = total - bu + (0.0 if ys.count - 1 >= rel.k_min else n1)
    l0 = np.where(su & is_member, np.minimum(total - bu + ys.second[u], leave_out), total)
    forced = rel.forced_unit[u]
    l1 = np.where(forced, np.where(rel.fixed_open, total, np.inf), l1)
    l0 = np.where(forced, np.where(rel.fixed_open, np.inf, total), l0)
    return l1, l0


def _repair_open(
    p: FacilityProblem, rel: _Relaxation, y: NDArray[np.bool_], rc: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Make a Lagrangian open set plausible: enough capacity per resource, every customer reachable.

    Facilities are added in order of reduced cost, skipping groups that already have an open member.
    The assignment LP decides the rest (and reports infeasibility if this was not enough).
    """
    open_ = y | p.fixed_open
    taken = np.zeros(rel.n_units, bool)
    taken[rel.unit[open_]] = True
    finite = np.isfinite(p.capacity)
    need = (1 + p.n_plus) * p.usage.sum(axis=0)
    if p.unserved_penalty is not None:
        need = np.zeros_like(need)
    order = np.argsort(rc, kind="stable")
    for f in order:
        have = np.where(finite, p.capacity, np.inf)[open_].sum(axis=0)
        reach = p.allowed[open_].sum(axis=0)
        short_cap = np.any(have < need * (1 + 1e-9))
        unreached = p.unserved_penalty is None and np.any(reach < 1 + p.n_plus)
        if not short_cap and not unreached:
            break
        if open_[f] or taken[rel.unit[f]]:
            continue
        helps = (short_cap and np.any(p.capacity[f] > 0)) or (
            unreached and np.any(p.allowed[f] & (reach < 1 + p.n_plus))
        )
        if helps:
            open_ = open_.copy()
            open_[f] = True
            taken[rel.unit[f]] = True
    return open_


def _move_bounds(
    p: FacilityProblem, cur: AssignmentResult, close: NDArray[np.int64], add: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Cheap valid lower bounds on the cost of open sets derived from the current one.

    By LP duality, for any capacity prices ρ <= 0 the assignment LP of an open set S costs at least
    fixed(S) + sum_c min_{f in S} (cost_fc - usage_c·ρ_f) + sum_{f in S} cap_f·ρ_f (plus the unserved
    option). Reusing the current plan's capacity duals (0 for newly opened facilities) makes this
    a tight-ish bound that needs no LP: moves whose bound cannot beat the incumbent are skipped.
    Move i closes ``close[i]`` and opens ``add[i]`` (two slots each, padded with F = "none").
    """
    rho = np.minimum(cur.capacity_dual if cur.capacity_dual is not None else 0.0, 0.0)
    cap = np.where(np.isfinite(p.capacity), p.capacity, 0.0)
    n_f, n_c = p.n_facilities, p.n_customers
    # Row n_f is a sentinel "no facility" (price inf, no cost) so moves can be padded to two slots.
    price = np.full((n_f + 1, n_c), np.inf)
    price[:n_f] = np.where(p.allowed, p.assign_cost - rho @ p.usage.T, np.inf)
    fixed_rent = np.zeros(n_f + 1)
    fixed_rent[:n_f] = p.fixed_cost + (cap * rho).sum(axis=1)
    open_idx = np.flatnonzero(cur.open)
    # The three cheapest open facilities per customer: enough to know the best survivor of <= 2 closures.
    top = np.full((3, n_c), n_f, np.int64)
    if open_idx.size:
        k = min(3, open_idx.size)
        order = np.argsort(price[open_idx], axis=0)[:k]
        top[:k] = open_idx[order]
    top_price = price[top, np.arange(n_c)[None, :]]  # (3, C)
    base = float(fixed_rent[open_idx].sum())
    pen = p.unserved_penalty
    m_ = close.shape[0]
    out = np.empty(m_)
    step = max(1, 2_000_000 // max(n_c, 1))
    for s0 in range(0, m_, step):
        cl, ad = close[s0 : s0 + step], add[s0 : s0 + step]
        best = np.full((cl.shape[0], n_c), np.inf)
        for j in range(2, -1, -1):  # the first survivor among the three cheapest
            alive = (top[j][None, :] != cl[:, :1]) & (top[j][None, :] != cl[:, 1:2])
            best = np.where(alive, top_price[j][None, :], best)
        best = np.minimum(best, np.minimum(price[ad[:, 0]], price[ad[:, 1]]))
        if pen is not None:
            best = np.minimum(best, pen[None, :])
        out[s0 : s0 + step] = (
            base - fixed_rent[cl].sum(axis=1) + fixed_rent[ad].sum(axis=1) + best.sum(axis=1)
        )
    return out


def _set_bound(p: FacilityProblem, ref: AssignmentResult, open_: NDArray[np.bool_]) -> float:
    """Valid lower bound on the cost of any open set, from a solved plan's capacity duals (see above)."""
    rho = np.minimum(ref.capacity_dual if ref.capacity_dual is not None else 0.0, 0.0)
    s = np.flatnonzero(open_ | p.fixed_open)
    cap = np.where(np.isfinite(p.capacity[s]), p.capacity[s], 0.0)
    price = np.where(p.allowed[s], p.assign_cost[s] - rho[s] @ p.usage.T, np.inf)
    m = price.min(axis=0) if s.size else np.full(p.n_customers, np.inf)
    if p.unserved_penalty is not None:
        m = np.minimum(m, p.unserved_penalty)
    return float(p.fixed_cost[s].sum() + (cap * rho[s]).sum() + m.sum())


def _local_search(
    p: FacilityProblem,
    rel: _Relaxation,
    fix_closed: NDArray[np.bool_],
    fix_open: NDArray[np.bool_],
    evaluate: Callable[[NDArray[np.bool_]], AssignmentResult],
    start: AssignmentResult | None,
    deadline: float,
    max_lp: int = 12,
    pool: int = 10,
) -> AssignmentResult | None:
    """Best-bound-first moves: LP-dual bounds filter and rank them, the assignment LP decides.

    Single moves (close one, open one — within a group that is a swap) for every facility; swaps
    between the ``2 * pool`` most promising closes and opens (ranked by their single-move bounds);
    when none improves, double moves (two for two, two for one, one for two) among the ``pool`` best —
    capacity-tight plans often need two changes at once. The neighbourhood stays small on big
    problems. Facilities proven closed or open by reduced-cost fixing are never moved; moves that
    break the aggregate capacity are not tried. Climbs from ``start``; returns the local optimum.
    """
    n_f = p.n_facilities
    finite = np.isfinite(p.capacity).all(axis=0)
    need = (1 + p.n_plus) * p.usage.sum(axis=0)
    capx = np.zeros((n_f + 1, p.n_resources))
    capx[:n_f] = np.where(np.isfinite(p.capacity), p.capacity, 0.0)
    check_cap = p.unserved_penalty is None and bool(finite.any())

    def pad(cols: list[NDArray[np.int64]] | NDArray[np.int64]) -> NDArray[np.int64]:
        out = np.full((len(cols), 2), n_f, np.int64)
        for i, c in enumerate(cols):
            out[i, : len(c)] = c
        return out

    def try_moves(
        cur: AssignmentResult, close: NDArray[np.int64], add: NDArray[np.int64]
    ) -> AssignmentResult | None:
        if check_cap and close.shape[0]:
            have = capx[:n_f][cur.open].sum(axis=0)
            after = have[None, :] - capx[close].sum(axis=1) + capx[add].sum(axis=1)
            ok = np.all(after[:, finite] >= need[finite] * (1 - 1e-12), axis=1)
            close, add = close[ok], add[ok]
        if not close.shape[0]:
            return None
        lbs = _move_bounds(p, cur, close, add)
        limit = cur.objective - 1e-9 * max(abs(cur.objective), 1.0)
        for n_lp, i in enumerate(np.argsort(lbs)):
            if lbs[i] >= limit or n_lp >= max_lp or time.perf_counter() > deadline:
                return None
            new = cur.open.copy()
            new[close[i][close[i] < n_f]] = False
            new[add[i][add[i] < n_f]] = True
            res = evaluate(new)
            if res.feasible and res.objective < limit:
                return res
        return None

    cur = start
    while cur is not None and time.perf_counter() < deadline:
        open_ = cur.open
        closable = np.flatnonzero(open_ & ~fix_open)
        openable = np.flatnonzero(~open_ & ~fix_closed)
        # Which open facility shares each openable's group (opening there is a swap within the group).
        open_of_unit = np.full(rel.n_units, n_f, np.int64)
        open_of_unit[rel.unit[open_]] = np.flatnonzero(open_)
        partner = open_of_unit[rel.unit[openable]]
        usable = (partner == n_f) | ~fix_open[np.minimum(partner, n_f - 1)]
        openable, partner = openable[usable], partner[usable]
        # Single moves.
        sc = np.column_stack([closable, np.full(closable.size, n_f)])
        sa = np.full_like(sc, n_f)
        oc = np.column_stack([partner, np.full(partner.size, n_f)])
        oa = np.column_stack([openable, np.full(openable.size, n_f)])
        close_lb = _move_bounds(p, cur, sc, sa) if closable.size else np.zeros(0)
        free = partner == n_f
        add_lb = _move_bounds(p, cur, oc[free], oa[free]) if free.any() else np.zeros(0)
        top_c = closable[np.argsort(close_lb)[: 2 * pool]]
        top_o = openable[free][np.argsort(add_lb)[: 2 * pool]]
        sw_c = np.repeat(top_c, top_o.size)
        sw_o = np.tile(top_o, top_c.size)
        close = np.vstack([sc, oc, np.column_stack([sw_c, np.full(sw_c.size, n_f)])])
        add = np.vstack([sa, oa, np.column_stack([sw_o, np.full(sw_o.size, n_f)])])
        nxt = try_moves(cur, close, add)
        if nxt is not None:
            cur = nxt
            continue
        # Double moves among the most promising few.
        if not top_o.size or time.perf_counter() > deadline:
            return cur
        go = [g for k, g in enumerate(top_o[:pool]) if rel.unit[g] not in set(rel.unit[top_o[:k]].tolist())]
        gc = top_c[:pool]
        pairs_g = [np.array([g1, g2]) for i, g1 in enumerate(go) for g2 in go[i + 1 :]]
        pairs_f = [np.array([f1, f2]) for i, f1 in enumerate(gc) for f2 in gc[i + 1 :]]
        cl_list = [fs for fs in pairs_f for _ in pairs_g] + [fs for fs in pairs_f for _ in go]
        ad_list = [gs for _ in pairs_f for gs in pairs_g] + [np.array([g]) for _ in pairs_f for g in go]
        cl_list += [np.array([f]) for f in gc for _ in pairs_g]
        ad_list += [gs for _ in gc for gs in pairs_g]
        if not cl_list:
            return cur
        nxt = try_moves(cur, pad(cl_list), pad(ad_list))
        if nxt is None:
            return cur
        cur = nxt
    return cur


def _multi_start_search(
    p: FacilityProblem,
    rel: _Relaxation,
    fix_closed: NDArray[np.bool_],
    fix_open: NDArray[np.bool_],
    evaluate: Callable[[NDArray[np.bool_]], AssignmentResult],
    cache: dict[bytes, AssignmentResult],
    deadline: float,
    starts: int = 3,
) -> None:
    """Local search from the best plan and from the next-best distinct plans seen so far.

    Capacity-tight plans have deep local optima; the Lagrangian's other open sets are a cheap source
    of diverse, good starting points.
    """
    done: set[bytes] = set()
    ranked = sorted((r for r in cache.values() if r.feasible), key=lambda r: r.objective)
    for res in ranked[:starts]:
        key = np.packbits(res.open).tobytes()
        if key in done or time.perf_counter() > deadline:
            continue
        end = _local_search(p, rel, fix_closed, fix_open, evaluate, res, deadline)
        done.add(key)
        if end is not None:
            done.add(np.packbits(end.open).tobytes())


#: Subgradient settings: initial Polyak factor, iterations without a better bound before it is halved,
#: and how far above the best bound the step target may lie (keeps early steps sane while the
#: incumbent is still poor).
THETA0 = 2.0
PATIENCE = 30
COLLAPSE = 3.0
INIT_SHARE = 1.0
#: Probing re-optimizes the multipliers once per undecided facility: only worth it when few remain.
PROBE_MAX_FREE = 40
TARGET_CAP = 0.01
#: Stop when, over this many iterations, nothing new got fixed and the bound closed less than this
#: fraction of the remaining gap (the tail of a subgradient run rarely pays for itself).
STAGNATION_WINDOW = 100
STAGNATION_GAIN = 0.05


def _restricted(
    p: FacilityProblem, keep: NDArray[np.bool_], force: int | None = None
) -> FacilityProblem | None:
    """The problem on the facilities in ``keep`` (others closed), optionally with ``force`` open.

    None when forcing ``force`` open contradicts a pre-built facility of the same group.
    """
    idx = np.flatnonzero(keep)
    fo = p.fixed_open[idx].copy()
    if force is not None:
        j = int(np.searchsorted(idx, force))
        g = p.group[force]
        if g >= 0 and np.any(fo & (p.group[idx] == g) & (idx != force)):
            return None
        fo[j] = True
    return FacilityProblem(
        fixed_cost=p.fixed_cost[idx],
        capacity=p.capacity[idx],
        usage=p.usage,
        assign_cost=p.assign_cost[idx],
        allowed=p.allowed[idx],
        group=p.group[idx],
        fixed_open=fo,
        failure_domain=p.failure_domain[idx],
        n_plus=p.n_plus,
        unserved_penalty=p.unserved_penalty,
    )


def _dual_bound(p: FacilityProblem, lam0: NDArray[np.float64], target: float, iters: int) -> float:
    """Best Lagrangian bound of ``p`` within ``iters`` subgradient steps from ``lam0``.

    Steps aim at ``target`` and stop as soon as the bound exceeds it (that is all a probe needs).
    """
    rel = _Relaxation(p)
    if rel.cover_impossible:
        return np.inf
    lam = lam0.copy()
    best, theta, since = -np.inf, 1.0, 0
    n_c = p.n_customers
    for _ in range(iters):
        kval, fi, ci, xval = rel.knapsacks(lam)
        yval, y, _rc, _ys = rel.y_problem(p.fixed_cost + kval)
        bound = float(lam.sum() + yval)
        if rel.pen is not None:
            bound += float(np.minimum(0.0, rel.pen - lam).sum())
        if not np.isfinite(bound):
            return bound
        if bound > best:
            best, since = bound, 0
        else:
            since += 1
            if since >= 10:
                theta, since = theta * 0.5, 0
        if best > target:
            break
        g = 1.0 - np.bincount(ci, weights=xval * y[fi], minlength=n_c)
        gg = float(g @ g)
        if gg <= 1e-18:
            break
        lam = lam + theta * max(target - bound, 1e-9 * abs(target)) / gg * g
        if rel.pen is not None:
            lam = np.minimum(lam, rel.pen)
    return best


def probe_fixings(
    p: FacilityProblem,
    incumbent: Solution,
    lam: NDArray[np.float64],
    fix_closed: NDArray[np.bool_],
    fix_open: NDArray[np.bool_],
    deadline: float,
    iters: int = 60,
    rounds: int = 2,
) -> None:
    """Lagrangian probing: try to prove each undecided facility's y by re-optimizing the multipliers.

    Reduced-cost fixing only looks one step ahead from fixed multipliers. Here, for each facility not
    yet fixed, the relaxation of the problem restricted to the remaining candidates is re-optimized
    with y_f forced the other way than in the incumbent (open if it is closed there, removed if it is
    open); if that bound exceeds the incumbent, y_f is fixed. Updates ``fix_closed`` / ``fix_open``.
    """
    ub = incumbent.objective
    margin = 1e-9 * max(abs(ub), 1.0)
    for _round in range(rounds):
        progress = False
        for f in np.flatnonzero(~fix_closed & ~fix_open):
            if time.perf_counter() > deadline:
                return
            keep = ~fix_closed
            if incumbent.open[f]:
                keep = keep.copy()
                keep[f] = False
                if not keep.any():  # no facility left: everything unserved, or no plan at all
                    pen = p.unserved_penalty
                    bound = np.inf if pen is None else float(pen.sum())
                    sub = None
                else:
                    sub = _restricted(p, keep)
            else:
                sub = _restricted(p, keep, force=int(f))
            if sub is not None:
                bound = _dual_bound(sub, lam, ub + margin, iters)
            elif not incumbent.open[f]:
                bound = np.inf  # forcing f open contradicts a pre-built facility of its group
            if bound > ub + margin:
                progress = True
                if incumbent.open[f]:
                    fix_open[f] = True
                else:
                    fix_closed[f] = True
        if not progress:  # a smaller candidate set makes the next round's bounds stronger
            return


def lagrangian_heuristic(
    problem: FacilityProblem,
    *,
    time_limit_s: float = 5.0,
    max_iter: int = 3000,
    target_gap: float = 1e-9,
    local_search: bool = True,
    progress: ProgressHook | None = None,
    threads: int | None = None,
    initial: Solution | None = None,
    max_options: int | None = 8,
    probe: bool = True,
) -> LagrangianResult:
    """Subgradient optimization of the Lagrangian dual with LP-repaired plans and local search."""
    t0 = time.perf_counter()
    p = problem
    rel = _Relaxation(p)
    n_f, n_c = p.n_facilities, p.n_customers
    deadline = t0 + time_limit_s
    loop_deadline = t0 + 0.75 * time_limit_s  # keep a quarter of the budget for the final local search

    # Initial multipliers: cheapest allowed cost plus an amortized share of the fixed cost.
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(rel.capacitated[:, None], rel.w, 1.0 / max(n_c, 1)) * p.fixed_cost[:, None]
    lam = np.min(np.where(rel.allowed, p.assign_cost + INIT_SHARE * share, np.inf), axis=0)
    lam = np.where(np.isfinite(lam), lam, 0.0)
    if rel.pen is not None:
        lam = np.minimum(lam, rel.pen)

    cache: dict[bytes, AssignmentResult] = {}
    best: AssignmentResult | None = None
    lp_solves = 0

    def evaluate(open_: NDArray[np.bool_]) -> AssignmentResult:
        nonlocal best, lp_solves
        key = np.packbits(open_ | p.fixed_open).tobytes()
        if key in cache:
            return cache[key]
        # Restricted pairs first (fast); the full LP only if that fails.
        res = solve_assignment(p, open_, threads=threads, max_options=max_options)
        lp_solves += 1
        if not res.feasible and max_options is not None:
            res = solve_assignment(p, open_, threads=threads)
            lp_solves += 1
        cache[key] = res
        if res.feasible and (best is None or res.objective < best.objective - 1e-9 * abs(res.objective)):
            best = res
        return res

    if initial is not None and np.isfinite(initial.objective):
        evaluate(np.asarray(initial.open, bool))

    best_bound = -np.inf
    best_lam = lam.copy()
    theta = THETA0
    since_improve = 0
    last_target = np.inf
    history: list[tuple[float, float, int]] = []
    it = 0
    last_open: bytes | None = None
    repair_every = 5
    # Reduced-cost fixings accumulate: each was proven against an incumbent at least as costly as the
    # final one, so it stays valid as the incumbent improves.
    fix_closed = np.zeros(n_f, bool)
    fix_open = p.fixed_open.copy()
    all_fixed = False
    stopped = False
    refixed_ub = np.inf

    def fix_at(lam_: NDArray[np.float64], ub_: float) -> bool:
        """Add the fixings proven by multipliers lam_ against incumbent ub_; True if all y are fixed."""
        kv, _, _, _ = rel.knapsacks(lam_)
        yv, _, rc_, ys_ = rel.y_problem(p.fixed_cost + kv)
        total = float(lam_.sum() + yv)
        if rel.pen is not None:
            total += float(np.minimum(0.0, rel.pen - lam_).sum())
        if not np.isfinite(total):
            return False
        l1_, l0_ = _fixing_bounds(rel, rc_, total, ys_)
        m_ = 1e-9 * max(abs(ub_), 1.0)
        fix_closed[:] |= (l1_ > ub_ + m_) & ~p.fixed_open
        fix_open[:] |= (l0_ > ub_ + m_) & ~fix_closed
        return bool(np.all(fix_closed | fix_open))

    next_ls = 100
    window = STAGNATION_WINDOW
    last_reset = 0
    for it in range(1, max_iter + 1):
        kval, fi, ci, xval = rel.knapsacks(lam)
        v = p.fixed_cost + kval
        yval, y, rc, ys = rel.y_problem(v)
        if rel.pen is not None:
            ured = np.minimum(0.0, rel.pen - lam)
            bound = float(lam.sum() + ured.sum() + yval)
            u = (rel.pen - lam < 0).astype(float)
        else:
            bound = float(lam.sum() + yval)
            u = np.zeros(n_c)
        if not np.isfinite(bound):
            best_bound = np.inf  # the cover cannot be met: no plan exists
            break
        if bound > best_bound + 1e-12 * abs(bound):
            best_bound, best_lam = bound, lam.copy()
            since_improve = 0
        else:
            since_improve += 1
            # Halve the step after PATIENCE iterations without progress, or at once when the bound
            # collapses far below the best (the steps zigzag: many facilities take the same customers).
            collapsed = bound < best_bound - COLLAPSE * (last_target - best_bound)
            if since_improve >= PATIENCE or collapsed:
                theta *= 0.5
                since_improve = 0
                lam = best_lam.copy()
        ub = best.objective if best is not None else np.inf
        if ub < refixed_ub and it > 1:
            # A better incumbent: the best multipliers so far prove more than the current ones.
            refixed_ub = ub
            if fix_at(best_lam, ub):
                all_fixed = True
                break
        if np.isfinite(ub):
            l1, l0 = _fixing_bounds(rel, rc, bound, ys)
            margin = 1e-9 * max(abs(ub), 1.0)
            fix_closed |= (l1 > ub + margin) & ~p.fixed_open
            fix_open |= (l0 > ub + margin) & ~fix_closed
            if np.all(fix_closed | fix_open):
                all_fixed = True
                break
        # Primal: repair the Lagrangian open set now and then (and whenever it changes early on).
        key = np.packbits(y).tobytes()
        if key != last_open and (it % repair_every == 1 or it <= 3):
            last_open = key
            cand = _repair_open(p, rel, (y & ~fix_closed) | fix_open, np.where(fix_closed, np.inf, rc))
            # Skip the LP when LP duality already shows the set cannot beat the incumbent.
            if best is None or _set_bound(p, best, cand) < best.objective * (1 - 1e-9):
                evaluate(cand)
            ub = best.objective if best is not None else np.inf
        # Polish the incumbent now and then (doubling intervals): a good incumbent early makes the
        # Polyak steps better aimed and the reduced-cost fixing stronger.
        if local_search and best is not None and it == next_ls:
            next_ls *= 2
            _multi_start_search(p, rel, fix_closed, fix_open, evaluate, cache, deadline, starts=2)
            ub = best.objective
        history.append((best_bound, ub, int(fix_closed.sum() + fix_open.sum())))
        # Stagnation (the bound barely moves, nothing new gets fixed): polish the incumbent once more;
        # if that helps, the fixing has a better incumbent to work with, so carry on for a while.
        if it - last_reset > window and np.isfinite(ub):
            old_bound, _, old_fixed = history[-window]
            if history[-1][2] == old_fixed and best_bound - old_bound < STAGNATION_GAIN * (ub - best_bound):
                if not local_search or best is None:
                    break
                _multi_start_search(p, rel, fix_closed, fix_open, evaluate, cache, deadline)
                if best.objective >= ub - 1e-9 * max(abs(ub), 1.0):
                    break
                ub = best.objective
                last_reset = it
                theta = max(theta, 0.1)
        if (
            progress is not None
            and it % 25 == 0
            and progress(ProgressEvent("lagrangian", time.perf_counter() - t0, ub, best_bound, it))
        ):
            stopped = True
            break
        if np.isfinite(ub) and ub - best_bound <= target_gap * max(abs(ub), 1e-9):
            break
        if theta < 1e-4 or time.perf_counter() > loop_deadline:
            break
        # Subgradient of the dualized assignment rows.
        served = np.bincount(ci, weights=xval * y[fi], minlength=n_c)
        g = 1.0 - served - u
        gg = float(g @ g)
        if gg <= 1e-18:
            break  # the relaxed solution satisfies the dualized rows: λ is dual optimal
        target = min(ub, best_bound + TARGET_CAP * abs(best_bound) + 1.0)
        last_target = target
        step = theta * max(target - bound, 1e-9 * abs(bound) + 1e-9) / gg
        lam = lam + step * g
        if rel.pen is not None:
            lam = np.minimum(lam, rel.pen + 0.0)  # λ_c > pen_c is never useful (u_c takes over)

    # Polish the incumbent (unless the fixings already determine the open set).
    if stopped:
        deadline = time.perf_counter()  # the caller wants out: no more polishing or probing
    if local_search and not all_fixed and best is not None and time.perf_counter() < deadline:
        _multi_start_search(p, rel, fix_closed, fix_open, evaluate, cache, deadline)

    # The incumbent's assignment was found on restricted pairs: re-solve it exactly.
    if best is not None and (max_options is not None or all_fixed):
        exact = solve_assignment(p, fix_open if all_fixed else best.open, threads=threads)
        lp_solves += 1
        if exact.feasible and exact.objective <= best.objective:
            best = exact

    newly_fixed = False
    if best is not None and not all_fixed and best.objective < refixed_ub and np.isfinite(best_bound):
        all_fixed = newly_fixed = fix_at(best_lam, best.objective)
    n_free = int((~fix_closed & ~fix_open).sum())
    if probe and best is not None and not all_fixed and np.isfinite(best_bound) and n_free <= PROBE_MAX_FREE:
        probe_fixings(p, best.solution(p), best_lam, fix_closed, fix_open, deadline)
        all_fixed = newly_fixed = bool(np.all(fix_closed | fix_open))
    if newly_fixed and best is not None:
        exact = solve_assignment(p, fix_open, threads=threads)
        lp_solves += 1
        if exact.feasible and exact.objective <= best.objective:
            best = exact
    safe_bound = best_bound - 1e-9 * abs(best_bound) if np.isfinite(best_bound) else best_bound
    sol: Solution | None = None
    if best is not None:
        if all_fixed:
            # Every y is proven: the exact assignment LP on that open set is the optimum.
            safe_bound = best.objective
        sol = best.solution(p, lower_bound=safe_bound)
        sol.method = "lagrangian"
        sol.seconds = time.perf_counter() - t0
        if all_fixed:
            sol.status = "optimal"
    else:
        fix_closed[:] = False
        fix_open = p.fixed_open.copy()
    return LagrangianResult(
        solution=sol,
        lower_bound=sol.lower_bound if sol is not None else safe_bound,
        multipliers=best_lam,
        fix_closed=fix_closed,
        fix_open=fix_open,
        iterations=it,
        lp_solves=lp_solves,
        stopped=stopped,
        seconds=time.perf_counter() - t0,
        history=history,
    )
