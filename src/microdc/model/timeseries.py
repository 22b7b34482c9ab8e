"""Hourly time-series loaders: grid carbon intensity and outdoor weather.

Every loader returns float64 data on an hourly, tz-aware UTC ``DatetimeIndex``, with
``.attrs`` holding ``unit``, ``source`` (the path), ``filled_hours`` (how many hours
were interpolated) and ``dropped_rows``. Problems raise :class:`TimeSeriesError`
naming the file, the 1-based line number and what was expected.

Gap rule (never silent): a run of missing hours (absent rows or empty cells) no longer
than ``max_gap_hours`` is filled by linear interpolation in time (nearest value at the
edges), counted in ``attrs["filled_hours"]`` and announced with a
:class:`TimeSeriesGapWarning`; a longer run is refused with an error.

Timestamp convention: each timestamp labels the hour that starts there, ``[t, t+1h)``.

Formats: Electricity Maps hourly CSV, EIA hourly CSV as prepared by HewlettPackard/dc-rl,
Open-Meteo hourly CSV (local wall-clock time), and EnergyPlus EPW weather files.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd

PathLike = str | Path
#: What a loader does with missing hours: interpolate short runs (and warn with the count), or refuse.
GapPolicy = Literal["fill", "reject"]
FrameOrSeries = TypeVar("FrameOrSeries", pd.Series, pd.DataFrame)

#: Default longest run of missing hours that is interpolated rather than refused.
DEFAULT_MAX_GAP_HOURS = 3
HOUR = pd.Timedelta(hours=1)


class TimeSeriesError(ValueError):
    """A time-series file is malformed; says which file, which line and what was expected."""

    def __init__(self, path: PathLike, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}, line {line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class TimeSeriesGapWarning(UserWarning):
    """Short gaps were interpolated, or rows were dropped, while loading a time series."""


@dataclass(frozen=True)
class _Table:
    """Raw columns of a CSV file with the 1-based line number of every data row."""

    columns: dict[str, list[str]]
    lines: npt.NDArray[np.int64]


def _normalise_header(name: str) -> str:
    return name.strip().replace("₂", "2").lower()


def _read_csv(path: Path, required: Sequence[str], skip: int = 0) -> _Table:
    """Read the required columns as strings, checking header and field counts; the header is on line
    ``skip + 1`` (an Open-Meteo API CSV has a metadata block first)."""
    if not path.is_file():
        raise TimeSeriesError(path, None, "file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        for _ in range(skip):
            fh.readline()
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise TimeSeriesError(path, skip + 1, "no header line; expected the hourly table") from None
        index = {_normalise_header(h): i for i, h in enumerate(header)}
        missing = [c for c in required if _normalise_header(c) not in index]
        if missing:
            raise TimeSeriesError(
                path,
                skip + 1,
                f"missing column(s) {', '.join(repr(c) for c in missing)}; header is {header!r}",
            )
        pos = [index[_normalise_header(c)] for c in required]
        need = max(pos) + 1
        cols: list[list[str]] = [[] for _ in required]
        lines: list[int] = []
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) < need:
                raise TimeSeriesError(
                    path,
                    reader.line_num + skip,
                    f"expected at least {need} comma-separated fields, found {len(row)}",
                )
            for k, p in enumerate(pos):
                cols[k].append(row[p].strip())
            lines.append(reader.line_num + skip)
    if not lines:
        raise TimeSeriesError(path, skip + 2, "no data rows after the header")
    return _Table(dict(zip(required, cols, strict=True)), np.asarray(lines, dtype=np.int64))


def _parse_numbers(
    path: Path, raw: list[str], lines: npt.NDArray[np.int64], column: str, missing: Sequence[float] = ()
) -> npt.NDArray[np.float64]:
    """Floats; empty cells (and ``missing`` sentinels) become NaN, anything else non-numeric is an error."""
    values = np.array(pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce"), dtype=np.float64)
    empty = np.array([s == "" for s in raw], dtype=bool)
    bad = (np.isnan(values) & ~empty) | np.isinf(values)
    if bad.any():
        i = int(np.argmax(bad))
        raise TimeSeriesError(path, int(lines[i]), f"column {column!r}: expected a number, found {raw[i]!r}")
    for sentinel in missing:
        values[values == sentinel] = np.nan
    return values


def _parse_times(
    path: Path, raw: list[str], lines: npt.NDArray[np.int64], fmt: str, expected: str, utc: bool
) -> pd.DatetimeIndex:
    times = pd.to_datetime(pd.Series(raw, dtype=object), format=fmt, errors="coerce", utc=utc)
    bad = times.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise TimeSeriesError(
            path, int(lines[i]), f"expected a timestamp like {expected!r}, found {raw[i]!r}"
        )
    return pd.DatetimeIndex(times)


def _check_order(path: Path, times: pd.DatetimeIndex, lines: npt.NDArray[np.int64]) -> None:
    """Strictly increasing, on whole hours."""
    off_hour = times != times.floor("h")
    if off_hour.any():
        i = int(np.argmax(off_hour))
        raise TimeSeriesError(path, int(lines[i]), f"timestamp {times[i]} is not on a whole hour")
    step = np.diff(times.asi8)
    if (step <= 0).any():
        i = int(np.argmax(step <= 0)) + 1
        if step[i - 1] == 0:
            raise TimeSeriesError(
                path, int(lines[i]), f"duplicate timestamp {times[i]} (also on line {int(lines[i - 1])})"
            )
        raise TimeSeriesError(
            path,
            int(lines[i]),
            f"timestamps must increase: {times[i]} comes after {times[i - 1]} (line {int(lines[i - 1])})",
        )


def _fill_gaps(
    path: Path,
    frame: pd.DataFrame,
    lines: npt.NDArray[np.int64],
    max_gap_hours: int,
    dropped_rows: int = 0,
    gaps: GapPolicy = "fill",
) -> pd.DataFrame:
    """Reindex to every hour, interpolate runs ≤ max_gap_hours, refuse longer ones (``gaps="reject"``:
    refuse any)."""
    if max_gap_hours < 0:
        raise ValueError("max_gap_hours must be >= 0")
    if gaps == "reject":
        max_gap_hours = 0
    idx = frame.index
    full = pd.date_range(idx[0], idx[-1], freq="h")
    line_of = pd.Series(lines, index=idx).reindex(full)
    out = frame.reindex(full)
    missing = out.isna().any(axis=1).to_numpy()
    filled = int(missing.sum())
    if filled:
        # Runs of consecutive missing hours.
        edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
        starts = np.flatnonzero(edges == 1)
        ends = np.flatnonzero(edges == -1)
        lengths = ends - starts
        k = int(np.argmax(lengths))
        if lengths[k] > max_gap_hours:
            s, e = int(starts[k]), int(ends[k])
            after = line_of.iloc[e] if e < len(full) else np.nan
            line = int(after) if not np.isnan(after) else int(lines[-1])
            total = f"{filled} missing hour(s) in {len(starts)} gap(s) in all; "
            fix = (
                "gaps: reject refuses any (set gaps: fill to interpolate up to max_gap_hours)"
                if gaps == "reject"
                else f"at most {max_gap_hours} may be interpolated (raise max_gap_hours to accept)"
            )
            raise TimeSeriesError(
                path,
                line,
                f"gap of {int(lengths[k])} missing hour(s) from {full[s]} to {full[e - 1]}; {total}{fix}",
            )
        out = out.interpolate(method="time", limit_direction="both")
        warnings.warn(
            f"{path}: interpolated {filled} missing hour(s) in {len(starts)} gap(s) "
            f"(longest {int(lengths.max())} h)",
            TimeSeriesGapWarning,
            stacklevel=3,
        )
    out.attrs.update({"source": str(path), "filled_hours": filled, "dropped_rows": dropped_rows})
    return out.astype(np.float64)


def _as_series(frame: pd.DataFrame, column: str, name: str, unit: str, **attrs: object) -> pd.Series:
    series = frame[column].astype(np.float64).rename(name)
    series.index.name = "time_utc"
    series.attrs.update(frame.attrs)
    series.attrs.update({"unit": unit, **attrs})
    return series


# --------------------------------------------------------------------------- carbon intensity

EM_TIME = "Datetime (UTC)"
EM_DIRECT = "Carbon Intensity gCO₂eq/kWh (direct)"
EM_LCA = "Carbon Intensity gCO₂eq/kWh (LCA)"
EM_ZONE = "Zone Id"


def load_electricitymaps_csv(
    path: PathLike,
    *,
    basis: Literal["lca", "direct"] = "lca",
    max_gap_hours: int = DEFAULT_MAX_GAP_HOURS,
    gaps: GapPolicy = "fill",
) -> pd.Series:
    """Grid carbon intensity, gCO2eq/kWh, from an Electricity Maps hourly CSV export.

    ``basis="lca"`` (default) uses life-cycle factors, which include upstream emissions
    (fuel supply, plant and panel manufacture). microdc also counts the embodied
    (life-cycle) carbon of MDC hardware, so LCA keeps both on the same basis, and direct
    factors would rate wind, solar and nuclear at exactly zero, overstating what
    carbon-aware shifting saves. Use ``"direct"`` for GHG-Protocol scope-2 style
    (combustion-only) reporting.
    """
    p = Path(path)
    column = {"lca": EM_LCA, "direct": EM_DIRECT}.get(basis)
    if column is None:
        raise ValueError(f"basis must be 'lca' or 'direct', got {basis!r}")
    table = _read_csv(p, [EM_TIME, column, EM_ZONE])
    times = _parse_times(
        p, table.columns[EM_TIME], table.lines, "%Y-%m-%d %H:%M:%S", "2023-01-01 00:00:00", True
    )
    values = _parse_numbers(p, table.columns[column], table.lines, column)
    _check_order(p, times, table.lines)
    frame = _fill_gaps(p, pd.DataFrame({"v": values}, index=times), table.lines, max_gap_hours, gaps=gaps)
    zones = sorted(set(table.columns[EM_ZONE]))
    return _as_series(
        frame,
        "v",
        "carbon_intensity_g_per_kwh",
        "gCO2eq/kWh",
        basis=basis,
        zone=zones[0] if len(zones) == 1 else ",".join(zones),
    )


def load_eia_csv(
    path: PathLike, *, max_gap_hours: int = DEFAULT_MAX_GAP_HOURS, gaps: GapPolicy = "fill"
) -> pd.Series:
    """Average grid carbon intensity (column ``avg_CI``, gCO2/kWh) from an EIA-930 hourly CSV in the
    layout prepared by HewlettPackard/dc-rl (``timestamp,WND,...,avg_CI``), also as pandas writes it
    with its index as an unnamed first column (``,timestamp,...``). Missing hours (absent rows, empty
    cells) follow ``gaps``: ``fill`` interpolates runs up to ``max_gap_hours`` and warns with the count,
    ``reject`` refuses the file naming the first gap."""
    p = Path(path)
    table = _read_csv(p, ["timestamp", "avg_CI"])
    times = _parse_times(
        p, table.columns["timestamp"], table.lines, "%Y-%m-%d %H:%M:%S%z", "2022-01-01 00:00:00+00:00", True
    )
    values = _parse_numbers(p, table.columns["avg_CI"], table.lines, "avg_CI")
    _check_order(p, times, table.lines)
    frame = _fill_gaps(p, pd.DataFrame({"v": values}, index=times), table.lines, max_gap_hours, gaps=gaps)
    return _as_series(frame, "v", "carbon_intensity_g_per_kwh", "gCO2/kWh", basis="eia_avg_ci")


# --------------------------------------------------------------------------- weather

WEATHER_COLUMNS = ("temperature_c", "relative_humidity_pct")
#: Optional humidity columns of an Open-Meteo CSV, as returned → the header names accepted (this
#: project's layout, then the API's hourly variable names; a trailing unit such as " (%)" is ignored).
OPENMETEO_HUMIDITY = {
    "relative_humidity_pct": ("relative_humidity_pct", "relative_humidity_2m"),
    "dew_point_c": ("dew_point_c", "dew_point_2m"),
}
#: Plausible outdoor dew points, °C (the EPW field's valid range is -70 to 70).
DEW_POINT_RANGE_C = (-90.0, 70.0)


def _header_line(path: Path) -> list[str]:
    if not path.is_file():
        raise TimeSeriesError(path, None, "file not found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return next(csv.reader(fh), [])


def _without_unit(name: str) -> str:
    """``'relative_humidity_2m (%)'`` → ``'relative_humidity_2m'``."""
    base = _normalise_header(name)
    return base[: base.index("(")].strip() if base.endswith(")") and "(" in base else base


def _check_humidity(
    path: Path, values: npt.NDArray[np.float64], lines: npt.NDArray[np.int64], column: str, kind: str
) -> None:
    """Relative humidity in (0, 100] %, dew point within DEW_POINT_RANGE_C; NaN (a gap) passes."""
    if kind == "relative_humidity_pct":
        bad, expected = (values <= 0.0) | (values > 100.0), "a relative humidity in (0, 100] %"
    else:
        lo, hi = DEW_POINT_RANGE_C
        bad, expected = (values < lo) | (values > hi), f"a dew point between {lo:g} and {hi:g} °C"
    if bad.any():
        i = int(np.argmax(bad))
        raise TimeSeriesError(
            path, int(lines[i]), f"column {column!r}: expected {expected}, found {values[i]:g}"
        )


def dew_point_of(frame: pd.DataFrame) -> npt.NDArray[np.float64] | None:
    """Outdoor dew point, °C, of a weather frame from these loaders: its ``dew_point_c`` column, else
    computed from ``temperature_c`` and ``relative_humidity_pct`` (ASHRAE psychrometrics), else None
    (the file had no humidity)."""
    from microdc.physics.psychro import dew_point_c

    if "dew_point_c" in frame.columns:
        return np.asarray(frame["dew_point_c"].to_numpy(dtype=np.float64), dtype=np.float64)
    if "relative_humidity_pct" in frame.columns:
        return dew_point_c(
            frame["temperature_c"].to_numpy(dtype=np.float64),
            frame["relative_humidity_pct"].to_numpy(dtype=np.float64),
        )
    return None


def _localize_wall_clock(
    path: Path, local: pd.DatetimeIndex, lines: npt.NDArray[np.int64], tz: str
) -> tuple[pd.DatetimeIndex, npt.NDArray[np.bool_]]:
    """Wall-clock → UTC with DST. Returns UTC times and a mask of rows kept.

    Ambiguous (repeated) hours: the first occurrence is the DST (earlier) instant, a
    second occurrence the standard-time one; a third is a duplicate. Nonexistent hours
    (skipped by the spring-forward jump) cannot come from a DST clock and are dropped.
    """
    local = local.as_unit("ns")
    as_dst = local.tz_localize(tz, ambiguous=np.ones(len(local), dtype=bool), nonexistent="NaT")
    as_std = local.tz_localize(tz, ambiguous=np.zeros(len(local), dtype=bool), nonexistent="NaT")
    nonexistent = np.asarray(as_dst.isna(), dtype=bool)
    ambiguous = ~nonexistent & np.asarray(as_dst != as_std, dtype=bool)
    occurrence = pd.Series(local).groupby(pd.Series(local)).cumcount().to_numpy()
    third = ambiguous & (occurrence >= 2)
    if third.any():
        i = int(np.argmax(third))
        raise TimeSeriesError(
            path, int(lines[i]), f"duplicate timestamp {local[i]} (ambiguous hour seen 3 times)"
        )
    use_std = ambiguous & (occurrence == 1)
    keep = ~nonexistent
    ns = np.where(use_std, as_std.asi8, as_dst.asi8)[keep]
    return pd.DatetimeIndex(pd.to_datetime(ns, unit="ns", utc=True)), keep


def load_openmeteo_csv(
    path: PathLike,
    tz: str,
    *,
    utc_offset_hours: float | None = None,
    max_gap_hours: int = DEFAULT_MAX_GAP_HOURS,
    gaps: GapPolicy = "fill",
) -> pd.DataFrame:
    """Outdoor temperature (°C) and, when the file has them, relative humidity (%) and dew point
    (°C) from an Open-Meteo hourly CSV.

    Columns: ``time_local``, ``temperature_c``, and optionally ``relative_humidity_pct`` (or the
    API's ``relative_humidity_2m``) and ``dew_point_c`` (or ``dew_point_2m``); the frame holds
    ``temperature_c`` and whichever of ``relative_humidity_pct`` and ``dew_point_c`` the file has
    (``attrs["humidity"]`` lists them; empty: the file has no humidity). The file's
    ``time_local`` is local time. With ``utc_offset_hours=None`` it is read as
    wall-clock time in the IANA zone ``tz`` (e.g. ``"Australia/Melbourne"``), with DST:

    * a repeated (ambiguous) hour: first row → DST instant, second row → standard time;
      if it appears once, it is the DST instant and the other hour is a 1-h gap
      (interpolated and counted);
    * a nonexistent hour (inside the spring-forward jump) is dropped, counted in
      ``attrs["dropped_rows"]`` and warned about.

    Note: the Open-Meteo API itself stamps a whole response with one UTC offset (the one
    valid when the request was made), so its files show every wall-clock hour exactly
    once, including the nonexistent one. If you know that offset, pass
    ``utc_offset_hours`` (e.g. 11.0 for AEDT) to convert with it exactly instead.
    """
    p = Path(path)
    header = _header_line(p)
    found = {
        col: next(h for h in header if _without_unit(h) in names)
        for col, names in OPENMETEO_HUMIDITY.items()
        if any(_without_unit(h) in names for h in header)
    }
    table = _read_csv(p, ["time_local", "temperature_c", *found.values()])
    local = _parse_times(
        p, table.columns["time_local"], table.lines, "%Y-%m-%dT%H:%M", "2023-01-01T00:00", False
    )
    data = {"temperature_c": _parse_numbers(p, table.columns["temperature_c"], table.lines, "temperature_c")}
    for col, name in found.items():
        data[col] = _parse_numbers(p, table.columns[name], table.lines, name)
        _check_humidity(p, data[col], table.lines, name, col)
    lines = table.lines
    dropped = 0
    if utc_offset_hours is not None:
        if not math.isfinite(utc_offset_hours) or abs(utc_offset_hours) > 14:
            raise ValueError("utc_offset_hours must lie in [-14, 14]")
        _check_order(p, local, lines)
        utc = (local - pd.Timedelta(hours=utc_offset_hours)).tz_localize("UTC")
        if (utc != utc.floor("h")).any():
            raise ValueError("fractional utc_offset_hours would put samples off the hour")
    else:
        step = np.diff(local.asi8)
        if (step < 0).any():
            i = int(np.argmax(step < 0)) + 1
            raise TimeSeriesError(
                p, int(lines[i]), f"timestamps must increase: {local[i]} after {local[i - 1]}"
            )
        utc, keep = _localize_wall_clock(p, local, lines, tz)
        dropped = int((~keep).sum())
        if dropped:
            warnings.warn(
                f"{p}: dropped {dropped} row(s) at local times that do not exist in {tz} "
                f"(DST spring-forward), e.g. {local[np.flatnonzero(~keep)[0]]}; if the file uses one fixed "
                "UTC offset (as Open-Meteo does), pass utc_offset_hours",
                TimeSeriesGapWarning,
                stacklevel=2,
            )
        data = {c: v[keep] for c, v in data.items()}
        lines = lines[keep]
        _check_order(p, utc, lines)
    frame = _fill_gaps(p, pd.DataFrame(data, index=utc), lines, max_gap_hours, dropped, gaps=gaps)
    frame.index.name = "time_utc"
    units = {"temperature_c": "degC", "relative_humidity_pct": "%", "dew_point_c": "degC"}
    frame.attrs.update({"unit": {c: units[c] for c in frame.columns}, "tz": tz, "humidity": list(found)})
    return frame


#: The Open-Meteo API's hourly variables microdc reads → the frame's columns.
OPENMETEO_API_VARIABLES = {
    "temperature_2m": "temperature_c",
    "relative_humidity_2m": "relative_humidity_pct",
    "dew_point_2m": "dew_point_c",
}
_API_UNITS = {"temperature_c": "degC", "relative_humidity_pct": "%", "dew_point_c": "degC"}


def is_openmeteo_api_file(path: PathLike) -> bool:
    """A file as the Open-Meteo API returns it: JSON, or CSV opening with its metadata block."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        return True
    head = _header_line(p)
    return bool(head) and _normalise_header(head[0]) == "latitude"


def _api_frame(
    path: Path,
    times: list[str],
    columns: dict[str, npt.NDArray[np.float64]],
    lines: npt.NDArray[np.int64],
    offset_s: float,
    utc_offset_hours: float | None,
    max_gap_hours: int,
    gaps: GapPolicy,
) -> pd.DataFrame:
    if utc_offset_hours is not None and abs(utc_offset_hours * 3600.0 - offset_s) > 1e-6:
        raise TimeSeriesError(
            path,
            None,
            f"the file says utc_offset_seconds {offset_s:g} ({offset_s / 3600.0:g} h) but the scenario gives "
            f"utc_offset_hours {utc_offset_hours:g}; drop utc_offset_hours (the file's offset is the API's)",
        )
    local = _parse_times(path, times, lines, "%Y-%m-%dT%H:%M", "2023-01-01T00:00", False)
    _check_order(path, local, lines)
    utc = (local - pd.Timedelta(seconds=offset_s)).tz_localize("UTC")
    if (utc != utc.floor("h")).any():
        raise TimeSeriesError(path, None, f"utc_offset_seconds {offset_s:g} puts samples off the hour")
    for col, values in columns.items():
        if col != "temperature_c":
            _check_humidity(path, values, lines, col, col)
    frame = _fill_gaps(path, pd.DataFrame(columns, index=utc), lines, max_gap_hours, gaps=gaps)
    frame.index.name = "time_utc"
    humidity = [c for c in columns if c != "temperature_c"]
    frame.attrs.update(
        {
            "unit": {c: _API_UNITS[c] for c in frame.columns},
            "utc_offset_seconds": offset_s,
            "humidity": humidity,
        }
    )
    return frame


def load_openmeteo_api_json(
    path: PathLike,
    *,
    utc_offset_hours: float | None = None,
    max_gap_hours: int = DEFAULT_MAX_GAP_HOURS,
    gaps: GapPolicy = "fill",
) -> pd.DataFrame:
    """Outdoor temperature (°C), and relative humidity (%) and dew point (°C) when requested, from an
    Open-Meteo historical-weather API response saved as JSON, exactly as returned: ``hourly.time``
    (local times at the response's ``utc_offset_seconds``), ``hourly.temperature_2m`` and optionally
    ``hourly.relative_humidity_2m`` and ``hourly.dew_point_2m``; ``null`` values are gaps. Errors
    name the JSON field and the entry (``hourly.temperature_2m[17]``), and the file."""
    p = Path(path)
    if not p.is_file():
        raise TimeSeriesError(p, None, "file not found")
    try:
        doc = json.loads(p.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise TimeSeriesError(p, exc.lineno, f"not valid JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        what = "a list (several locations?)" if isinstance(doc, list) else type(doc).__name__
        raise TimeSeriesError(p, None, f"expected one Open-Meteo response object, found {what}")
    if "error" in doc and doc.get("error"):
        raise TimeSeriesError(p, None, f"the file is an Open-Meteo error response: {doc.get('reason')!r}")
    hourly = doc.get("hourly")
    if not isinstance(hourly, dict):
        raise TimeSeriesError(p, None, "no 'hourly' block; request hourly=temperature_2m,... from the API")
    offset = doc.get("utc_offset_seconds", 0)
    if not isinstance(offset, (int, float)) or isinstance(offset, bool):
        raise TimeSeriesError(p, None, f"utc_offset_seconds: expected a number, found {offset!r}")
    times = hourly.get("time")
    if not isinstance(times, list) or not times:
        raise TimeSeriesError(p, None, "hourly.time: expected a non-empty list of local times")
    if "temperature_2m" not in hourly:
        raise TimeSeriesError(p, None, f"hourly.temperature_2m missing; hourly has {sorted(hourly)}")
    columns: dict[str, npt.NDArray[np.float64]] = {}
    for var, col in OPENMETEO_API_VARIABLES.items():
        raw = hourly.get(var)
        if raw is None:
            continue
        if not isinstance(raw, list) or len(raw) != len(times):
            n = len(raw) if isinstance(raw, list) else type(raw).__name__
            raise TimeSeriesError(
                p, None, f"hourly.{var}: expected {len(times)} values like hourly.time, found {n}"
            )
        bad = [
            i
            for i, v in enumerate(raw)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)))
        ]
        if bad:
            raise TimeSeriesError(
                p, None, f"hourly.{var}[{bad[0]}]: expected a number or null, found {raw[bad[0]]!r}"
            )
        columns[col] = np.array([np.nan if v is None else float(v) for v in raw], dtype=np.float64)
    if not all(isinstance(x, str) for x in times):
        i = next(i for i, x in enumerate(times) if not isinstance(x, str))
        raise TimeSeriesError(
            p, None, f"hourly.time[{i}]: expected a time like '2023-01-01T00:00', found {times[i]!r}"
        )
    entries = np.arange(len(times), dtype=np.int64)
    try:
        return _api_frame(p, times, columns, entries, float(offset), utc_offset_hours, max_gap_hours, gaps)
    except TimeSeriesError as exc:
        # JSON has no useful line numbers: name the hourly entry instead.
        if exc.line is None:
            raise
        raise TimeSeriesError(
            p, None, f"hourly entry {exc.line} (time {times[exc.line]!r}): {exc.message}"
        ) from None


