"""The multi-year plan file: what is bought when, each period's single-year plan, and the net present cost.

Each period carries a complete single-period :class:`Plan` of that period's scenario
(``placement.periods.period_scenario``), so ``check-plan`` checks every period with the single-period
checker; the horizon adds purchases (modules and servers bought, including replacements at the end of
their lifetime) and the discounted cost of each period.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from microdc.placement.plan import Plan, read_model


class _Base(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Purchase(_Base):
    """Hardware bought at a site at the start of a period (new, added or replacing worn-out hardware)."""

    site: str
    module: str
    server: str
    modules: int  # 0 or 1: the module enclosure itself
    servers: int
    capex: float  # at that period's prices, undiscounted
    salvage: float  # value left at the end of the horizon (straight line over the lifetime), undiscounted


class PeriodPlan(_Base):
    period: int  # 1-based
    start_year: int  # 0-based year of the horizon in which the period starts
    years: int
    scenario: str  # name of the period scenario
    purchases: list[Purchase]
    capex: float  # undiscounted, this period's purchases
    opex_per_year: float  # undiscounted: the period plan's yearly cost without annualized capex
    discounted_capex: float  # purchases at the start of the period minus discounted salvage
    discounted_opex: float  # opex of every year of the period, discounted to the end of each year
    npv: float  # discounted_capex + discounted_opex
    plan: Plan


class HorizonPlan(_Base):
    scenario: str
    alternative: str = "microdc"
    method: str
    status: str
    npv: float
    lower_bound: float | None
    gap: float | None
    seconds: float
    currency: str
    years: int
    step_years: int
    allow_retire: bool
    discount_rate: float
    periods: list[PeriodPlan]
    #: Net present cost of the alternatives under the same accounting (None: that alternative has no
    #: feasible plan): "build_all_now" (the last period's fleet from year 1), "myopic" (year by year).
    alternatives: dict[str, float | None] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")


def read_any_plan(path: Path) -> Plan | HorizonPlan:
    """A single-period plan or a horizon plan (it has ``periods``); a malformed file raises ScenarioError."""

    def choose(data: Any) -> type[Plan] | type[HorizonPlan]:
        return HorizonPlan if isinstance(data, dict) and "periods" in data else Plan

    return read_model(path, choose)
