"""The digital twin: simulate a plan through time (fluid or request level), with faults.

Public API: :func:`simulate` (or :class:`Simulation`), :func:`simulate_replicas` (N seeds, one pass),
:class:`SimConfig`, :class:`SimResult`, :func:`load_faults` / :class:`FaultSpec`, :func:`check_plan`.
Output schema: docs/simulator.md.
"""

from microdc.sim.config import SimConfig, SimConfigError, parse_step
from microdc.sim.engine import STATES, SimResult, Simulation, simulate, simulate_replicas
from microdc.sim.faults import Fault, FaultKind, FaultSpec, RandomFaults, load_faults
from microdc.sim.fleet import check_plan

__all__ = [
    "STATES",
    "Fault",
    "FaultKind",
    "FaultSpec",
    "RandomFaults",
    "SimConfig",
    "SimConfigError",
    "SimResult",
    "Simulation",
    "check_plan",
    "load_faults",
    "parse_step",
    "simulate",
    "simulate_replicas",
]
