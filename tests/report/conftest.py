from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from microdc.model import load_scenario
from microdc.report.data import RunResult
from microdc.run import RunOptions, run

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    """`microdc run` on the tiny scenario (2 days at 1-hour steps, with the fault drill), made once."""
    root = tmp_path_factory.mktemp("tiny-run")
    shutil.copytree(DATA / "tiny", root / "tiny")
    s = load_scenario(root / "tiny" / "scenario.yaml")
    out = root / "out"
    result = run(s, out, RunOptions(days=2, step_s=3600, time_limit_s=10, fault_source="drill"))
    return result, out
