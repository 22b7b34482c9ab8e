"""Fixtures for the simulator tests (helpers live in tests/sim/twin.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.sim.twin import twin_plan, write_twin

from microdc.model import Scenario, load_scenario
from microdc.placement.plan import Plan


@pytest.fixture
def twin(tmp_path: Path) -> Scenario:
    return load_scenario(write_twin(tmp_path / "twin", n_plus=1))


@pytest.fixture
def plan() -> Plan:
    return twin_plan()
