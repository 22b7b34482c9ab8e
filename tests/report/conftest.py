from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from microdc.model import load_scenario
from microdc.report.data import RunResult
from microdc.report.horizon_data import HorizonRunResult
from microdc.run import RunOptions, run

DATA = Path(__file__).parents[1] / "data"


def report_figures(html: str) -> dict[str, Any]:
    """The figures a report embeds (its `<script type="application/json" id="figures">`), by name."""
    found = re.search(r'<script type="application/json" id="figures">(.*?)</script>', html, re.S)
    assert found, "the report embeds no figures"
    figures: dict[str, Any] = json.loads(found[1])
    return figures


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    """`microdc run` on the tiny scenario (2 days at 1-hour steps, with the fault drill), made once."""
    root = tmp_path_factory.mktemp("tiny-run")
    shutil.copytree(DATA / "tiny", root / "tiny")
    s = load_scenario(root / "tiny" / "scenario.yaml")
    out = root / "out"
    result = run(s, out, RunOptions(days=2, step_s=3600, time_limit_s=10, fault_source="drill"))
    return result, out


def tiny_horizon_scenario(root: Path) -> Path:
    """The tiny scenario over two one-year periods: demand grows 150-fold in year 2 (so the fleet grows) and
    the grid is half as carbon-intensive."""
    import yaml

    shutil.copytree(DATA / "tiny", root / "tiny-horizon")
    path = root / "tiny-horizon" / "scenario.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["name"] = "tiny-horizon"
    doc["horizon"] = {
        "years": 2,
        "demand_growth": {"default": {"multipliers": [1.0, 150.0]}},
        "grid_carbon": {"multipliers": [1.0, 0.5]},
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_horizon_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[HorizonRunResult, Path]:
    """`microdc run` on the tiny scenario with a two-year horizon (1 day at 1-hour steps), made once."""
    from microdc.run_horizon import run_horizon

    root = tmp_path_factory.mktemp("tiny-horizon-run")
    s = load_scenario(tiny_horizon_scenario(root))
    out = root / "out"
    result = run_horizon(s, out, RunOptions(days=1, step_s=3600, time_limit_s=10, fault_source="none"))
    return result, out
