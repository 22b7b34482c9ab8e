"""The real hourly time series a scenario names (outdoor weather per climate, grid carbon per zone),
loaded once and put onto any simulation window.

Sub-hourly steps take the value of their hour (weather and grid intensity are published hourly).
A year of data drives any window: the hourly series repeats cyclically from its first hour (so a
2023 year drives 2024, and a window crossing New Year); the data must be complete and hourly, which
the loaders guarantee (they fill short gaps and refuse long ones), and cover at least a whole year
(a shorter, e.g. truncated, file is refused: repeating a few weeks would pass January off as July).

`read_everything` reads every series and load profile a scenario names, exactly as `plan` and
`simulate` do, so `microdc validate` rejects what they would.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from microdc.model.errors import Problem, ScenarioError
from microdc.model.profiles import profile_peak
from microdc.model.scenario import Scenario
from microdc.model.timeseries import (
    TimeSeriesError,
    load_eia_csv,
    load_electricitymaps_csv,
    load_epw,
    load_openmeteo_csv,
)

FloatArray = npt.NDArray[np.float64]

#: The shortest series a scenario may name: one (non-leap) year of hourly values.
MIN_HOURS = 8760


def _last_line(path: Path) -> int | None:
    """1-based number of the last non-blank line of a text file (where a truncated file stops)."""
    last = None
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as fh:
            for k, line in enumerate(fh, 1):
                if line.strip():
                    last = k
    except OSError:
        return None
    return last


def _whole_year(data: pd.Series, path: Path, where: str) -> pd.Series:
    n = len(data)
    if n >= MIN_HOURS:
        return data
    first, last = data.index[0], data.index[-1]
    raise ScenarioError(
        [
            Problem(
                str(path),
                _last_line(path),
                where,
                f"the series ends after {n} hour(s) ({first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC); "
                f"a scenario's series must cover a whole year, at least {MIN_HOURS} hourly values, since "
                "it repeats over any simulated window (is the file truncated?)",
            )
        ]
    )


class ScenarioSeries:
    """Weather and carbon of one scenario; each file is read once."""

    def __init__(self, scenario: Scenario):
        self.s = scenario
        self._weather = cache(self._load_weather)
        self._carbon = cache(self._load_carbon)

    def _wrap(self, exc: Exception, path: Path, where: str) -> ScenarioError:
        if isinstance(exc, TimeSeriesError):
            return ScenarioError([Problem(str(exc.path), exc.line, where, exc.message)])
        if isinstance(exc, OSError):
            return ScenarioError([Problem(str(path), None, where, f"cannot read: {exc.strerror or exc}")])
        return ScenarioError([Problem(str(path), None, where, str(exc))])

    def _load_weather(self, climate: str) -> pd.Series | float:
        src = self.s.timeseries.weather[climate]
        if src.format == "constant":
            return float(src.constant_c or 0.0)
        assert src.path is not None
        path = self.s.resolve(src.path)
        try:
            if src.format == "openmeteo":
                frame = load_openmeteo_csv(path, src.timezone, utc_offset_hours=src.utc_offset_hours)
            else:
                frame = load_epw(path, self.s.start.year)
        except (TimeSeriesError, ValueError, OSError) as exc:
            raise self._wrap(exc, path, f"timeseries.weather.{climate}") from None
        return _whole_year(frame["temperature_c"], path, f"timeseries.weather.{climate}")

    def _load_carbon(self, zone: str) -> pd.Series | float:
        src = self.s.timeseries.carbon[zone]
        if src.format == "constant":
            return float(src.constant_gco2_per_kwh or 0.0)
        assert src.path is not None
        path = self.s.resolve(src.path)
        try:
            if src.format == "electricitymaps":
                data = load_electricitymaps_csv(path, basis=src.basis)
            else:
                data = load_eia_csv(path)
        except (TimeSeriesError, ValueError, OSError) as exc:
            raise self._wrap(exc, path, f"timeseries.carbon.{zone}") from None
        return _whole_year(data, path, f"timeseries.carbon.{zone}")

    @staticmethod
    def _on(data: pd.Series | float, times_utc: pd.DatetimeIndex) -> FloatArray:
        """Values at each time; the series repeats cyclically outside its span (a year drives any year)."""
        if isinstance(data, float):
            return np.full(len(times_utc), data)
        values = data.to_numpy(dtype=np.float64)
        first = data.index[0].tz_convert("UTC")
        hours = (times_utc.tz_convert("UTC").floor("h") - first) // pd.Timedelta(hours=1)
        return np.asarray(values[np.mod(np.asarray(hours, dtype=np.int64), len(values))], dtype=np.float64)

    def outdoor_c(self, climate: str, times_utc: pd.DatetimeIndex) -> FloatArray:
        """Outdoor dry-bulb temperature, °C, at each UTC time."""
        return self._on(self._weather(climate), times_utc)

    def intensity(self, zone: str, times_utc: pd.DatetimeIndex) -> FloatArray:
        """Grid carbon intensity, gCO2eq/kWh, at each UTC time."""
        return self._on(self._carbon(zone), times_utc)

    def year_outdoor_c(self, climate: str) -> FloatArray:
        """A full year of hourly temperatures starting at the scenario's start (for annual PUE)."""
        times = pd.date_range(pd.Timestamp(self.s.start, tz="UTC"), periods=8760, freq="h")
        return self.outdoor_c(climate, times)

    def mean_intensity(self, zone: str | None) -> float:
        if zone is None:
            return 0.0
        data = self._carbon(zone)
        return data if isinstance(data, float) else float(data.mean())


def read_everything(s: Scenario) -> list[Problem]:
    """Read every weather and carbon series and every load profile the scenario declares, the way
    `plan` and `simulate` read them; return every problem found (empty: they will load)."""
    problems: list[Problem] = []
    series = ScenarioSeries(s)
    for climate in s.timeseries.weather:
        try:
            series._weather(climate)
        except ScenarioError as exc:
            problems.extend(exc.problems)
    for zone in s.timeseries.carbon:
        try:
            series._carbon(zone)
        except ScenarioError as exc:
            problems.extend(exc.problems)
    for profile in s.profiles.values():
        try:
            profile_peak(profile, s.base_dir)
        except ScenarioError as exc:
            problems.extend(exc.problems)
    return problems
