"""Load profiles: how a demand's rate varies over time around its declared mean.

Diurnal profiles are normalized so that their mean over a week is exactly 1: the `rate` in a
scenario is then really the mean, and energy over a year does not drift with the profile's shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from microdc.model.components import DiurnalProfile, Profile, TraceProfile
from microdc.model.errors import Problem, ScenarioError

FloatArray = npt.NDArray[np.float64]


def _week_matrix(p: DiurnalProfile) -> FloatArray:
    """(7, 24) factors, Monday first, normalized to mean 1."""
    m = np.outer(np.asarray(p.weekly, dtype=np.float64), np.asarray(p.hourly, dtype=np.float64))
    mean = m.mean()
    return m / mean if mean > 0 else np.ones_like(m)


def _read_trace(p: TraceProfile, base: Path) -> pd.Series:
    path = (base / p.csv).resolve()
    try:
        df = pd.read_csv(path)
    except (OSError, pd.errors.ParserError) as exc:
        raise ScenarioError([Problem(str(path), None, "", f"cannot read trace: {exc}")]) from None
    missing = {"timestamp", "factor"} - set(df.columns)
    if missing:
        raise ScenarioError(
            [Problem(str(path), 1, "", f"missing columns {sorted(missing)}; need timestamp,factor")]
        )
    ts = pd.to_datetime(df["timestamp"], errors="coerce", utc=False)
    factor = pd.to_numeric(df["factor"], errors="coerce")
    bad = ts.isna() | factor.isna() | (factor < 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ScenarioError(
            [Problem(str(path), row + 2, "factor", "expected an ISO timestamp and a factor >= 0")]
        )
    idx = pd.DatetimeIndex(ts)
    if idx.tz is None:
        idx = idx.tz_localize(p.timezone)
    s = pd.Series(factor.to_numpy(dtype=np.float64), index=idx.tz_convert("UTC")).sort_index()
    mean = float(s.mean())
    return s / mean if mean > 0 else s


def factors(p: Profile | None, times_utc: pd.DatetimeIndex, base: Path = Path(".")) -> FloatArray:
    """Load factor at each UTC time (mean ≈ 1 over a week or the trace)."""
    if p is None:
        return np.ones(len(times_utc))
    if isinstance(p, DiurnalProfile):
        local = times_utc.tz_convert(p.timezone)
        week = _week_matrix(p)
        return np.asarray(week[local.day_of_week.to_numpy(), local.hour.to_numpy()], dtype=np.float64)
    trace = _read_trace(p, base)
    # Align on the position within the trace's span, repeating it (a year's trace covers any year).
    secs = pd.DatetimeIndex(trace.index).asi8 // 10**9
    span = max(int(secs[-1] - secs[0]) + 3600, 3600)
    pos = (times_utc.asi8 // 10**9 - secs[0]) % span + secs[0]
    return np.asarray(np.interp(pos, secs, trace.to_numpy()), dtype=np.float64)


def profile_peak(p: Profile | None, base: Path = Path(".")) -> float:
    """Peak factor of a profile (diurnal: exact; trace: its maximum)."""
    if p is None:
        return 1.0
    if isinstance(p, DiurnalProfile):
        return float(_week_matrix(p).max())
    return float(_read_trace(p, base).max())
