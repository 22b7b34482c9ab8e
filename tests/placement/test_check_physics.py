"""The checker's own sizing, round trip and M/M/c quantile against the solver's: each checks the other.

check-plan must not share code with the solver (a bug in `size_demand` or `device_rtt_ms` would pass
itself), so placement/check_physics.py re-implements them; here both implementations must agree to 1e-6
relative on the built-in examples, the tiny test scenario and a wide random range of queues, and an AST
check proves the checker imports none of the solver's sizing or latency code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from microdc.examples import resolve_scenario
from microdc.model import Scenario, load_scenario
from microdc.physics.geo import great_circle_km
from microdc.physics.latency import LatencyModel
from microdc.physics.latency import device_rtt_ms as device_rtt_ms_physics
from microdc.placement import check_physics as mine
from microdc.placement.problem import device_rtt_ms, response_quantile_ms, size_demand

TINY = Path(__file__).parents[1] / "data" / "tiny"
RTOL = 1e-6


@pytest.fixture(scope="module", params=["eu-sovereign", "melbourne", "tiny"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return load_scenario(TINY if request.param == "tiny" else resolve_scenario(request.param))


def test_sizing_agrees(scenario: Scenario) -> None:
    a, b = size_demand(scenario), mine.demand_sizes(scenario)
    for name in (
        "mean_rps",
        "peak_rps",
        "cores_peak",
        "busy_cores_mean",
        "memory_gb",
        "service_s",
        "slo_p95_ms",
        "slo_p99_ms",
    ):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=RTOL, err_msg=name)
    if scenario.name == "melbourne":  # a diurnal profile: the peak factor is really exercised
        assert np.any(a.peak_rps > a.mean_rps * 1.1)


def test_round_trip_agrees(scenario: Scenario) -> None:
    s = scenario
    d_lat = np.array([d.lat for d in s.demand])[:, None]
    d_lon = np.array([d.lon for d in s.demand])[:, None]
    t_lat = np.array([x.lat for x in s.sites] + [r.lat for r in s.cloud_regions])[None, :]
    t_lon = np.array([x.lon for x in s.sites] + [r.lon for r in s.cloud_regions])[None, :]
    theirs_km = great_circle_km(d_lat, d_lon, t_lat, t_lon)
    ours_km = mine.haversine_km(d_lat, d_lon, t_lat, t_lon)
    np.testing.assert_allclose(ours_km, theirs_km, rtol=RTOL, atol=1e-9)
    model = LatencyModel(access_ms=s.network.access_ms)
    net = s.network
    for kind in ("site", "cloud"):
        theirs = device_rtt_ms(kind, theirs_km, net, model)
        ours = mine.round_trip_ms(
            ours_km,
            kind == "cloud",
            access_ms=net.access_ms,
            edge_extra_ms=net.edge_extra_ms,
            metro_radius_km=net.metro_radius_km,
        )
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, err_msg=kind)
    if s.name == "eu-sovereign":  # MDCs in other cities: both sides of the metro radius are exercised
        assert (theirs_km[:, : len(s.sites)] > net.metro_radius_km).any()
        assert (theirs_km[:, : len(s.sites)] <= net.metro_radius_km).any()


def test_round_trip_agrees_across_the_metro_radius() -> None:
    """Both implementations, over distances around and far beyond the radius, for MDCs and clouds."""
    km = np.concatenate([np.linspace(0.0, 200.0, 401), [79.999, 80.0, 80.001, 2000.0, 15000.0]])
    for radius in (10.0, 80.0, 150.0):
        for cloud in (False, True):
            theirs = device_rtt_ms_physics(
                km, cloud, access_ms=10.0, edge_extra_ms=0.5, metro_radius_km=radius
            )
            ours = mine.round_trip_ms(km, cloud, access_ms=10.0, edge_extra_ms=0.5, metro_radius_km=radius)
            np.testing.assert_allclose(ours, theirs, rtol=RTOL, err_msg=f"radius {radius}, cloud {cloud}")


def test_response_quantile_agrees(scenario: Scenario) -> None:
    s = scenario
    size = mine.demand_sizes(s)
    pool = float(min(v.cores for v in s.catalog.servers))
    for q in (0.5, 0.95, 0.99):
        theirs = response_quantile_ms(size.service_s, size.cores_peak, size.utilization, q, pool)
        ours = mine.mmc_quantile_ms(size.service_s, size.cores_peak, size.utilization, q, pool)
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, err_msg=f"q={q}")


def test_response_quantile_agrees_over_a_wide_range() -> None:
    rng = np.random.default_rng(7)
    n = 400
    svc = rng.uniform(1e-4, 0.5, n)
    cores = np.exp(rng.uniform(-3.0, np.log(3000.0), n))
    util = rng.uniform(0.05, 0.98, n)
    for q in (0.5, 0.9, 0.99, 0.999):
        theirs = response_quantile_ms(svc, cores, util, q, 1.0)
        ours = mine.mmc_quantile_ms(svc, cores, util, q, 1.0)
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, err_msg=f"q={q}")
    # One server, utilization ρ: the sojourn time is Exp(μ(1 − ρ)), a closed form neither implementation uses.
    t = mine.mmc_quantile_ms(np.array([0.01]), np.array([1.0]), np.array([0.6]), 0.95, 1.0)
    np.testing.assert_allclose(t, 1000 * -np.log(0.05) / (100 * 0.4), rtol=1e-9)


def test_erlang_c_closed_forms() -> None:
    # c = 1: P(wait) = ρ; c = 2: 2ρ² / (1 + ρ).
    rho = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(mine.erlang_c(rho, np.ones(3, np.int64)), rho, rtol=1e-12)
    np.testing.assert_allclose(
        mine.erlang_c(2 * rho, np.full(3, 2, np.int64)), 2 * rho**2 / (1 + rho), rtol=1e-12
    )


FORBIDDEN_MODULES = {
    "microdc.placement.problem",
    "microdc.physics.queueing",
    "microdc.physics.geo",
    "microdc.policy",
}
FORBIDDEN_NAMES = {
    "size_demand",
    "device_rtt_ms",
    "response_quantile_ms",
    "mmc_response_quantile_s",
    "build_problem",
    "great_circle_km",
    "distance_matrix_km",
    "PolicyBook",
}


@pytest.mark.parametrize("module", ["check.py", "check_physics.py"])
def test_checker_imports_no_solver_code(module: str) -> None:
    # The file of the imported module (under mutation testing, the mutated copy on PYTHONPATH).
    tree = ast.parse((Path(mine.__file__).parent / module).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            assert mod not in FORBIDDEN_MODULES and not mod.startswith("microdc.policy"), mod
            names = {a.name for a in node.names}
            assert not names & FORBIDDEN_NAMES, (mod, names & FORBIDDEN_NAMES)
        elif isinstance(node, ast.Import):
            for a in node.names:
                assert a.name not in FORBIDDEN_MODULES, a.name
        elif isinstance(node, ast.Name | ast.Attribute):
            name = node.id if isinstance(node, ast.Name) else node.attr
            assert name not in FORBIDDEN_NAMES, name
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            # LatencyModel is imported for its calibrated constants only, never to compute a round trip.
            assert node.func.attr not in {"rtt_ms", "matrix_ms", "one_way_ms", "route_inflation"}, (
                node.func.attr
            )
