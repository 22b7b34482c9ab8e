"""`microdc validate` says so, naming the file, when a weather file has no humidity (the economizer then
falls back to dry-bulb limits), and says nothing of the kind when it has."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from microdc.cli.main import app

TINY = Path(__file__).parents[1] / "data" / "tiny"


def _tiny_with_weather(root: Path, header: str, cell: str) -> Path:
    shutil.copytree(TINY, root)
    hours = pd.date_range("2023-01-01", periods=8760, freq="h")
    rows = [header] + [f"{t:%Y-%m-%dT%H:%M},{12 + (k % 24) / 3:.2f}{cell}" for k, t in enumerate(hours)]
    (root / "weather.csv").write_text("\n".join(rows) + "\n")
    yaml = (root / "scenario.yaml").read_text()
    old = "mild: {format: constant, constant_c: 15}"
    assert old in yaml
    (root / "scenario.yaml").write_text(yaml.replace(old, "mild: {format: openmeteo, path: weather.csv}"))
    return root


@pytest.mark.parametrize(
    ("header", "cell", "warned"),
    [
        ("time_local,temperature_c", "", True),
        ("time_local,temperature_c,relative_humidity_2m (%)", ",70", False),
        ("time_local,temperature_c,dew_point_c", ",5.5", False),
    ],
)
def test_validate_warns_about_weather_without_humidity(
    tmp_path: Path, header: str, cell: str, warned: bool
) -> None:
    root = _tiny_with_weather(tmp_path / "scn", header, cell)
    res = CliRunner().invoke(app, ["validate", str(root)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # the console wraps long lines
    assert ("warning:" in text) is warned
    if warned:
        assert "weather.csv: no humidity column" in text and "'mild'" in text and "dry-bulb-only" in text
    else:
        assert "no humidity column" not in text
