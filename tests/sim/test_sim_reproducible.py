"""Same seed, same bytes; fluid agrees with the request-level ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.sim.twin import twin_plan, write_twin

from microdc.model import load_scenario
from microdc.physics.queueing import mmc_response_quantile_s, mmc_response_survival
from microdc.sim import Fault, FaultKind, FaultSpec, SimConfig, simulate
from microdc.sim.latency import build_atoms, sojourn_survival_density, step_latency

T0 = pd.Timestamp("2023-01-01T00:00Z")


def _run(tmp: Path, seed: int, out: str) -> Path:
    s = load_scenario(write_twin(tmp / "twin", n_plus=1))
    faults = FaultSpec(
        (
            Fault(
                FaultKind.SITE_OUTAGE,
                "berlin",
                T0 + pd.Timedelta(hours=1),
                T0 + pd.Timedelta(hours=2),
                "test",
            ),
        )
    )
    simulate(s, twin_plan(), SimConfig(days=0.25, step_s=300, seed=seed), faults=faults, out_dir=tmp / out)
    return tmp / out


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = _run(tmp_path, 5, "a")
    b = _run(tmp_path, 5, "b")
    c = _run(tmp_path, 6, "c")
    for name in ("timeseries.parquet", "service_latency.parquet", "events.json", "summary.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    pd.testing.assert_frame_equal(
        pd.read_parquet(a / "timeseries.parquet"), pd.read_parquet(b / "timeseries.parquet")
    )
    assert (a / "timeseries.parquet").read_bytes() != (c / "timeseries.parquet").read_bytes()
    assert json.loads((a / "summary.json").read_text())["seed"] == 5


def test_survival_kernel_matches_physics() -> None:
    lam = np.array([1.0, 30.0, 45.0, 99.0, 150.0])
    mu = np.array([50.0, 10.0, 50.0, 100.0, 40.0])
    c = np.array([1.0, 4.0, 1.0, 2.0, 4.0])
    from microdc.physics.queueing import erlang_c

    pw = erlang_c(lam, mu, c)
    theta = c * mu - lam
    t = np.array([0.0, 0.001, 0.01, 0.05, 0.2])[:, None]
    ours, dens = sojourn_survival_density(t, pw[None, :], mu[None, :], theta[None, :])
    ref = mmc_response_survival(t, lam[None, :], mu[None, :], c[None, :])
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)
    h = 1e-7
    up, _ = sojourn_survival_density(t + h, pw[None, :], mu[None, :], theta[None, :])
    down, _ = sojourn_survival_density(t[1:] - h, pw[None, :], mu[None, :], theta[None, :])
    np.testing.assert_allclose(dens[1:], (down - up[1:]) / (2 * h), rtol=1e-4)


def test_mixture_quantiles_are_exact() -> None:
    """Two queues with different RTTs: the mixture quantile solves the weighted survival exactly,
    and is not the average of the per-queue quantiles."""
    lam = np.array([30.0, 80.0])
    mu = np.array([40.0, 100.0])
    c = np.array([1.0, 1.0])
    from microdc.physics.queueing import erlang_c

    pw = erlang_c(lam, mu, c)
    theta = c * mu - lam
    rtt = np.array([2.0, 30.0])
    atoms = build_atoms(np.array([0, 1]), rtt, lam, np.array([0, 0]))
    res = step_latency(atoms, lam, pw, mu, theta, 1, np.array([np.inf]), None, 60.0)
    w = lam / lam.sum()
    for p, got in ((0.5, res.p50_ms[0]), (0.95, res.p95_ms[0]), (0.99, res.p99_ms[0])):
        s = sum(w[i] * mmc_response_survival((got - rtt[i]) / 1000, lam[i], mu[i], c[i]) for i in range(2))
        assert float(s) == pytest.approx(1 - p, abs=1e-7)
    naive = float(w @ (rtt + 1000 * mmc_response_quantile_s(lam, mu, c, 0.95)))
    assert abs(naive - res.p95_ms[0]) > 1.0
    mean = float(w @ (rtt + 1000 * (pw / theta + 1 / mu)))
    assert res.mean_ms[0] == pytest.approx(mean, rel=1e-12)


def test_fluid_agrees_with_request_level(tmp_path: Path) -> None:
    """A loaded fleet (vision queues near 60-70 % busy) for an hour: mean and p95 per service within 5 %."""
    s = load_scenario(write_twin(tmp_path / "twin", profile="flat", vision_cpu=0.02))
    plan = twin_plan(cores=6)
    cfg = dict(days=1 / 24, step_s=300, seed=3, noise_cv=0.0)
    fluid = simulate(s, plan, SimConfig(mode="fluid", **cfg))  # type: ignore[arg-type]
    reqs = simulate(s, plan, SimConfig(mode="requests", **cfg))  # type: ignore[arg-type]
    for svc in ("vision", "batch"):
        f, r = fluid.summary["latency"][svc], reqs.summary["latency"][svc]
        assert f["mean_ms"] == pytest.approx(r["mean_ms"], rel=0.05), svc
        assert f["p95_ms"] == pytest.approx(r["p95_ms"], rel=0.05), svc
        assert f["served_requests"] == pytest.approx(r["served_requests"], rel=0.02)
    # Queueing is really exercised: vision's p95 is well above its service time plus RTT.
    assert reqs.summary["latency"]["vision"]["p95_ms"] > 60
