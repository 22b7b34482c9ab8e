"""The scenario of each period of a horizon, and the build options every period shares.

A period's scenario is the scenario with that period's demand, prices and server technology, and no
horizon: the single-period planner and checker read it as they read any scenario. The planner and the
checker both derive it with :func:`period_scenario`, so a plan is checked against the same world it
was made for.

Options must mean the same thing in every period (an option built in year 1 is still there in year 3):
modules get explicit ``server_counts`` (the quarter/half/full counts of the first year) so that a
falling server power does not change which counts the catalog offers, and only options that fit the
grid cap and module envelope in every period are offered.
"""

from __future__ import annotations

from dataclasses import replace

from microdc.model import Scenario
from microdc.model.horizon import Horizon
from microdc.placement.options import BuildOption, default_counts, enumerate_options


def horizon_of(s: Scenario) -> Horizon:
    if s.horizon is None:
        raise ValueError(f"scenario {s.name!r} has no horizon")
    return s.horizon


def fixed_counts(s: Scenario) -> Scenario:
    """The scenario with every module's server counts written out (as the first year offers them)."""
    modules = []
    for m in s.catalog.modules:
        if m.server_counts is None:
            counts = sorted({n for v in s.catalog.servers for n in default_counts(m, v)})
            m = m.model_copy(update={"server_counts": counts or None})
        modules.append(m)
    return _copy(s, catalog=s.catalog.model_copy(update={"modules": modules}))


def _copy(s: Scenario, **update: object) -> Scenario:
    out = s.model_copy(update=update)
    out._base_dir = s.base_dir  # model_copy keeps private attributes; be explicit all the same
    return out


def period_scenario(s: Scenario, period: int) -> Scenario:
    """The single-period scenario of one period (0-based): grown demand, that year's prices and servers."""
    h = horizon_of(s)
    if not 0 <= period < h.n_periods:
        raise ValueError(f"period {period} outside the horizon's {h.n_periods} periods")
    year = h.start_year(period)
    base = fixed_counts(s)

    def f(t: object) -> float:
        return 1.0 if t is None else t.factor(year)  # type: ignore[attr-defined]

    demand = []
    for d in base.demand:
        g = f(h.demand_growth.trajectory(d.id, d.service))
        demand.append(
            d.model_copy(
                update={
                    "rate_per_device_rps": d.rate_per_device_rps * g,
                    "data_gb_per_day": d.data_gb_per_day * g,
                }
            )
        )
    w, c, tb = f(h.server_watts), f(h.server_capex), f(h.storage_capex)
    servers = [
        v.model_copy(
            update={
                "idle_w": v.idle_w * w,
                "peak_w": v.peak_w * w,
                "capex": v.capex * c,
                "storage_capex_per_tb": v.storage_capex_per_tb * tb,
            }
        )
        for v in base.catalog.servers
    ]
    e = f(h.energy_price)
    sites = [
        x.model_copy(update={"energy_price_per_kwh": x.energy_price_per_kwh * e})
        if x.energy_price_per_kwh is not None
        else x
        for x in base.sites
    ]
    eco = base.economics
    economics = eco.model_copy(
        update={
            "energy_price_per_kwh": eco.energy_price_per_kwh * e,
            "carbon_price_per_tonne": eco.carbon_price_per_tonne * f(h.carbon_price) * f(h.grid_carbon),
        }
    )
    return _copy(
        base,
        demand=demand,
        sites=sites,
        economics=economics,
        catalog=base.catalog.model_copy(update={"servers": servers}),
        horizon=None,
        name=f"{s.name}@year{year + 1}",
    )


def _key(o: BuildOption) -> tuple[int, str, str, int, bool]:
    return (o.site, o.module, o.server, o.servers, o.existing)


def shared_options(periods: list[Scenario]) -> list[list[BuildOption]]:
    """Per period, the options that every period can build, in one order, sized by that period's servers."""
    per = [enumerate_options(p) for p in periods]
    common = set.intersection(*({_key(o) for o in opts} for opts in per))
    keys = [_key(o) for o in per[0] if _key(o) in common]
    out = []
    for opts in per:
        by_key = {_key(o): o for o in opts}
        out.append([replace(by_key[k]) for k in keys])
    return out
