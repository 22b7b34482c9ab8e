"""What can be built at a site: every (module, server type, server count) that fits the module's rack
space and IT envelope and the site's grid connection at design conditions.

Existing sites offer exactly their installed configuration (upgrades are out of scope for now).
"""

from __future__ import annotations

from dataclasses import dataclass

from microdc.model import Scenario
from microdc.model.components import Module, ServerType

DESIGN_OUTDOOR_C = 35.0  # the grid connection must carry a full module on a hot afternoon


@dataclass(frozen=True)
class BuildOption:
    site: int  # index into scenario.sites
    module: str
    server: str
    servers: int
    cores: float
    memory_gb: float
    it_kw: float  # at peak power of all servers
    existing: bool
    storage_tb: float = 0.0  # storage of all servers, TB (the planner's third resource)


def default_counts(module: Module, server: ServerType) -> list[int]:
    """Quarter, half and full fill of the module, bounded by rack units and the IT power envelope."""
    full = min(module.rack_units // server.rack_units, int(module.max_it_kw * 1000 // server.peak_w))
    if full <= 0:
        return []
    if module.server_counts is not None:
        return sorted({n for n in module.server_counts if n <= full})
    return sorted({max(1, full // 4), max(1, full // 2), full})


def design_facility_kw(it_kw: float, module: Module) -> float:
    """Facility power at full IT load on a design-hot day, for the grid-cap check."""
    from microdc.physics.site_power import design_power_kw

    return design_power_kw(it_kw, module, DESIGN_OUTDOOR_C)


def enumerate_options(s: Scenario) -> list[BuildOption]:
    out: list[BuildOption] = []
    modules = {m.id: m for m in s.catalog.modules}
    servers = {v.id: v for v in s.catalog.servers}
    for i, site in enumerate(s.sites):
        if site.existing:
            for inst in site.existing:
                v, m = servers[inst.server], modules[inst.module]
                out.append(
                    BuildOption(
                        i,
                        m.id,
                        v.id,
                        inst.count,
                        inst.count * v.cores,
                        inst.count * v.memory_gb,
                        inst.count * v.peak_w / 1000,
                        True,
                        inst.count * v.storage_tb,
                    )
                )
            continue
        for m in s.catalog.modules:
            for v in s.catalog.servers:
                for n in default_counts(m, v):
                    it_kw = n * v.peak_w / 1000
                    if design_facility_kw(it_kw, m) > site.grid_power_kw:
                        continue
                    out.append(
                        BuildOption(
                            i, m.id, v.id, n, n * v.cores, n * v.memory_gb, it_kw, False, n * v.storage_tb
                        )
                    )
    return out
