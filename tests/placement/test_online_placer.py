"""The online placer: registry, reasons, capacity, degraded and unserved, and sovereignty always."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.sim.twin import twin_plan, write_twin

from microdc.model import Scenario, load_scenario
from microdc.placement.online import (
    MANDATORY_FILTERS,
    PLUGIN_NAMES,
    Code,
    FleetState,
    Outcome,
    Placer,
    PlacerConfig,
    PlacerError,
    Registry,
    ScorePlugin,
    WorkloadTable,
    default_registry,
    fleet_from_plan,
    workloads_for_demand,
    workloads_from_plan,
)
from microdc.placement.online.plugins.latency import Latency
from microdc.placement.plan import Assignment, BuiltSite, Plan
from microdc.policy import PolicyBook
from microdc.sim.synthetic import synthetic_plan, synthetic_scenario


@pytest.fixture
def twin(tmp_path) -> Scenario:  # type: ignore[no-untyped-def]
    return load_scenario(write_twin(tmp_path / "twin", n_plus=1))


def _setup(s: Scenario, plan: Plan | None = None) -> tuple[Placer, FleetState, WorkloadTable]:
    plan = plan or twin_plan()
    fleet = fleet_from_plan(s, plan)
    table, _ = workloads_from_plan(s, plan, fleet)
    return Placer.for_scenario(s), fleet, table


def test_plugin_names_are_one_list_and_registry_rejects_duplicates() -> None:
    reg = default_registry()
    assert reg.names() == list(PLUGIN_NAMES)
    assert len(set(PLUGIN_NAMES)) == len(PLUGIN_NAMES)
    with pytest.raises(PlacerError, match="already registered"):
        reg.register("latency", Latency)
    with pytest.raises(PlacerError, match="unknown plugin 'telepathy'"):
        Placer(PolicyBook(_SYN.tree, _SYN.policies.data_classes), PlacerConfig(scores={"telepathy": 1.0}))
    for name in MANDATORY_FILTERS:
        with pytest.raises(PlacerError, match="mandatory"):
            PlacerConfig(filters=tuple(f for f in PlacerConfig().filters if f != name))


def test_custom_plugin_via_registry(twin: Scenario) -> None:
    class PreferLyon(ScorePlugin):
        name: ClassVar[str] = "prefer_lyon"

        def score(self, state, wl, rows, fleet, feasible):  # type: ignore[no-untyped-def]
            return np.array([100.0 if i == "lyon" else 0.0 for i in fleet.ids])

    reg = default_registry()
    reg.register("prefer_lyon", PreferLyon)
    placer = Placer(
        PolicyBook(twin.tree, twin.policies.data_classes),
        PlacerConfig(scores={"prefer_lyon": 10.0, "latency": 0.1}),
        reg,
    )
    _, fleet, table = _setup(twin)
    res = placer.place(replace(table.take([2]), current=np.array([-1])), fleet)
    assert fleet.ids[int(res.target[0])] == "lyon"


def test_everything_fits_where_planned(twin: Scenario) -> None:
    placer, fleet, table = _setup(twin)
    res = placer.place(table, fleet)
    assert res.reasons == ["fits"] * 3 and not res.moved.any()
    assert (res.outcome == Outcome.PLACED).all() and (res.code == Code.SUCCESS).all()


def test_outage_moves_to_legal_site_and_reasons_distinguish_never_from_not_now(twin: Scenario) -> None:
    placer, fleet, table = _setup(twin)
    ids = list(fleet.ids)
    down = np.array([i in ("paris", "lyon") for i in ids])
    res = placer.place(table, fleet.with_state(alive=~down, accepting=~down))
    by = dict(zip(table.ids, range(len(table)), strict=True))
    # cams-paris: personal data from FR may only go to FR sites, both down: not now.
    k = by["cams-paris"]
    assert res.outcome[k] == Outcome.UNSERVED and res.code[k] == Code.UNSCHEDULABLE
    assert res.reasons[k] == "not now: every allowed site is down, cut off or not accepting work"
    # sensors-lyon: public, may go anywhere: moves.
    k = by["sensors-lyon"]
    assert (
        res.outcome[k] == Outcome.PLACED and res.moved[k] and ids[int(res.target[k])] not in ("paris", "lyon")
    )
    # untrusted Berlin and Hamburg: never (tier) for German personal data.
    untrusted = np.array([i in ("berlin", "hamburg") for i in ids])
    res = placer.place(table, fleet.with_state(trusted=~untrusted))
    k = by["cams-berlin"]
    assert res.outcome[k] == Outcome.UNSERVED and res.code[k] == Code.UNRESOLVABLE
    assert res.reasons[k] == (
        "unschedulable: no site allowed for 'personal' from DE has security tier >= 2 "
        "(untrusted sites count as tier 1)"
    )


def test_sovereignty_reason_is_exact(twin: Scenario) -> None:
    plan = twin_plan().model_copy(
        update={
            "sites": [s for s in twin_plan().sites if s.site != "paris" and s.site != "lyon"],
            "assignments": [a for a in twin_plan().assignments if a.demand == "cams-berlin"],
        }
    )
    placer, fleet, _ = _setup(twin, plan)
    wl = workloads_for_demand(twin, np.array([1]))  # cams-paris, with no French site built
    res = placer.place(wl, fleet)
    assert res.code[0] == Code.UNRESOLVABLE
    assert res.reasons[0] == "unschedulable: no site inside the jurisdictions allowed for 'personal' from FR"


def test_capacity_is_never_overcommitted_and_largest_go_first(twin: Scenario) -> None:
    placer, fleet, _ = _setup(twin)
    rng = np.random.default_rng(0)
    n = 400
    d = rng.integers(0, 3, n)
    wl = workloads_for_demand(twin, d, rng.uniform(0.05, 1.0, n))
    small = fleet.with_state(capacity=np.where(np.isfinite(fleet.capacity), fleet.capacity * 0.05, np.inf))
    res = placer.place(wl, small)
    placed = res.target >= 0
    used = np.zeros_like(small.capacity)
    np.add.at(
        used,
        res.target[placed & (res.outcome == Outcome.PLACED)],
        wl.demand[placed & (res.outcome == Outcome.PLACED)],
    )
    finite = np.isfinite(small.capacity)
    assert (used[finite] <= small.capacity[finite] + 1e-9).all()
    personal = np.array([wl.classes[c] == "personal" for c in wl.data_class])
    lost = (res.outcome == Outcome.UNSERVED) & personal
    assert lost.any()  # tiny capacity: some personal data cannot be served in its country
    assert all(r.startswith("not now: no allowed site has") for r in np.array(res.reasons)[lost])


def test_degraded_kept_in_place_over_capacity(twin: Scenario) -> None:
    placer, fleet, table = _setup(twin)
    tiny = fleet.with_state(capacity=np.where(np.isfinite(fleet.capacity), 1e-3, np.inf))
    res = placer.place(table, tiny)
    k = table.ids.index("cams-paris")
    assert res.outcome[k] == Outcome.DEGRADED and fleet.ids[int(res.target[k])] == "paris"
    assert res.reasons[k].startswith("degraded: kept at paris over capacity (not now: no allowed site has")


def test_slo_fallback_serves_beyond_slo(twin: Scenario) -> None:
    plan = twin_plan().model_copy(
        update={
            "sites": [
                BuiltSite(
                    site="berlin",
                    module="cab",
                    server="srv",
                    servers=2,
                    cores=64,
                    memory_gb=512,
                    it_kw=0.8,
                    annual_pue=1.1,
                    fixed_cost=1.0,
                )
            ],
            "assignments": [
                Assignment(
                    demand="cams-berlin", target="berlin", kind="site", fraction=1.0, rtt_ms=0, p95_ms=0
                )
            ],
        }
    )
    placer, fleet, _ = _setup(twin, plan)
    wl = workloads_for_demand(
        twin, np.array([2])
    )  # sensors-lyon (public) far from Berlin: SLO 500 ms is fine
    assert placer.place(wl, fleet).reasons == ["fits"]
    strict = replace(wl, slo_p95_ms=np.array([1.0]))
    res = placer.place(strict, fleet)
    assert res.outcome[0] == Outcome.DEGRADED and res.code[0] == Code.UNRESOLVABLE
    assert res.reasons[0].startswith("degraded: served beyond its SLO at ")
    assert "unschedulable: no allowed site meets the 'batch' SLO (p95 <= 1 ms)" in res.reasons[0]
    no_fallback = Placer.for_scenario(twin, PlacerConfig(slo_fallback=False)).place(strict, fleet)
    assert no_fallback.outcome[0] == Outcome.UNSERVED


def test_deterministic(twin: Scenario) -> None:
    placer, fleet, _ = _setup(twin)
    wl = workloads_for_demand(twin, np.arange(3).repeat(50))
    a, b = placer.place(wl, fleet), placer.place(wl, fleet)
    assert np.array_equal(a.target, b.target) and a.reasons == b.reasons


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_never_places_outside_sovereignty_or_tier(seed: int) -> None:
    s = _SYN
    rng = np.random.default_rng(seed)
    fleet = _SYN_FLEET
    n = len(fleet)
    state = fleet.with_state(
        alive=rng.random(n) < 0.7,
        accepting=rng.random(n) < 0.6,
        trusted=rng.random(n) < 0.7,
        capacity=np.where(np.isfinite(fleet.capacity), fleet.capacity * rng.uniform(0, 1, (n, 1)), np.inf),
    )
    rows = rng.choice(len(s.demand), 300, replace=False)
    current = np.where(rng.random(300) < 0.5, rng.integers(-1, n, 300), -1)
    wl = workloads_for_demand(s, rows, rng.uniform(0.1, 1, 300), current=current)
    res = Placer.for_scenario(s).place(wl, state)
    book = PolicyBook(s.tree, s.policies.data_classes)
    has = np.flatnonzero(res.target >= 0)
    t = res.target[has]
    classes = wl.class_names(has)
    sov = book.sovereignty_mask(classes, wl.origin[has], state.jurisdiction[t])
    tier = book.security_mask(classes, np.where(state.trusted[t], state.tier[t], 1))
    assert np.diagonal(sov).all() and np.diagonal(tier).all()
    assert state.alive[t].all()


_SYN = synthetic_scenario(60, 2000, seed=3)
_SYN_FLEET = fleet_from_plan(_SYN, synthetic_plan(_SYN))


def test_throughput_sanity() -> None:
    """Far above 5,000/s on a small fleet (the real benchmark: benchmarks/placer_throughput.py)."""
    import time

    wl = workloads_for_demand(_SYN, np.arange(len(_SYN.demand)))
    placer = Placer.for_scenario(_SYN)
    t0 = time.perf_counter()
    res = placer.place(wl, _SYN_FLEET)
    dt = time.perf_counter() - t0
    assert (res.outcome == Outcome.PLACED).mean() > 0.99
    assert len(wl) / dt > 5_000  # generous: CI machines are noisy


def test_unknown_registry_plugin_message() -> None:
    reg = Registry()
    with pytest.raises(PlacerError, match="unknown plugin 'latency'; known: "):
        reg.create("latency", None)  # type: ignore[arg-type]


def test_geometry_knows_the_metro_radius() -> None:
    """The placer's fast float32 RTT matrix is the shared device_rtt_ms on both sides of the metro
    radius: an MDC 2,000 km off is reached over the Internet path, not metro fibre."""
    from microdc.physics.geo import great_circle_km
    from microdc.physics.latency import device_rtt_ms
    from microdc.placement.online.network import TargetGeometry

    lat, lon = np.array([48.0, 48.3, 60.0, 50.0]), np.array([11.0, 11.2, 11.0, 8.7])
    cloud = np.array([False, False, False, True])
    geo = TargetGeometry(lat, lon, cloud, 10.0, 0.5, 80.0)
    dev_lat, dev_lon = np.array([48.1, 45.0]), np.array([11.1, 5.0])
    got = geo.rtt_ms(dev_lat, dev_lon)
    km = great_circle_km(dev_lat[:, None], dev_lon[:, None], lat[None, :], lon[None, :])
    want = device_rtt_ms(km, cloud[None, :], access_ms=10.0, edge_extra_ms=0.5, metro_radius_km=80.0)
    assert (km[:, :3] > 80.0).any() and (km[:, :3] <= 80.0).any()
    np.testing.assert_allclose(got, want, rtol=1e-4)
