"""An independent check of a plan against every hard rule of its scenario (`microdc check-plan`).

It shares no constraint code with the solver: it walks the plan's own records, re-derives each
demand's size and latency from the scenario and the physics, and tests sovereignty with its own
reading of the jurisdiction tree (so it double-checks the policy module as well as the solver).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from microdc.model import Scenario
from microdc.model.policies import DataClassPolicy
from microdc.physics.geo import great_circle_km
from microdc.physics.latency import LatencyModel
from microdc.placement.options import default_counts, design_facility_kw
from microdc.placement.plan import Plan
from microdc.placement.problem import device_rtt_ms, response_quantile_ms, size_demand

TOL = 1e-6


def _allowed_codes(pol: DataClassPolicy, origin: str, store: bool) -> list[str] | None:
    """Jurisdiction codes the data may be in (None = anywhere)."""
    where = pol.store_in if store and pol.store_in is not None else pol.process_in
    if where == "any":
        return None
    if where == "origin":
        return [origin]
    return [where] if isinstance(where, str) else list(where)


def _inside(s: Scenario, code: str, containers: list[str] | None) -> bool:
    if containers is None:
        return True
    chain = s.tree.ancestors(code)
    return any(c in chain for c in containers)


def check_plan(s: Scenario, plan: Plan) -> list[str]:
    """Every violation of a hard rule, as a sentence naming the demand, target and rule."""
    out: list[str] = []
    sites = {x.id: x for x in s.sites}
    regions = {r.id: r for r in s.cloud_regions}
    demand_index = {d.id: i for i, d in enumerate(s.demand)}
    modules = {m.id: m for m in s.catalog.modules}
    servers = {v.id: v for v in s.catalog.servers}
    if plan.scenario != s.name:
        out.append(f"plan is for scenario {plan.scenario!r}, not {s.name!r}")

    built: dict[str, list] = defaultdict(list)
    for b in plan.sites:
        if b.site not in sites:
            out.append(f"built site {b.site!r} is not in the scenario")
            continue
        if b.module not in modules or b.server not in servers:
            out.append(f"site {b.site!r}: unknown module {b.module!r} or server {b.server!r}")
            continue
        built[b.site].append(b)
        site, m, v = sites[b.site], modules[b.module], servers[b.server]
        if b.existing:
            continue
        if b.servers * v.rack_units > m.rack_units:
            out.append(
                f"site {b.site!r}: {b.servers} servers need {b.servers * v.rack_units} U, "
                f"module has {m.rack_units}"
            )
        if b.servers * v.peak_w > m.max_it_kw * 1000 + TOL:
            out.append(f"site {b.site!r}: {b.servers} × {v.peak_w} W exceeds the module's {m.max_it_kw} kW")
        if design_facility_kw(b.servers * v.peak_w / 1000, m) > site.grid_power_kw + TOL:
            out.append(f"site {b.site!r}: design facility power exceeds the grid cap {site.grid_power_kw} kW")
        if b.servers not in default_counts(m, v):
            out.append(f"site {b.site!r}: {b.servers} servers is not a catalog size of {b.module!r}")
    for sid, bs in built.items():
        if sum(not b.existing for b in bs) > 1:
            out.append(f"site {sid!r}: more than one new module built")

    size = size_demand(s)
    model = LatencyModel(access_ms=s.network.access_ms)
    pool = float(min(v.cores for v in s.catalog.servers))
    served = np.zeros(len(s.demand))
    load_cores: dict[str, float] = defaultdict(float)
    load_mem: dict[str, float] = defaultdict(float)
    primary_at: dict[tuple[int, str], float] = defaultdict(float)
    backup_at: dict[tuple[int, str], float] = defaultdict(float)
    for a in plan.assignments:
        c = demand_index.get(a.demand)
        if c is None:
            out.append(f"assignment of unknown demand {a.demand!r}")
            continue
        d = s.demand[c]
        if a.kind == "site":
            if a.target not in built:
                out.append(f"{a.demand!r} is assigned to site {a.target!r}, which the plan does not build")
                continue
            t_lat, t_lon = sites[a.target].lat, sites[a.target].lon
            t_code, t_tier = sites[a.target].jurisdiction, sites[a.target].security_tier
            load_cores[a.target] += a.fraction * size.cores_peak[c]
            load_mem[a.target] += a.fraction * size.memory_gb[c]
        else:
            if a.target not in regions:
                out.append(f"{a.demand!r} is assigned to unknown cloud region {a.target!r}")
                continue
            r = regions[a.target]
            t_lat, t_lon, t_code, t_tier = r.lat, r.lon, r.jurisdiction, r.security_tier
        pol = s.policy_for(d.data_class)
        if not (
            _inside(s, t_code, _allowed_codes(pol, d.jurisdiction, False))
            and _inside(s, t_code, _allowed_codes(pol, d.jurisdiction, True))
        ):
            out.append(
                f"sovereignty: {a.demand!r} ({d.data_class} from {d.jurisdiction}) {a.role} at {a.target!r} "
                f"in {t_code}, outside process_in={pol.process_in!r}"
            )
        if t_tier < pol.min_security_tier:
            out.append(
                f"security: {a.demand!r} needs tier {pol.min_security_tier}, {a.target!r} is tier {t_tier}"
            )
        dist = great_circle_km(d.lat, d.lon, t_lat, t_lon)
        rtt = float(device_rtt_ms(a.kind, dist, s.network, model))
        svc = s.service(d.service)
        for q, slo in ((0.95, svc.slo.p95_ms), (0.99, svc.slo.p99_ms)):
            if slo is None:
                continue
            resp = float(
                response_quantile_ms(
                    np.array([size.service_s[c]]),
                    np.array([size.cores_peak[c]]),
                    np.array([svc.target_utilization]),
                    q,
                    pool,
                )[0]
            )
            if rtt + resp > slo + 1e-6:
                out.append(
                    f"SLO: {a.demand!r} at {a.target!r}: "
                    f"predicted p{round(q * 100)} {rtt + resp:.1f} ms > {slo} ms"
                )
        if a.role == "primary":
            served[c] += a.fraction
            primary_at[(c, a.target)] += a.fraction
        else:
            backup_at[(c, a.target)] += a.fraction

    unserved = {u.demand: u.fraction for u in plan.unserved}
    for c, d in enumerate(s.demand):
        total = served[c] + unserved.get(d.id, 0.0)
        if abs(total - 1.0) > 1e-5:
            out.append(f"demand {d.id!r} is served {total:.6f} of its load (expected 1)")
    if unserved and not plan.allow_unserved:
        out.append(
            f"{len(unserved)} demand source(s) unserved although the plan was not made with allow_unserved"
        )

    for sid, bs in built.items():
        cores = sum(b.cores for b in bs)
        mem = sum(b.memory_gb for b in bs)
        if load_cores[sid] > cores * (1 + 1e-6) + 1e-6:
            out.append(
                f"capacity: site {sid!r} carries {load_cores[sid]:.1f} cores of peak demand, has {cores:.0f}"
            )
        if load_mem[sid] > mem * (1 + 1e-6) + 1e-6:
            out.append(f"capacity: site {sid!r} needs {load_mem[sid]:.1f} GB, has {mem:.0f}")

    if plan.n_plus >= 1:
        for (c, target), frac in primary_at.items():
            if target not in built:
                continue
            cover = sum(f for (c2, t2), f in backup_at.items() if c2 == c and t2 != target)
            if cover + 1e-6 < frac:
                out.append(
                    f"redundancy: if site {target!r} fails, {s.demand[c].id!r} loses {frac:.3f} of its load "
                    f"but has only {cover:.3f} backup elsewhere"
                )
    return out
