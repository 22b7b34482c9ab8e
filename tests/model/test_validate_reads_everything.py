"""`microdc validate` rejects whatever `plan` and `simulate` would reject: it reads every time series,
profile and path the scenario names. Each problem names file, line and field, and plan and simulate
report the very same problem, never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from microdc.cli.main import app
from microdc.model import Problem, ScenarioError, load_scenario
from microdc.model.series import MIN_HOURS, read_everything

DATA = Path(__file__).parents[1] / "data" / "tiny"

WEATHER_HEADER = "time_local,temperature_c,relative_humidity_pct"
CARBON_HEADER = (
    "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA)"
)


def _year_files(dst: Path) -> None:
    """A year of hourly weather (Open-Meteo layout) and carbon (Electricity Maps layout)."""
    hours = pd.date_range("2023-01-01", periods=MIN_HOURS, freq="h")
    weather = [WEATHER_HEADER] + [
        f"{t:%Y-%m-%dT%H:%M},{10 + (k % 24) / 4:.2f},80" for k, t in enumerate(hours)
    ]
    carbon = [CARBON_HEADER] + [
        f"{t:%Y-%m-%d %H:%M:%S},DE,{300 + k % 50},{350 + k % 50}" for k, t in enumerate(hours)
    ]
    (dst / "weather.csv").write_text("\n".join(weather) + "\n")
    (dst / "carbon.csv").write_text("\n".join(carbon) + "\n")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"fixture no longer contains {old!r}"
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny, with hourly weather and carbon files, and a plan of it to simulate."""
    dst = tmp_path_factory.mktemp("series") / "good"
    shutil.copytree(DATA, dst)
    _year_files(dst)
    _edit(
        dst / "scenario.yaml",
        "grid: {format: constant, constant_gco2_per_kwh: 300}",
        "grid: {format: electricitymaps, path: carbon.csv}",
    )
    _edit(
        dst / "scenario.yaml",
        "mild: {format: constant, constant_c: 15}",
        "mild: {format: openmeteo, path: weather.csv}",
    )
    res = CliRunner().invoke(app, ["plan", str(dst), "-o", str(dst / "plan.json"), "--no-baselines"])
    assert res.exit_code == 0, res.output
    return dst