def load_openmeteo_api_csv(
    path: PathLike,
    *,
    utc_offset_hours: float | None = None,
    max_gap_hours: int = DEFAULT_MAX_GAP_HOURS,
    gaps: GapPolicy = "fill",
) -> pd.DataFrame:
    """The same from the API's CSV (``format=csv``), exactly as returned: a metadata block
    (``latitude,longitude,elevation,utc_offset_seconds,timezone,timezone_abbreviation`` and its values),
    a blank line, then the hourly table ``time,temperature_2m (°C),relative_humidity_2m (%),
    dew_point_2m (°C)``; empty cells are gaps."""
    p = Path(path)
    if not p.is_file():
        raise TimeSeriesError(p, None, "file not found")
    with p.open(newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    if len(rows) < 2 or not rows[0] or _normalise_header(rows[0][0]) != "latitude":
        raise TimeSeriesError(
            p, 1, "expected the API's metadata header 'latitude,longitude,...,utc_offset_seconds'"
        )
    meta_head = [_normalise_header(h) for h in rows[0]]
    if "location_id" in meta_head:
        raise TimeSeriesError(p, 1, "several locations in one file; download one location per file")
    if "utc_offset_seconds" not in meta_head:
        raise TimeSeriesError(p, 1, f"metadata has no utc_offset_seconds; header is {rows[0]!r}")
    k = meta_head.index("utc_offset_seconds")
    try:
        offset = float(rows[1][k])
    except (IndexError, ValueError):
        raise TimeSeriesError(p, 2, "utc_offset_seconds: expected a number") from None
    blank = next((i for i in range(2, len(rows)) if not any(c.strip() for c in rows[i])), None)
    if blank is None:
        raise TimeSeriesError(p, 3, "expected a blank line after the metadata, then the hourly table")
    header = rows[blank + 1] if blank + 1 < len(rows) else []
    names = {_without_unit(h): h for h in header}
    if "time" not in names or "temperature_2m" not in names:
        raise TimeSeriesError(
            p, blank + 2, f"hourly table needs 'time' and 'temperature_2m'; header is {header!r}"
        )
    found = {col: names[var] for var, col in OPENMETEO_API_VARIABLES.items() if var in names}
    table = _read_csv(p, [names["time"], *found.values()], skip=blank + 1)
    columns = {col: _parse_numbers(p, table.columns[name], table.lines, name) for col, name in found.items()}
    return _api_frame(
        p, table.columns[names["time"]], columns, table.lines, offset, utc_offset_hours, max_gap_hours, gaps
    )


# EPW data-row fields (0-based): year, month, day, hour (1-24), minute, flags, dry bulb, dew point, RH, ...
_EPW_MONTH, _EPW_DAY, _EPW_HOUR, _EPW_DRY_BULB, _EPW_DEW_POINT, _EPW_RH = 1, 2, 3, 6, 7, 8
EPW_COLUMNS = ("temperature_c", "relative_humidity_pct", "dew_point_c")
_EPW_HEADER_LINES = 8


def load_epw(
    path: PathLike, year: int, *, max_gap_hours: int = DEFAULT_MAX_GAP_HOURS, gaps: GapPolicy = "fill"
) -> pd.DataFrame:
    """Dry-bulb temperature (°C), relative humidity (%) and dew point (°C) from an EnergyPlus EPW
    file, re-stamped onto calendar ``year`` and returned in UTC covering exactly that UTC year.

    * EPW times are local standard time (no DST) at the LOCATION line's offset (field 9).
      Row ``hour = h`` (1-24) describes the hour ending at h; it is stamped at local
      ``h − 1``:00, the start of that hour, like every other loader here.
    * Typical-year files mix source years; month/day/hour are kept and the year
      replaced. A Feb 29 row is dropped when ``year`` is not a leap year; when it is,
      Feb 29 is a copy of Feb 28 (both noted in ``attrs``).
    * The local year is shifted by the UTC offset and wrapped cyclically, so that e.g.
      for Phoenix (−7 h) the UTC hours 00-06 of 1 January come from the local evening
      of 31 December of the same typical year.
    * Missing-value sentinels (dry bulb and dew point 99.9, RH 999) count as gaps.
    """
    p = Path(path)
    if not p.is_file():
        raise TimeSeriesError(p, None, "file not found")
    with p.open(newline="", encoding="latin-1") as fh:
        rows = list(csv.reader(fh))
    if len(rows) <= _EPW_HEADER_LINES:
        raise TimeSeriesError(
            p, len(rows), f"expected {_EPW_HEADER_LINES} header lines then hourly data rows"
        )
    location = rows[0]
    if not location or location[0].strip().upper() != "LOCATION" or len(location) < 9:
        raise TimeSeriesError(p, 1, "expected a LOCATION header line with the time zone in field 9")
    try:
        offset_h = float(location[8])
    except ValueError:
        raise TimeSeriesError(
            p, 1, f"LOCATION field 9 (time zone, hours) is not a number: {location[8]!r}"
        ) from None
    if not -14.0 <= offset_h <= 14.0:
        raise TimeSeriesError(p, 1, f"LOCATION time zone {offset_h} h is outside [-14, 14]")
    periods = rows[7]
    if (
        periods
        and periods[0].strip().upper() == "DATA PERIODS"
        and len(periods) > 2
        and periods[2].strip() not in ("1",)
    ):
        raise TimeSeriesError(p, 8, f"only hourly EPW files are supported (records per hour {periods[2]!r})")

    body = rows[_EPW_HEADER_LINES:]
    lines = np.arange(_EPW_HEADER_LINES + 1, _EPW_HEADER_LINES + 1 + len(body), dtype=np.int64)
    keep_rows = [(r, ln) for r, ln in zip(body, lines, strict=True) if r and any(s.strip() for s in r)]
    body = [r for r, _ in keep_rows]
    lines = np.asarray([ln for _, ln in keep_rows], dtype=np.int64)
    for r, ln in zip(body, lines, strict=True):
        if len(r) <= _EPW_RH:
            raise TimeSeriesError(p, int(ln), f"expected at least {_EPW_RH + 1} fields, found {len(r)}")

    def col(k: int, name: str, missing: Sequence[float] = ()) -> npt.NDArray[np.float64]:
        return _parse_numbers(p, [r[k].strip() for r in body], lines, name, missing)

    month, day, hour = col(_EPW_MONTH, "month"), col(_EPW_DAY, "day"), col(_EPW_HOUR, "hour")
    temp = col(_EPW_DRY_BULB, "dry bulb temperature", (99.9,))
    rh = col(_EPW_RH, "relative humidity", (999.0,))
    dew = col(_EPW_DEW_POINT, "dew point temperature", (99.9,))
    _check_humidity(p, dew, lines, "dew point temperature", "dew_point_c")
    for arr, k, name, lo, hi in (
        (month, _EPW_MONTH, "month", 1, 12),
        (day, _EPW_DAY, "day", 1, 31),
        (hour, _EPW_HOUR, "hour", 1, 24),
    ):
        bad = np.isnan(arr) | (arr < lo) | (arr > hi) | (arr != np.floor(arr))
        if bad.any():
            i = int(np.argmax(bad))
            raise TimeSeriesError(
                p, int(lines[i]), f"{name} must be an integer in {lo}-{hi}, found {body[i][k]!r}"
            )

    leap = pd.Timestamp(year=year, month=1, day=1).is_leap_year
    feb29 = (month == 2) & (day == 29)
    notes: list[str] = []
    keep = ~feb29 if not leap else np.ones(len(body), dtype=bool)
    if feb29.any() and not leap:
        notes.append(f"dropped {int(feb29.sum())} Feb 29 row(s): {year} is not a leap year")
    month, day, hour, temp, rh, dew, lines = (a[keep] for a in (month, day, hour, temp, rh, dew, lines))
    stamp = pd.DataFrame({"year": year, "month": month.astype(int), "day": day.astype(int)})
    dates = pd.to_datetime(stamp, errors="coerce")
    if dates.isna().any():
        i = int(np.argmax(dates.isna().to_numpy()))
        raise TimeSeriesError(p, int(lines[i]), f"no such date {int(month[i])}/{int(day[i])} in {year}")
    local = pd.DatetimeIndex(dates) + pd.to_timedelta(hour - 1, unit="h")
    _check_order(p, local, lines)
    frame = pd.DataFrame(
        {"temperature_c": temp, "relative_humidity_pct": rh, "dew_point_c": dew, "line": lines}, index=local
    )
    if leap and not feb29.any():
        feb28 = frame[(local.month == 2) & (local.day == 28)].copy()
        if len(feb28):
            feb28.index = feb28.index + pd.Timedelta(days=1)
            frame = pd.concat([frame, feb28]).sort_index(kind="stable")
            notes.append(f"Feb 29 {year} copied from Feb 28")
    lines = frame.pop("line").to_numpy(dtype=np.int64)
    year_local = pd.date_range(
        pd.Timestamp(year=year, month=1, day=1), periods=8784 if leap else 8760, freq="h"
    )
    if frame.index[0] != year_local[0] or frame.index[-1] != year_local[-1]:
        raise TimeSeriesError(
            p,
            int(lines[0]) if frame.index[0] != year_local[0] else int(lines[-1]),
            f"expected a full year of hourly rows from 1/1 hour 1 to 12/31 hour 24, got "
            f"{frame.index[0]} to {frame.index[-1]} (local)",
        )
    frame = _fill_gaps(p, frame, lines, max_gap_hours, gaps=gaps)

    # Wrap: UTC hour k of the year is local position k + offset (cyclic; linear between hours
    # for fractional offsets such as +5.5).
    n = len(frame)
    pos = (np.arange(n, dtype=np.float64) + offset_h) % n
    below = np.floor(pos).astype(np.int64)
    frac = pos - below
    above = (below + 1) % n
    values = frame.to_numpy()
    wrapped = values[below] * (1.0 - frac)[:, None] + values[above] * frac[:, None]
    index = pd.date_range(
        pd.Timestamp(year=year, month=1, day=1, tz="UTC"), periods=n, freq="h", name="time_utc"
    )
    out = pd.DataFrame(wrapped, index=index, columns=list(EPW_COLUMNS), dtype=np.float64)
    out.attrs.update(frame.attrs)
    out.attrs.update(
        {
            "unit": {"temperature_c": "degC", "relative_humidity_pct": "%", "dew_point_c": "degC"},
            "humidity": ["relative_humidity_pct", "dew_point_c"],
            "utc_offset_hours": offset_h,
            "location": location[1].strip(),
            "notes": notes,
        }
    )
    return out


# --------------------------------------------------------------------------- alignment


def align_hourly(
    data: FrameOrSeries,
    start: str | pd.Timestamp,
    periods: int,
    *,
    wrap: bool = True,
) -> FrameOrSeries:
    """Put hourly data onto the simulation window ``[start, start + periods h)`` (UTC).

    Hours present in ``data`` are taken as they are. Other hours, when ``wrap`` is
    true, take the value at the same UTC month/day/hour in the latest year of ``data``
    that has it: a 2023 weather year can drive a 2025 simulation or a window crossing
    New Year, and a local-time year (e.g. Melbourne, starting 13:00 UTC on 31 Dec of
    the previous year) wraps onto itself. 29 February maps to 28 February in a year
    without it. Weekday patterns are not preserved. With ``wrap=False``, or when no year
    has that calendar hour, it is an error.

    A naive ``start`` is taken as UTC. ``attrs["aligned"]`` records how many hours were
    wrapped.
    """
    if periods < 0:
        raise ValueError("periods must be >= 0")
    if not isinstance(data.index, pd.DatetimeIndex) or data.index.tz is None:
        raise ValueError("data needs a tz-aware DatetimeIndex (use the loaders in this module)")
    src = data.copy()
    src.index = pd.DatetimeIndex(src.index).tz_convert("UTC").as_unit("ns")
    if not src.index.is_unique or not src.index.is_monotonic_increasing:
        raise ValueError("data index must be strictly increasing")
    t0 = pd.Timestamp(start)
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    if t0 != t0.floor("h"):
        raise ValueError(f"start {t0} is not on a whole hour")
    target = pd.date_range(t0, periods=periods, freq="h", name="time_utc").as_unit("ns")
    present = np.asarray(target.isin(src.index), dtype=bool)
    source_ns = np.where(present, target.asi8, np.iinfo(np.int64).min)
    if not present.all():
        if not wrap:
            first = target[~present][0]
            raise ValueError(
                f"hour {first} is outside the data ({src.index[0]} to {src.index[-1]}) and wrap=False"
            )
        month = target.month.to_numpy()
        day = target.day.to_numpy()
        hour = target.hour.to_numpy()
        for year in sorted(set(src.index.year), reverse=True):
            need = ~present
            if not need.any():
                break
            leap = pd.Timestamp(year=int(year), month=1, day=1).is_leap_year
            d = day[need] if leap else np.where((month[need] == 2) & (day[need] == 29), 28, day[need])
            cand = pd.to_datetime(
                pd.DataFrame({"year": int(year), "month": month[need], "day": d, "hour": hour[need]})
            )
            cand_idx = pd.DatetimeIndex(cand).tz_localize("UTC").as_unit("ns")
            ok = np.asarray(cand_idx.isin(src.index), dtype=bool)
            pos = np.flatnonzero(need)[ok]
            source_ns[pos] = cand_idx.asi8[ok]
            present[pos] = True
        if not present.all():
            first = target[~present][0]
            raise ValueError(f"no year of the data has the calendar hour of {first} (UTC) to wrap onto")
    out = src.reindex(pd.DatetimeIndex(pd.to_datetime(source_ns, unit="ns", utc=True)))
    out.index = target
    out.attrs = dict(data.attrs)
    wrapped = int(np.sum(source_ns != target.asi8))
    out.attrs["aligned"] = {"start": str(t0), "periods": periods, "wrapped_hours": wrapped}
    return out
