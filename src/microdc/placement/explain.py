"""A scenario explained back before anything is solved: what is in it, and what looks unusual.

`microdc validate` prints this after the hard checks pass. The warnings use the planner's own problem
(`build_problem`: the same latency, sizing, sovereignty and tier rules), so "no demand in reach" means
exactly that no build option at the site could meet any demand's SLO, and "no legal target" that the
plan will have to leave that demand unserved.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from microdc.model import Scenario
from microdc.model.geometry import contains, jurisdiction_rings
from microdc.physics.geo import distance_matrix_km
from microdc.placement.problem import PlanningProblem, build_problem

MAX_NAMED = 6  # rows named per warning; the rest are counted


@dataclass
class Explanation:
    facts: list[tuple[str, str]] = field(default_factory=list)  # (what, found)
    warnings: list[str] = field(default_factory=list)


def _named(ids: list[str]) -> str:
    shown = ", ".join(ids[:MAX_NAMED])
    return shown + (f" and {len(ids) - MAX_NAMED} more" if len(ids) > MAX_NAMED else "")


def facts(s: Scenario) -> list[tuple[str, str]]:
    """Counts and names: jurisdictions, sites, services, data classes, clouds."""
    per_j = Counter(x.jurisdiction for x in s.sites)
    dem_j = Counter(d.jurisdiction for d in s.demand)
    devices = Counter[str]()
    for d in s.demand:
        devices[d.service] += d.devices
    out = [
        (
            "jurisdictions",
            ", ".join(
                f"{c}" + (f" ({per_j[c]} sites, {dem_j[c]} demand)" if per_j[c] or dem_j[c] else "")
                for c in s.tree.codes
            ),
        ),
        ("sites", f"{len(s.sites)} ({sum(1 for x in s.sites if x.existing)} with modules installed)"),
        (
            "services",
            ", ".join(
                f"{sv.id} (p95 {sv.slo.p95_ms:g} ms)"
                if sv.slo.p95_ms
                else f"{sv.id} (p99 {sv.slo.p99_ms:g} ms)"
                for sv in s.services
            ),
        ),
        ("devices by service", ", ".join(f"{k} {v:,}" for k, v in devices.most_common())),
        (
            "data classes",
            ", ".join(
                f"{c} (process in {p.process_in}, tier ≥ {p.min_security_tier})"
                for c, p in s.policies.data_classes.items()
            ),
        ),
        ("cloud regions", ", ".join(f"{r.id} ({r.jurisdiction})" for r in s.cloud_regions) or "none"),
    ]
    return out


def outside_warnings(s: Scenario) -> list[str]:
    """Demand and cloud rows outside the area of their own jurisdiction (sites are errors already), and
    rows outside every jurisdiction that has an area."""
    shapes = jurisdiction_rings(s)
    codes = [c for c in s.tree.codes if c in shapes or s.tree.bbox[c] is not None]
    if not codes:
        return []
    rows = [("demand", d.id, d.lat, d.lon, d.jurisdiction) for d in s.demand] + [
        ("cloud region", r.id, r.lat, r.lon, r.jurisdiction) for r in s.cloud_regions
    ]
    lat = np.array([r[2] for r in rows])
    lon = np.array([r[3] for r in rows])
    inside: dict[str, np.ndarray] = {}
    for c in codes:
        if c in shapes:
            inside[c] = contains(shapes[c], lat, lon)
        else:
            b = s.tree.bbox[c]
            assert b is not None
            inside[c] = (lat >= b[0]) & (lat <= b[2]) & (lon >= b[1]) & (lon <= b[3])
    in_any = np.any(np.stack(list(inside.values())), axis=0)
    # judged only where the row's own jurisdiction (or one above it) has an area: a region in a
    # jurisdiction given without a box or shape (US in a European scenario) is not "nowhere"
    known = [any(a in inside for a in s.tree.ancestors(r[4])) for r in rows]
    nowhere = [
        f"{r[0]} {r[1]} at ({r[2]:g}, {r[3]:g})" for k, r in enumerate(rows) if known[k] and not in_any[k]
    ]
    warnings = []
    if nowhere:
        warnings.append(f"{len(nowhere)} rows lie outside every jurisdiction's area: {_named(nowhere)}")
    wrong = [
        f"{r[0]} {r[1]} ({r[4]})"
        for k, r in enumerate(rows)
        if in_any[k] and any(a in inside and not inside[a][k] for a in s.tree.ancestors(r[4]))
    ]
    if wrong:
        warnings.append(f"{len(wrong)} rows lie outside the area of their own jurisdiction: {_named(wrong)}")
    return warnings


def reach_warnings(s: Scenario, p: PlanningProblem) -> list[str]:
    """Sites that no demand can reach within its SLO; demand that nothing may legally serve."""
    warnings = []
    n_rows = p.n_site_rows  # one row per site with a build option
    on_site = p.row_site
    reach = p.slo_ok[:n_rows].any(axis=1)  # (site rows,) some demand within SLO
    useful = np.zeros(len(s.sites), dtype=bool)
    useful[on_site] = reach
    offered = np.zeros(len(s.sites), dtype=bool)
    offered[on_site] = True
    lonely = [s.sites[i].id for i in np.flatnonzero(offered & ~useful)]
    if lonely:
        d_km = distance_matrix_km(
            np.array([x.lat for x in s.sites if x.id in lonely]),
            np.array([x.lon for x in s.sites if x.id in lonely]),
            np.array([d.lat for d in s.demand]),
            np.array([d.lon for d in s.demand]),
        ).min(axis=1)
        detail = [f"{sid} (nearest demand {km:,.1f} km)" for sid, km in zip(lonely, d_km, strict=True)]
        warnings.append(
            f"{len(lonely)} sites have no demand within any service's SLO reach: {_named(detail)}"
        )
    no_build = [x.id for i, x in enumerate(s.sites) if not offered[i]]
    if no_build:
        warnings.append(
            f"{len(no_build)} sites can host no module within their grid power cap: {_named(no_build)}"
        )
    legal = p.sovereign & p.tier_ok
    nothing_legal = [s.demand[c].id for c in np.flatnonzero(~legal.any(axis=0))]
    if nothing_legal:
        warnings.append(
            f"{len(nothing_legal)} demand sources have no site or cloud that may legally serve them "
            f"(sovereignty or security tier): {_named(nothing_legal)}"
        )
    servable = legal & p.slo_ok
    stuck = [s.demand[c].id for c in np.flatnonzero(legal.any(axis=0) & ~servable.any(axis=0))]
    if stuck:
        warnings.append(
            f"{len(stuck)} demand sources have legal targets but none within their SLO (the plan needs "
            f"--allow-unserved): {_named(stuck)}"
        )
    return warnings


def explain(s: Scenario) -> Explanation:
    ex = Explanation(facts=facts(s))
    ex.warnings += outside_warnings(s)
    try:
        problem = build_problem(s, allow_unserved=True)
    except ValueError as exc:
        ex.warnings.append(str(exc))
        return ex
    ex.warnings += reach_warnings(s, problem)
    return ex
