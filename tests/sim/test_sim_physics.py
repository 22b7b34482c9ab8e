"""Balances and bounds that must hold in every simulated step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from tests.sim.twin import twin_plan, write_twin

from microdc.model import Scenario, load_scenario
from microdc.placement.online.network import fibre_floor_ms
from microdc.placement.plan import Plan
from microdc.sim import Fault, FaultKind, FaultSpec, SimConfig, simulate
from microdc.sim.output import LATENCY_COLUMNS, TIMESERIES_COLUMNS

T0 = pd.Timestamp("2023-01-01T00:00Z")


@pytest.fixture
def run(plan: Plan, tmp_path):  # type: ignore[no-untyped-def]
    twin = load_scenario(write_twin(tmp_path / "small-ups", n_plus=1, ups_kwh=0.5))
    faults = FaultSpec(
        (
            Fault(
                FaultKind.SITE_OUTAGE, "paris", T0 + pd.Timedelta(hours=3), T0 + pd.Timedelta(hours=5), "test"
            ),
            Fault(FaultKind.GRID_OUTAGE, "hamburg", T0 + pd.Timedelta(hours=8), None, "test"),
        )
    )
    return simulate(
        twin,
        plan,
        SimConfig(days=0.5, step_s=600, seed=4),
        faults=faults,
        out_dir=tmp_path / "out",
        keep_frames=True,
    )


def test_output_files_and_schema(run, tmp_path):  # type: ignore[no-untyped-def]
    out = tmp_path / "out"
    for name in ("timeseries.parquet", "service_latency.parquet", "events.json", "summary.json"):
        assert (out / name).is_file()
    ts = pd.read_parquet(out / "timeseries.parquet")
    lat = pd.read_parquet(out / "service_latency.parquet")
    assert list(ts.columns) == list(TIMESERIES_COLUMNS)
    assert list(lat.columns) == list(LATENCY_COLUMNS)
    assert str(ts["time"].dt.tz) == "UTC"
    assert set(ts["site"].astype(str)) == {"berlin", "hamburg", "paris", "lyon", "cloud:us-east"}
    assert len(ts) == 72 * 5 and len(lat) == 72 * 2
    assert set(ts["state"].astype(str)) <= {
        "up",
        "down",
        "link_down",
        "cooling_failure",
        "grid_outage",
        "untrusted",
        "throttled",
    }
    assert (ts.loc[ts["site"] == "paris", "state"].astype(str) == "down").sum() == 12


def test_energy_balance_per_step_and_total(run):  # type: ignore[no-untyped-def]
    ts = run.timeseries
    parts = ts[["it_w", "cooling_w", "ups_loss_w", "distribution_loss_w", "misc_w"]].sum(axis=1)
    np.testing.assert_allclose(parts, ts["total_w"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(ts["energy_kwh"], ts["total_w"] * (600 / 3600) / 1000, rtol=1e-12)
    np.testing.assert_allclose(
        ts["carbon_g"], ts["energy_kwh"] * ts["carbon_intensity_g_per_kwh"], rtol=1e-12
    )
    e = run.summary["energy_kwh"]
    parts_sum = e["it"] + e["cooling"] + e["ups_loss"] + e["distribution_loss"] + e["misc"]
    assert e["facility"] == pytest.approx(parts_sum, abs=1e-5)
    assert e["facility"] == pytest.approx(ts["energy_kwh"].sum(), rel=1e-6)
    assert e["facility"] == pytest.approx(e["sites_facility"] + e["cloud_facility"], rel=1e-6)
    assert run.summary["carbon_kg"]["total"] == pytest.approx(ts["carbon_g"].sum() / 1000, rel=1e-6)


def test_pue_at_least_one_and_down_sites_draw_nothing(run):  # type: ignore[no-untyped-def]
    ts = run.timeseries
    pue = ts["pue"].dropna()
    assert len(pue) > 0 and (pue >= 1.0).all()
    down = ts[ts["state"].astype(str) == "down"]
    assert len(down) > 0 and (down["total_w"] == 0).all() and down["pue"].isna().all()
    assert run.summary["pue"]["sites_annualized"] >= 1.0


def test_latency_never_below_fibre_bound(run, twin: Scenario):  # type: ignore[no-untyped-def]
    lat = run.service_latency
    d = {x.id: x for x in twin.demand}
    sites = {x.id: x for x in twin.sites}
    # The nearest any request can be served: its source's closest built site.
    for svc, sources in (("vision", ["cams-berlin", "cams-paris"]), ("batch", ["sensors-lyon"])):
        floor = min(
            float(fibre_floor_ms([d[s].lat], [d[s].lon], [sites[t].lat], [sites[t].lon])[0])
            for s in sources
            for t in ("berlin", "hamburg", "paris", "lyon")
        )
        rows = lat[lat["service"] == svc].dropna(subset=["p50_ms"])
        assert (rows["p50_ms"] >= floor).all()
        assert (rows["p50_ms"] <= rows["p95_ms"]).all() and (rows["p95_ms"] <= rows["p99_ms"]).all()
        assert (rows["mean_ms"] >= floor).all()


def test_sovereignty_clean_and_costs_add_up(run):  # type: ignore[no-untyped-def]
    s = run.summary
    assert s["sovereignty_violations"] == 0 and s["security_violations"] == 0
    c = s["cost"]
    assert c["total"] == pytest.approx(
        c["energy"] + c["fixed_pro_rata"] + c["cloud"] + c["network"], abs=0.02
    )
    assert c["fixed_pro_rata"] > 0 and c["energy"] > 0


def test_grid_outage_runs_on_battery_then_shuts_down(run):  # type: ignore[no-untyped-def]
    kinds = [(e["kind"], e["site"]) for e in run.events]
    assert ("grid_outage", "hamburg") in kinds and ("battery_empty", "hamburg") in kinds
    ts = run.timeseries
    h = ts[ts["site"] == "hamburg"].set_index("time")["state"].astype(str)
    assert h.loc[T0 + pd.Timedelta(hours=8)] == "grid_outage"
    assert h.iloc[-1] == "down"


def test_cooling_failure_throttles_then_shuts_down(tmp_path):  # type: ignore[no-untyped-def]
    s = load_scenario(write_twin(tmp_path / "hot", outdoor_c=38.0))
    faults = FaultSpec(
        (Fault(FaultKind.COOLING_FAILURE, "berlin", T0 + pd.Timedelta(hours=1), None, "test"),)
    )
    res = simulate(s, twin_plan(), SimConfig(days=0.25, step_s=60, seed=1), faults=faults, keep_frames=True)
    kinds = [e["kind"] for e in res.events if e["site"] == "berlin"]
    assert kinds[:3] == ["cooling_failure", "throttle", "shutdown"]
    b = res.timeseries[res.timeseries["site"] == "berlin"].set_index("time")
    states = b["state"].astype(str)
    assert {"cooling_failure", "throttled", "down"} <= set(states)
    assert b.loc[states == "throttled", "inlet_c"].min() >= 32.0 - 1e-9
    assert (b.loc[states == "cooling_failure", "cooling_w"] == 0).all()
    assert res.summary["unserved"]["requests"] == 0  # n+1: hamburg takes berlin's cameras


def test_uplink_cut_backs_up_sync_then_drains(twin: Scenario, plan: Plan):  # type: ignore[no-untyped-def]
    faults = FaultSpec(
        (
            Fault(
                FaultKind.UPLINK_CUT, "berlin", T0 + pd.Timedelta(hours=1), T0 + pd.Timedelta(hours=3), "test"
            ),
        )
    )
    res = simulate(twin, plan, SimConfig(days=0.25, step_s=300, seed=1), faults=faults, keep_frames=True)
    b = res.timeseries[res.timeseries["site"] == "berlin"].set_index("time")
    peak = b["sync_backlog_gb"].max()
    assert peak == pytest.approx(40 * 2 / 24, rel=0.15)  # two hours of 40 GB/day, noise aside
    assert b["sync_backlog_gb"].iloc[-1] == 0
    assert (b.loc[b["state"].astype(str) == "link_down", "load_rps"] > 0).all()  # keeps serving local demand
    assert res.summary["unserved"]["requests"] == 0
