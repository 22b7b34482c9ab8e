"""Latency of a service across all its requests in a step: a mixture, not an average of percentiles.

A request from demand piece w served by queue q = (target, service) takes ``rtt_w + T_q`` where T_q is
the M/M/c FCFS sojourn time of that queue (physics.queueing): with probability 1 − C it is a service
time Exp(μ), otherwise Exp(θ) + Exp(μ), θ = cμ − λ. For a service, the response-time survival is

    S(x) = Σ_w λ_w · S_q(w)(x − rtt_w) / Σ_w λ_w         (S_q(y) = 1 for y < 0)

Pieces on one queue whose RTTs differ by less than a tolerance are merged into one *atom* at their
rate-weighted mean RTT (at most ``max_atoms`` per queue, equal-rate groups); the mixture is then over
atoms. Quantiles are found per step by evaluating S on a grid spanning the mixture (bracket), then
refined by safeguarded Newton steps on the exact S and density, so they are exact up to the atom
merging. For run-level percentiles, each step's survival curve is added (weighted by its served
requests) onto a fixed fine log-spaced grid per service and inverted at the end (≈0.5 % resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

LEVELS = (0.50, 0.95, 0.99)


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
    with np.errstate(divide="ignore", invalid="ignore"):
        qw = np.where(pw > half, np.log(np.maximum(pw, 1e-300) / half) / theta, 0.0)
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


class RunAccumulator:
    """Request-weighted survival over the whole run, per service, on a fixed log grid (ms)."""

    def __init__(self, n_services: int, lo_ms: float = 0.01, hi_ms: float = 1e6, points: int = 4000) -> None:
        self.x = np.geomspace(lo_ms, hi_ms, points)
        self.surv = np.zeros((n_services, points))
        self.weight = np.zeros(n_services)
        self.mean_num = np.zeros(n_services)

    def add(self, v: int, grid: FloatArray, surv: FloatArray, n_requests: float, mean_ms: float) -> None:
        if n_requests <= 0:
            return
        logs = np.log(np.maximum(surv, 1e-300))
        vals = np.interp(self.x, grid, logs, left=0.0)
        beyond = self.x > grid[-1]
        if beyond.any() and grid.size >= 2 and grid[-1] > grid[-2]:
            slope = (logs[-1] - logs[-2]) / (grid[-1] - grid[-2])
            vals[beyond] = logs[-1] + min(slope, 0.0) * (self.x[beyond] - grid[-1])
        self.surv[v] += n_requests * np.exp(vals)
        self.weight[v] += n_requests
        self.mean_num[v] += n_requests * mean_ms

    def quantile_ms(self, v: int, p: float) -> float:
        if self.weight[v] <= 0:
            return float("nan")
        s = self.surv[v] / self.weight[v]
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
        s = self.surv[v] / self.weight[v]
        return float(np.exp(np.interp(x_ms, self.x, np.log(np.maximum(s, 1e-300)))))


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
    newton_steps: int = 3,
) -> StepLatency:
    """Per-service p50/p95/p99, mean and share over the SLO bound for one step (see module doc)."""
    nan = np.full(n_services, np.nan)
    out = StepLatency(nan.copy(), nan.copy(), nan.copy(), nan.copy(), np.zeros(n_services))
    if atoms.size == 0:
        return out
    with np.errstate(all="ignore"):
        live = atom_w > 0
        mean_t_ms = 1000.0 * (
            np.where(theta_q > 0, pw_q / np.where(theta_q > 0, theta_q, 1.0), np.inf) + 1.0 / mu_q
        )
        tails = 1.0 - np.array(LEVELS)
        log_tails = np.log(tails)
        shape = np.linspace(0.0, 1.0, grid_points) ** 2
        for v in range(n_services):
            sel = np.flatnonzero(live & (atoms.service == v))
            if sel.size == 0:
                continue
            q = atoms.queue[sel]
            w, rtt = atom_w[sel], atoms.rtt_ms[sel]
            pw, mu, th = pw_q[q], mu_q[q], theta_q[q]
            aset = _AtomSet(w, rtt, pw, mu, th)
            out.mean_ms[v] = float(w @ (rtt + mean_t_ms[q]) / aset.total)
            lo = float(rtt.min())
            hi = float((rtt + sojourn_upper_ms(pw, mu, th, 1e-5)).max())
            grid = lo + (hi - lo) * shape
            s_grid = np.minimum.accumulate(np.clip(aset.survival(grid, exact=False)[0], 0.0, 1.0))
            # Bracket each level on the grid, start from log-linear interpolation, polish with Newton.
            k = np.clip(np.searchsorted(-s_grid, -tails, side="left"), 1, grid_points - 1)
            a_x, b_x = grid[k - 1], grid[k]
            la = np.log(np.maximum(s_grid[k - 1], 1e-300))
            lb = np.log(np.maximum(s_grid[k], 1e-300))
            t = np.where(la > lb, (la - log_tails) / np.where(la > lb, la - lb, 1.0), 0.5)
            x = a_x + np.clip(t, 0.0, 1.0) * (b_x - a_x)
            lo_b, hi_b = a_x.copy(), b_x.copy()
            bound = slo_bound_ms[v]
            probe = np.isfinite(bound)
            for it in range(newton_steps):
                pts = np.append(x, bound) if (probe and it == 0) else x
                s_all, d_all = aset.survival(pts, exact=True)
                if probe and it == 0:
                    out.over_slo[v] = float(s_all[-1])
                s_x, d_x = s_all[: x.size], d_all[: x.size]
                above = s_x > tails
                lo_b = np.where(above, x, lo_b)
                hi_b = np.where(above, hi_b, x)
                nx = x + (s_x - tails) / d_x
                bad = ~np.isfinite(nx) | (nx <= lo_b) | (nx >= hi_b)
                x = np.where(bad, 0.5 * (lo_b + hi_b), nx)
            out.p50_ms[v], out.p95_ms[v], out.p99_ms[v] = (float(z) for z in x)
            if accumulator is not None:
                accumulator.add(v, grid, s_grid, aset.total * step_s, out.mean_ms[v])
    return out
