"""Response-time distributions over a whole run, from per-step percentiles.

The simulator gives, for every step and service, the p50, p95 and p99 of response time and the
requests served in that step. The run's distribution of a service is the mixture of the per-step
distributions, each weighted by its served requests. Within a step only three quantiles are known, so
its CDF is taken piecewise-linear through (0 ms, 0), (p50, 0.50), (p95, 0.95), (p99, 0.99), reaching 1
at p99 + (p99 - p95) / 4 (the p95→p99 slope continued). Quantiles of the run are read off the
mixture, so the table and the CDF chart agree.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]

KNOT_PROBS = np.array([0.0, 0.50, 0.95, 0.99, 1.0])


def _knots(df: pd.DataFrame) -> tuple[FloatArray, FloatArray]:
    """Per-step knots (n, 5) in ms and weights (n,), dropping steps that served nothing."""
    served = df["served_rps"].to_numpy(dtype=np.float64)
    q = df[["p50_ms", "p95_ms", "p99_ms"]].to_numpy(dtype=np.float64)
    keep = np.isfinite(q).all(axis=1) & np.isfinite(served) & (served > 0)
    q, w = q[keep], served[keep]
    p50 = np.maximum(q[:, 0], 0.0)
    p95 = np.maximum(q[:, 1], p50)
    p99 = np.maximum(q[:, 2], p95)
    top = p99 + (p99 - p95) / 4.0
    return np.column_stack([np.zeros_like(p50), p50, p95, p99, top]), w


def mixture_cdf(df: pd.DataFrame, x_ms: npt.ArrayLike) -> FloatArray:
    """Fraction of served requests with response time <= each x (ms)."""
    x = np.asarray(x_ms, dtype=np.float64)
    knots, w = _knots(df)
    if w.size == 0:
        return np.full(x.shape, np.nan)
    out = np.zeros(x.shape)
    for k in range(len(KNOT_PROBS) - 1):
        lo, hi = knots[:, k][:, None], knots[:, k + 1][:, None]
        p_lo, p_hi = KNOT_PROBS[k], KNOT_PROBS[k + 1]
        width = np.where(hi > lo, hi - lo, 1.0)
        frac = np.clip((x[None, :] - lo) / width, 0.0, 1.0)
        frac = np.where(hi > lo, frac, (x[None, :] >= hi).astype(float))
        out += (w[:, None] * frac * (p_hi - p_lo)).sum(axis=0)
    return np.asarray(out / w.sum(), dtype=np.float64)


def grid_ms(df: pd.DataFrame, n: int = 240, extra: float | None = None) -> FloatArray:
    """A log-spaced grid covering every step's distribution (and `extra`, e.g. the SLO)."""
    knots, w = _knots(df)
    if w.size == 0:
        return np.array([1.0, 10.0])
    lo = max(0.05, float(knots[:, 1].min()) * 0.1)
    hi = float(knots[:, 4].max()) * 1.05
    if extra is not None and np.isfinite(extra):
        lo, hi = min(lo, extra * 0.5), max(hi, extra * 1.2)
    hi = max(hi, lo * 1.01)
    return np.geomspace(lo, hi, n)


def mixture_quantiles(df: pd.DataFrame, probs: tuple[float, ...] = (0.5, 0.95, 0.99)) -> list[float]:
    """Quantiles of the mixture distribution, ms (NaN when nothing was served)."""
    knots, w = _knots(df)
    if w.size == 0:
        return [float("nan")] * len(probs)
    # Every quantile lies between the smallest and largest knot; bisect the monotone mixture CDF.
    out: list[float] = []
    for p in probs:
        lo, hi = 0.0, float(knots.max())
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            if float(mixture_cdf(df, np.array([mid]))[0]) < p:
                lo = mid
            else:
                hi = mid
        out.append(hi)
    return out


def weighted_mean(values: npt.ArrayLike, weights: npt.ArrayLike) -> float:
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    keep = np.isfinite(v) & np.isfinite(w) & (w > 0)
    if not keep.any():
        return float("nan")
    return float(np.average(v[keep], weights=w[keep]))
