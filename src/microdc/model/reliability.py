"""Failure rates: how often each kind of fault hits a micro data center, and how long repair takes.

Declared here (MTBF and MTTR per fault kind, with defaults from public field data where there is any;
docs/reliability.md cites each one), overridable per site class (a site's ``failure_class``). The
simulator draws fault schedules from them (microdc.sim.fault_rates).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

FAULT_KINDS = ("site_outage", "uplink_cut", "cooling_failure", "grid_outage", "break_in")


class FailureRate(BaseModel):
    """One fault kind at one site: mean time between failures and mean time to repair."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mtbf_hours: Annotated[float, Field(gt=0)] = Field(description="mean up-time between faults, hours")
    mttr_hours: Annotated[float, Field(gt=0)] = Field(description="mean time to repair, hours")


def _rate(mtbf: float, mttr: float) -> FailureRate:
    return FailureRate(mtbf_hours=mtbf, mttr_hours=mttr)


# Defaults (docs/reliability.md gives the sources and the reasoning):
# grid_outage: EIA-861 / CEER benchmarking, ~1 interruption per customer-year, ~2 h each;
# uplink_cut: long-haul fibre studies put repair at ~12 h; a backhaul plus its equipment ~ every 2 years;
# site_outage: Uptime Institute outage surveys, about one impactful outage per site in three years;
# cooling_failure, break_in: no public field data for street-level MDCs; stated assumptions.
DEFAULT_RATES: dict[str, FailureRate] = {
    "site_outage": _rate(26280.0, 8.0),
    "uplink_cut": _rate(17520.0, 12.0),
    "cooling_failure": _rate(17520.0, 6.0),
    "grid_outage": _rate(8760.0, 2.0),
    "break_in": _rate(87600.0, 24.0),
}
DEFAULT_REPAIR_SIGMA = 1.0


class FailureRates(BaseModel):
    """MTBF/MTTR per fault kind; a kind left out takes the scenario default (or never fails if null)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site_outage: FailureRate | None = Field(None, description="whole site down (power train, IT)")
    uplink_cut: FailureRate | None = Field(None, description="backhaul cut (fibre cut, router failure)")
    cooling_failure: FailureRate | None = Field(None, description="cooling plant failure")
    grid_outage: FailureRate | None = Field(None, description="utility supply interruption (on UPS)")
    break_in: FailureRate | None = Field(None, description="physical intrusion (untrusted until re-attested)")


class Reliability(BaseModel):
    """Failure rates for random faults: defaults for every site, overrides per site class."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    defaults: FailureRates = Field(
        default_factory=FailureRates,
        description="rates for every site; a kind not given takes microdc's default (docs/reliability.md)",
    )
    classes: dict[str, FailureRates] = Field(
        default_factory=dict,
        description="overrides per site class (sites' failure_class keys); kinds not given take defaults",
    )
    repair_sigma: Annotated[float, Field(gt=0, le=3)] = Field(
        DEFAULT_REPAIR_SIGMA,
        description="shape (sigma of the log) of lognormal repair times; their mean is mttr_hours",
    )

    def rates_for(self, failure_class: str | None) -> dict[str, FailureRate]:
        """The rate of every fault kind at a site of this class."""
        out = dict(DEFAULT_RATES)
        layers = [self.defaults] + ([self.classes[failure_class]] if failure_class else [])
        for layer in layers:
            for kind in FAULT_KINDS:
                rate = getattr(layer, kind)
                if rate is not None:
                    out[kind] = rate
        return out
