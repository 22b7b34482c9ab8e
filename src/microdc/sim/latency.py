"""Latency of a service across all its requests in a step: a mixture, not an average of percentiles.

A request from demand piece w served by queue q = (target, service) takes ``rtt_w + T_q`` where T_q is
the M/M/c FCFS sojourn time of that queue (physics.queueing): with probability 1 − C it is a service
time Exp(μ), otherwise Exp(θ) + Exp(μ), θ = cμ − λ. For a service, the response-time survival is

    S(x) = Σ_w λ_w · S_q(w)(x − rtt_w) / Σ_w λ_w         (S_q(y) = 1 for y < 0)

Pieces on one queue whose RTTs differ by less than a tolerance are merged into one *atom* at their
rate-weighted mean RTT (at most ``max_atoms`` per queue, equal-rate groups); the mixture is then over
atoms. Quantiles are found per step by evaluating S on a grid spanning the mixture (bracket), then
refined by safeguarded Newton steps on the exact S and density until each converges (XTOL, 1e-10
relative in x), so they are exact up to the atom merging. Where a queue's waiting probability C is too
small to change the rounding of S_q (NEGLIGIBLE_WAIT), S_q is evaluated as e^{−μy} alone (one
exponential per point and atom instead of the closed form's two and its φ series); services with many
atoms sharing one μ get the grid factored instead (_grid_survival_factored: one exponential per atom
and per point, prefix sums over RTT bins), and beyond their last atom S without waiting terms is one
exponential, e^{−μ(x − x0)} Σ_a w_a e^{μ(rtt_a − x0)} (_Tail): there each quantile starts from its
closed form and Newton evaluates S as that plus the few atoms' waiting terms.

Run-level percentiles come from a fixed fine log-spaced grid per service, inverted at the end (≈0.5 %
spacing, log-linear between points). A step whose queues all wait too rarely to count (CLEAR_WAIT) adds
its atoms' requests to one count per (RTT, μ), evaluated exactly at the grid's points when read; any other
step's survival curve is interpolated from its bracket grid onto those points (weighted by its requests).
The summary needs no per-step quantile: a step meets its SLOs where S(SLO) ≤ 1 − p, so when no time
series is written (replicas, sweeps) the quantile solve, and the bracket grid of the atom-wise steps,
are skipped.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LEVELS = (0.50, 0.95, 0.99)

#: Numbers per (steps × grid × atoms) array of the bracket grid: small enough to stay in cache, which
#: matters more than fewer numpy calls once a fleet has hundreds of atoms per service.
CACHE_ELEMENTS = 65_536

#: (steps × services × atoms) per call of the quantile solve: its Newton arrays (four points per atom)
#: stay cache-sized, while small fleets get hundreds of steps per call (fewer numpy calls per step).
SOLVE_ELEMENTS = 16_384

#: How many times SOLVE_ELEMENTS a call takes when no per-step quantile is solved (fewer numpy calls).
PROBE_CHUNK_FACTOR = 8

#: (steps × atoms of the widest service) per call where a service has FACTOR_MIN_ATOMS atoms or more:
#: services are solved one at a time and the factored path has no (points × atoms) arrays, so fewer,
#: larger calls (most of a call's cost there is its fixed number of numpy calls: at 384 × 10,000,
#: 46 steps a call instead of 11 took the run from 88 to 74 ms).
FACTOR_SOLVE_ELEMENTS = 65_536

#: Quantiles are solved to XTOL relative in x: safeguarded Newton from the bracket grid's
#: interpolation, each (step, service, level) until its step or its bracket is below XTOL (or it hits
#: S = 1 − p exactly); at most MAX_NEWTON evaluations (bisection of any bracket needs about 45).
XTOL = 1e-10
MAX_NEWTON = 64

#: Accumulator points per chunk of the run-level accumulator's fold (cache-sized work arrays).
ACC_POINTS = 32_768

#: Rows of one block on one grid from which the accumulator folds them as one dense array.
DENSE_MIN_ROWS = 4
#: Points (rows × accumulator points) per chunk of that dense fold.
DENSE_POINTS = 65_536

#: Runs whose run-level rows the accumulator sums together when they are read (RunAccumulator).
READ_RUNS = 64

#: A step's service whose live queues all wait with probability at most CLEAR_WAIT goes to the run-level
#: accumulator atom by atom (RunAccumulator.add_atoms: exact, no grid): S_T(y) differs from e^{−μy} by at
#: most C, below the float32 rounding of the bracket grid that the fold would interpolate instead.
CLEAR_WAIT = 2.0**-26


def sojourn_survival_density(
    y_s: npt.NDArray[Any], pw: npt.NDArray[Any], mu: npt.NDArray[Any], theta: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """P(T > y) and the density of T at y for M/M/c FCFS (the closed form of physics.queueing), in the
    dtype of ``y_s`` (float32 for fast grids, float64 for exact refinement); y < 0 gives (1, 0).
    Arrays broadcast; y in seconds, rates per second. Branch-free: y is clamped at 0, where S = 1, and
    φ(x) = (1 − e^{−x})/x is evaluated at max(x, ε) (error below ε/2)."""
    dt = y_s.dtype
    y = np.maximum(y_s, dt.type(0.0))
    r = np.minimum(theta, mu).astype(dt)
    big = np.maximum(theta, mu).astype(dt)
    mu_ = mu.astype(dt)
    pw_ = pw.astype(dt)
    eps = dt.type(1e-6 if dt == np.float32 else 1e-12)
    with np.errstate(over="ignore", under="ignore"):
        e_mu = np.exp(-mu_ * y)
        e_r = np.exp(-r * y)
        x = np.maximum((big - r) * y, eps)
        ph = -np.expm1(-x) / x
    g = y * e_r * ph  # = (e^{-r y} - e^{-R y}) / (R - r), stable as R -> r
    surv = (1 - pw_) * e_mu + pw_ * (e_r + r * g)
    dens = (1 - pw_) * mu_ * e_mu + pw_ * theta.astype(dt) * mu_ * g
    dens = dens * (y_s >= 0)
    return surv, dens


def sojourn_upper_ms(pw: FloatArray, mu: FloatArray, theta: FloatArray, tail: float) -> FloatArray:
    """An upper bound of the (1 − tail)-quantile of T, ms: q_W(p') + q_S(p'), p' = 1 − tail/2."""
    half = tail / 2.0
    waits = pw > half
    qw: Any = 0.0  # (no logarithms where no queue waits that often: the common case)
    if waits.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            qw = np.where(waits, np.log(np.maximum(pw, 1e-300) / half) / theta, 0.0)
    return np.asarray(1000.0 * (qw - np.log(half) / mu), dtype=np.float64)


@dataclass(frozen=True)
class Atoms:
    """Pieces grouped by (queue, RTT band). ``of_piece[w]`` is the atom of routed piece w (-1 if not
    routed); each atom has its queue, service and RTT (ms)."""

    of_piece: IntArray
    queue: IntArray
    service: IntArray
    rtt_ms: FloatArray

    @property
    def size(self) -> int:
        return int(self.queue.size)


def build_atoms(
    piece_queue: IntArray,
    piece_rtt_ms: FloatArray,
    weight: FloatArray,
    queue_service: IntArray,
    *,
    max_atoms: int = 4,
    tolerance_ms: float = 0.05,
) -> Atoms:
    """Group each queue's pieces into at most ``max_atoms`` atoms (exact when a queue has that many
    pieces or fewer; one atom when its RTT spread is within ``tolerance_ms``)."""
    n = piece_queue.size
    of_piece = np.full(n, -1, dtype=np.int64)
    routed = np.flatnonzero(piece_queue >= 0)
    if routed.size == 0:
        e = np.zeros(0, dtype=np.int64)
        return Atoms(of_piece, e, e.copy(), np.zeros(0))
    q = piece_queue[routed]
    r = piece_rtt_ms[routed]
    w = np.maximum(weight[routed], 1e-12)
    order = np.lexsort((routed, r, q))
    q_s, r_s, w_s = q[order], r[order], w[order]
    n_q = int(q_s.max()) + 1
    count = np.bincount(q_s, minlength=n_q)
    first = np.r_[0, np.cumsum(count)[:-1]]
    pos = np.arange(q_s.size) - first[q_s]  # position within its queue
    rmin = np.full(n_q, np.inf)
    rmax = np.full(n_q, -np.inf)
    np.minimum.at(rmin, q_s, r_s)
    np.maximum.at(rmax, q_s, r_s)
    wsum = np.bincount(q_s, weights=w_s, minlength=n_q)
    cw = np.cumsum(w_s)
    before = cw - w_s - np.r_[0.0, cw][first[q_s]]
    frac = before / np.maximum(wsum[q_s], 1e-300)
    group = np.minimum((frac * max_atoms).astype(np.int64), max_atoms - 1)
    exact = count[q_s] <= max_atoms
    group = np.where(exact, pos, group)
    group = np.where((rmax - rmin)[q_s] <= tolerance_ms, 0, group)
    key = q_s * (max_atoms + 1) + group
    uniq, inv = np.unique(key, return_inverse=True)
    inv = inv.ravel()
    a_w = np.bincount(inv, weights=w_s)
    a_rtt = np.bincount(inv, weights=w_s * r_s) / np.maximum(a_w, 1e-300)
    a_queue = uniq // (max_atoms + 1)
    of_piece[routed[order]] = inv
    return Atoms(of_piece, a_queue.astype(np.int64), queue_service[a_queue].astype(np.int64), a_rtt)


@dataclass
class StepLatency:
    """Per-service results of one step (arrays over services)."""

    p50_ms: FloatArray
    p95_ms: FloatArray
    p99_ms: FloatArray
    mean_ms: FloatArray
    over_slo: FloatArray  # fraction of served requests slower than the SLO bound


def _quantize(x: FloatArray, quantum: float) -> FloatArray:
    """x rounded to a multiple of ``quantum`` (a power of two), for |x| < 2^51 quanta: adding and
    subtracting 1.5 · 2^52 quanta leaves exactly that rounding (two operations instead of three)."""
    big = 1.5 * 2.0**52 * quantum
    return np.asarray((x + big) - big, dtype=np.float64)


