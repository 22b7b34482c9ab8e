"""The real hourly time series a scenario names (outdoor weather per climate, grid carbon per zone),
loaded once and put onto any simulation window.

Sub-hourly steps take the value of their hour (weather and grid intensity are published hourly).
A year of data drives any window: the hourly series repeats cyclically from its first hour (so a
2023 year drives 2024, and a window crossing New Year); the data must be complete and hourly, which
the loaders guarantee (they fill short gaps and refuse long ones), and cover at least a whole year
(a shorter, e.g. truncated, file is refused: repeating a few weeks would pass January off as July).

`read_everything` reads every series and load profile a scenario names, exactly as `plan` and
`simulate` do, so `microdc validate` rejects what they would.

Humidity: a weather file's dew point (or its relative humidity, converted) goes with its
temperature to the cooling physics, so that an air-side economizer keeps to its ASHRAE envelope.
A file without humidity (and a constant climate) falls back to dry-bulb-only economizer limits;
for a file that is announced with a :class:`HumidityMissingWarning` naming it, which `microdc
validate` prints.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
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
    dew_point_of,
    is_openmeteo_api_file,
    load_eia_csv,
    load_electricitymaps_csv,
    load_epw,
    load_openmeteo_api_csv,
    load_openmeteo_api_json,
    load_openmeteo_csv,
)

FloatArray = npt.NDArray[np.float64]


class HumidityMissingWarning(UserWarning):
    """A weather file has no humidity column: the economizer physics uses the dry bulb only."""


@dataclass(frozen=True)
class _Weather:
    """One climate: dry bulb and dew point (None: no humidity known), hourly series or constants."""

    temperature: pd.Series | float
    dew_point: pd.Series | None


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

    def _load_weather(self, climate: str) -> _Weather:
        src = self.s.timeseries.weather[climate]
        if src.format == "constant":
            return _Weather(float(src.constant_c or 0.0), None)
        assert src.path is not None
        path = self.s.resolve(src.path)
        where = f"timeseries.weather.{climate}"
        try:
            gaps, longest, offset = src.gaps, src.max_gap_hours, src.utc_offset_hours
            if src.format == "openmeteo" and path.suffix.lower() == ".json":
                frame = load_openmeteo_api_json(
                    path, utc_offset_hours=offset, gaps=gaps, max_gap_hours=longest
                )
            elif src.format == "openmeteo" and is_openmeteo_api_file(path):
                frame = load_openmeteo_api_csv(
                    path, utc_offset_hours=offset, gaps=gaps, max_gap_hours=longest
                )
            elif src.format == "openmeteo":
                frame = load_openmeteo_csv(
                    path, src.timezone, utc_offset_hours=offset, gaps=gaps, max_gap_hours=longest
                )
            else:
                frame = load_epw(path, self.s.start.year, gaps=gaps, max_gap_hours=longest)
            dew = dew_point_of(frame)
        except (TimeSeriesError, ValueError, OSError) as exc:
            raise self._wrap(exc, path, where) from None
        temperature = _whole_year(frame["temperature_c"], path, where)
        if dew is None:
            warnings.warn(
                f"{path}: no humidity column (relative_humidity_2m / relative_humidity_pct or "
                f"dew_point_2m / dew_point_c); climate {climate!r} falls back to dry-bulb-only "
                "economizer limits, which overstate free cooling in humid weather",
                HumidityMissingWarning,
                stacklevel=2,
            )
            return _Weather(temperature, None)
        return _Weather(temperature, pd.Series(dew, index=temperature.index, name="dew_point_c"))

    def _load_carbon(self, zone: str) -> pd.Series | float:
        src = self.s.timeseries.carbon[zone]
        if src.format == "constant":
            return float(src.constant_gco2_per_kwh or 0.0)
        assert src.path is not None
        path = self.s.resolve(src.path)
        try:
            if src.format == "electricitymaps":
                data = load_electricitymaps_csv(
                    path, basis=src.basis, gaps=src.gaps, max_gap_hours=src.max_gap_hours
                )
            else:
                data = load_eia_csv(path, gaps=src.gaps, max_gap_hours=src.max_gap_hours)
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
        return self._on(self._weather(climate).temperature, times_utc)

    def dew_point_c(self, climate: str, times_utc: pd.DatetimeIndex) -> FloatArray | None:
        """Outdoor dew point, °C, at each UTC time; None when the climate has no humidity data."""
        dew = self._weather(climate).dew_point
        return None if dew is None else self._on(dew, times_utc)

    def has_humidity(self, climate: str) -> bool:
        """Whether the climate's weather carries humidity (else: dry-bulb-only economizer limits)."""
        return self._weather(climate).dew_point is not None

    def intensity(self, zone: str, times_utc: pd.DatetimeIndex) -> FloatArray:
        """Grid carbon intensity, gCO2eq/kWh, at each UTC time."""
        return self._on(self._carbon(zone), times_utc)

    def _year(self) -> pd.DatetimeIndex:
        return pd.date_range(pd.Timestamp(self.s.start, tz="UTC"), periods=8760, freq="h")

    def year_outdoor_c(self, climate: str) -> FloatArray:
        """A full year of hourly temperatures starting at the scenario's start (for annual PUE)."""
        return self.outdoor_c(climate, self._year())

    def year_dew_point_c(self, climate: str) -> FloatArray | None:
        """The same year's hourly dew points, °C; None when the climate has no humidity data."""
        return self.dew_point_c(climate, self._year())

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
