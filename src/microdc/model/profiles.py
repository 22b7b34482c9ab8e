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
        # Strings, blank lines kept: data row k is then line k + 2 of the file.
        df = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except pd.errors.EmptyDataError:
        raise ScenarioError(
            [Problem(str(path), 1, "", "empty file; expected a header timestamp,factor")]
        ) from None
    except (OSError, ValueError) as exc:  # ParserError and UnicodeDecodeError are ValueErrors
        raise ScenarioError([Problem(str(path), None, "", f"cannot read trace: {exc}")]) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = {"timestamp", "factor"} - set(df.columns)
    if missing:
        raise ScenarioError(
            [Problem(str(path), 1, "", f"missing columns {sorted(missing)}; need timestamp,factor")]
        )
    blank = (df["timestamp"].str.strip() == "") & (df["factor"].str.strip() == "")
    lines = np.flatnonzero(~blank.to_numpy()) + 2
    df = df[~blank]
    if df.empty:
        raise ScenarioError([Problem(str(path), 2, "", "no data rows after the header")])
    ts = pd.to_datetime(df["timestamp"].str.strip(), errors="coerce", utc=False, format="ISO8601")
    factor = pd.to_numeric(df["factor"].str.strip(), errors="coerce")
    for column, bad, expected in (
        ("timestamp", ts.isna().to_numpy(), "an ISO 8601 timestamp, e.g. 2023-01-01T00:00"),
        ("factor", (factor.isna() | ~np.isfinite(factor) | (factor < 0)).to_numpy(), "a number >= 0"),
    ):
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            found = df[column].iloc[k]
            raise ScenarioError(
                [Problem(str(path), int(lines[k]), column, f"expected {expected}, found {found!r}")]
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
