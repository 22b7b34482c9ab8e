"""The world, declared: typed, validated scenario data. Knows nothing of solvers or servers."""

from microdc.model.errors import Problem, ScenarioError
from microdc.model.loader import load_scenario
from microdc.model.scenario import Scenario

__all__ = ["Problem", "Scenario", "ScenarioError", "load_scenario"]
