"""Guards of the simulator's hard-rule counters: each test breaks one rule and asserts the summary names it.

The counters (summary.json, docs/simulator.md): ``sovereignty_violations`` and ``security_violations``
((piece, step) pairs that served requests where the data's rule forbids), ``slo_violation_rate`` (overall
and per service in ``latency``), ``unserved`` (requests offered but not served: left unassigned by the
plan, shed by an overloaded queue, or with no legal alive target after a fault) and per fault
``displaced`` / ``re_placed`` / ``unserved``; ``grid_cap_violations``, ``module_kw_violations`` and
``memory_violations`` ((site, step) pairs over the grid cap, the module's IT envelope, the site's memory).
The simulator serves a plan as written: a hand-made plan that routes data where its rule forbids (or
overloads a site) is served and counted, never silently fixed. Re-placement after a
fault goes through the online placer, and the counters check its choices independently.
Mutants of each rule: tools/mutants/sim.toml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.sim.twin import SITES, assign, built, hand_plan, twin_plan, write_twin, write_twin_with

from microdc.model import Scenario, load_scenario
from microdc.placement.online import demand_sizes
from microdc.placement.plan import BuiltSite, Plan
from microdc.sim import Fault, FaultKind, FaultSpec, SimConfig, SimResult, Simulation, simulate
from microdc.sim.config import Mode

T0 = pd.Timestamp("2023-01-01T00:00Z")
STEP_S = 600
CFG = SimConfig(days=1 / 24, step_s=STEP_S, seed=1)  # 6 steps of 10 min
STEPS = 6


def _at(minutes: int) -> pd.Timestamp:
    return T0 + pd.Timedelta(minutes=minutes)


def _fault(kind: FaultKind, site: str, start_min: int, end_min: int | None = None) -> Fault:
    return Fault(kind, site, _at(start_min), None if end_min is None else _at(end_min), "test")


def _offered(summary: dict[str, Any], service: str) -> float:
    lat = summary["latency"][service]
    return float(lat["served_requests"] + lat["unserved_requests"])


def _site_load(res: SimResult, site: str) -> pd.Series:
    ts = res.timeseries
    assert ts is not None
    return ts[ts["site"].astype(str) == site].set_index("time")["load_rps"]


def _unserved_rps(res: SimResult, service: str) -> pd.Series:
    lat = res.service_latency
    assert lat is not None
    return lat[lat["service"].astype(str) == service].set_index("time")["unserved_rps"]


# --------------------------------------------------------------------------------------- a clean run


def test_clean_plan_reports_no_violation(twin: Scenario, plan: Plan) -> None:
    s = simulate(twin, plan, CFG).summary
    assert s["steps"] == STEPS
    assert s["sovereignty_violations"] == 0
    assert s["security_violations"] == 0
    assert s["slo_violation_rate"] == 0.0
    assert s["unserved"] == {"requests": 0.0, "fraction": 0.0, "mean_rps": 0.0}
    for name in ("vision", "batch"):
        assert s["latency"][name]["slo_violation_rate"] == 0.0
        assert s["latency"][name]["steps_slo_violated"] == 0


# --------------------------------------------------------------------------------------- sovereignty


@pytest.mark.parametrize("mode", ["fluid", "requests"])
def test_sovereignty_violation_is_served_and_counted_per_piece_and_step(twin: Scenario, mode: Mode) -> None:
    # German personal data in Paris and French personal data in Berlin: both tier >= 2 (security holds),
    # near enough for the SLO; public data in the US cloud is legal.
    p = hand_plan(
        [built("berlin"), built("paris")],
        [
            assign("cams-berlin", "paris"),
            assign("cams-paris", "berlin"),
            assign("sensors-lyon", "us-east", kind="cloud"),
        ],
    )
    cfg = SimConfig(days=3 / 1440, step_s=60, seed=1, mode=mode)  # 3 steps of 1 min
    s = simulate(twin, p, cfg).summary
    assert s["steps"] == 3
    assert s["sovereignty_violations"] == 2 * 3  # two illegal pieces, each served in every step
    assert s["security_violations"] == 0
    assert s["unserved"]["requests"] == 0.0  # served as planned, not refused
    assert s["latency"]["vision"]["served_requests"] > 0


def test_personal_data_in_a_foreign_cloud_region_is_a_sovereignty_violation(twin: Scenario) -> None:
    p = hand_plan(
        [built("berlin"), built("lyon")],
        [
            assign("cams-berlin", "berlin"),
            assign("cams-paris", "us-east", kind="cloud"),  # FR personal data in the US (cloud tier 4)
            assign("sensors-lyon", "lyon"),
        ],
    )
    s = simulate(twin, p, CFG).summary
    assert s["sovereignty_violations"] == STEPS
    assert s["security_violations"] == 0
    assert s["unserved"]["requests"] == 0.0


def test_a_split_source_counts_only_its_illegal_piece(twin: Scenario) -> None:
    p = hand_plan(
        [built("berlin"), built("paris"), built("lyon")],
        [
            assign("cams-berlin", "berlin"),
            assign("cams-paris", "paris", fraction=0.5),
            assign("cams-paris", "berlin", fraction=0.5),  # half of the French data in Germany
            assign("sensors-lyon", "lyon"),
        ],
    )
    s = simulate(twin, p, CFG).summary
    assert s["sovereignty_violations"] == STEPS
    assert s["security_violations"] == 0


# --------------------------------------------------------------------------------------- security tier


def test_security_tier_violation_is_counted(twin: Scenario) -> None:
    # Personal data needs tier >= 2; Munich is a tier-1 street cabinet in the right country.
    p = hand_plan(
        [built("munich"), built("paris"), built("lyon")],
        [assign("cams-berlin", "munich"), assign("cams-paris", "paris"), assign("sensors-lyon", "lyon")],
    )
    s = simulate(twin, p, CFG).summary
    assert s["security_violations"] == STEPS
    assert s["sovereignty_violations"] == 0
    assert s["unserved"]["requests"] == 0.0


def test_security_counter_counts_an_untrusted_site_as_tier_1(twin: Scenario, plan: Plan) -> None:
    # The counter is independent of the placer: put Paris (tier 2, hosting French personal data) into the
    # untrusted state directly, with no fault to make the placer move anything.
    sim = Simulation(twin, plan, CFG)
    sim.untrusted[sim.fleet.ids.index("paris")] = 1
    sim._reroute()
    s = sim.run().summary
    assert s["security_violations"] == STEPS  # cams-paris, every step
    assert s["sovereignty_violations"] == 0


def test_a_dead_site_serves_nothing_even_if_work_is_still_routed_to_it(twin: Scenario, plan: Plan) -> None:
    # Independent of the placer: mark Paris failed without re-placing, so its pieces still point at it.
    sim = Simulation(twin, plan, CFG)
    sim.failed[sim.fleet.ids.index("paris")] = 1
    res = sim.run(keep_frames=True)
    s = res.summary
    assert (_site_load(res, "paris") == 0).all()
    assert (_unserved_rps(res, "vision") > 0).all()
    assert s["unserved"]["requests"] > 0.0
    assert s["latency"]["batch"]["unserved_requests"] == 0.0  # nothing of batch was on Paris


# --------------------------------------------------------------------------------------- break-in


def test_break_in_moves_sensitive_data_away(twin: Scenario, plan: Plan) -> None:
    faults = FaultSpec((_fault(FaultKind.BREAK_IN, "paris", 20),))
    res = simulate(twin, plan, CFG, faults=faults, keep_frames=True)
    s = res.summary
    assert s["security_violations"] == 0 and s["sovereignty_violations"] == 0
    start = res.events[0]
    assert (start["kind"], start["phase"]) == ("break_in", "start")
    assert start["displaced"] == ["cams-paris"] and start["replaced"] == {"cams-paris": "lyon"}
    assert s["unserved"]["requests"] == 0.0
    assert s["faults"][0]["displaced"] == 1 and s["faults"][0]["re_placed"] == 1
    paris = _site_load(res, "paris")
    assert (paris.loc[: _at(10)] > 0).all() and (paris.loc[_at(20) :] == 0).all()
    ts = res.timeseries
    assert ts is not None
    state = ts[ts["site"].astype(str) == "paris"].set_index("time")["state"].astype(str)
    assert list(state) == ["up", "up"] + ["untrusted"] * 4


def test_break_in_with_no_legal_target_refuses_instead_of_serving(twin: Scenario) -> None:
    # Only Berlin (Germany) and Paris are built: after the break-in no French tier-2 site is left.
    p = hand_plan(
        [built("berlin"), built("paris")],
        [assign("cams-berlin", "berlin"), assign("cams-paris", "paris"), assign("sensors-lyon", "paris")],
    )
    faults = FaultSpec((_fault(FaultKind.BREAK_IN, "paris", 20),))
    res = simulate(twin, p, CFG, faults=faults, keep_frames=True)
    s = res.summary
    assert s["security_violations"] == 0 and s["sovereignty_violations"] == 0  # checked first: the counters
    reason = res.events[0]["unserved"]["cams-paris"]  # are the independent guard of the placer's choice
    assert "security tier >= 2" in reason and "untrusted" in reason
    assert s["faults"][0]["unserved"] == 1 and s["faults"][0]["re_placed"] == 0
    vision = _unserved_rps(res, "vision")
    assert (vision.loc[: _at(10)] == 0).all() and (vision.loc[_at(20) :] > 0).all()
    assert s["latency"]["batch"]["unserved_requests"] == 0.0  # public data may stay on the untrusted site
    assert s["unserved"]["requests"] == pytest.approx(float(vision.sum()) * STEP_S, abs=0.1)
    assert s["faults"][0]["unserved_requests_while_active"] == s["unserved"]["requests"]


def test_repair_does_not_move_data_back_to_an_untrusted_site(twin: Scenario, plan: Plan) -> None:
    # Paris is broken into (for good), then down 20-40 min: on the repair cams-paris must stay in Lyon.
    faults = FaultSpec(
        (_fault(FaultKind.BREAK_IN, "paris", 10), _fault(FaultKind.SITE_OUTAGE, "paris", 20, 40))
    )
    res = simulate(twin, plan, CFG, faults=faults, keep_frames=True)
    end = next(e for e in res.events if e["kind"] == "site_outage" and e["phase"] == "end")
    assert end["restored"] == []
    assert res.summary["security_violations"] == 0
    assert (_site_load(res, "paris").loc[_at(10) :] == 0).all()


@pytest.mark.parametrize(
    ("rule", "illegal", "home"),
    [
        ("sovereignty_violations", "cams-paris", "berlin"),  # French personal data in Germany
        ("security_violations", "cams-berlin", "munich"),  # personal data on a tier-1 site
    ],
)
def test_repair_does_not_move_data_back_to_an_illegal_home(
    twin: Scenario, rule: str, illegal: str, home: str
) -> None:
    legal = {"cams-berlin": "hamburg", "cams-paris": "paris"}
    p = hand_plan(
        [built(home), built("hamburg"), built("paris"), built("lyon")],
        [
            assign(illegal, home),
            *(assign(d, t) for d, t in legal.items() if d != illegal),
            assign("sensors-lyon", "lyon"),
        ],
    )
    faults = FaultSpec((_fault(FaultKind.SITE_OUTAGE, home, 20, 40),))
    res = simulate(twin, p, CFG, faults=faults)
    s = res.summary
    assert s[rule] == 2  # the two steps before the outage; not again after the repair
    other = "security_violations" if rule == "sovereignty_violations" else "sovereignty_violations"
    assert s[other] == 0
    start, end = res.events
    assert start["displaced"] == [illegal] and illegal in start["replaced"]
    assert end["restored"] == []


# --------------------------------------------------------------------------------------- SLO


@pytest.mark.parametrize("bound", ["p95_ms", "p99_ms"])
def test_slo_missing_assignment_counts_slo_violations(tmp_path: Path, bound: str) -> None:
    # batch: SLO 100 ms at the chosen percentile; served in Lyon it is met, from the US cloud it is not.
    s = load_scenario(write_twin_with(tmp_path / "twin", {"p95_ms: 500": f"{bound}: 100"}))
    sites = [built("berlin"), built("paris"), built("lyon")]
    vision = [assign("cams-berlin", "berlin"), assign("cams-paris", "paris")]
    near = simulate(s, hand_plan(sites, [*vision, assign("sensors-lyon", "lyon")]), CFG).summary
    assert near["slo_violation_rate"] == 0.0 and near["latency"]["batch"]["steps_slo_violated"] == 0
    far = hand_plan(sites, [*vision, assign("sensors-lyon", "us-east", kind="cloud")])
    got = simulate(s, far, CFG).summary
    batch = got["latency"]["batch"]
    assert batch["slo_violation_rate"] == 1.0 and batch["steps_slo_violated"] == STEPS
    assert got["latency"]["vision"]["slo_violation_rate"] == 0.0
    share = _offered(got, "batch") / (_offered(got, "batch") + _offered(got, "vision"))
    assert got["slo_violation_rate"] == pytest.approx(share, abs=2e-6)
    assert got["unserved"]["requests"] == 0.0  # slow, not lost
    assert got["sovereignty_violations"] == 0 and got["security_violations"] == 0


# --------------------------------------------------------------------------------------- unserved demand


def test_demand_the_plan_leaves_unassigned_is_unserved_and_misses_its_slo(twin: Scenario) -> None:
    p = hand_plan(
        [built("berlin"), built("paris")], [assign("cams-berlin", "berlin"), assign("cams-paris", "paris")]
    )
    s = simulate(twin, p, CFG).summary
    batch = s["latency"]["batch"]
    assert batch["served_requests"] == 0.0 and batch["unserved_requests"] > 0
    assert batch["unserved_fraction"] == 1.0
    assert batch["slo_violation_rate"] == 1.0 and batch["steps_slo_violated"] == STEPS
    assert s["unserved"]["requests"] == batch["unserved_requests"]
    total = _offered(s, "batch") + _offered(s, "vision")
    assert s["unserved"]["fraction"] == pytest.approx(batch["unserved_requests"] / total, abs=2e-6)
    assert s["latency"]["vision"]["unserved_requests"] == 0.0


def test_a_source_placed_in_part_is_served_in_part(twin: Scenario) -> None:
    """One piece per source, in source order, one of them a quarter of its source: a quarter is served
    (the same noise, scaled exactly), the rest is unserved."""
    sites = [built("berlin"), built("paris"), built("lyon")]
    whole = [assign("cams-berlin", "berlin"), assign("cams-paris", "paris"), assign("sensors-lyon", "lyon")]
    full = simulate(twin, hand_plan(sites, whole), CFG, keep_frames=True)
    quarter = [assign("cams-berlin", "berlin", fraction=0.25), *whole[1:]]
    part = simulate(twin, hand_plan(sites, quarter), CFG, keep_frames=True)
    np.testing.assert_array_equal(_site_load(part, "berlin"), 0.25 * _site_load(full, "berlin"))
    np.testing.assert_array_equal(_site_load(part, "paris"), _site_load(full, "paris"))
    lost = part.summary["latency"]["vision"]["unserved_requests"]
    assert lost == pytest.approx(0.75 * float(_site_load(full, "berlin").sum()) * STEP_S, rel=1e-6)


def test_demand_above_capacity_waits_then_times_out_and_is_counted(tmp_path: Path) -> None:
    # vision at 50 ms of CPU per request: cams-berlin (~200 req/s) needs ~10 cores; Berlin gets 4.
    s = load_scenario(write_twin(tmp_path / "twin", vision_cpu=0.05, profile="flat"))
    p = hand_plan(
        [built("berlin", servers=1, cores=4), built("paris", servers=4), built("lyon")],
        [assign("cams-berlin", "berlin"), assign("cams-paris", "paris"), assign("sensors-lyon", "lyon")],
    )
    res = simulate(s, p, CFG, keep_frames=True)
    full = 4 / 0.05  # overloaded, the cores run flat out: cores × service rate per core
    ts = res.timeseries
    assert ts is not None
    berlin = ts[ts["site"].astype(str) == "berlin"]
    assert np.allclose(berlin["load_rps"], full) and np.allclose(berlin["utilization"], 1.0)
    summary = res.summary
    vision = summary["latency"]["vision"]
    assert vision["unserved_requests"] > 0 and vision["steps_slo_violated"] == STEPS
    # what waits longer than the request timeout (30 s) is dropped: the backlog holds full × 30 s, and
    # the p95 of what is served is that wait
    assert 110 < summary["unserved"]["mean_rps"] < 125  # ~200 offered − 80 served − the backlog's fill
    assert 30_000 < vision["p95_ms"] < 32_000
    assert summary["unserved"]["requests"] == vision["unserved_requests"]
    dropped = _unserved_rps(res, "vision")
    assert (dropped > 0).all()
    assert summary["unserved"]["requests"] == pytest.approx(float(dropped.sum()) * STEP_S, abs=0.1)
    assert summary["latency"]["batch"]["unserved_requests"] == 0.0


# --------------------------------------------------------------------------------------- redundancy


def test_site_outage_with_backup_capacity_loses_nothing(twin: Scenario, plan: Plan) -> None:
    faults = FaultSpec((_fault(FaultKind.SITE_OUTAGE, "paris", 20, 40),))
    res = simulate(twin, plan, CFG, faults=faults, keep_frames=True)
    start, end = res.events
    assert start["displaced"] == ["cams-paris"] and start["replaced"] == {"cams-paris": "lyon"}
    assert start["unserved"] == {} and end["restored"] == ["cams-paris"]
    s = res.summary
    assert s["unserved"]["requests"] == 0.0
    impact = s["faults"][0]
    assert (impact["displaced"], impact["re_placed"], impact["unserved"]) == (1, 1, 0)
    assert impact["unserved_requests_while_active"] == 0.0
    assert s["sovereignty_violations"] == 0 and s["security_violations"] == 0
    paris = _site_load(res, "paris")
    assert (paris.loc[[_at(20), _at(30)]] == 0).all() and (paris.drop([_at(20), _at(30)]) > 0).all()


def _outage_without_backup(twin: Scenario, lyon: list[BuiltSite]) -> tuple[SimResult, str]:
    p = hand_plan(
        [built("berlin"), built("paris"), *lyon],
        [
            assign("cams-berlin", "berlin"),
            assign("cams-paris", "paris"),
            assign("sensors-lyon", "lyon") if lyon else assign("sensors-lyon", "us-east", kind="cloud"),
        ],
    )
    faults = FaultSpec((_fault(FaultKind.SITE_OUTAGE, "paris", 20, 40),))
    res = simulate(twin, p, CFG, faults=faults, keep_frames=True)
    return res, res.events[0]["unserved"].get("cams-paris", "")


def test_site_outage_without_backup_counts_unserved(twin: Scenario) -> None:
    # No other French site: cams-paris may go neither to Berlin nor to the US cloud.
    res, reason = _outage_without_backup(twin, [])
    s = res.summary
    assert s["sovereignty_violations"] == 0 and s["security_violations"] == 0
    assert reason.startswith("not now: every allowed site is down")
    impact = s["faults"][0]
    assert (impact["displaced"], impact["re_placed"], impact["unserved"]) == (1, 0, 1)
    vision = _unserved_rps(res, "vision")
    down = [_at(20), _at(30)]
    assert (vision.loc[down] > 0).all() and (vision.drop(down) == 0).all()
    assert s["unserved"]["requests"] == pytest.approx(float(vision.sum()) * STEP_S, abs=0.1)
    assert s["latency"]["batch"]["unserved_requests"] == 0.0
    assert impact["unserved_requests_while_active"] == s["unserved"]["requests"]
    assert s["latency"]["vision"]["steps_slo_violated"] == 2
    assert res.events[1]["restored"] == ["cams-paris"]  # back home after the repair


@pytest.mark.parametrize(
    ("resource", "lyon"),
    [
        ("cores", built("lyon", servers=1, cores=6.5)),  # sensors-lyon takes 5.4 of its 6.5 cores
        ("memory", built("lyon").model_copy(update={"memory_gb": 12.0})),  # and 7.5 of its 12 GB
    ],
)
def test_site_outage_with_a_full_backup_counts_unserved(
    twin: Scenario, resource: str, lyon: BuiltSite
) -> None:
    # cams-paris needs 1.72 cores and 9.6 GB; Lyon is the only other legal site and lacks one of them.
    res, reason = _outage_without_backup(twin, [lyon])
    s = res.summary
    assert s["sovereignty_violations"] == 0 and s["security_violations"] == 0
    assert reason.startswith("not now: no allowed site has 1.72 free cores and 9.6 GB free memory"), reason
    impact = s["faults"][0]
    assert (impact["displaced"], impact["re_placed"], impact["unserved"]) == (1, 0, 1)
    assert s["unserved"]["requests"] > 0
    assert s["latency"]["batch"]["unserved_requests"] == 0.0  # Lyon keeps serving its own


# ------------------------------------------------------------------------- grid cap, module kW, memory

LIMITS = ("grid_cap_violations", "module_kw_violations", "memory_violations")


def _no_limit_broken(summary: dict[str, Any], *rules: str) -> None:
    for rule in rules or LIMITS:
        worst = "worst_excess_gb" if rule == "memory_violations" else "worst_excess_kw"
        assert summary[rule] == {"site_steps": 0, worst: 0.0, "sites": []}, rule


def _site_max(res: SimResult, site: str, column: str) -> float:
    ts = res.timeseries
    assert ts is not None
    return float(ts.loc[ts["site"].astype(str) == site, column].max())


def test_clean_plan_breaks_no_power_or_memory_limit(twin: Scenario, plan: Plan) -> None:
    _no_limit_broken(simulate(twin, plan, CFG).summary)


def test_heat_wave_pushes_facility_power_over_the_grid_cap(tmp_path: Path) -> None:
    # Paris's grid connection is 0.48 kW: its ~0.2 kW of IT with the 6 kW module's UPS no-load loss, fans
    # at their floor, misc and losses (~0.42 kW at 15 °C) fits, but at 40 °C the compressors add ~0.12 kW.
    def run(outdoor_c: float) -> SimResult:
        root = write_twin(tmp_path / f"twin-{outdoor_c:g}", n_plus=1, outdoor_c=outdoor_c)
        sites = root / "sites.csv"
        sites.write_text(SITES.replace("FR,2,30,22000", "FR,2,0.48,22000"), encoding="utf-8")
        return simulate(load_scenario(root), twin_plan(), CFG, keep_frames=True)

    mild = run(15.0)
    assert _site_max(mild, "paris", "total_w") < 480.0  # the same plan fits on a mild day
    _no_limit_broken(mild.summary)
    hot = run(40.0)
    total, it = _site_max(hot, "paris", "total_w"), _site_max(hot, "paris", "it_w")
    assert it < 480.0 < total  # the IT load alone fits: the cooling breaks the cap
    got = hot.summary["grid_cap_violations"]
    assert got["site_steps"] == STEPS and got["sites"] == ["paris"]
    assert got["worst_excess_kw"] == pytest.approx((total - 480.0) / 1000.0, abs=1e-6)
    assert got["worst_excess_kw"] > 0.05
    _no_limit_broken(hot.summary, "module_kw_violations", "memory_violations")


@pytest.mark.parametrize("mode", ["fluid", "requests"])
def test_it_power_over_the_module_envelope_is_counted(twin: Scenario, mode: Mode) -> None:
    # 70 servers idle at 100 W draw 7 kW in Berlin; the module's IT envelope is 6 kW (grid cap 30 kW).
    p = hand_plan(
        [built("berlin", servers=70), built("paris"), built("lyon")],
        [assign("cams-berlin", "berlin"), assign("cams-paris", "paris"), assign("sensors-lyon", "lyon")],
    )
    cfg = SimConfig(days=3 / 1440, step_s=60, seed=1, mode=mode)  # 3 steps of 1 min
    res = simulate(twin, p, cfg, keep_frames=True)
    got = res.summary["module_kw_violations"]
    assert got["site_steps"] == 3 and got["sites"] == ["berlin"]
    it = _site_max(res, "berlin", "it_w")
    assert 7000.0 < it < 7100.0
    assert got["worst_excess_kw"] == pytest.approx((it - 6000.0) / 1000.0, abs=1e-6)
    _no_limit_broken(res.summary, "grid_cap_violations", "memory_violations")


def test_memory_over_the_built_site_is_counted(twin: Scenario) -> None:
    # cams-berlin reserves 12.05 GB (peak 300 req/s, 2 GB per 50 req/s instance).
    need = float(demand_sizes(twin).memory_gb[[d.id for d in twin.demand].index("cams-berlin")])
    assert need == pytest.approx(12.0502, abs=1e-4)

    def run(memory_gb: float) -> dict[str, Any]:
        berlin = built("berlin").model_copy(update={"memory_gb": memory_gb})
        p = hand_plan(
            [berlin, built("paris"), built("lyon")],
            [assign("cams-berlin", "berlin"), assign("cams-paris", "paris"), assign("sensors-lyon", "lyon")],
        )
        return simulate(twin, p, CFG).summary

    _no_limit_broken(run(need))  # exactly enough
    short = run(need - 2.0)
    assert short["memory_violations"] == {"site_steps": STEPS, "worst_excess_gb": 2.0, "sites": ["berlin"]}
    _no_limit_broken(short, "grid_cap_violations", "module_kw_violations")
    assert short["unserved"]["requests"] == 0.0  # served as planned, and counted


def test_memory_counter_trusts_the_catalog_not_the_plan(tmp_path: Path) -> None:
    # vision at 50 GB per instance: cams-berlin reserves 301 GB; one 256 GB server, the plan claims 1 TB.
    s = load_scenario(
        write_twin_with(tmp_path / "twin", {"memory_gb_per_instance: 2": "memory_gb_per_instance: 50"})
    )
    need = float(demand_sizes(s).memory_gb[0])
    berlin = built("berlin", servers=1).model_copy(update={"memory_gb": 1024.0})
    p = hand_plan(
        [berlin, built("paris"), built("lyon")],
        [assign("cams-berlin", "berlin"), assign("cams-paris", "paris"), assign("sensors-lyon", "lyon")],
    )
    got = simulate(s, p, CFG).summary["memory_violations"]
    assert got == {
        "site_steps": STEPS,
        "worst_excess_gb": pytest.approx(need - 256.0, abs=1e-6),
        "sites": ["berlin"],
    }
    assert need - 256.0 > 40.0
