"""What a horizon run is made of: per alternative (microdc's staged build-out, build-all-now, myopic)
its horizon plan and, per period, the simulated figures of that period's fleet.

Written by `microdc run` on a scenario with a horizon (microdc.run_horizon):

    DIR/plan.json                          microdc's horizon plan
    DIR/<alternative>/plan.json            that alternative's horizon plan
    DIR/<alternative>/period-N/            the simulator's outputs for period N (docs/simulator.md)
    DIR/comparison.json                    NPVs and one comparison entry per alternative and period
    DIR/report.html                        the build-out report
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from microdc.model import Scenario
from microdc.placement.horizon_plan import HorizonPlan

#: The alternatives of a horizon run, in report order: the planner's build-out, then its two comparisons.
HORIZON_ALTERNATIVES = ("microdc", "build-all-now", "myopic")


@dataclass
class PeriodRun:
    """One period of one alternative: its comparison entry (microdc.report.comparison.compare on the
    period's scenario and simulation, carbon at that period's grid intensity)."""

    period: int  # 1-based
    start_year: int  # 0-based year of the horizon in which the period starts
    entry: dict[str, Any]


@dataclass
class HorizonAlternative:
    name: str
    plan: HorizonPlan
    periods: list[PeriodRun]


@dataclass
class HorizonRunResult:
    """Everything `microdc run` produced on a horizon; `alternatives[0]` is microdc's build-out."""

    scenario: Scenario
    alternatives: list[HorizonAlternative]
    days: float
    step_minutes: float
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ours(self) -> HorizonAlternative:
        return self.alternatives[0]