def _segments(gr: FloatArray, surv: FloatArray, tail_slope: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Slope and base of log S = base + x · slope on each segment of each row (rows × G): segment
    i < G − 1 between grid points i and i + 1, the last one the tail (``tail_slope``). ``gr`` is
    (rows, G), or (G,) for rows on one grid (the same operations broadcast, so the same bits)."""
    with np.errstate(all="ignore"):
        lg = np.log(np.maximum(surv, 1e-300))
        dx = np.diff(gr, axis=-1)
        seg_slope = np.where(dx > 0, np.diff(lg, axis=1) / np.where(dx > 0, dx, 1.0), 0.0)
    seg_slope = np.concatenate([seg_slope, tail_slope[:, None]], axis=1)
    return seg_slope, lg - gr * seg_slope


#: Parts of other-μ counts the accumulator keeps before merging them into one (RunAccumulator).
OTHER_PARTS = 64


def _merge_parts(parts: FloatArray) -> FloatArray:
    """(row, column, μ, quanta) rows with equal (row, column, μ) summed into one (whole quanta: exact)."""
    order = np.lexsort((parts[:, 2], parts[:, 1], parts[:, 0]))
    key = parts[order, :3]
    first = np.flatnonzero(np.concatenate(([True], (key[1:] != key[:-1]).any(axis=1))))
    return np.column_stack([key[first], np.add.reduceat(parts[order, 3], first)])


def _merged(rtt: FloatArray, mu: FloatArray, n: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Columns (RTT, μ) in (RTT, μ) order, equal ones merged: their counts ``n`` (rows × columns, whole
    quanta: exact in any order) summed."""
    order = np.lexsort((mu, rtt))
    rtt, mu, n = rtt[order], mu[order], n[:, order]
    first = np.flatnonzero(np.concatenate(([True], (rtt[1:] != rtt[:-1]) | (mu[1:] != mu[:-1]))))
    if first.size < rtt.size:
        n = np.add.reduceat(n, first, axis=1)
    return rtt[first], mu[first], n


def _mixture_rows(x: FloatArray, rtt: FloatArray, mu: FloatArray, n: FloatArray) -> FloatArray:
    """Σ_k n[r, k] · e^{−μ_k (x − RTT_k)} beyond RTT_k (1 before) at the points ``x``, for each row r
    (``n``: rows × columns, multiples of the accumulator's quantum), added column after column in the
    given order; so a row's numbers are the same whatever rows are summed with it. Up to the lowest
    RTT every term is its count (an exact sum); where every e^{−μy} underflows (μy > 746) it is 0."""
    out = np.zeros((n.shape[0], x.size))
    live = (n > 0).any(axis=0)
    if not live.any():
        return out
    rtt, mu, n = rtt[live], mu[live], n[:, live]
    j0 = int(np.searchsorted(x, rtt.min(), side="right"))
    j1 = int(np.searchsorted(x, float((rtt + 746e3 / mu).max()), side="right"))
    out[:, :j0] = n.sum(axis=1)[:, None]
    xs = x[j0:j1]
    acc = out[:, j0:j1]
    for k in range(rtt.size):
        acc += n[:, k, None] * np.exp(-mu[k] * (np.maximum(xs - rtt[k], 0.0) * 1e-3))
    return out


def _run_length(vv: IntArray) -> int:
    """Rows per run of equal ``vv`` (sorted) when every run has as many rows, else 0."""
    k = int(np.count_nonzero(vv == vv[0]))
    if vv.size % k or not (vv.reshape(-1, k) == vv[::k, None]).all():
        return 0
    return k if (vv[k::k] != vv[:-k:k]).all() else 0


def _run_sums(vals: FloatArray, vv: IntArray, k: int) -> tuple[IntArray, FloatArray]:
    """Sums of the runs of consecutive rows of ``vals`` with equal ``vv``, and each run's ``vv``:
    a reshape when every run has k rows (several times faster than reduceat on short runs)."""
    if k:
        return vv[::k], vals.reshape(-1, k, vals.shape[1]).sum(axis=1)
    first = np.flatnonzero(np.concatenate(([True], vv[1:] != vv[:-1])))
    return vv[first], np.add.reduceat(vals, first, axis=0)


class RunAccumulator:
    """Request-weighted survival over the whole run, per service, on a fixed log grid (ms).

    Each step's survival curve (on its own grid) is interpolated in log space onto the accumulator's
    points from its lowest grid point until its tail contributes less than half a quantum; the points
    below its grid get the step's whole weight through a difference array. Every contribution is
    rounded to a multiple of QUANTUM requests (QUANTUM_MEAN request·ms for the mean), so sums are exact
    in floating point (below 2^53 quanta, about 3.5e13 requests) and do not depend on the order in
    which steps are added: blocks of any size give the same run-level figures.

    One accumulator can hold several runs (replicas of one pass): ``groups`` × ``n_services`` rows,
    row ``g · n_services + v`` for service v of run g (``member(g)`` reads one run's figures)."""

    QUANTUM = 2.0**-8
    QUANTUM_MEAN = 1.0

    def __init__(
        self, n_services: int, lo_ms: float = 0.01, hi_ms: float = 1e6, points: int = 4000, groups: int = 1
    ) -> None:
        self.n_services = n_services
        n_services *= groups
        self.x = np.geomspace(lo_ms, hi_ms, points)
        self._log_lo = float(np.log(lo_ms))
        self._log_step = float((np.log(hi_ms) - np.log(lo_ms)) / (points - 1))
        self.surv_in = np.zeros((n_services, points))
        self.below = np.zeros((n_services, points + 1))  # weight of steps whose grid starts above x[j]
        self.weight = np.zeros(n_services)
        self.mean_num = np.zeros(n_services)
        self.x_flat = np.tile(self.x, n_services)  # the points once per service, as surv_in.ravel()
        # Rows taken atom by atom (add_atoms): quanta of requests per run and column (a service and an
        # RTT) at the column's first μ (``_coef``, ``_col_mu``); other μ (a throttled queue) as
        # (row, column, μ, quanta) parts.
        self._coef = np.zeros((groups, 0))
        self._col_mu = np.zeros(0)
        self._col_of: dict[tuple[int, float], int] = {}
        self._col_service: list[int] = []
        self._col_rtt: list[float] = []
        self._atoms_seen: Atoms | None = None
        self._atom_cols = np.zeros(0, dtype=np.int64)
        self._other: list[FloatArray] = []
        self._rows: dict[int, FloatArray] = {}  # surv rows already summed (cleared by every add)

    @property
    def surv(self) -> FloatArray:
        """Σ requests × survival per service and accumulator point."""
        return np.stack([self._surv_row(v) for v in range(self.weight.size)])

    def _surv_row(self, v: int) -> FloatArray:
        """Row v of ``surv``: the folded curves, the weight of those whose grid starts above each point,
        and the rows taken atom by atom, summed exactly at the points (add_atoms). Rows are summed a
        batch of runs at a time (READ_RUNS: the summaries read run after run), the batch cached."""
        got = self._rows.get(v)
        if got is None:
            n_s = self.n_services
            g0 = v // n_s // READ_RUNS * READ_RUNS
            vs = np.arange(g0 * n_s, min(self.weight.size, (g0 + READ_RUNS) * n_s))
            above = np.cumsum(self.below[vs, ::-1], axis=1)[:, ::-1]  # (each row's sums in order)
            rows = np.asarray(self.surv_in[vs] + above[:, 1:], dtype=np.float64) + self._atoms_rows(vs)
            self._rows = dict(zip(vs.tolist(), rows, strict=True))
            got = self._rows[v]
        return got

    def _atoms_rows(self, vs: IntArray) -> FloatArray:
        """Σ over the atom-wise rows of accumulator rows ``vs`` (consecutive): per (RTT, μ), its
        requests times e^{−μ(x − RTT)} beyond the RTT (1 before), summed in (RTT, μ) order
        (_mixture_rows): a row's numbers do not depend on the blocks, nor on the other rows read with
        it. A row with other-μ parts (a throttle) is summed on its own with them."""
        out = np.zeros((vs.size, self.x.size))
        if not self._col_rtt:
            return out
        col_service = np.asarray(self._col_service)
        col_rtt = np.asarray(self._col_rtt)
        own = np.zeros(vs.size, dtype=bool)  # rows with other-μ parts
        if self._other:
            with_parts = np.unique(np.concatenate([o[:, 0] for o in self._other]).astype(np.int64))
            own = np.isin(vs, with_parts)
        groups, services = np.divmod(vs, self.n_services)
        for s in np.unique(services).tolist():
            at = np.flatnonzero((services == s) & ~own)
            cols = np.flatnonzero((col_service == s) & np.isfinite(self._col_mu))
            if at.size == 0 or cols.size == 0:
                continue
            rtt, mu, n = _merged(col_rtt[cols], self._col_mu[cols], self._coef[groups[at]][:, cols])
            out[at] = _mixture_rows(self.x, rtt, mu, n * self.QUANTUM)
        for i in np.flatnonzero(own).tolist():
            out[i] = self._atoms_row(int(vs[i]))
        return out

    def _atoms_row(self, v: int) -> FloatArray:
        """_atoms_rows of one row, with its other-μ parts (their counts merged with equal (RTT, μ))."""
        g, s = divmod(v, self.n_services)
        cols = np.arange(len(self._col_rtt))
        parts = [np.column_stack([cols, self._col_mu, self._coef[g, : cols.size]])]
        for o in self._other:  # (row, column, μ, quanta)
            parts.append(o[o[:, 0] == v, 1:])
        c, m, n = np.concatenate(parts).T
        c = c.astype(np.int64)
        keep = (n > 0) & (np.asarray(self._col_service)[c] == s)
        if not keep.any():
            return np.zeros(self.x.size)
        rtt, m, n = _merged(np.asarray(self._col_rtt)[c[keep]], m[keep], n[keep][None, :])
        return _mixture_rows(self.x, rtt, m, n * self.QUANTUM)[0]

    def _columns_of(self, atoms: Atoms) -> IntArray:
        """Each atom's column (one per service and RTT, in the order first seen): atoms are rebuilt
        when the fleet re-routes, and an atom of the same service and RTT adds to the same column."""
        if atoms is not self._atoms_seen:
            cols = np.empty(atoms.size, dtype=np.int64)
            for i, key in enumerate(zip(atoms.service.tolist(), atoms.rtt_ms.tolist(), strict=True)):
                col = self._col_of.get(key)
                if col is None:
                    col = self._col_of[key] = len(self._col_rtt)
                    self._col_service.append(key[0])
                    self._col_rtt.append(key[1])
                cols[i] = col
            self._atoms_seen, self._atom_cols = atoms, cols
            grow = len(self._col_rtt) - self._coef.shape[1]
            if grow > 0:
                self._coef = np.pad(self._coef, ((0, 0), (0, grow)))
                self._col_mu = np.pad(self._col_mu, (0, grow), constant_values=np.nan)
        return self._atom_cols

    def add_atoms(
        self,
        atoms: Atoms,
        sel: IntArray,
        service: int,
        requests: FloatArray,
        mu: FloatArray,
        mean_ms: FloatArray,
        group: IntArray | None = None,
    ) -> None:
        """Add rows (B) of ``service`` whose queues wait too rarely to count (CLEAR_WAIT) atom by atom:
        its atoms ``sel`` add ``requests[:, j]`` (B, A) times e^{−μ(x − rtt)} (μ ``mu[:, j]`` per s),
        which is the row's exact survival; so a run's sum over such rows is one count of requests per
        RTT and μ, evaluated exactly at the accumulator's points when read (no grid, no
        interpolation). Requests are counted in quanta (rounded per row and atom), so sums are exact
        and do not depend on the order of the rows."""
        self._rows.clear()
        cols = self._columns_of(atoms)[sel]
        q = self.QUANTUM
        with np.errstate(invalid="ignore"):
            n_q = np.rint(np.where(np.isfinite(requests), requests, 0.0) / q)
        live = n_q > 0
        if not live.any():
            return
        g = np.zeros(n_q.shape[0], dtype=np.int64) if group is None else group
        row_n = n_q.sum(axis=1)  # whole quanta: exact
        hit = np.flatnonzero(row_n > 0)
        vv = g[hit] * self.n_services + service
        n_acc = self.weight.size  # (bincount: sums in row order, exact for whole quanta)
        self.weight += np.bincount(vv, weights=row_n[hit] * q, minlength=n_acc)
        mean_w = _quantize(row_n[hit] * q * np.nan_to_num(mean_ms[hit]), self.QUANTUM_MEAN)
        self.mean_num += np.bincount(vv, weights=mean_w, minlength=n_acc)
        col_mu = self._col_mu[cols]
        unseen = np.isnan(col_mu) & live.any(axis=0)  # (a column's first counts: its μ is set below)
        if not unseen.any() and ((mu == col_mu) | ~live).all():
            # (the usual case: every count at its column's μ) each run's rows summed, then added
            runs, sums = _run_sums(n_q, g, _run_length(g))
            np.add.at(self._coef, (runs[:, None], cols[None, :]), sums)
            return
        r_i, j_i = np.nonzero(live)
        c_i, m_i, n_i, g_i = cols[j_i], mu[r_i, j_i], n_q[r_i, j_i], g[r_i]
        new = np.isnan(self._col_mu[c_i])
        if new.any():  # a column's first μ (in row order) is its own; others are kept apart
            uc, first = np.unique(c_i[new], return_index=True)
            self._col_mu[uc] = m_i[new][first]
        base = m_i == self._col_mu[c_i]
        flat = g_i[base] * self._coef.shape[1] + c_i[base]
        self._coef += np.bincount(flat, weights=n_i[base], minlength=self._coef.size).reshape(
            self._coef.shape
        )
        if not base.all():
            o = ~base
            row = (g_i[o] * self.n_services + service).astype(np.float64)
            self._other.append(np.column_stack([row, c_i[o], m_i[o], n_i[o]]))
            if len(self._other) > OTHER_PARTS:  # (a long throttle: one part per block) merge them
                self._other = [_merge_parts(np.concatenate(self._other))]

    def member(self, g: int) -> AccumulatorPart:
        """Run g's figures (services 0 … n_services − 1 of that run)."""
        return AccumulatorPart(self, g * self.n_services, self.n_services)

    def add_block(
        self,
        grid: FloatArray,
        surv: FloatArray,
        n_requests: FloatArray,
        mean_ms: FloatArray,
        group: IntArray | None = None,
        service: int | None = None,
    ) -> None:
        """Add every (step, service) of a block: grid and surv (B, V, G) on the block's quadratic grids,
        n_requests and mean_ms (B, V); ``group`` (B): the run of each step-row (None: run 0);
        ``service``: every row is of that service (then V = 1; None: column v is service v)."""
        n_v, g = surv.shape[1:]
        q = self.QUANTUM
        self._rows.clear()
        n_all = _quantize(np.where(np.isfinite(n_requests), n_requests, 0.0), q)
        rows = np.flatnonzero(n_all.ravel() > 0)
        if rows.size == 0:
            return
        svc = rows % n_v if service is None else np.full(rows.size, service, dtype=np.int64)
        vv = svc if group is None else group[rows // n_v] * self.n_services + svc
        nn = n_all.ravel()[rows]
        grid_rows, surv_rows = grid.reshape(-1, g), surv.reshape(-1, g)  # step-rows × grid points
        lo, hi = grid_rows[rows, 0], grid_rows[rows, -1]
        below_hi = grid_rows[rows, -2]
        with np.errstate(all="ignore"):
            lg = np.log(np.maximum(surv_rows[rows, -2:], 1e-300))  # the tail's two points
            slope = (lg[:, 1] - lg[:, 0]) / (hi - below_hi)
            slope = np.where((hi > below_hi) & np.isfinite(slope), np.minimum(slope, 0.0), 0.0)
            x_end = np.where(slope < 0, hi + (np.log(0.5 * q / nn) - lg[:, 1]) / slope, np.inf)
        # Accumulator points per segment of each row's grid: segment i (i < G − 1) interpolates log S
        # linearly between grid points i and i + 1; the last one is the exponential tail beyond hi.
        # Every row needs only its first and last grid point's place here; the segments' places
        # (first x_j >= grid point) are looked up once per shared grid below.
        j_end = np.maximum(
            np.searchsorted(self.x, np.maximum(x_end, hi), side="right"), np.searchsorted(self.x, hi)
        )
        np.add.at(self.below, (vv, np.searchsorted(self.x, lo)), nn)
        np.add.at(self.weight, vv, nn)
        qm = self.QUANTUM_MEAN
        mean_w = _quantize(nn * np.nan_to_num(mean_ms.ravel()[rows]), qm)
        np.add.at(self.mean_num, vv, mean_w)
        # Rows on one grid (typically a service's steps across replicas and a block: the grid follows
        # network delays and queue parameters, not the demand) fold as one dense (rows × points)
        # array; the others segment by segment. Every contribution is the same quantized number
        # either way, and quantized sums are exact, so the split changes no bit.
        shared = np.zeros(rows.size, dtype=bool)
        if rows.size >= DENSE_MIN_ROWS:  # candidates: rows with the same last grid point
            _, inv, counts = np.unique(hi, return_inverse=True, return_counts=True)
            for u in np.flatnonzero(counts >= DENSE_MIN_ROWS):
                sel = np.flatnonzero(inv == u)
                gr = grid_rows[rows[sel]]
                sel = sel[(gr == gr[0]).all(axis=1)]  # the whole grid the same
                if sel.size >= DENSE_MIN_ROWS:
                    seg = _segments(gr[0], surv_rows[rows[sel]], slope[sel])
                    edges = np.searchsorted(self.x, gr[0], side="left")
                    self._fold_dense(vv[sel], nn[sel], edges, j_end[sel], *seg)
                    shared[sel] = True
        rest = np.flatnonzero(~shared)
        if rest.size:
            gr = grid_rows[rows[rest]]
            seg = _segments(gr, surv_rows[rows[rest]], slope[rest])
            edges = np.searchsorted(self.x, gr, side="left")
            self._fold_segments(vv[rest], nn[rest], edges, j_end[rest], *seg)

    def _fold_dense(
        self,
        vv: IntArray,
        nn: FloatArray,
        edges: IntArray,
        j_end: IntArray,
        seg_slope: FloatArray,
        seg_base: FloatArray,
    ) -> None:
        """Rows sharing one grid (``edges``: its first accumulator point per segment): each point's
        segment is the same for every row, so values are (rows × points) arrays, zero past a row's
        tail end, summed per accumulator row. Values are counted in quanta (n / QUANTUM requests,
        rounded half to even by rint: _quantize's rounding scaled by a power of two, so the same
        numbers) and scaled back once per sum."""
        q = self.QUANTUM
        e0 = int(edges[0])
        j_hi = int(j_end.max())
        if j_hi <= e0:
            return
        span = j_hi - e0
        seg = np.repeat(np.arange(edges.size), np.diff(np.append(edges, j_hi)))  # each point's segment
        x = self.x[e0:j_hi]
        if (vv[1:] < vv[:-1]).any():  # each accumulator row's rows together (they usually are)
            order = np.argsort(vv, kind="stable")
            vv, nn, j_end = vv[order], nn[order], j_end[order]
            seg_slope, seg_base = seg_slope[order], seg_base[order]
        n_q = nn / q
        step = max(1, DENSE_POINTS // span)
        k = _run_length(vv)  # every run k rows: chunks of whole runs (longer runs: split, reduceat)
        if 0 < k <= step:
            step = step // k * k
        else:
            k = 0
        vals_buf = np.empty(min(step, vv.size) * span)
        base_buf = np.empty_like(vals_buf)
        for a in range(0, vv.size, step):
            sl = slice(a, a + step)
            n_rows = n_q[sl].size
            vals = vals_buf[: n_rows * span].reshape(n_rows, span)
            base = base_buf[: n_rows * span].reshape(n_rows, span)
            # into reused buffers (mode "clip": the indices are in range, and "raise" buffers out=)
            np.take(seg_slope[sl], seg, axis=1, out=vals, mode="clip")
            vals *= x  # x · slope + base, then as the segment-wise fold (the same operations)
            np.take(seg_base[sl], seg, axis=1, out=base, mode="clip")
            vals += base
            np.minimum(vals, 0.0, out=vals)
            np.exp(vals, out=vals)
            vals *= n_q[sl, None]
            np.rint(vals, out=vals)
            m0 = int(j_end[sl].min())  # past a row's tail end: no contribution
            np.copyto(vals[:, m0 - e0 :], 0.0, where=np.arange(m0, j_hi) >= j_end[sl, None])
            runs, sums = _run_sums(vals, vv[sl], k)
            sums *= q
            self.surv_in[runs, e0:j_hi] += sums

    def _fold_segments(
        self,
        vv: IntArray,
        nn: FloatArray,
        edges: IntArray,
        j_end: IntArray,
        seg_slope: FloatArray,
        seg_base: FloatArray,
    ) -> None:
        """Rows on grids of their own, segment by segment: each segment's accumulator points, in
        chunks of at most ACC_POINTS points, scattered into surv_in."""
        q = self.QUANTUM
        n_x = self.x.size
        g = edges.shape[1]
        seg_base = seg_base.ravel()
        seg_slope = seg_slope.ravel()
        seg_count = np.diff(np.concatenate([edges, j_end[:, None]], axis=1), axis=1).ravel()
        # Flat index (service × points + point) of each segment's first point, and its row's requests.
        seg_flat = (np.repeat(vv * n_x, g) + edges.ravel()).astype(np.int64)
        seg_nn = np.repeat(nn, g)
        x_flat = self.x_flat
        surv_flat = self.surv_in.reshape(-1)  # a view: adding to it adds to surv_in
        budget = ACC_POINTS
        csum = np.cumsum(seg_count)
        a = 0
        while a < seg_count.size:  # chunks of segments with at most ``budget`` points
            b = max(a + 1, int(np.searchsorted(csum, (csum[a - 1] if a else 0) + budget, side="right")))
            cnt = seg_count[a:b]
            total = int(cnt.sum())
            if total:
                # every point's value is base + x · slope of its segment, then n · S rounded to the
                # quantum (the same operations as one point at a time, so the same bits)
                lo_flat = int(seg_flat[a:b].min())  # at or below every point of these segments
                flat = np.repeat(seg_flat[a:b] - (np.cumsum(cnt) - cnt) - lo_flat, cnt)
                flat += np.arange(total)
                vals = x_flat[lo_flat:][flat]
                vals *= np.repeat(seg_slope[a:b], cnt)
                vals += np.repeat(seg_base[a:b], cnt)
                np.minimum(vals, 0.0, out=vals)
                np.exp(vals, out=vals)
                vals *= np.repeat(seg_nn[a:b], cnt)
                part = np.bincount(flat, weights=_quantize(vals, q))
                surv_flat[lo_flat : lo_flat + part.size] += part
            a = b

    def quantile_ms(self, v: int, p: float) -> float:
        if self.weight[v] <= 0:
            return float("nan")
        s = self._surv_row(v) / self.weight[v]
        tail = 1.0 - p
        k = int(np.searchsorted(-s, -tail, side="left"))  # first x with S(x) <= tail
        if k <= 0:
            return float(self.x[0])
        if k >= self.x.size:
            return float(self.x[-1])
        a, b = np.log(max(s[k - 1], 1e-300)), np.log(max(s[k], 1e-300))
        t = 0.0 if a == b else (a - np.log(tail)) / (a - b)
        return float(self.x[k - 1] + t * (self.x[k] - self.x[k - 1]))

    def mean_ms(self, v: int) -> float:
        return float(self.mean_num[v] / self.weight[v]) if self.weight[v] > 0 else float("nan")

    def fraction_over(self, v: int, x_ms: float) -> float:
        if self.weight[v] <= 0 or not np.isfinite(x_ms):
            return 0.0
        s = self._surv_row(v) / self.weight[v]
        return float(np.exp(np.interp(x_ms, self.x, np.log(np.maximum(s, 1e-300)))))


@dataclass(frozen=True)
class AccumulatorPart:
    """One run's rows of a shared RunAccumulator, read as if it were that run's own."""

    acc: RunAccumulator
    offset: int
    n_services: int

    @property
    def weight(self) -> FloatArray:
        return self.acc.weight[self.offset : self.offset + self.n_services]

    def quantile_ms(self, v: int, p: float) -> float:
        return self.acc.quantile_ms(self.offset + v, p)

    def mean_ms(self, v: int) -> float:
        return self.acc.mean_ms(self.offset + v)

    def fraction_over(self, v: int, x_ms: float) -> float:
        return self.acc.fraction_over(self.offset + v, x_ms)


class _AtomSet:
    """One service's live atoms with their queue parameters, pre-cast for fast repeated evaluation."""

    def __init__(
        self, w: FloatArray, rtt: FloatArray, pw: FloatArray, mu: FloatArray, theta: FloatArray
    ) -> None:
        self.total = float(w.sum())
        r = np.minimum(theta, mu)
        d = np.maximum(theta, mu) - r
        cols = (w / self.total, rtt, pw, mu, theta, r, d)
        self.f64 = tuple(c[None, :] for c in cols)
        self.f32 = tuple(c.astype(np.float32)[None, :] for c in cols)

    def survival(self, x_ms: FloatArray, *, exact: bool) -> tuple[FloatArray, FloatArray]:
        """Mixture survival and density (per ms) at points x (P,); float32 unless exact."""
        wn, rtt, pw, mu, th, r, d = self.f64 if exact else self.f32
        dt = wn.dtype.type
        y_raw = (x_ms.astype(dt)[:, None] - rtt) * dt(1e-3)
        y = np.maximum(y_raw, dt(0.0))
        e_mu = np.exp(-mu * y)
        e_r = np.exp(-r * y)
        xx = np.maximum(d * y, dt(1e-12 if exact else 1e-6))
        g = y * e_r * (-np.expm1(-xx) / xx)  # (e^{-r y} - e^{-R y}) / (R - r), stable as R -> r
        surv = (1 - pw) * e_mu + pw * (e_r + r * g)
        s_mix = np.asarray((surv @ wn[0]), dtype=np.float64)
        if not exact:
            return s_mix, np.zeros_like(s_mix)
        dens = ((1 - pw) * mu * e_mu + pw * th * mu * g) * (y_raw >= 0)
        return s_mix, np.asarray(dens @ wn[0], dtype=np.float64) / 1000.0


def step_latency(
    atoms: Atoms,
    atom_w: FloatArray,
    pw_q: FloatArray,
    mu_q: FloatArray,
    theta_q: FloatArray,
    n_services: int,
    slo_bound_ms: FloatArray,
    accumulator: RunAccumulator | None,
    step_s: float,
    *,
    grid_points: int = 48,
    max_newton: int = MAX_NEWTON,
) -> StepLatency:
    """Per-service p50/p95/p99, mean and share over the SLO bound for one step (a block of one)."""
    res = block_latency(
        atoms,
        service_atoms(atoms, n_services),
        atom_w[None, :],
        pw_q[None, :],
        mu_q[None, :],
        theta_q[None, :],
        slo_bound_ms,
        accumulator,
        step_s,
        grid_points=grid_points,
        max_newton=max_newton,
    )
    return StepLatency(res.p50_ms[0], res.p95_ms[0], res.p99_ms[0], res.mean_ms[0], res.over_slo[0])


# ------------------------------------------------------------------------------------ blocks of steps


@dataclass(frozen=True)
class ServiceAtoms:
    """Each service's atoms as a padded (services × width) index table, for work over blocks of steps:
    ``index[v, j]`` is an atom of service v where ``valid[v, j]``, else a harmless pad (atom 0)."""

    index: IntArray
    valid: npt.NDArray[np.bool_]

    @property
    def width(self) -> int:
        return int(self.index.shape[1])


def service_atoms(atoms: Atoms, n_services: int) -> ServiceAtoms:
    count = np.bincount(atoms.service, minlength=n_services) if atoms.size else np.zeros(n_services, int)
    width = max(1, int(count.max(initial=0)))
    index = np.zeros((n_services, width), dtype=np.int64)
    valid = np.zeros((n_services, width), dtype=bool)
    if atoms.size:
        order = np.argsort(atoms.service, kind="stable")
        svc = atoms.service[order]
        first = np.r_[0, np.cumsum(count)[:-1]]
        pos = np.arange(order.size) - first[svc]
        index[svc, pos] = order
        valid[svc, pos] = True
    return ServiceAtoms(index, valid)


@dataclass
class BlockLatency:
    """Per-step, per-service results of a block (arrays of steps × services)."""

    p50_ms: FloatArray
    p95_ms: FloatArray
    p99_ms: FloatArray
    mean_ms: FloatArray
    over_slo: FloatArray  # fraction of served requests slower than the SLO bound
    #: p95 and p99 within the service's SLOs (S(SLO) at most 1 − p, so no quantile solve is needed);
    #: False with no requests. None: not computed (take it from the quantiles).
    within_slo: npt.NDArray[np.bool_] | None = None

    @staticmethod
    def empty(steps: int, n_services: int) -> BlockLatency:
        nan = np.full((steps, n_services), np.nan)
        return BlockLatency(
            nan.copy(),
            nan.copy(),
            nan.copy(),
            nan.copy(),
            np.zeros((steps, n_services)),
            np.zeros((steps, n_services), dtype=bool),
        )


def _sum_atoms(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """Sum over the last axis in index order (a running sum): numpy's own sum may pair or reorder terms
    depending on the array's shape, which would make a step's result depend on its block. (The mixture
    itself is a matrix product per step and service, whose shape does not depend on the block.)
    A few atoms are added one after another (the same additions as the running sum, without writing
    every partial sum)."""
    if 0 < x.shape[-1] <= SUM_LOOP_ATOMS:
        total = np.array(x[..., 0])
        for a in range(1, x.shape[-1]):
            total += x[..., a]
        return total
    return np.cumsum(x, axis=-1)[..., -1]


#: Up to this many atoms, _sum_atoms adds them one by one (one strided add each) instead of a running sum.
SUM_LOOP_ATOMS = 16


#: An atom's waiting term is left out of a point where it cannot change the result's rounding:
#: S_T(y) = (1 − C) e^{−μy} + C · S_{W+S}(y) differs from e^{−μy} by at most C (0 ≤ S_{W+S} ≤ 1), so
#: where C ≤ e^{−μy} · 2^{−(mantissa bits + 2)} the exact value is within half a unit in the last place
#: of e^{−μy}. Lightly loaded multi-server queues have C of 10⁻³⁰ and less: there one exponential per
#: point and atom replaces the closed form's two, plus its φ series and products.
NEGLIGIBLE_WAIT = {np.dtype(np.float32): np.float32(2.0**-26), np.dtype(np.float64): 2.0**-55}

#: Below one candidate atom in GATHER_SHARE, the closed form runs on the gathered points that need it;
#: above, on the whole array (then selected point by point): the same values either way.
GATHER_SHARE = 4


def _sojourn_full(
    y: npt.NDArray[Any], pw: npt.NDArray[Any], mu: npt.NDArray[Any], th: npt.NDArray[Any], density: bool
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """The closed form of S_T and (if ``density``) its density at y >= 0, element by element (arrays
    that broadcast, one dtype), for the points where the waiting term matters."""
    dt = y.dtype.type
    if y.dtype == np.float32 and not density:
        r = np.minimum(th, mu)
        return _sojourn_full32(y, pw, mu, th, r, np.maximum(th, mu) - r), None
    e_mu = np.exp(-mu * y)
    r, e_r, g = _waiting_kernel(y, mu, th)
    surv = (dt(1) - pw) * e_mu + pw * (e_r + r * g)
    dens = (dt(1) - pw) * mu * e_mu + pw * th * mu * g if density else None
    return surv, dens


def _waiting_kernel(
    y: npt.NDArray[Any], mu: npt.NDArray[Any], th: npt.NDArray[Any]
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """r = min(θ, μ), e^{−r y} and g = (e^{−r y} − e^{−R y}) / (R − r) (R = max(θ, μ)), stable as R → r
    through φ(x) = (1 − e^{−x})/x at max(x, 1e-12): S_T = (1 − C) e^{−μy} + C (e_r + r g), its density
    (1 − C) μ e^{−μy} + C θ μ g (the float32 grid has its own kernel, _sojourn_full32)."""
    r = np.minimum(th, mu)
    e_r = np.exp(-r * y)
    xx = np.maximum((np.maximum(th, mu) - r) * y, y.dtype.type(1e-12))
    return r, e_r, y * e_r * (-np.expm1(-xx) / xx)


def _sojourn_full32(
    y: npt.NDArray[Any],
    pw: npt.NDArray[Any],
    mu: npt.NDArray[Any],
    th: npt.NDArray[Any],
    r: npt.NDArray[Any],
    d: npt.NDArray[Any],
) -> npt.NDArray[Any]:
    """S_T in float32 by the closed form, two transcendentals per point, computed in place (the bracket
    grid's kernel): φ(x) = (1 − e^{−x})/x by its series where float32 would cancel (numpy's float32
    expm1 is scalar code, several times slower than exp)."""
    dt = np.float32
    is_r = (mu <= th).astype(dt)  # 1 where μ is r (then e^{-μy} = e^{-ry}), else 0
    xx = np.multiply(d, y)
    e_d = np.negative(xx)
    np.exp(e_d, out=e_d)  # e^{-(R − r) y}
    small = xx < dt(1e-2)
    series = np.divide(xx, dt(6.0))
    np.subtract(dt(0.5), series, out=series)
    series *= xx
    np.subtract(dt(1), series, out=series)
    xx[small] = dt(1.0)
    phi = np.subtract(dt(1), e_d)
    phi /= xx
    phi[small] = series[small]
    e_r = np.multiply(-r, y, out=xx)
    np.exp(e_r, out=e_r)
    g = np.multiply(y, e_r)
    g *= phi  # (e^{-r y} − e^{-R y}) / (R − r)
    np.maximum(e_d, is_r, out=e_d)  # 1 where μ is r: e_mu = e^{-r y}; else e^{-r y} e^{-(R − r) y}
    e_d *= e_r
    g *= r
    g += e_r
    g *= pw
    e_d *= 1 - pw
    g += e_d
    return g


def _sojourn_mixed(
    y: npt.NDArray[Any],
    pw: npt.NDArray[Any],
    mu: npt.NDArray[Any],
    th: npt.NDArray[Any],
    *,
    density: bool,
    points_axis: int = -2,
    sorted_points: bool = False,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """S_T (and its density) at y >= 0 (..., points, atoms) or with ``points_axis`` −1 (..., atoms,
    points); the parameters have size 1 on the points axis (one dtype); ``sorted_points``: y does not
    decrease along the points axis (a grid), so its last point is its largest. An atom whose waiting term is
    negligible at its largest y (NEGLIGIBLE_WAIT at the smallest e^{−μy}, hence at all its points)
    takes e^{−μy}, the others the closed form at all their points. Each value depends on its own
    atom's inputs and points only, never on the array's shape or other rows (blocks give the same
    bits); the closed form runs on the gathered atoms that need it, or on the whole array when most do."""
    thr = NEGLIGIBLE_WAIT[y.dtype]
    if (pw > thr).all():  # e^{−μy} <= 1: every atom needs the closed form, whatever its points
        return _sojourn_full(y, pw, mu, th, density=density)
    if sorted_points:
        y_max = y[..., -1:] if points_axis == -1 else y[..., -1:, :]
    else:
        y_max = y.max(axis=points_axis, keepdims=True)
    cand = np.broadcast_to(pw > np.exp(-mu * y_max) * thr, y_max.shape)
    n_cand = int(np.count_nonzero(cand))
    if n_cand * GATHER_SHARE > cand.size:  # most atoms need it: the closed form on the whole array
        s_f, d_f = _sojourn_full(y, pw, mu, th, density=density)
        if n_cand == cand.size:
            return s_f, d_f
        e_mu = np.exp(-mu * y)
        np.copyto(s_f, e_mu, where=~cand)
        if d_f is not None:
            np.copyto(d_f, mu * e_mu, where=~cand)
        return s_f, d_f
    e_mu = np.multiply(-mu, y)
    np.exp(e_mu, out=e_mu)
    dens = mu * e_mu if density else None
    if n_cand == 0:
        return e_mu, dens
    ax = points_axis
    ci = np.nonzero(np.moveaxis(cand, ax, -1)[..., 0])  # candidate atoms (index over the other axes)
    y_c = np.moveaxis(y, ax, -1)[ci]  # (n, points)
    pw_c, mu_c, th_c = (
        np.moveaxis(np.broadcast_to(v, y_max.shape), ax, -1)[..., 0][ci][:, None] for v in (pw, mu, th)
    )
    s_f, d_f = _sojourn_full(y_c, pw_c, mu_c, th_c, density=density)
    np.moveaxis(e_mu, ax, -1)[ci] = s_f
    if dens is not None and d_f is not None:
        np.moveaxis(dens, ax, -1)[ci] = d_f
    return e_mu, dens


def _grid_survival(
    x_ms: npt.NDArray[Any],
    wn: npt.NDArray[Any],
    rtt: npt.NDArray[Any],
    pw: npt.NDArray[Any],
    mu: npt.NDArray[Any],
    th: npt.NDArray[Any],
    flip: bool | None = None,
) -> FloatArray:
    """Mixture survival in float32 at the bracket grid x (B, V, G, not decreasing along G) over atoms
    (B, V, A): one exponential per point and atom where the waiting term is negligible
    (_sojourn_mixed). Every element gets the same float32 operations whatever the layout (atoms on
    the last axis, or when there are fewer atoms than points on the second-last so the inner loops
    run over points), and the sum over atoms is the same matrix product per step and service, so
    results do not depend on the layout or block. ``flip``: force a layout (None: atoms second-last
    when there are fewer atoms than points)."""
    dt = np.float32
    flip = wn.shape[-1] < x_ms.shape[-1] if flip is None else flip
    cast = [a.astype(dt, copy=False) for a in (wn, rtt, pw, mu, th)]
    if flip:
        wn_, rtt_, pw_, mu_, th_ = (a[..., :, None] for a in cast)  # (B, V, A, 1)
        xv = x_ms.astype(dt)[..., None, :]
    else:
        wn_, rtt_, pw_, mu_, th_ = (a[..., None, :] for a in cast)  # (B, V, 1, A)
        xv = x_ms.astype(dt)[..., :, None]
    y = np.subtract(xv, rtt_)
    y *= dt(1e-3)
    np.maximum(y, dt(0.0), out=y)
    g, _ = _sojourn_mixed(y, pw_, mu_, th_, density=False, points_axis=-1 if flip else -2, sorted_points=True)
    if flip:
        g = np.ascontiguousarray(np.swapaxes(g, -1, -2))  # (B, V, G, A): the same product as unflipped
        w_col = wn_
    else:
        w_col = np.swapaxes(wn_, -1, -2)
    return np.asarray((g @ w_col)[..., 0], dtype=np.float64)


#: Services with at least this many atoms take the factored grid (_grid_survival_factored): below it,
#: its sorting and prefix sums cost more numpy calls than the product over atoms saves.
FACTOR_MIN_ATOMS = 64

#: The factored grid multiplies e^{−μ(x − x0)} by e^{μ(rtt − x0)}; a row whose μ · span exceeds this
#: (float64 exponents) takes the per-atom grid instead, so no factor can overflow.
FACTOR_MAX_EXPONENT = 600.0


@dataclass(frozen=True)
class _OneMu:
    """Per row (…, atoms): whether its live atoms share one μ whose factors e^{μ(rtt − x0)} and
    e^{−μ(x − x0)} up to the row's highest point stay within FACTOR_MAX_EXPONENT (``ok``; rows with no
    live atom qualify): the rows a factored sum over atoms serves. ``m``: that μ per ms (of the fastest
    live atom where they differ, 1e-3 with none live); ``x0``: their lowest RTT (0 with none live);
    ``factor``: e^{m(rtt − x0)} per atom (1 for atoms with no weight; may overflow where not ok)."""

    ok: npt.NDArray[np.bool_]
    m: FloatArray
    x0: FloatArray
    factor: FloatArray


def _one_mu(
    x_hi: npt.NDArray[Any], wn: npt.NDArray[Any], rtt: npt.NDArray[Any], mu: npt.NDArray[Any]
) -> _OneMu:
    """The rows' _OneMu, from their atoms (…, A) and their highest point ``x_hi`` (…)."""
    live = wn > 0
    mu_hi = np.where(live, mu, -np.inf).max(axis=-1)
    mu_lo = np.where(live, mu, np.inf).min(axis=-1)
    x0 = np.where(live, rtt, np.inf).min(axis=-1)
    x0 = np.where(np.isfinite(x0), x0, 0.0)
    span = np.maximum(x_hi - x0, 0.0) * 1e-3
    ok = ((mu_hi == mu_lo) & (mu_hi * span <= FACTOR_MAX_EXPONENT)) | ~live.any(axis=-1)
    m = np.where(np.isfinite(mu_hi), mu_hi, 1.0) * 1e-3  # per ms
    with np.errstate(over="ignore", invalid="ignore"):
        factor = np.exp(m[..., None] * (np.where(live, rtt, x0[..., None]) - x0[..., None]))
    return _OneMu(ok, m, x0, factor)


def _grid_survival_factored(
    x_ms: npt.NDArray[Any],
    wn: npt.NDArray[Any],
    rtt: npt.NDArray[Any],
    pw: npt.NDArray[Any],
    mu: npt.NDArray[Any],
    th: npt.NDArray[Any],
    one: _OneMu | None = None,
) -> FloatArray:
    """The bracket grid's mixture survival (as _grid_survival) with O(atoms + points) exponentials per
    (step, service) instead of one per point and atom. Where a row's live atoms share one μ (a service
    on unthrottled targets), an atom whose waiting term is negligible contributes w · min(1,
    e^{−μ(x − x0)} e^{μ(rtt − x0)}), so with the atoms sorted by RTT the sum at x is the weight of
    the atoms at or beyond x plus e^{−μ(x − x0)} times a prefix sum; in float64. The few atoms with a
    waiting term take the closed form (float64) and are added in atom order. Rows with mixed μ, or
    whose exponents could overflow, take _grid_survival. Each row depends on its own inputs only.
    ``one``: the rows' _OneMu at x_ms's last points, when the caller has it already."""
    shape = x_ms.shape
    xr, wr, rr, pr, mr, tr = (np.reshape(a, (-1, a.shape[-1])) for a in (x_ms, wn, rtt, pw, mu, th))
    live = wr > 0
    one = _one_mu(xr[:, -1], wr, rr, mr) if one is None else one
    ok, x0 = one.ok.ravel(), one.x0.ravel()
    out = np.empty(xr.shape)
    if not ok.all():
        bad = np.flatnonzero(~ok)
        xb, wb, rb, pb, mb, tb = (a[bad][:, None] for a in (xr, wr, rr, pr, mr, tr))
        out[bad] = _grid_survival(xb, wb, rb, pb, mb, tb)[:, 0]
    rows = np.flatnonzero(ok)
    if rows.size == 0:
        return out.reshape(shape)
    if rows.size < ok.size:
        xr, wr, rr, pr, mr, tr = (a[rows] for a in (xr, wr, rr, pr, mr, tr))
        live = live[rows]
    m = one.m.ravel()[rows][:, None]
    x0r = x0[rows][:, None]
    # the waiting term is negligible at every point where it is at the largest (as _sojourn_mixed);
    # e^{−μy} is at least e^{−m(x_hi − x0)} (halved against rounding): only atoms with C above that
    # floor's threshold can qualify, and only they are tested (one exponential per row, not per atom)
    thr: Any = NEGLIGIBLE_WAIT[np.dtype(np.float32)]
    floor = np.exp(-m * (xr[:, -1:] - x0r))
    ri, ai = np.nonzero(live & (pr > 0.5 * floor * thr))
    y_max = np.maximum(xr[ri, -1] - rr[ri, ai], 0.0) * 1e-3
    cand = np.zeros(live.shape, dtype=bool)
    cand[ri, ai] = pr[ri, ai] > np.exp(-mr[ri, ai] * y_max) * thr
    fast = live & ~cand
    # bin of each atom: the grid points at or below its RTT (it is below the points after them)
    n_r, n_b = rows.size, xr.shape[-1] + 1
    bins = np.stack([np.searchsorted(xr[i], rr[i], side="right") for i in range(n_r)])
    flat = (np.arange(n_r)[:, None] * n_b + bins).ravel()
    w_f = np.where(fast, wr, 0.0)
    factor = np.reshape(one.factor, (-1, one.factor.shape[-1]))[rows]
    with np.errstate(invalid="ignore"):
        f = np.where(fast, w_f * factor, 0.0)
    # sums per bin in atom order (as one row's bincount), then over the bins before / after each point
    below = np.cumsum(np.bincount(flat, weights=f.ravel(), minlength=n_r * n_b).reshape(n_r, n_b), axis=-1)
    at = np.bincount(flat, weights=w_f.ravel(), minlength=n_r * n_b).reshape(n_r, n_b)
    beyond = np.cumsum(at[:, ::-1], axis=-1)[:, ::-1]
    s = beyond[:, 1:] + np.exp(-m * (xr - x0r)) * below[:, :-1]
    c_atoms = np.flatnonzero(cand.any(axis=0))
    if c_atoms.size:  # the closed form for the atoms with a waiting term, added in atom order
        y = np.maximum(xr[:, :, None] - rr[:, None, c_atoms], 0.0) * 1e-3  # (rows, G, C)
        pc, mc, tc = (a[:, None, c_atoms] for a in (pr, mr, tr))
        s_c, _ = _sojourn_full(y, pc, mc, tc, density=False)
        s += _sum_atoms(np.where(cand[:, None, c_atoms], wr[:, None, c_atoms] * s_c, 0.0))
    out[rows] = s
    return out.reshape(shape)


@dataclass(frozen=True)
class _Tail:
    """Rows (…) whose live atoms share one μ (``ok``; _one_mu), for their exact mixture at or beyond
    their last live RTT ``r_max``: there every atom decays, so the part without waiting terms is
    e^{−m(x − x0)} · Σ_a w_a e^{m(rtt_a − x0)} (``p_sum``; m = μ per ms), one exponential per point
    instead of one per point and atom, and its quantiles are closed form."""

    ok: npt.NDArray[np.bool_]
    m: FloatArray
    x0: FloatArray
    r_max: FloatArray
    p_sum: FloatArray

    @staticmethod
    def build(one: _OneMu, wn: npt.NDArray[Any], rtt: npt.NDArray[Any]) -> _Tail:
        """The factors of rows with some live atom, from their _OneMu and atoms (…, A)."""
        live = wn > 0
        ok = one.ok & live.any(axis=-1)
        r_max = np.where(live, rtt, -np.inf).max(axis=-1)
        with np.errstate(invalid="ignore"):  # (NaN in the rows that do not qualify)
            p_sum = _sum_atoms(wn * one.factor)
        return _Tail(ok, one.m, one.x0, r_max, p_sum)

    def take(self, rows: Any) -> _Tail:
        return _Tail(self.ok[rows], self.m[rows], self.x0[rows], self.r_max[rows], self.p_sum[rows])

    def root(self, tails: FloatArray) -> FloatArray:
        """Where S(x) without waiting terms is each of ``tails`` (…, L); NaN where that is not beyond
        r_max (or the row does not qualify). Waiting terms only add to S, so S's own root is not below."""
        with np.errstate(divide="ignore", invalid="ignore"):
            x = self.x0[..., None] + np.log(self.p_sum[..., None] / tails) / self.m[..., None]
        return np.where(self.ok[..., None] & (x >= self.r_max[..., None]), x, np.nan)

    def survival(
        self,
        x_ms: npt.NDArray[Any],
        wn: npt.NDArray[Any],
        rtt: npt.NDArray[Any],
        pw: npt.NDArray[Any],
        mu: npt.NDArray[Any],
        th: npt.NDArray[Any],
    ) -> tuple[FloatArray, FloatArray]:
        """Survival and density (per ms) at points x (…, P), all at or beyond r_max, in float64: the
        factored part plus, for the atoms whose waiting term counts, its closed form
        S_T − e^{−μy} = C μ (e^{−μy} − e^{−θy}) / (θ − μ), added in atom order. That term is at most C,
        and at most C μ y e^{−μy} where θ ≥ μ: an atom takes it unless either bound, at the largest y
        of any atom at these points, is within NEGLIGIBLE_WAIT of e^{−μy} (_sojourn_mixed uses the
        first bound only; the second keeps a far SLO bound, where e^{−μy} is tiny, to a few atoms)."""
        m, x0 = self.m[..., None], self.x0[..., None]
        x_far = x_ms.max(axis=-1, keepdims=True) - x0  # (…, 1): the largest y, ms
        with np.errstate(over="ignore", under="ignore"):
            s = np.exp(-m * (x_ms - x0)) * self.p_sum[..., None]
            floor = np.exp(-m * x_far)  # the smallest e^{−μy}
        d = m * s
        thr = NEGLIGIBLE_WAIT[np.dtype(np.float64)]
        cand = (wn > 0) & (pw > floor * thr) & ((th < mu) | (pw * mu * (x_far * 1e-3) > thr))
        c = np.flatnonzero(cand.reshape(-1, cand.shape[-1]).any(axis=0))
        if c.size == 0:
            return s, d
        y = np.maximum(x_ms[..., :, None] - rtt[..., None, c], 0.0) * 1e-3  # (…, P, C)
        mc, tc = mu[..., None, c], th[..., None, c]
        k = np.where(cand[..., None, c], wn[..., None, c] * pw[..., None, c] * mc, 0.0)
        with np.errstate(over="ignore", under="ignore"):
            g = _waiting_kernel(y, mc, tc)[2]  # (e^{−μy} − e^{−θy}) / (θ − μ)
            s = s + _sum_atoms(k * g)
            d = d + _sum_atoms(k * (tc * g - np.exp(-mc * y))) * 1e-3
        return s, d


def _exact(
    x_ms: npt.NDArray[Any],
    wn: npt.NDArray[Any],
    rtt: npt.NDArray[Any],
    pw: npt.NDArray[Any],
    mu: npt.NDArray[Any],
    th: npt.NDArray[Any],
    tail: _Tail | None,
    *,
    density: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """The exact mixture and density at points x (B, V, P) for Newton: by ``tail`` on the rows it
    serves whose points are all at or beyond their last atom, by _mixture on the others (``density``
    False: _mixture leaves the density out, zeros; the survival is the same bits)."""
    if tail is None:
        return _mixture(x_ms, wn, rtt, pw, mu, th, exact=True, density=density)
    use = (tail.ok & (x_ms >= tail.r_max[..., None]).all(axis=-1)).ravel()
    if use.all():
        return tail.survival(x_ms, wn, rtt, pw, mu, th)
    shape = x_ms.shape
    xf, wf, rf, pf, mf, tf = (np.reshape(a, (-1, 1, a.shape[-1])) for a in (x_ms, wn, rtt, pw, mu, th))
    s, d = np.empty(xf.shape), np.empty(xf.shape)
    for sel, by_tail in ((np.flatnonzero(use), True), (np.flatnonzero(~use), False)):
        if sel.size == 0:
            continue
        args = (xf[sel], wf[sel], rf[sel], pf[sel], mf[sel], tf[sel])
        if by_tail:
            s[sel], d[sel] = tail.take((*np.unravel_index(sel, tail.ok.shape), None)).survival(*args)
        else:
            s[sel], d[sel] = _mixture(*args, exact=True, density=density)
    return s.reshape(shape), d.reshape(shape)


def _mixture(
    x_ms: npt.NDArray[Any],
    wn: npt.NDArray[Any],
    rtt: npt.NDArray[Any],
    pw: npt.NDArray[Any],
    mu: npt.NDArray[Any],
    th: npt.NDArray[Any],
    *,
    exact: bool,
    density: bool = True,
) -> tuple[FloatArray, FloatArray]:
    """Mixture survival and density (per ms) at points x (B, V, P) over atoms (B, V, A); float32 unless
    exact (then the density is not computed: zeros; nor where ``density`` is False). Atoms with zero
    weight add exact zeros, so padding never changes a sum. Exact: float64, the waiting term only
    where it is not negligible."""
    if not exact:
        return _grid_survival(x_ms, wn, rtt, pw, mu, th), np.zeros(x_ms.shape)
    dt: Any = np.float64
    c: list[Any] = [a.astype(dt, copy=False)[..., None, :] for a in (wn, rtt, pw, mu, th)]
    wn_, rtt_, pw_, mu_, th_ = c
    y_raw: Any = (x_ms.astype(dt)[..., :, None] - rtt_) * dt(1e-3)
    y: Any = np.maximum(y_raw, dt(0.0))
    w_col = np.swapaxes(wn_, -1, -2)  # (B, V, A, 1)
    surv, dens = _sojourn_mixed(y, pw_, mu_, th_, density=density)
    s_mix = np.asarray((surv @ w_col)[..., 0], dtype=np.float64)
    if dens is None:
        return s_mix, np.zeros(s_mix.shape)
    dens = dens * (y_raw >= 0)
    return s_mix, np.asarray((dens @ w_col)[..., 0], dtype=np.float64) / 1000.0


def block_latency(
    atoms: Atoms,
    by_service: ServiceAtoms,
    atom_w: FloatArray,
    pw_q: FloatArray,
    mu_q: FloatArray,
    theta_q: FloatArray,
    slo_bound_ms: FloatArray,
    accumulator: RunAccumulator | None,
    step_s: float,
    *,
    grid_points: int = 48,
    max_newton: int = MAX_NEWTON,
    queue_wait_ms: FloatArray | None = None,
    slo_ms: FloatArray | None = None,
    quantiles: bool = True,
    groups: IntArray | None = None,
) -> BlockLatency:
    """Per-step, per-service p50/p95/p99, mean and share over the SLO bound for a block of steps:
    ``atom_w`` is (steps × atoms), the queue parameters (steps × queues). Every step and service is
    solved at once (grid bracket + safeguarded Newton, as the module doc says); each (step, service)
    is computed on its own, so results do not depend on how steps are grouped into blocks.

    ``slo_ms`` (services × 2): the p95 and p99 SLOs, for ``within_slo`` (S at each, no solve).
    ``quantiles`` False: p50/p95/p99 and the share over the SLO bound are left NaN (only the time
    series reads them, and none is written), and the bracket grid is only built for the steps the
    accumulator folds. ``groups``: the run of each
    step-row in ``accumulator`` (replicas of one pass; None: run 0)."""
    n_steps, n_v = atom_w.shape[0], by_service.index.shape[0]
    if atoms.size == 0 or n_steps == 0:
        return BlockLatency.empty(n_steps, n_v)
    # Work in chunks of steps whose arrays stay cache-sized (SOLVE_ELEMENTS, FACTOR_SOLVE_ELEMENTS).
    if by_service.width >= FACTOR_MIN_ATOMS:
        chunk = max(1, FACTOR_SOLVE_ELEMENTS // by_service.width)
    else:
        # (without the quantile solve there are no (steps × levels × atoms) Newton arrays: longer chunks)
        chunk = max(1, SOLVE_ELEMENTS * (1 if quantiles else PROBE_CHUNK_FACTOR) // (n_v * by_service.width))
    if n_steps > chunk:
        parts = [
            block_latency(
                atoms,
                by_service,
                atom_w[a : a + chunk],
                pw_q[a : a + chunk],
                mu_q[a : a + chunk],
                theta_q[a : a + chunk],
                slo_bound_ms,
                accumulator,
                step_s,
                grid_points=grid_points,
                max_newton=max_newton,
                queue_wait_ms=None if queue_wait_ms is None else queue_wait_ms[a : a + chunk],
                slo_ms=slo_ms,
                quantiles=quantiles,
                groups=None if groups is None else groups[a : a + chunk],
            )
            for a in range(0, n_steps, chunk)
        ]

        def cat(name: str) -> Any:
            got = [getattr(x, name) for x in parts]
            return None if got[0] is None else np.concatenate(got)

        return BlockLatency(
            cat("p50_ms"), cat("p95_ms"), cat("p99_ms"), cat("mean_ms"), cat("over_slo"), cat("within_slo")
        )
    out = BlockLatency.empty(n_steps, n_v)
    if slo_ms is None:
        out.within_slo = None
    for v in range(n_v):  # one service at a time: its own number of atoms, no padding
        sel = by_service.index[v][by_service.valid[v]]
        if sel.size == 0:
            continue
        res = _solve(
            atoms,
            sel[None, :],
            atom_w,
            pw_q,
            mu_q,
            theta_q,
            slo_bound_ms[v : v + 1],
            step_s,
            grid_points,
            max_newton,
            queue_wait_ms,
            None if slo_ms is None else slo_ms[v : v + 1],
            quantiles,
        )
        for name in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "over_slo", "within_slo"):
            if getattr(out, name) is not None:
                getattr(out, name)[:, v] = getattr(res.latency, name)[:, 0]
        f = res.fold_rows
        if accumulator is not None and f.size:  # the folded rows: their grids and survival
            mean_f = out.mean_ms[f, v : v + 1]
            g_f = None if groups is None else groups[f]
            accumulator.add_block(res.grid, res.s_grid, res.n_fold, mean_f, group=g_f, service=v)
        if accumulator is not None and res.clear.any():
            accumulator.add_atoms(
                atoms,
                sel,
                v,
                res.atom_requests[:, 0],
                res.mu[:, 0],
                out.mean_ms[:, v],
                groups,
            )
    return out


@dataclass(frozen=True)
class _Solved:
    """One service's block from _solve: results; the rows the accumulator folds (``fold_rows``) with
    their grids, survival on them and requests (in that order); and the rows it takes atom by atom
    (``clear``) with their atoms' requests and μ."""

    latency: BlockLatency
    fold_rows: IntArray
    grid: FloatArray
    s_grid: FloatArray
    n_fold: FloatArray
    clear: npt.NDArray[np.bool_]
    atom_requests: FloatArray
    mu: FloatArray


def _columns(a: FloatArray, cols: IntArray, atoms_last: bool) -> FloatArray:
    """a[:, cols] (steps × services × atoms); ``atoms_last``: in C order, atoms last in memory, for rows
    of many atoms reduced over (a[:, cols] puts the steps last: several times slower to reduce over
    hundreds of atoms, faster with a few atoms over hundreds of steps). The same values either way."""
    return np.take(a, cols, axis=1) if atoms_last else np.asarray(a[:, cols])


@functools.cache
def _grid_shape(points: int) -> FloatArray:
    """The bracket grid's points on [0, 1], quadratic (dense near the lowest RTT); read-only."""
    shape = np.linspace(0.0, 1.0, points) ** 2
    shape.flags.writeable = False
    return shape


def _grid_start(grid: FloatArray, s_grid: FloatArray, k: IntArray, tails: FloatArray) -> FloatArray:
    """Each level's Newton start: log-linear interpolation of the grid's survival in the cell
    [grid[k − 1], grid[k]] that holds it."""
    a_x = np.take_along_axis(grid, k - 1, axis=-1)
    b_x = np.take_along_axis(grid, k, axis=-1)
    la = np.log(np.maximum(np.take_along_axis(s_grid, k - 1, axis=-1), 1e-300))
    lb = np.log(np.maximum(np.take_along_axis(s_grid, k, axis=-1), 1e-300))
    t = np.where(la > lb, (la - np.log(tails)) / np.where(la > lb, la - lb, 1.0), 0.5)
    return np.array(a_x + np.clip(t, 0.0, 1.0) * (b_x - a_x))


def _solve(
    atoms: Atoms,
    idx: IntArray,
    atom_w: FloatArray,
    pw_q: FloatArray,
    mu_q: FloatArray,
    theta_q: FloatArray,
    slo_bound_ms: FloatArray,
    step_s: float,
    grid_points: int,
    max_newton: int,
    queue_wait_ms: FloatArray | None,
    slo_ms: FloatArray | None,
    quantiles: bool,
) -> _Solved:
    """The quantile solve for the services whose atoms are ``idx`` (services × atoms): results, and what
    the run-level accumulator takes of each (step, service) (_Solved)."""
    n_steps, n_v = atom_w.shape[0], idx.shape[0]
    out = BlockLatency.empty(n_steps, n_v)
    with np.errstate(all="ignore"):
        wide = idx.shape[-1] >= FACTOR_MIN_ATOMS  # the factored grid and the tail solve
        q = atoms.queue[idx]  # (V, A)
        rtt = np.broadcast_to(atoms.rtt_ms[idx], (n_steps, *idx.shape))
        waits = None
        if queue_wait_ms is not None:  # a fluid backlog ahead of the queue delays all it serves
            waits = _columns(queue_wait_ms, q, wide)
            rtt = rtt + waits
        w = _columns(atom_w, idx, wide)  # (B, V, A)
        live = w > 0
        total = _sum_atoms(w)  # (B, V)
        has = total > 0
        pw = np.where(live, _columns(pw_q, q, wide), 0.0)
        mu = np.where(live, _columns(mu_q, q, wide), 1.0)
        th = np.where(live, _columns(theta_q, q, wide), 1.0)
        mean_t = 1000.0 * (np.where(th > 0, pw / np.where(th > 0, th, 1.0), np.inf) + 1.0 / mu)
        mean = _sum_atoms(np.where(live, w * (rtt + mean_t), 0.0)) / np.where(has, total, 1.0)
        wn = w / np.where(has, total, 1.0)[..., None]
        # the bracket grid: every row for the quantiles (always for wide services: their SLO check
        # reads them), else only the rows the accumulator folds (lo, hi: of those rows only)
        solve = quantiles or wide
        if solve:
            lo, hi = _grid_bounds(has, live, rtt, pw, mu, th)
        shape = _grid_shape(grid_points)
        # rows the accumulator takes atom by atom: no live queue waits often enough to count, no backlog
        # (not for services of FACTOR_MIN_ATOMS atoms or more: there the factored grid and the tail's
        # closed form make the fold and the quantiles cheaper than O(steps × atoms) atom by atom work)
        clear = np.zeros(has.shape, dtype=bool)
        if not wide:
            clear = has & (pw <= CLEAR_WAIT).all(axis=-1)
            if waits is not None:
                clear &= (np.where(live, waits, 0.0) == 0.0).all(axis=-1)
        one = tail = None
        if wide:  # O(atoms + points) per row
            grid_hi = lo + (hi - lo) * shape[-1]  # each grid's last point (as in the grid below)
            one = _one_mu(grid_hi, wn, rtt, mu)
            tail = _Tail.build(one, wn, rtt)
        tails = 1.0 - np.array(LEVELS)
        if quantiles:  # S at the SLO bound: the share of requests over it
            # (three points: numpy's matrix product over atoms may sum a single point's column in
            # another order depending on the block's layout, which would break block identity)
            px = np.repeat(np.broadcast_to(slo_bound_ms, (n_steps, n_v))[..., None], 3, axis=-1)
            finite = np.isfinite(px)
            s_p, _ = _exact(np.where(finite, px, hi[..., None]), wn, rtt, pw, mu, th, tail, density=False)
            out.over_slo = np.where(has & finite[..., 0], s_p[..., 0], 0.0)
        else:
            out.over_slo = np.full((n_steps, n_v), np.nan)  # (read by the time series only)
        out.within_slo = None
        if slo_ms is not None and not wide:
            # (every row's RTTs and μ the same: no backlog ahead, no throttle changing within the block)
            same = waits is None and n_steps > 0 and mu_q.strides[0] == 0
            per_row = (atoms.rtt_ms[idx], np.asarray(mu_q[0])[q]) if same else None
            out.within_slo = has & _within_slo(slo_ms, tails[1:], wn, rtt, pw, mu, th, per_row)
        out.mean_ms = np.where(has, mean, np.nan)
        fold = has & ~clear
        fold_rows = np.flatnonzero(fold.any(axis=-1))
        rows = np.arange(n_steps) if solve else fold_rows
        if solve:
            lo_r, hi_r = lo, hi
        else:
            lo_r, hi_r = _grid_bounds(has[rows], live[rows], rtt[rows], pw[rows], mu[rows], th[rows])
        grid = lo_r[..., None] + (hi_r - lo_r)[..., None] * shape  # (rows, V, G)
        s_grid = np.ones(grid.shape)
        if rows.size:
            at: Any = slice(None) if rows.size == n_steps else rows  # (no copies for every row)
            s_grid = _bracket_survival(
                grid, wn[at], rtt[at], pw[at], mu[at], th[at], one, rows, grid_points, idx.size
            )
            s_grid = np.minimum.accumulate(np.clip(s_grid, 0.0, 1.0), axis=-1)
        if solve:
            _newton(out, grid, s_grid, wn, rtt, pw, mu, th, has, tail, tails, max_newton)
            if fold_rows.size < n_steps:
                grid, s_grid = grid[fold_rows], s_grid[fold_rows]
            if slo_ms is not None and wide:  # p ≤ SLO by the solved quantiles
                out.within_slo = has & (out.p95_ms <= slo_ms[:, 0]) & (out.p99_ms <= slo_ms[:, 1])
    return _Solved(
        out,
        fold_rows,
        grid,
        s_grid,
        total[fold_rows] * step_s,
        clear,
        np.where(clear[..., None], w * step_s, 0.0) if clear.any() else w[:0],
        mu,
    )


def _grid_bounds(
    has: npt.NDArray[np.bool_],
    live: npt.NDArray[np.bool_],
    rtt: FloatArray,
    pw: FloatArray,
    mu: FloatArray,
    th: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Each row's bracket: the lowest live RTT and an upper bound of its 1 − 1e-5 quantile (ms)."""
    lo = np.where(has, np.where(live, rtt, np.inf).min(axis=-1), 0.0)
    hi = np.where(live, rtt + sojourn_upper_ms(pw, mu, th, 1e-5), -np.inf).max(axis=-1)
    return lo, np.where(has, hi, 1.0)


def _within_slo(
    slo_ms: FloatArray,
    tails: FloatArray,
    wn: FloatArray,
    rtt: FloatArray,
    pw: FloatArray,
    mu: FloatArray,
    th: FloatArray,
    per_row: tuple[FloatArray, FloatArray] | None = None,
) -> npt.NDArray[np.bool_]:
    """Whether S(SLO_p) ≤ 1 − p for both SLOs of each row (``slo_ms`` (V, 2), ``tails`` the two 1 − p):
    p ≤ SLO exactly there, so the SLO check needs no quantile. S is the waitless mixture S₀ (one
    exponential per atom and point) plus the waiting terms, which add between 0 and Σ w C; only where
    that leaves the answer open (within 1e-12) is S evaluated exactly (_exact, without a _Tail: only
    services of fewer than FACTOR_MIN_ATOMS atoms come here). No SLO: met. ``per_row``: the atoms'
    (RTT, μ) (V, A) where every row has them: each e^{−μy} is then taken once, not once per row (the
    same numbers; a dead atom's μ does not count, its weight is 0)."""
    n_steps, n_v = wn.shape[:2]
    px = np.stack([np.broadcast_to(slo_ms[:, k], (n_steps, n_v)) for k in (0, 1)], axis=-1)  # (B, V, 2)
    finite = np.isfinite(px)
    x = np.where(finite, px, 0.0)
    # the exponentials on one row where every row has the same (then broadcast to every row)
    x_e, rtt_e, mu_e = (x, rtt, mu) if per_row is None else (x[:1], per_row[0][None], per_row[1][None])
    y = np.maximum(x_e[..., :, None] - rtt_e[..., None, :], 0.0) * 1e-3  # (B or 1, V, 2, A)
    s0 = np.sum(wn[..., None, :] * np.exp(-mu_e[..., None, :] * y), axis=-1)
    c_max = np.sum(wn * pw, axis=-1)[..., None]
    eps = 1e-12
    ok = s0 + c_max + eps <= tails
    open_ = finite & ~ok & (s0 - eps <= tails)
    if open_.any():
        r = np.flatnonzero(open_.any(axis=(1, 2)))
        x3 = np.concatenate([x[r], x[r][..., :1]], axis=-1)  # (three points, as over the SLO bound)
        s, _ = _exact(x3, wn[r], rtt[r], pw[r], mu[r], th[r], None, density=False)
        ok[r] = np.where(open_[r], s[..., :2] <= tails, ok[r])
    ok |= ~finite
    return np.asarray(ok[..., 0] & ok[..., 1])


def _bracket_survival(
    grid: FloatArray,
    wn: FloatArray,
    rtt: FloatArray,
    pw: FloatArray,
    mu: FloatArray,
    th: FloatArray,
    one: _OneMu | None,
    rows: IntArray,
    grid_points: int,
    n_atoms: int,
) -> FloatArray:
    """The bracket grid's survival of ``rows`` (their arrays given): factored where ``one`` (wide
    services, _grid_survival_factored), else in cache-sized chunks of steps (_grid_survival)."""
    if one is not None:
        if rows.size < one.ok.shape[0]:
            one = _OneMu(one.ok[rows], one.m[rows], one.x0[rows], one.factor[rows])
        return _grid_survival_factored(grid, wn, rtt, pw, mu, th, one)
    sub = max(1, CACHE_ELEMENTS // (grid_points * n_atoms))  # steps per cache-sized grid array
    return np.concatenate(
        [
            _grid_survival(
                grid[a : a + sub],
                wn[a : a + sub],
                rtt[a : a + sub],
                pw[a : a + sub],
                mu[a : a + sub],
                th[a : a + sub],
            )
            for a in range(0, grid.shape[0], sub)
        ]
    )


def _newton(
    out: BlockLatency,
    grid: FloatArray,
    s_grid: FloatArray,
    wn: FloatArray,
    rtt: FloatArray,
    pw: FloatArray,
    mu: FloatArray,
    th: FloatArray,
    has: npt.NDArray[np.bool_],
    tail: _Tail | None,
    tails: FloatArray,
    max_newton: int,
) -> None:
    """p50/p95/p99 into ``out``: each level bracketed on the grid, started from the closed-form root
    beyond the last atom where there is one (_Tail), else from log-linear interpolation on the grid,
    and polished with safeguarded Newton steps on the exact S until it converges (XTOL)."""
    n_steps, grid_points = grid.shape[0], grid.shape[-1]
    k = np.clip((s_grid[..., None, :] > tails[:, None]).sum(axis=-1), 1, grid_points - 1)  # (B,V,L)
    # the bracket one grid cell wider on each side: the float32 grid may misplace a level by an ulp
    lo_b = np.take_along_axis(grid, np.maximum(k - 2, 0), axis=-1)
    hi_b = np.take_along_axis(grid, np.minimum(k + 1, grid_points - 1), axis=-1)
    if tail is None:
        x = _grid_start(grid, s_grid, k, tails)
    else:
        x_p = tail.root(tails)
        x = np.clip(x_p, lo_b, hi_b)
        if np.isnan(x_p).any():
            x = np.where(np.isnan(x_p), _grid_start(grid, s_grid, k, tails), x)
    conv = np.broadcast_to(~has[..., None], x.shape).copy()  # (B, V, L): level solved
    act: Any = slice(None)  # the steps with a level still to solve (all of them: no copies)
    for _ in range(max_newton):
        xa, lo_a, hi_a, done_a = x[act], lo_b[act], hi_b[act], conv[act]
        tail_a = None if tail is None else tail.take(act)
        s_x, d_x = _exact(xa, wn[act], rtt[act], pw[act], mu[act], th[act], tail_a)
        above = s_x > tails
        lo_a = np.where(above, xa, lo_a)
        hi_a = np.where(above, hi_a, xa)
        nx = xa + (s_x - tails) / d_x
        bad = ~np.isfinite(nx) | (nx < lo_a) | (nx > hi_a)  # (a step below an ulp lands on x)
        hit = s_x == tails  # x solves it exactly (else the bracket would move off it)
        nx = np.where(hit, xa, np.where(bad, 0.5 * (lo_a + hi_a), nx))
        tol = XTOL * np.abs(xa)
        done_new = done_a | (np.abs(nx - xa) <= tol) | (hi_a - lo_a <= tol) | hit
        # (xa, done_a are views when act is every step: read above, written only now)
        x[act] = np.where(done_a, xa, nx)
        lo_b[act] = np.where(done_a, lo_b[act], lo_a)
        hi_b[act] = np.where(done_a, hi_b[act], hi_a)
        conv[act] = done_a = done_new
        left = ~done_a.all(axis=(1, 2))
        if not left.any():
            break
        if not left.all():
            act = np.arange(n_steps)[act][left]
    x = np.where(has[..., None], x, np.nan)
    out.p50_ms, out.p95_ms, out.p99_ms = x[..., 0], x[..., 1], x[..., 2]
