"""Sites for the control plane's inventory from a scenario (and the modules a plan builds there)."""

from __future__ import annotations

from microdc.control.schemas import ModuleIn, ServerIn, SiteIn, SiteStatus
from microdc.model import Scenario
from microdc.placement.plan import Plan


def sites_from_scenario(s: Scenario, plan: Plan | None = None) -> list[SiteIn]:
    """Every candidate site (planned) or, with a plan, the sites it builds (active) with their modules."""
    built = {b.site: b for b in plan.sites} if plan is not None else {}
    modules = {m.id: m for m in s.catalog.modules}
    servers = {v.id: v for v in s.catalog.servers}
    out: list[SiteIn] = []
    for site in s.sites:
        if plan is not None and site.id not in built:
            continue
        mods: list[ModuleIn] = []
        b = built.get(site.id)
        if b is not None:
            m, v = modules[b.module], servers[b.server]
            mods.append(
                ModuleIn(
                    name=m.id,
                    enclosure=m.id,
                    rack_units=m.rack_units,
                    max_it_kw=m.max_it_kw,
                    cooling_kind=m.cooling.kind.value,
                    servers=[
                        ServerIn(
                            name=v.id,
                            server_type=v.id,
                            quantity=b.servers,
                            cores=v.cores,
                            memory_gb=v.memory_gb,
                            idle_w=v.idle_w,
                            peak_w=v.peak_w,
                        )
                    ],
                )
            )
        out.append(
            SiteIn(
                id=site.id,
                name=site.name[:128],
                lat=site.lat,
                lon=site.lon,
                jurisdiction=site.jurisdiction,
                jurisdiction_ancestors=s.tree.ancestors(site.jurisdiction)[1:],
                security_tier=site.security_tier,
                grid_power_kw=site.grid_power_kw,
                status=SiteStatus.ACTIVE if b is not None else SiteStatus.PLANNED,
                modules=mods,
            )
        )
    return out