@pytest.fixture
def scn(good: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "scn"
    shutil.copytree(good, dst)
    return dst


def _bullets(output: str) -> set[str]:
    return {line.strip()[2:] for line in output.splitlines() if line.strip().startswith("• ")}


def _all_three(scn: Path, tmp_path: Path) -> set[str]:
    """Run validate, plan and simulate; each must exit 2; plan's and simulate's problems must be among
    validate's. Returns validate's problems."""
    runner = CliRunner()
    results = {
        "validate": runner.invoke(app, ["validate", str(scn), "--no-physics"]),
        "plan": runner.invoke(
            app, ["plan", str(scn), "-o", str(tmp_path / "new-plan.json"), "--no-baselines"]
        ),
        "simulate": runner.invoke(
            app,
            [
                "simulate",
                str(scn),
                "--plan",
                str(scn / "plan.json"),
                "-o",
                str(tmp_path / "sim"),
                "--days",
                "0.05",
                "--no-progress",
            ],
        ),
    }
    for name, res in results.items():
        assert res.exit_code == 2, f"{name}: {res.output}"
        assert "Traceback" not in res.output, f"{name}: {res.output}"
        assert res.exception is None or isinstance(res.exception, SystemExit), f"{name}: {res.exception!r}"
    validated = _bullets(results["validate"].output)
    for name in ("plan", "simulate"):
        found = _bullets(results[name].output)
        assert found and found <= validated, f"{name} says {found}, validate says {validated}"
    assert not (tmp_path / "new-plan.json").exists()
    return validated


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


def test_good_scenario_reads_cleanly(good: Path) -> None:
    assert read_everything(load_scenario(good)) == []
    res = CliRunner().invoke(app, ["validate", str(good), "--no-physics"])
    assert res.exit_code == 0, res.output


def test_corrupt_weather_csv(scn: Path, tmp_path: Path) -> None:
    lines = (scn / "weather.csv").read_text().splitlines()
    lines[4] = lines[4].replace(lines[4].split(",")[1], "1O.5")  # row on line 5: letter O for zero
    (scn / "weather.csv").write_text("\n".join(lines) + "\n")
    p = _only(read_everything(load_scenario(scn)))
    assert p.file.endswith("weather.csv") and p.line == 5 and p.field == "timeseries.weather.mild"
    assert "'temperature_c'" in p.message and "'1O.5'" in p.message
    assert str(p) in _all_three(scn, tmp_path)


def test_missing_carbon_file(scn: Path, tmp_path: Path) -> None:
    (scn / "carbon.csv").unlink()
    with pytest.raises(ScenarioError) as e:
        load_scenario(scn)
    p = _only(e.value.problems)
    expected_line = (scn / "scenario.yaml").read_text().splitlines().index(
        "    grid: {format: electricitymaps, path: carbon.csv}"
    ) + 1
    assert p.file.endswith("scenario.yaml") and p.line == expected_line
    assert p.field == "timeseries.carbon.grid.path" and "file not found" in p.message
    assert str(p) in _all_three(scn, tmp_path)


def test_unknown_profile_name(scn: Path, tmp_path: Path) -> None:
    rows = (scn / "demand.csv").read_text().splitlines()
    rows[0] += ",profile"
    rows[1:] = [r + ("," + "nightly" if k == 1 else ",") for k, r in enumerate(rows[1:])]
    (scn / "demand.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(scn)
    p = _only(e.value.problems)
    assert p.file.endswith("demand.csv") and p.line == 3 and p.field == "demand.1.profile"
    assert "unknown profile 'nightly'" in p.message
    assert str(p) in _all_three(scn, tmp_path)


def test_bad_row_in_a_trace_profile(scn: Path, tmp_path: Path) -> None:
    (scn / "trace.csv").write_text(
        "timestamp,factor\n2023-01-01T00:00,1.0\n2023-01-01T01:00,1.2\n2023-01-01T02:00,-3\n"
    )
    _edit(
        scn / "scenario.yaml", "demand:\n", "profiles:\n  measured: {kind: trace, csv: trace.csv}\ndemand:\n"
    )
    rows = (scn / "demand.csv").read_text().splitlines()
    (scn / "demand.csv").write_text(
        "\n".join([rows[0] + ",profile"] + [r + ",measured" for r in rows[1:]]) + "\n"
    )
    p = _only(read_everything(load_scenario(scn)))
    assert p.file.endswith("trace.csv") and p.line == 4 and p.field == "factor"
    assert "expected a number >= 0, found '-3'" in p.message
    assert str(p) in _all_three(scn, tmp_path)


def test_unknown_time_zone_of_a_profile(scn: Path, tmp_path: Path) -> None:
    hourly = ", ".join(["1"] * 24)
    _edit(
        scn / "scenario.yaml",
        "demand:\n",
        f"profiles:\n  day: {{kind: diurnal, timezone: Europe/Berlinn, hourly: [{hourly}]}}\ndemand:\n",
    )
    with pytest.raises(ScenarioError) as e:
        load_scenario(scn)
    p = _only(e.value.problems)
    expected_line = next(
        k for k, line in enumerate((scn / "scenario.yaml").read_text().splitlines(), 1) if "Berlinn" in line
    )
    assert p.file.endswith("scenario.yaml") and p.line == expected_line
    assert p.field == "profiles.day.timezone" and "unknown time zone 'Europe/Berlinn'" in p.message
    rows = (scn / "demand.csv").read_text().splitlines()
    (scn / "demand.csv").write_text("\n".join([rows[0] + ",profile"] + [r + ",day" for r in rows[1:]]) + "\n")
    assert str(p) in _all_three(scn, tmp_path)


def test_truncated_series(scn: Path, tmp_path: Path) -> None:
    """A carbon file that stops after 100 hours would otherwise repeat those 100 hours all year."""
    lines = (scn / "carbon.csv").read_text().splitlines()
    (scn / "carbon.csv").write_text("\n".join(lines[:101]) + "\n")
    p = _only(read_everything(load_scenario(scn)))
    assert p.file.endswith("carbon.csv") and p.line == 101 and p.field == "timeseries.carbon.grid"
    assert "ends after 100 hour(s)" in p.message and f"at least {MIN_HOURS} hourly values" in p.message
    assert str(p) in _all_three(scn, tmp_path)


def test_series_cut_in_the_middle_of_a_row(scn: Path, tmp_path: Path) -> None:
    lines = (scn / "weather.csv").read_text().splitlines()
    (scn / "weather.csv").write_text("\n".join([*lines[:5000], lines[5000][:12]]))  # a disk filled up
    p = _only(read_everything(load_scenario(scn)))
    assert p.file.endswith("weather.csv") and p.line == 5001 and p.field == "timeseries.weather.mild"
    assert "expected at least 3 comma-separated fields, found 1" in p.message
    assert str(p) in _all_three(scn, tmp_path)


def test_every_problem_is_reported_at_once(scn: Path) -> None:
    lines = (scn / "weather.csv").read_text().splitlines()
    lines[4] = lines[4].replace(",80", ",eighty")
    (scn / "weather.csv").write_text("\n".join(lines) + "\n")
    (scn / "carbon.csv").write_text("\n".join((scn / "carbon.csv").read_text().splitlines()[:50]) + "\n")
    found = {(Path(p.file).name, p.line, p.field) for p in read_everything(load_scenario(scn))}
    assert found == {
        ("weather.csv", 5, "timeseries.weather.mild"),
        ("carbon.csv", 50, "timeseries.carbon.grid"),
    }
