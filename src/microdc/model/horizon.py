"""A multi-year planning horizon: periods, demand growth and price/technology trajectories.

A trajectory is a multiplier per year relative to the scenario's own values (year 1 = 1 with a rate):
either a constant yearly rate (signed: -0.08 = falling 8 % a year) or a table of multipliers, one per
year of the horizon. A period takes the multiplier of the year it starts in.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, model_validator

from microdc.model.components import Strict
from microdc.model.yaml_source import Loc


class Trajectory(Strict):
    """How a quantity changes year by year: a yearly rate, or a multiplier per year (year 1 first)."""

    rate_per_year: Annotated[float, Field(gt=-1, le=10)] | None = Field(
        None, description="change per year, fraction (0.1 = +10 % a year, -0.08 = falling 8 % a year)"
    )
    multipliers: list[Annotated[float, Field(ge=0, le=1000)]] | None = Field(
        None,
        description="multiplier of the scenario's value in each year of the horizon, year 1 first "
        "(dimensionless; one per year)",
    )

    @model_validator(mode="after")
    def _one_form(self) -> Trajectory:
        if (self.rate_per_year is None) == (self.multipliers is None):
            raise ValueError("give exactly one of rate_per_year or multipliers")
        return self

    def factor(self, year: int) -> float:
        """Multiplier in the 0-based `year` of the horizon."""
        if self.multipliers is not None:
            return float(self.multipliers[year])
        assert self.rate_per_year is not None
        return float((1.0 + self.rate_per_year) ** year)


class DemandGrowth(Strict):
    """Growth of demand (mean request rate and data volume): per demand source, else per service, else
    the default."""

    default: Trajectory | None = Field(None, description="growth of every demand not named below")
    services: dict[str, Trajectory] = Field(
        default_factory=dict, description="growth of the demand of a service, by service id"
    )
    demand: dict[str, Trajectory] = Field(
        default_factory=dict, description="growth of one demand source, by demand id (wins over services)"
    )

    def trajectory(self, demand_id: str, service_id: str) -> Trajectory | None:
        return self.demand.get(demand_id) or self.services.get(service_id) or self.default


class Horizon(Strict):
    """Plan several years at once: what to build when, at least net present cost."""

    years: Annotated[int, Field(ge=1, le=50)] = Field(description="length of the horizon, years")
    step_years: Annotated[int, Field(ge=1, le=50)] = Field(
        1, description="length of one planning period, years (divides years)"
    )
    allow_retire: bool = Field(
        False,
        description="modules and servers may be taken out of service (false: capacity at a site never "
        "shrinks and its module and server type stay)",
    )
    demand_growth: DemandGrowth = Field(
        default_factory=DemandGrowth, description="growth of demand per year (none: constant demand)"
    )
    server_capex: Trajectory | None = Field(None, description="price of a server per year")
    storage_capex: Trajectory | None = Field(
        None,
        description="price per TB of drives (every server type's storage_capex_per_tb) per year; "
        "none: constant (drive prices fall on their own curve, so server_capex does not move it)",
    )
    server_watts: Trajectory | None = Field(
        None, description="server power (idle and peak, i.e. watts per core) per year"
    )
    energy_price: Trajectory | None = Field(None, description="energy price (every site's) per year")
    carbon_price: Trajectory | None = Field(None, description="carbon price per year")
    grid_carbon: Trajectory | None = Field(
        None,
        description="grid carbon intensity per year (every zone; enters the costs as a factor on the "
        "carbon price)",
    )

    @model_validator(mode="after")
    def _whole_periods(self) -> Horizon:
        if self.years % self.step_years:
            raise ValueError(
                f"years ({self.years}) must be a whole number of periods of step_years ({self.step_years})"
            )
        return self

    @property
    def n_periods(self) -> int:
        return self.years // self.step_years

    def start_year(self, period: int) -> int:
        """0-based year in which a period starts."""
        return period * self.step_years

    def trajectories(self) -> Iterator[tuple[Loc, Trajectory]]:
        named = (
            "server_capex",
            "storage_capex",
            "server_watts",
            "energy_price",
            "carbon_price",
            "grid_carbon",
        )
        for name in named:
            t = getattr(self, name)
            if t is not None:
                yield ("horizon", name), t
        g = self.demand_growth
        if g.default is not None:
            yield ("horizon", "demand_growth", "default"), g.default
        for key, t in g.services.items():
            yield ("horizon", "demand_growth", "services", key), t
        for key, t in g.demand.items():
            yield ("horizon", "demand_growth", "demand", key), t


def horizon_problems(h: Horizon, service_ids: set[str], demand_ids: set[str]) -> Iterator[tuple[Loc, str]]:
    """Unknown ids in the growth tables and multiplier tables of the wrong length."""
    for key in h.demand_growth.services:
        if key not in service_ids:
            yield (
                ("horizon", "demand_growth", "services", key),
                f"unknown service {key!r}; known: {', '.join(sorted(service_ids))}",
            )
    for key in h.demand_growth.demand:
        if key not in demand_ids:
            yield ("horizon", "demand_growth", "demand", key), f"unknown demand id {key!r}"
    for loc, t in h.trajectories():
        if t.multipliers is not None and len(t.multipliers) != h.years:
            yield (
                (*loc, "multipliers"),
                f"expected one multiplier per year of the horizon ({h.years}), got {len(t.multipliers)}",
            )
