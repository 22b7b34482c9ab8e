"""The per-site planning problem (placement.problem) against the dense per-option construction it
replaced: on random small scenarios the solver's arrays are the same, every per-pair lookup (round
trip, p95, cost lines, legality) equals the dense (F, C) value, and the planner's optimum equals the
plain HiGHS MILP on the dense problem."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from unittest.mock import patch

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from microdc.model import Scenario
from microdc.physics.geo import distance_matrix_km
from microdc.placement import ledger
from microdc.placement.facility import FacilityProblem
from microdc.placement.milp import solve_restricted
from microdc.placement.problem import (
    CLOUD_PARTS,
    SITE_PARTS,
    PlanningProblem,
    build_problem,
    device_rtt_ms,
    response_quantile_ms,
)
from microdc.placement.solve import solve_facility
from microdc.policy import PolicyBook, slo_mask

CENTRE = (45.76, 4.84)


def small_scenario(seed: int, n_sites: int, n_rows: int, split: int, n_plus: int) -> Scenario:
    """A random little city: sites of two tiers and two grid caps (so a site offers 1-2 options, or
    none), demand of two services and two data classes, a domestic and a foreign cloud region."""
    rng = np.random.default_rng(seed)
    lat = CENTRE[0] + rng.uniform(-0.6, 0.6, n_sites)  # up to ~65 km: some pairs leave the metro
    lon = CENTRE[1] + rng.uniform(-0.6, 0.6, n_sites)
    sites = [
        {
            "id": f"s{i}",
            "lat": float(lat[i]),
            "lon": float(lon[i]),
            "jurisdiction": "FR",
            "security_tier": int(rng.integers(1, 4)),
            "grid_power_kw": float(rng.choice([3.0, 12.0, 25.0])),
            "annual_cost": float(rng.choice([2000.0, 4000.0, 4000.0])),
        }
        for i in range(n_sites)
    ]
    demand: list[dict[str, Any]] = []
    for j in range(n_rows):
        personal = bool(rng.random() < 0.5)
        demand.append(
            {
                "id": f"d{j}",
                "lat": float(CENTRE[0] + rng.uniform(-0.6, 0.6)),
                "lon": float(CENTRE[1] + rng.uniform(-0.6, 0.6)),
                "jurisdiction": "FR",
                "devices": int(rng.integers(5, 400)),
                "data_class": "personal" if personal else "public",
                "service": "video" if personal else "telemetry",
                "rate_per_device_rps": float(rng.choice([0.2, 1.0, 2.0])),
                "data_gb_per_day": float(rng.choice([0.0, 0.5])),
            }
        )
    data: dict[str, Any] = {
        "name": f"random-{seed}",
        "jurisdictions": [{"code": "FR", "bbox": [41.0, -5.5, 51.5, 10.0]}, {"code": "US"}],
        "sites": sites,
        "catalog": {
            "modules": [
                {
                    "id": "cabinet",
                    "rack_units": 12,
                    "max_it_kw": 8,
                    "cooling": {"kind": "free_air"},
                    "ups": {"energy_kwh": 4},
                    "capex": 25000,
                    "lifetime_years": 10,
                    "server_counts": [2, 6],
                }
            ],
            "servers": [
                {"id": "srv", "cores": 32, "memory_gb": 256, "idle_w": 110, "peak_w": 380, "capex": 9000}
            ],
        },
        "cloud_regions": [
            {
                "id": "eu-west",
                "lat": 48.86,
                "lon": 2.35,
                "jurisdiction": "FR",
                "price_per_core_hour": 0.05,
                "egress_per_gb": 0.09,
            },
            {
                "id": "us-east",
                "lat": 39.0,
                "lon": -77.5,
                "jurisdiction": "US",
                "price_per_core_hour": 0.04,
                "egress_per_gb": 0.08,
            },
        ],
        "services": [
            {
                "id": "video",
                "cpu_seconds_per_request": 0.004,
                "memory_gb_per_instance": 2,
                "requests_per_instance": 100,
                "payload_kb": 100,
                "slo": {"p95_ms": 40, "p99_ms": 60},
            },
            {
                "id": "telemetry",
                "cpu_seconds_per_request": 0.002,
                "memory_gb_per_instance": 1,
                "requests_per_instance": 1000,
                "payload_kb": 1,
                "slo": {"p99_ms": 120},  # a p99-only SLO: the far region misses it
            },
        ],
        "profiles": {"day": {"kind": "diurnal", "hourly": [0.5] * 12 + [1.5] * 12}},
        "demand": [{**d, "profile": "day"} for d in demand],
        "policies": {
            "data_classes": {
                "personal": {"process_in": "origin", "min_security_tier": 2},
                "public": {"process_in": "any"},
            },
            "max_serving_sites": split,
            "redundancy": {"n_plus": n_plus},
        },
        "timeseries": {
            "carbon": {"fr": {"format": "constant", "constant_gco2_per_kwh": 60.0}},
            "weather": {"lyon": {"format": "constant", "constant_c": 14.0}},
        },
    }
    for x in data["sites"]:
        x.update(grid_zone="fr", climate="lyon")
    return Scenario.model_validate(data)


def dense_reference(pp: PlanningProblem) -> dict[str, np.ndarray]:
    """The (F, C) arrays as the old builder made them: the distance recomputed for every option."""
    s = pp.scenario
    n_opt = pp.n_sites_options
    t_lat = np.array([s.sites[o.site].lat for o in pp.options] + [r.lat for r in s.cloud_regions])
    t_lon = np.array([s.sites[o.site].lon for o in pp.options] + [r.lon for r in s.cloud_regions])
    dist = distance_matrix_km(t_lat, t_lon, [d.lat for d in s.demand], [d.lon for d in s.demand])
    rtt = np.empty_like(dist)
    rtt[:n_opt] = device_rtt_ms("site", dist[:n_opt], s.network, pp.latency)
    rtt[n_opt:] = device_rtt_ms("cloud", dist[n_opt:], s.network, pp.latency)
    svc = {v.id: v for v in s.services}
    util = np.array([svc[d.service].target_utilization for d in s.demand])
    pool = float(min(v.cores for v in s.catalog.servers))
    dem = pp.demand
    p95 = rtt + response_quantile_ms(dem.service_s, dem.cores_peak, util, 0.95, pool)[None, :]
    p99 = rtt + response_quantile_ms(dem.service_s, dem.cores_peak, util, 0.99, pool)[None, :]
    slo = slo_mask(p95.T, dem.slo_p95_ms).T & slo_mask(p99.T, dem.slo_p99_ms).T
    book = PolicyBook(s.tree, s.policies.data_classes)
    classes = [d.data_class for d in s.demand]
    origin = s.tree.indices(d.jurisdiction for d in s.demand)
    t_jur = s.tree.indices(
        [s.sites[o.site].jurisdiction for o in pp.options] + [r.jurisdiction for r in s.cloud_regions]
    )
    t_tier = np.array(
        [s.sites[o.site].security_tier for o in pp.options] + [r.security_tier for r in s.cloud_regions]
    )
    legal = book.sovereignty_mask(classes, origin, t_jur).T & book.security_mask(classes, t_tier).T
    resp = np.array([svc[d.service].response_kb for d in s.demand])
    req = np.array([svc[d.service].payload_kb for d in s.demand])
    year = 8760.0 * 3600.0
    gb = ledger.gigabytes(dem.mean_rps, req, year) + ledger.gigabytes(dem.mean_rps, resp, year)
    cost = np.zeros_like(dist)
    cost[:n_opt] = (
        dem.busy_cores_mean[None, :] * pp.dyn_w_per_core[:, None] * 8.76 * pp.energy_price[:, None]
        + gb[None, :] * ledger.transport_price_per_gb(dist[:n_opt], s.network)
        + pp.sync_cost[None, :]
    )
    cost[n_opt:] = sum(pp.cloud_parts[k] for k in CLOUD_PARTS)
    return {"rtt": rtt, "p95": p95, "legal": legal, "allowed": legal & slo, "cost": cost}


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    return small_scenario(
        draw(st.integers(0, 2**31)),
        draw(st.integers(2, 7)),
        draw(st.integers(2, 9)),
        draw(st.sampled_from([1, 2, 8])),
        draw(st.sampled_from([0, 0, 1])),
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_per_site_problem_equals_the_dense_one(s: Scenario) -> None:
    pp = build_problem(s, allow_unserved=True)
    ref = dense_reference(pp)
    fp = pp.facility
    assert np.array_equal(fp.allowed, ref["allowed"])
    assert np.allclose(fp.assign_cost, np.where(ref["allowed"], ref["cost"], 0.0), rtol=1e-12, atol=1e-9)
    f, c = (a.ravel() for a in np.indices(fp.allowed.shape))
    assert np.allclose(pp.pair_rtt(f, c), ref["rtt"].ravel(), rtol=1e-12)
    assert np.allclose(pp.rtt_rows(pp.target_row), ref["rtt"], rtol=1e-12)
    # Pair distances equal the matrix the build used bit for bit (a class boundary cannot flip).
    full = distance_matrix_km(pp.target_lat, pp.target_lon, pp.demand_lat, pp.demand_lon)
    t_all = pp.target_row[f]
    assert np.array_equal(pp.pair_km(t_all, c), full[t_all, c])
    some = np.arange(0, fp.n_customers, 2)
    assert np.allclose(pp.rtt_rows(pp.target_row, some), ref["rtt"][:, some], rtol=1e-12)
    assert np.allclose(pp.pair_quantile_ms(f, c, 1), ref["p95"].ravel(), rtol=1e-12)
    assert np.array_equal(pp.pair_allowed(f, c), ref["allowed"].ravel())
    assert np.allclose(pp.pair_raw_cost(f, c), ref["cost"].ravel(), rtol=1e-12, atol=1e-9)
    parts = pp.pair_parts(f, c)
    assert list(parts) == [*SITE_PARTS, *CLOUD_PARTS]
    assert np.allclose(sum(parts.values()), ref["cost"].ravel(), rtol=1e-12, atol=1e-9)
    # The same optimum as the plain MILP on the dense problem (no aggregation, no Lagrangian).
    dense = FacilityProblem(
        fixed_cost=fp.fixed_cost,
        capacity=fp.capacity,
        usage=fp.usage,
        assign_cost=ref["cost"],  # unmasked: the problem masks it itself
        allowed=ref["allowed"],
        group=fp.group,
        fixed_open=fp.fixed_open,
        failure_domain=fp.failure_domain,
        n_plus=fp.n_plus,
        unserved_penalty=fp.unserved_penalty,
        max_targets=fp.max_targets,
    )
    kw: dict[str, Any] = {"time_limit_s": 60.0, "mip_rel_gap": 1e-9, "threads": 1}
    mine = solve_facility(fp, **kw)
    plain = solve_restricted(dense, formulation="textbook", **kw)
    assert mine.status == plain.status == "optimal"
    assert mine.objective == pytest.approx(plain.objective, rel=1e-7, abs=1e-6)
    assert fp.violations(mine) == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_split_limit_neighbourhood_claims_only_the_relaxed_bound(s: Scenario) -> None:
    # Forced onto the neighbourhood of the relaxed plan (as at city scale), the split-limited solve
    # is a heuristic: its plan is feasible and its bound never above the true limited optimum.
    from microdc.placement import solve

    single = s.model_copy(update={"policies": s.policies.model_copy(update={"max_serving_sites": 1})})
    fp = build_problem(single, allow_unserved=True).facility
    kw: dict[str, Any] = {"time_limit_s": 60.0, "mip_rel_gap": 1e-9, "threads": 1}
    exact = solve_restricted(fp, **kw)
    with patch.object(solve, "SPLIT_FULL_MAX_PAIRS", 0):
        near = solve_facility(fp, **kw)
    tol = 1e-6 * max(1.0, abs(exact.objective))
    assert fp.violations(near) == []
    assert near.objective >= exact.objective - tol
    assert near.lower_bound <= exact.objective + tol
    if near.status == "optimal":
        assert near.objective == pytest.approx(exact.objective, rel=1e-7, abs=1e-6)


@st.composite
def replicated(draw: st.DrawFn) -> FacilityProblem:
    """Sites of a few kinds, each kind repeated: 1-2 options per site (one may be built), a customer's
    cost and legality the same at every site of a kind; sometimes an unlimited cloud and penalties."""
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    n_kinds, n_c = draw(st.integers(1, 3)), draw(st.integers(2, 5))
    usage = rng.uniform(1, 10, (n_c, 2))
    fixed, cap, cost, allowed, group = [], [], [], [], []
    g = 0
    for _ in range(n_kinds):
        n_opt = draw(st.integers(1, 2))
        kind = [
            (
                float(rng.uniform(20, 80)) * (j + 1),
                rng.uniform(5, 25, 2) * (j + 1),
                rng.uniform(1, 30, n_c),
                rng.random(n_c) < 0.8,
            )
            for j in range(n_opt)
        ]
        for _ in range(draw(st.integers(1, 4))):
            for fx, cp, co, al in kind:
                fixed.append(fx)
                cap.append(cp)
                cost.append(co)
                allowed.append(al)
                group.append(g)
            g += 1
    if draw(st.booleans()):
        fixed.append(0.0)
        cap.append(np.full(2, np.inf))
        cost.append(rng.uniform(40, 90, n_c))
        allowed.append(np.ones(n_c, bool))
        group.append(-1)
    return FacilityProblem.build(
        np.array(fixed),
        np.array(cap),
        usage,
        np.array(cost),
        allowed=np.array(allowed),
        group=np.array(group),
        unserved_penalty=rng.uniform(60, 200, n_c) if draw(st.booleans()) else None,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replicated())
def test_interchangeable_options_keep_the_optimum(p: FacilityProblem) -> None:
    from microdc.placement.classes import applies, classify

    kw: dict[str, Any] = {"time_limit_s": 60.0, "mip_rel_gap": 1e-9, "threads": 1}
    plain = solve_restricted(p, formulation="textbook", **kw)
    mine = solve_facility(p, **kw)
    assert mine.status == plain.status
    if plain.status != "optimal":
        return
    assert mine.objective == pytest.approx(plain.objective, rel=1e-7, abs=1e-6)
    assert mine.lower_bound <= plain.objective + 1e-6
    assert p.violations(mine) == []
    if applies(p, classify(p)):
        assert mine.method.startswith("classes")


def test_time_limit_counts_the_build_and_plan_says_where_time_went() -> None:
    from microdc.placement import solve
    from microdc.placement.planner import MIN_SOLVE_S, PlannerOptions, plan

    s = small_scenario(3, 5, 6, 2, 0)
    seen: list[float] = []
    real = solve.solve_facility

    def spy(*args: Any, **kw: Any) -> Any:
        seen.append(kw["time_limit_s"])
        return real(*args, **kw)

    with patch.object(solve, "solve_facility", spy):
        out, _pp, _sol = plan(s, PlannerOptions(time_limit_s=30.0, allow_unserved=True))
    assert len(seen) == 1 and MIN_SOLVE_S <= seen[0] < 30.0
    assert 30.0 - seen[0] == pytest.approx(out.timing["build"], abs=0.05)
    assert {"build", "aggregate", "solve", "plan_file"} <= set(out.timing)
    assert all(v >= 0 for v in out.timing.values())


def _one_kind_problem(**kw: Any) -> FacilityProblem:
    return FacilityProblem.build(
        kw["fixed"],
        np.array(kw["cap"], dtype=np.float64)[:, None],
        np.array(kw["usage"], dtype=np.float64)[:, None],
        np.zeros((len(kw["fixed"]), len(kw["usage"]))),
        group=kw.get("group"),
        unserved_penalty=np.full(len(kw["usage"]), 100.0),
    )


def test_a_neighbourhood_that_misses_the_optimum_keeps_the_relaxed_bound() -> None:
    # Split, two small sites (10 each) hold three sources of 6; single-sourced they cannot, and only
    # the big site (20, dearer) serves all three. The relaxed plan opens the small ones, so its
    # neighbourhood lacks the optimum: the plan is worse and the bound stays the relaxed one (20).
    from microdc.placement import solve

    p = replace(_one_kind_problem(fixed=[10.0, 10.0, 25.0], cap=[10, 10, 20], usage=[6, 6, 6]), max_targets=1)
    kw: dict[str, Any] = {"time_limit_s": 60.0, "mip_rel_gap": 1e-9, "threads": 1}
    assert solve_restricted(p, **kw).objective == pytest.approx(25.0)
    with patch.object(solve, "SPLIT_FULL_MAX_PAIRS", 0):
        near = solve_facility(p, **kw)
    assert near.objective > 25.0 + 1.0 and near.status != "optimal"
    assert near.lower_bound == pytest.approx(20.0)


def test_classes_build_one_option_per_site() -> None:
    # Two interchangeable sites, each a small (10, fixed 10) or a big (20, fixed 30) option; 45 units of
    # demand. Both bigs leave 5 units unserved (20 of penalty); a third module would be cheaper (10) but
    # a site takes one option, so the class MILP must not count more options than it has sites.
    p = _one_kind_problem(
        fixed=[10.0, 30.0, 10.0, 30.0], cap=[10, 20, 10, 20], usage=[25, 20], group=[0, 0, 1, 1]
    )
    kw: dict[str, Any] = {"time_limit_s": 60.0, "mip_rel_gap": 1e-9, "threads": 1}
    mine = solve_facility(p, **kw)
    assert mine.method.startswith("classes")
    plain = solve_restricted(p, formulation="textbook", **kw)
    assert mine.objective == pytest.approx(plain.objective)
    assert p.violations(mine) == []


def test_reassigning_a_split_source_respects_the_room_others_leave() -> None:
    # c1 is split over three sites; under a limit of 1 it moves whole to one, and the cheapest (f0) is
    # nearly full with c0, which stays where it is.
    from microdc.placement.facility import make_solution
    from microdc.placement.solve import reassign_over_limit, targets_per_customer

    p = replace(
        FacilityProblem.build(
            np.zeros(3),
            np.array([10.0, 10.0, 10.0])[:, None],
            np.array([8.0, 6.0])[:, None],
            np.array([[1.0, 1.0], [5.0, 3.0], [5.0, 4.0]]),
        ),
        max_targets=1,
    )
    x = np.array([[1.0, 1 / 3], [0.0, 1 / 3], [0.0, 1 / 3]])
    split = make_solution(p, np.ones(3, bool), x, None, np.zeros(2), lower_bound=0.0, status="heuristic")
    out = reassign_over_limit(p, split, np.array([1]), 10.0, 1e-9, 1)
    assert out is not None
    assert p.violations(out) == []
    assert targets_per_customer(out.x).max() == 1
    assert out.x_dense()[0, 0] == 1.0 and out.x_dense()[1, 1] == pytest.approx(1.0)
    assert out.objective == pytest.approx(1.0 * 1 + 3.0)
