"""Real data as users download it: Open-Meteo historical-weather API responses (JSON and CSV exactly as
returned), EIA-930 hourly exports with an unnamed index column and gaps, the gap policy as a scenario
setting, and sites taking the nearest weather series."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from microdc.model import load_scenario
from microdc.model.errors import ScenarioError
from microdc.model.series import ScenarioSeries
from microdc.model.timeseries import (
    TimeSeriesError,
    TimeSeriesGapWarning,
    load_eia_csv,
    load_openmeteo_api_csv,
    load_openmeteo_api_json,
)

DATA = Path(__file__).parents[1] / "data" / "timeseries"
TINY = Path(__file__).parents[1] / "data" / "tiny"


@pytest.mark.parametrize("name", ["openmeteo_api.json", "openmeteo_api.csv"])
def test_openmeteo_api_response_as_returned(name: str) -> None:
    loader = load_openmeteo_api_json if name.endswith(".json") else load_openmeteo_api_csv
    with pytest.warns(TimeSeriesGapWarning, match="interpolated 1 missing hour"):
        f = loader(DATA / name)
    # local Berlin times at utc_offset_seconds 3600: 00:00 local is 23:00 UTC the day before
    assert f.index[0] == pd.Timestamp("2022-12-31 23:00", tz="UTC") and len(f) == 6
    assert list(f.columns) == ["temperature_c", "relative_humidity_pct", "dew_point_c"]
    np.testing.assert_allclose(f["temperature_c"], [13.4, 13.0, 12.6, 12.2, 12.0, 11.6])  # null: interpolated
    assert f.attrs["filled_hours"] == 1 and f.attrs["utc_offset_seconds"] == 3600


def test_openmeteo_api_gap_rejected_by_policy() -> None:
    with pytest.raises(TimeSeriesError, match=r"gap of 1 missing hour.*gaps: reject"):
        load_openmeteo_api_csv(DATA / "openmeteo_api.csv", gaps="reject")
    with pytest.raises(TimeSeriesError, match=r"hourly entry .*gaps: reject"):
        load_openmeteo_api_json(DATA / "openmeteo_api.json", gaps="reject")


def test_openmeteo_api_offset_disagreeing_with_the_scenario_is_named() -> None:
    with pytest.raises(TimeSeriesError, match=r"utc_offset_seconds 3600 \(1 h\).*utc_offset_hours 10"):
        load_openmeteo_api_json(DATA / "openmeteo_api.json", utc_offset_hours=10.0)


def test_openmeteo_api_json_bad_input_names_the_field(tmp_path: Path) -> None:
    doc = json.loads((DATA / "openmeteo_api.json").read_text())
    bad = tmp_path / "bad.json"
    doc["hourly"]["temperature_2m"][4] = "warm"
    bad.write_text(json.dumps(doc))
    with pytest.raises(TimeSeriesError, match=r"hourly\.temperature_2m\[4\]: expected a number or null"):
        load_openmeteo_api_json(bad)
    doc["hourly"]["temperature_2m"] = [1.0]
    bad.write_text(json.dumps(doc))
    with pytest.raises(TimeSeriesError, match=r"hourly\.temperature_2m: expected 6 values"):
        load_openmeteo_api_json(bad)
    bad.write_text(json.dumps({"error": True, "reason": "Parameter 'start_date' is out of range"}))
    with pytest.raises(TimeSeriesError, match="error response: \"Parameter 'start_date'"):
        load_openmeteo_api_json(bad)
    bad.write_text('{"hourly": ')
    with pytest.raises(TimeSeriesError, match="not valid JSON"):
        load_openmeteo_api_json(bad)


def test_openmeteo_api_csv_bad_cell_names_its_line(tmp_path: Path) -> None:
    text = (DATA / "openmeteo_api.csv").read_text().replace("12.2,85", "12.2x,85")
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(TimeSeriesError, match=r"line 8: column 'temperature_2m \(°C\)': expected a number"):
        load_openmeteo_api_csv(bad)


def test_eia930_unnamed_index_and_gaps_fill_or_reject() -> None:
    path = DATA / "eia930_unnamed_index_gaps.csv"
    with pytest.warns(TimeSeriesGapWarning, match="interpolated 3 missing hour"):
        s = load_eia_csv(path)
    assert len(s) == 7 and s.attrs["filled_hours"] == 3
    np.testing.assert_allclose(s.iloc[3:6], [246.375, 242.75, 239.125])  # linear between 250.0 and 235.5
    # the line named is where the data resumes after the gap
    with pytest.raises(TimeSeriesError, match=r"gaps.csv, line 7: gap of 3 missing hour"):
        load_eia_csv(path, gaps="reject")
    with pytest.raises(TimeSeriesError, match=r"at most 2 may be interpolated"):
        load_eia_csv(path, max_gap_hours=2)


def _scenario(tmp_path: Path, weather: dict[str, object], carbon: dict[str, object] | None = None) -> Path:
    for f in TINY.iterdir():
        shutil.copy(f, tmp_path / f.name)
    doc = yaml.safe_load((TINY / "scenario.yaml").read_text())
    doc["timeseries"]["weather"] = weather
    if carbon is not None:
        doc["timeseries"]["carbon"] = carbon
    (tmp_path / "scenario.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True))
    return tmp_path / "scenario.yaml"


def test_gap_policy_is_a_scenario_setting_and_never_a_crash(tmp_path: Path) -> None:
    shutil.copy(DATA / "eia930_unnamed_index_gaps.csv", tmp_path / "eia.csv")
    carbon = {"grid": {"format": "eia", "path": "eia.csv", "gaps": "reject"}}
    s = load_scenario(_scenario(tmp_path, {"mild": {"format": "constant", "constant_c": 15}}, carbon))
    with pytest.raises(ScenarioError) as err:
        ScenarioSeries(s).mean_intensity("grid")
    (problem,) = err.value.problems
    assert problem.file.endswith("eia.csv") and problem.line == 7
    assert problem.field == "timeseries.carbon.grid"
    assert "gap of 3 missing hour(s)" in problem.message


def test_sites_take_the_nearest_weather_series(tmp_path: Path) -> None:
    """tiny's sites (Berlin, Munich, Paris) name the climate 'mild' in their defaults; without it each
    takes the nearest series that gives coordinates."""
    doc_sites = (TINY / "scenario.yaml").read_text()
    assert "climate: mild" in doc_sites
    weather = {
        "north": {"format": "constant", "constant_c": 8, "lat": 53.6, "lon": 10.0},  # Hamburg
        "south": {"format": "constant", "constant_c": 14, "lat": 48.1, "lon": 11.6},  # Munich
        "west": {"format": "constant", "constant_c": 12, "lat": 48.9, "lon": 2.4},  # Paris
    }
    path = _scenario(tmp_path, weather)
    text = path.read_text()
    doc = yaml.safe_load(text)
    doc["sites"]["defaults"].pop("climate")
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    s = load_scenario(path)
    assert {x.id: x.climate for x in s.sites} == {"berlin": "north", "munich": "south", "paris": "west"}
    # one site may still name its own climate
    doc["sites"]["defaults"]["climate"] = "nearest"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    assert load_scenario(path).sites[0].climate == "north"
    # without coordinates on any series, a site without a climate is named
    for w in weather.values():
        w.pop("lat"), w.pop("lon")
    doc["timeseries"]["weather"] = weather
    doc["sites"]["defaults"].pop("climate")
    path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    with pytest.raises(ScenarioError, match="climate"):
        load_scenario(path)


def test_weather_file_from_the_api_drives_a_scenario(tmp_path: Path) -> None:
    """A whole year as the API returns it (JSON), read through a scenario with format openmeteo."""
    times = pd.date_range("2023-01-01", periods=8760, freq="h")
    temp = (10 + 8 * np.sin(np.arange(8760) * 2 * np.pi / 8760)).round(1).tolist()
    doc = {
        "latitude": 52.52,
        "longitude": 13.42,
        "utc_offset_seconds": 0,
        "timezone": "GMT",
        "hourly": {
            "time": [t.strftime("%Y-%m-%dT%H:%M") for t in times],
            "temperature_2m": temp,
            "relative_humidity_2m": [70] * 8760,
        },
    }
    (tmp_path / "berlin.json").write_text(json.dumps(doc))
    path = _scenario(tmp_path, {"mild": {"format": "openmeteo", "path": "berlin.json"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        series = ScenarioSeries(load_scenario(path))
        got = series.outdoor_c("mild", pd.DatetimeIndex([pd.Timestamp("2023-01-01 06:00", tz="UTC")]))
    assert float(got[0]) == temp[6]
    assert series.has_humidity("mild")
