"""Server electrical power as a function of CPU utilization, vectorized over any shape.

Two curves:

* linear: ``P = idle + (peak − idle)·u`` — the common first-order model.
* SPECpower-style: ``P = idle + (peak − idle)·(2u − u^r)`` with r ≈ 1.4, the empirical
  curve of X. Fan, W.-D. Weber, L. A. Barroso, "Power provisioning for a
  warehouse-sized computer", ISCA 2007. It rises faster at low utilization than the
  line, as measured SPECpower_ssj2008 curves do.

Arrays are typically ``(steps, servers)``; ``idle_w``/``peak_w`` broadcast (scalars or
per-server rows).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Exponent of the Fan–Weber–Barroso (2007) curve.
FAN_BARROSO_R = 1.4

_U_TOLERANCE = 1e-9


def _utilization(utilization: npt.ArrayLike) -> FloatArray:
    u = np.asarray(utilization, dtype=np.float64)
    if not np.all(np.isfinite(u)):
        raise ValueError("utilization must be finite")
    if np.any(u < -_U_TOLERANCE) or np.any(u > 1.0 + _U_TOLERANCE):
        raise ValueError("utilization must lie in [0, 1]")
    return np.clip(u, 0.0, 1.0)


def _idle_peak(idle_w: npt.ArrayLike, peak_w: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    idle = np.asarray(idle_w, dtype=np.float64)
    peak = np.asarray(peak_w, dtype=np.float64)
    if np.any(idle < 0.0) or np.any(peak < idle):
        raise ValueError("need 0 <= idle_w <= peak_w")
    return idle, peak


def server_power_linear_w(
    utilization: npt.ArrayLike, idle_w: npt.ArrayLike, peak_w: npt.ArrayLike
) -> FloatArray:
    """Linear idle→peak power, W, for utilization in [0, 1]."""
    u = _utilization(utilization)
    idle, peak = _idle_peak(idle_w, peak_w)
    return np.asarray(idle + (peak - idle) * u, dtype=np.float64)


def server_power_specpower_w(
    utilization: npt.ArrayLike, idle_w: npt.ArrayLike, peak_w: npt.ArrayLike, r: float = FAN_BARROSO_R
) -> FloatArray:
    """Fan–Weber–Barroso (2007) power curve ``idle + (peak − idle)(2u − u^r)``, W.

    ``r`` must be in [1, 2] so the curve is monotone from idle (u=0) to peak (u=1).
    """
    if not 1.0 <= r <= 2.0:
        raise ValueError(f"r must lie in [1, 2], got {r}")
    u = _utilization(utilization)
    idle, peak = _idle_peak(idle_w, peak_w)
    return np.asarray(idle + (peak - idle) * (2.0 * u - u**r), dtype=np.float64)


def energy_kwh(power_w: npt.ArrayLike, step_h: float = 1.0) -> FloatArray:
    """Energy per step, kWh, from mean power per step (W) and step length (h)."""
    if step_h <= 0.0:
        raise ValueError("step_h must be > 0")
    return np.asarray(np.asarray(power_w, dtype=np.float64) * (step_h / 1000.0), dtype=np.float64)
