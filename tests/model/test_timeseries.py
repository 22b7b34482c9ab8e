from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from microdc.model.timeseries import (
    TimeSeriesError,
    TimeSeriesGapWarning,
    align_hourly,
    dew_point_of,
    load_eia_csv,
    load_electricitymaps_csv,
    load_epw,
    load_openmeteo_csv,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "timeseries"
MEL = "Australia/Melbourne"


def _utc(*stamps: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(list(stamps)).tz_localize("UTC")


# ------------------------------------------------------------------ Electricity Maps


def test_electricitymaps_lca_default_and_direct() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = load_electricitymaps_csv(DATA / "em_ok.csv")
    assert s.dtype == np.float64 and s.name == "carbon_intensity_g_per_kwh"
    assert isinstance(s.index, pd.DatetimeIndex) and str(s.index.tz) == "UTC"
    assert s.index.equals(pd.date_range("2023-01-01", periods=4, freq="h", tz="UTC"))
    assert s.iloc[0] == pytest.approx(387.78)
    assert s.attrs["unit"] == "gCO2eq/kWh" and s.attrs["basis"] == "lca" and s.attrs["zone"] == "AU-VIC"
    assert s.attrs["filled_hours"] == 0
    direct = load_electricitymaps_csv(DATA / "em_ok.csv", basis="direct")
    assert direct.iloc[1] == pytest.approx(332.08)


def test_short_gap_interpolated_and_reported() -> None:
    with pytest.warns(TimeSeriesGapWarning, match="interpolated 1 missing hour"):
        s = load_electricitymaps_csv(DATA / "em_gap_short.csv")
    assert len(s) == 4 and s.attrs["filled_hours"] == 1
    assert s.loc["2023-01-01 02:00"] == pytest.approx((379.35 + 350.0) / 2)


def test_long_gap_refused_unless_allowed() -> None:
    with pytest.raises(TimeSeriesError, match=r"em_gap_long\.csv, line 3: gap of 5 missing hour"):
        load_electricitymaps_csv(DATA / "em_gap_long.csv")
    with pytest.warns(TimeSeriesGapWarning):
        s = load_electricitymaps_csv(DATA / "em_gap_long.csv", max_gap_hours=5)
    assert len(s) == 7 and s.attrs["filled_hours"] == 5


def test_bad_number_names_file_and_line() -> None:
    with pytest.raises(TimeSeriesError) as err:
        load_electricitymaps_csv(DATA / "em_bad_number.csv")
    assert err.value.line == 4
    assert "em_bad_number.csv, line 4" in str(err.value)
    assert "expected a number" in str(err.value) and "36O.00" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_duplicate_timestamp() -> None:
    with pytest.raises(TimeSeriesError, match=r"line 4: duplicate timestamp .* \(also on line 3\)"):
        load_electricitymaps_csv(DATA / "em_duplicate.csv")


def test_missing_column() -> None:
    with pytest.raises(TimeSeriesError, match=r"line 1: missing column.*LCA"):
        load_electricitymaps_csv(DATA / "em_missing_column.csv")
    # the direct column is there
    s = load_electricitymaps_csv(DATA / "em_missing_column.csv", basis="direct")
    assert len(s) == 1


def test_missing_file_and_short_row(tmp_path: Path) -> None:
    with pytest.raises(TimeSeriesError, match="file not found"):
        load_electricitymaps_csv(tmp_path / "nope.csv")
    bad = tmp_path / "short.csv"
    bad.write_text(
        (DATA / "em_ok.csv").read_text(encoding="utf-8") + "2023-01-01 04:00:00,Australia\n", encoding="utf-8"
    )
    with pytest.raises(TimeSeriesError, match=r"short\.csv, line 6: expected at least 6"):
        load_electricitymaps_csv(bad)


def test_non_monotonic(tmp_path: Path) -> None:
    rows = (DATA / "em_ok.csv").read_text(encoding="utf-8").splitlines()
    p = tmp_path / "swap.csv"
    p.write_text("\n".join([rows[0], rows[1], rows[3], rows[2], rows[4]]) + "\n", encoding="utf-8")
    with pytest.raises(TimeSeriesError, match=r"line 4: timestamps must increase"):
        load_electricitymaps_csv(p)


def test_bad_timestamp(tmp_path: Path) -> None:
    rows = (DATA / "em_ok.csv").read_text(encoding="utf-8").splitlines()
    p = tmp_path / "ts.csv"
    p.write_text(
        "\n".join([rows[0], rows[1], rows[2].replace("2023-01-01 01:00:00", "2023-13-01 01:00")]) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(TimeSeriesError, match=r"line 3: expected a timestamp like '2023-01-01 00:00:00'"):
        load_electricitymaps_csv(p)


# ------------------------------------------------------------------ EIA


def test_eia_avg_ci_with_empty_row_filled() -> None:
    with pytest.warns(TimeSeriesGapWarning):
        s = load_eia_csv(DATA / "eia_ok.csv")
    assert s.index.equals(pd.date_range("2022-01-01", periods=4, freq="h", tz="UTC"))
    assert s.iloc[0] == pytest.approx(222.29592090536002)
    assert s.iloc[2] == pytest.approx((260.9175830341113 + 270.0) / 2)
    assert s.attrs["filled_hours"] == 1


def test_eia_duplicate() -> None:
    with pytest.raises(TimeSeriesError, match=r"eia_duplicate\.csv, line 3: duplicate timestamp"):
        load_eia_csv(DATA / "eia_duplicate.csv")


# ------------------------------------------------------------------ Open-Meteo


def test_openmeteo_converts_local_summer_time() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_openmeteo_csv(DATA / "openmeteo_ok.csv", MEL)
    assert list(df.columns) == ["temperature_c", "relative_humidity_pct"]
    # 1 Jan is AEDT (UTC+11): local 00:00 = 13:00 UTC the day before
    assert df.index[0] == pd.Timestamp("2022-12-31 13:00", tz="UTC")
    assert df["temperature_c"].iloc[0] == 20.0 and df["relative_humidity_pct"].iloc[1] == 95.0
    assert (df.dtypes == np.float64).all()


def test_openmeteo_dst_end_repeated_hour() -> None:
    # 2 April 2023: 03:00 AEDT -> 02:00 AEST, so 02:00 occurs twice
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_openmeteo_csv(DATA / "openmeteo_dst_end_repeated.csv", MEL)
    assert df.index.equals(
        _utc("2023-04-01 14:00", "2023-04-01 15:00", "2023-04-01 16:00", "2023-04-01 17:00")
    )
    np.testing.assert_allclose(df["temperature_c"], [10.8, 10.0, 9.6, 8.6])


def test_openmeteo_dst_end_single_hour_is_dst_instant() -> None:
    with pytest.warns(TimeSeriesGapWarning, match="interpolated 1"):
        df = load_openmeteo_csv(DATA / "openmeteo_dst_end_single.csv", MEL)
    assert df.index.equals(
        _utc("2023-04-01 14:00", "2023-04-01 15:00", "2023-04-01 16:00", "2023-04-01 17:00")
    )
    np.testing.assert_allclose(df["temperature_c"], [10.8, 9.8, 9.2, 8.6])
    assert df.attrs["filled_hours"] == 1


def test_openmeteo_dst_start_nonexistent_hour_dropped() -> None:
    # 1 October 2023: 02:00 AEST jumps to 03:00 AEDT; a 02:00 row cannot be wall-clock time
    with pytest.warns(TimeSeriesGapWarning, match="dropped 1 row"):
        df = load_openmeteo_csv(DATA / "openmeteo_dst_start.csv", MEL)
    assert df.index.equals(_utc("2023-09-30 14:00", "2023-09-30 15:00", "2023-09-30 16:00"))
    np.testing.assert_allclose(df["temperature_c"], [19.9, 19.6, 20.7])
    assert df.attrs["dropped_rows"] == 1 and df.attrs["filled_hours"] == 0


def test_openmeteo_fixed_offset() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_openmeteo_csv(DATA / "openmeteo_dst_start.csv", MEL, utc_offset_hours=10.0)
    assert df.index.equals(pd.date_range("2023-09-30 14:00", periods=4, freq="h", tz="UTC"))
    np.testing.assert_allclose(df["temperature_c"], [19.9, 19.6, 19.7, 20.7])


def test_openmeteo_malformed() -> None:
    with pytest.raises(TimeSeriesError, match=r"openmeteo_bad_number\.csv, line 4: column 'temperature_c'"):
        load_openmeteo_csv(DATA / "openmeteo_bad_number.csv", MEL)
    with pytest.raises(TimeSeriesError, match=r"line 4: duplicate timestamp"):
        load_openmeteo_csv(DATA / "openmeteo_dst_end_repeated.csv", MEL, utc_offset_hours=10.0)


def test_openmeteo_without_humidity_loads_dry_bulb_only(tmp_path: Path) -> None:
    # Humidity is optional (the physics then falls back to dry-bulb limits, and says so); the
    # temperature is not.
    df = load_openmeteo_csv(DATA / "openmeteo_missing_column.csv", MEL)
    assert list(df.columns) == ["temperature_c"] and df.attrs["humidity"] == []
    assert dew_point_of(df) is None
    p = tmp_path / "no_temperature.csv"
    p.write_text("time_local,relative_humidity_pct\n2023-01-01T00:00,80\n")
    with pytest.raises(TimeSeriesError, match=r"no_temperature\.csv, line 1: missing column.*temperature_c"):
        load_openmeteo_csv(p, MEL)


def test_openmeteo_api_humidity_columns(tmp_path: Path) -> None:
    # The API's hourly variable names, with the units its CSV export appends.
    p = tmp_path / "api.csv"
    p.write_text(
        "time_local,temperature_c,relative_humidity_2m (%),dew_point_2m (°C)\n"
        "2023-01-01T00:00,25.0,50,13.9\n2023-01-01T01:00,30.0,80,26.2\n"
    )
    df = load_openmeteo_csv(p, "UTC")
    assert df.attrs["humidity"] == ["relative_humidity_pct", "dew_point_c"]
    np.testing.assert_allclose(df["relative_humidity_pct"], [50.0, 80.0])
    np.testing.assert_allclose(dew_point_of(df), [13.9, 26.2])  # the file's dew point wins over RH
    rh_only = tmp_path / "rh.csv"
    rh_only.write_text("time_local,temperature_c,relative_humidity_2m\n2023-01-01T00:00,25.0,50\n")
    # 25 °C, 50 % → 13.86 °C (ASHRAE psychrometric chart: 13.9 °C)
    np.testing.assert_allclose(dew_point_of(load_openmeteo_csv(rh_only, "UTC")), [13.86], atol=0.01)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("relative_humidity_pct", "120", r"relative humidity in \(0, 100\]"),
        ("relative_humidity_pct", "0", r"relative humidity in \(0, 100\]"),
        ("dew_point_c", "150", r"dew point between -90 and 70"),
    ],
)
def test_openmeteo_humidity_out_of_range_names_line(
    tmp_path: Path, column: str, value: str, expected: str
) -> None:
    p = tmp_path / "bad.csv"
    p.write_text(f"time_local,temperature_c,{column}\n2023-01-01T00:00,20,10\n2023-01-01T01:00,20,{value}\n")
    with pytest.raises(TimeSeriesError, match=rf"bad\.csv, line 3: column '{column}': expected a {expected}"):
        load_openmeteo_csv(p, "UTC")


def test_openmeteo_ambiguous_hour_three_times(tmp_path: Path) -> None:
    rows = (DATA / "openmeteo_dst_end_repeated.csv").read_text().splitlines()
    p = tmp_path / "three.csv"
    p.write_text("\n".join([*rows[:4], rows[3], rows[4]]) + "\n")
    with pytest.raises(TimeSeriesError, match=r"line 5: duplicate timestamp"):
        load_openmeteo_csv(p, MEL)


# ------------------------------------------------------------------ EPW


def _epw_year(tmp_path: Path, *, leap_rows: bool = False, edit: dict[int, str] | None = None) -> Path:
    """A full synthetic EPW year on the real Phoenix header: dry bulb = day-of-year + hour/100."""
    head = (DATA / "phoenix_head.epw").read_text(encoding="latin-1").splitlines()
    header, template = head[:8], head[8].split(",")
    lines = list(header)
    days = pd.date_range("2001-01-01", "2001-12-31", freq="D")
    if leap_rows:
        days = pd.date_range("2000-01-01", "2000-12-31", freq="D")
    for doy, day in enumerate(days, start=1):
        for hour in range(1, 25):
            f = list(template)
            f[0], f[1], f[2], f[3] = "1999", str(day.month), str(day.day), str(hour)
            f[6] = f"{doy + hour / 100:.2f}"
            f[8] = str(hour)
            lines.append(",".join(f))
    for k, text in (edit or {}).items():
        lines[k - 1] = text
    p = tmp_path / "year.epw"
    p.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return p


def test_epw_restamp_and_utc_wrap(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_epw(_epw_year(tmp_path), 2023)
    assert len(df) == 8760
    assert df.index[0] == pd.Timestamp("2023-01-01 00:00", tz="UTC")
    assert df.index[-1] == pd.Timestamp("2023-12-31 23:00", tz="UTC")
    assert df.attrs["utc_offset_hours"] == -7.0
    # Phoenix is UTC-7: UTC 07:00 on 1 Jan is local 00:00, i.e. EPW day 1 hour 1
    assert df["temperature_c"].loc["2023-01-01 07:00"] == pytest.approx(1.01)
    assert df["relative_humidity_pct"].loc["2023-01-01 07:00"] == 1.0
    # field 8, the dew point, is carried too (the Phoenix template row says -6.1 °C)
    assert df["dew_point_c"].loc["2023-01-01 07:00"] == pytest.approx(-6.1)
    np.testing.assert_array_equal(dew_point_of(df), df["dew_point_c"].to_numpy())
    # UTC 00:00 on 1 Jan is local 17:00 on 31 Dec (day 365, hour 18), wrapped from the same file
    assert df["temperature_c"].iloc[0] == pytest.approx(365.18)


def test_epw_leap_target_copies_feb_28(tmp_path: Path) -> None:
    df = load_epw(_epw_year(tmp_path), 2024)
    assert len(df) == 8784
    feb28 = df["temperature_c"].loc["2024-02-28 07:00":"2024-02-29 06:00"].to_numpy()
    feb29 = df["temperature_c"].loc["2024-02-29 07:00":"2024-03-01 06:00"].to_numpy()
    np.testing.assert_array_equal(feb28, feb29)
    assert any("Feb 29" in n for n in df.attrs["notes"])


def test_epw_leap_file_on_common_year_drops_feb_29(tmp_path: Path) -> None:
    df = load_epw(_epw_year(tmp_path, leap_rows=True), 2023)
    assert len(df) == 8760
    assert any("dropped 24 Feb 29" in n for n in df.attrs["notes"])


def test_epw_real_snippet_is_not_a_full_year() -> None:
    with pytest.raises(TimeSeriesError, match=r"phoenix_head\.epw, line 32: expected a full year"):
        load_epw(DATA / "phoenix_head.epw", 2023)


def test_epw_malformed_rows(tmp_path: Path) -> None:
    good = _epw_year(tmp_path).read_text(encoding="latin-1").splitlines()
    row = good[100].split(",")
    row[6] = "hot"
    with pytest.raises(TimeSeriesError, match=r"year\.epw, line 101: column 'dry bulb temperature'"):
        load_epw(_epw_year(tmp_path, edit={101: ",".join(row)}), 2023)
    with pytest.raises(TimeSeriesError, match=r"line 60: expected at least 9 fields"):
        load_epw(_epw_year(tmp_path, edit={60: "1999,1,3,4,0"}), 2023)
    dup = good[50]
    with pytest.raises(TimeSeriesError, match=r"line 52: duplicate timestamp"):
        load_epw(_epw_year(tmp_path, edit={52: dup}), 2023)
    bad_hour = good[70].split(",")
    bad_hour[3] = "25"
    with pytest.raises(TimeSeriesError, match=r"line 71: hour must be an integer in 1-24"):
        load_epw(_epw_year(tmp_path, edit={71: ",".join(bad_hour)}), 2023)
    with pytest.raises(TimeSeriesError, match=r"line 1: expected a LOCATION"):
        load_epw(_epw_year(tmp_path, edit={1: "NOT A LOCATION"}), 2023)


def test_epw_missing_sentinel_is_a_gap(tmp_path: Path) -> None:
    good = _epw_year(tmp_path).read_text(encoding="latin-1").splitlines()
    row = good[200].split(",")
    row[6] = "99.9"
    with pytest.warns(TimeSeriesGapWarning, match="interpolated 1"):
        df = load_epw(_epw_year(tmp_path, edit={201: ",".join(row)}), 2023)
    assert df.attrs["filled_hours"] == 1
    assert not df.isna().any().any()


def test_epw_dew_point_sentinel_is_a_gap_and_range_checked(tmp_path: Path) -> None:
    good = _epw_year(tmp_path).read_text(encoding="latin-1").splitlines()
    row = good[300].split(",")
    row[7] = "99.9"
    with pytest.warns(TimeSeriesGapWarning, match="interpolated 1"):
        df = load_epw(_epw_year(tmp_path, edit={301: ",".join(row)}), 2023)
    assert not df["dew_point_c"].isna().any()
    row[7] = "-99"
    with pytest.raises(
        TimeSeriesError, match=r"line 301: column 'dew point temperature': expected a dew point"
    ):
        load_epw(_epw_year(tmp_path, edit={301: ",".join(row)}), 2023)


# ------------------------------------------------------------------ align_hourly


def _year(year: int = 2023) -> pd.Series:
    idx = pd.date_range(f"{year}-01-01", f"{year}-12-31 23:00", freq="h", tz="UTC")
    return pd.Series(np.arange(len(idx), dtype=np.float64), index=idx, name="x")


def test_align_inside_window_is_a_slice() -> None:
    s = _year()
    a = align_hourly(s, "2023-03-01 05:00", 10)
    assert a.index[0] == pd.Timestamp("2023-03-01 05:00", tz="UTC")
    np.testing.assert_array_equal(a.to_numpy(), s.loc["2023-03-01 05:00":"2023-03-01 14:00"].to_numpy())
    assert a.attrs["aligned"]["wrapped_hours"] == 0


def test_align_wraps_across_new_year_and_into_other_years() -> None:
    s = _year()
    a = align_hourly(s, "2023-12-31 22:00", 4)
    np.testing.assert_array_equal(a.to_numpy(), [8758.0, 8759.0, 0.0, 1.0])
    assert a.attrs["aligned"]["wrapped_hours"] == 2
    b = align_hourly(s, pd.Timestamp("2025-07-01 00:00", tz="UTC"), 3)
    np.testing.assert_array_equal(b.to_numpy(), s.loc["2023-07-01 00:00":"2023-07-01 02:00"].to_numpy())
    # leap day maps to 28 February of the reference year
    c = align_hourly(s, "2024-02-29 00:00", 1)
    assert c.iloc[0] == s.loc["2023-02-28 00:00"]
    with pytest.raises(ValueError, match="wrap=False"):
        align_hourly(s, "2024-01-01", 2, wrap=False)


def test_align_local_year_dataframe_wraps_onto_itself() -> None:
    idx = pd.date_range("2022-12-31 13:00", periods=8760, freq="h", tz="UTC")
    df = pd.DataFrame({"temperature_c": np.arange(8760.0), "relative_humidity_pct": 50.0}, index=idx)
    out = align_hourly(df, "2023-12-31 11:00", 4)
    np.testing.assert_array_equal(out["temperature_c"].to_numpy(), [8758.0, 8759.0, 0.0, 1.0])
    assert list(out.columns) == ["temperature_c", "relative_humidity_pct"]


def test_align_needs_tz_aware_index() -> None:
    s = pd.Series([1.0], index=pd.DatetimeIndex(["2023-01-01"]))
    with pytest.raises(ValueError, match="tz-aware"):
        align_hourly(s, "2023-01-01", 1)
