"""Run-level latency (the accumulator) against the exact mixture of every step, and the summary's SLO
checks without per-step quantiles (sim/latency.py: RunAccumulator.add_atoms, block_latency)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import microdc.sim.latency as lat
from microdc.sim.latency import Atoms, RunAccumulator, block_latency, service_atoms, sojourn_survival_density

STEP_S = 60.0


def _atoms(rng: np.random.Generator, n: int, queues: int) -> Atoms:
    return Atoms(np.arange(n), rng.integers(0, queues, n), rng.integers(0, 2, n), rng.uniform(2, 60, n))


def _block(rng: np.random.Generator, atoms: Atoms, steps: int, queues: int, loaded: bool) -> dict[str, Any]:
    """Random steps: lightly loaded queues (waiting probability 1e-40 … 1e-9), some throttled to half
    speed; ``loaded``: half the queues wait often (C 0.2 … 0.6, θ close to μ), and those and one
    lightly loaded queue are behind a fluid backlog."""
    w = rng.uniform(0.5, 5, (steps, atoms.size))
    mu = np.broadcast_to(rng.uniform(40, 200, queues), (steps, queues)).copy()
    mu[steps // 2 :, ::3] *= 0.5  # throttled from the middle of the block on
    pw = 10.0 ** rng.uniform(-40, -9, (steps, queues))
    th = mu * rng.uniform(2, 20, (steps, queues))
    wait = None
    if loaded:
        hot = np.arange(queues) % 2 == 0
        pw[:, hot] = rng.uniform(0.2, 0.6, (steps, int(hot.sum())))
        th[:, hot] = mu[:, hot] * rng.uniform(0.05, 0.3, (steps, int(hot.sum())))
        # a backlog's extra wait on hot queues and on one lightly loaded queue (its steps are not waitless)
        wait = np.where(hot | (np.arange(queues) == 1), rng.uniform(0, 30, (steps, queues)), 0.0)
    return {"atom_w": w, "pw_q": pw, "mu_q": mu, "theta_q": th, "queue_wait_ms": wait}


def _exact_quantile(parts: list[tuple[Atoms, dict[str, Any]]], v: int, p: float) -> float:
    """Bisection on Σ over every step of requests × its exact survival (physics' closed form)."""
    terms = []
    for atoms, b in parts:
        sel = np.flatnonzero(atoms.service == v)
        q = atoms.queue[sel]
        for t in range(b["atom_w"].shape[0]):
            wait = 0.0 if b["queue_wait_ms"] is None else b["queue_wait_ms"][t, q]
            terms.append(
                (
                    b["atom_w"][t, sel] * STEP_S,
                    atoms.rtt_ms[sel] + wait,
                    *(b[k][t, q] for k in ("pw_q", "mu_q", "theta_q")),
                )
            )
    total = sum(float(n.sum()) for n, *_ in terms)

    def surv(x: float) -> float:
        s = 0.0
        for n, rtt, pw, mu, th in terms:
            got, _ = sojourn_survival_density(np.maximum(x - rtt, 0.0) / 1000.0, pw, mu, th)
            s += float(np.where(x > rtt, got, 1.0) @ n)
        return s / total

    lo, hi = 0.0, 1e5
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if surv(mid) > 1 - p else (lo, mid)
    return 0.5 * (lo + hi)


def _feed(
    acc: RunAccumulator, parts: list[tuple[Atoms, dict[str, Any]]], quantiles: bool, group: int | None = None
) -> list[Any]:
    """Every block of ``parts`` through block_latency into ``acc`` (as run ``group`` of a pass)."""
    return [
        block_latency(
            atoms,
            service_atoms(atoms, 2),
            slo_bound_ms=np.array([40.0, 60.0]),
            accumulator=acc,
            step_s=STEP_S,
            slo_ms=np.array([[30.0, 50.0], [45.0, np.inf]]),
            quantiles=quantiles,
            groups=None if group is None else np.full(b["atom_w"].shape[0], group),
            **b,
        )
        for atoms, b in parts
    ]


def _run(
    parts: list[tuple[Atoms, dict[str, Any]]], quantiles: bool = True
) -> tuple[RunAccumulator, list[Any]]:
    acc = RunAccumulator(2)
    return acc, _feed(acc, parts, quantiles)


def _parts(seed: int, loaded: bool) -> list[tuple[Atoms, dict[str, Any]]]:
    """Three blocks; the fleet re-routes after the first (atoms rebuilt: the same RTTs, new objects,
    plus a new atom set), as the engine does."""
    rng = np.random.default_rng(seed)
    queues = 6
    first = _atoms(rng, 14, queues)
    same = Atoms(first.of_piece.copy(), first.queue.copy(), first.service.copy(), first.rtt_ms.copy())
    other = _atoms(rng, 9, queues)
    return [(a, _block(rng, a, 12, queues, loaded)) for a in (first, same, other)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_run_quantiles_of_lightly_loaded_steps_are_the_exact_mixture(seed: int) -> None:
    """Steps whose queues wait too rarely to count go to the accumulator atom by atom: its run-level
    quantiles are those of the exact mixture of every step (up to its 4000-point log grid), across
    re-routes (atoms rebuilt) and throttled queues (another μ for the same atom)."""
    parts = _parts(seed, loaded=False)
    acc, _ = _run(parts)
    for v in (0, 1):
        for p in (0.5, 0.95, 0.99):
            want = _exact_quantile(parts, v, p)
            assert acc.quantile_ms(v, p) == pytest.approx(want, rel=5e-5), (v, p)


@pytest.mark.parametrize("seed", [3, 4])
def test_run_quantiles_with_waiting_queues_and_backlogs_keep_the_waits(seed: int) -> None:
    """Steps whose queues wait often (or behind a backlog) are folded from their bracket grid with their
    waiting terms: run-level quantiles within the fold's log-linear interpolation of the exact mixture
    (3 % at the median, 0.5 % at p95 and p99 here), where leaving the waits out is far off (below)."""
    parts = _parts(seed, loaded=True)
    acc, _ = _run(parts)
    for v in (0, 1):
        for p, rel in ((0.5, 3e-2), (0.95, 5e-3), (0.99, 5e-3)):
            want = _exact_quantile(parts, v, p)
            assert acc.quantile_ms(v, p) == pytest.approx(want, rel=rel), (v, p)


@pytest.mark.parametrize("loaded", [False, True])
def test_no_per_step_quantiles_changes_nothing_else(loaded: bool) -> None:
    """Without per-step quantiles (no time series written) the mean, the SLO check and every run-level
    figure are the same bits; p50/p95/p99 and the share over the SLO bound are left NaN."""
    parts = _parts(5, loaded)
    acc_q, with_q = _run(parts, quantiles=True)
    acc_n, without = _run(parts, quantiles=False)
    for a, b in zip(with_q, without, strict=True):
        for name in ("mean_ms", "within_slo"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert np.isnan(b.p95_ms).all() and np.isnan(b.over_slo).all() and not np.isnan(a.over_slo).any()
    for v in (0, 1):
        for p in (0.5, 0.95, 0.99):
            assert acc_q.quantile_ms(v, p) == acc_n.quantile_ms(v, p)
        assert acc_q.mean_ms(v) == acc_n.mean_ms(v)
        assert acc_q.fraction_over(v, 35.0) == acc_n.fraction_over(v, 35.0)


@pytest.mark.parametrize("loaded", [False, True])
@pytest.mark.parametrize("n_atoms", [20, 3 * lat.FACTOR_MIN_ATOMS])
def test_slo_check_is_the_quantiles_against_the_slos(loaded: bool, n_atoms: int) -> None:
    """within_slo (S at each SLO, no solve; services of FACTOR_MIN_ATOMS atoms or more: their solved
    quantiles) is p95 ≤ SLO95 and p99 ≤ SLO99 by the solved quantiles, wherever they are not within
    the solve's tolerance of the SLO; False with no requests."""
    rng = np.random.default_rng(7)
    atoms = _atoms(rng, n_atoms, 6)
    b = _block(rng, atoms, 200, 6, loaded)
    b["atom_w"][::17, atoms.service == 1] = 0.0  # steps without requests for service 1

    def solve(slo: Any) -> Any:
        by = service_atoms(atoms, 2)
        return block_latency(
            atoms, by, slo_bound_ms=np.full(2, 40.0), accumulator=None, step_s=STEP_S, slo_ms=slo, **b
        )

    first = solve(None)  # SLOs at the steps' median p95 and p99: about half the steps meet each
    slo = np.column_stack([np.nanmedian(first.p95_ms, axis=0), np.nanmedian(first.p99_ms, axis=0)])
    got = solve(slo)
    assert got.within_slo is not None
    want = (got.p95_ms <= slo[:, 0]) & (got.p99_ms <= slo[:, 1])
    clear = (np.abs(got.p95_ms - slo[:, 0]) > 1e-6 * slo[:, 0]) & (
        np.abs(got.p99_ms - slo[:, 1]) > 1e-6 * slo[:, 1]
    )
    assert clear.mean() > 0.9 and 0.1 < want[clear].mean() < 0.9  # both outcomes tested
    np.testing.assert_array_equal(got.within_slo[clear], want[clear])
    assert not got.within_slo[np.isnan(got.p95_ms)].any()


@pytest.mark.parametrize("loaded", [False, True])
def test_slo_check_with_the_rows_queues_shared_is_the_same(loaded: bool) -> None:
    """Where every row has the same queues' μ (broadcast, as the engine passes them) and no backlog, the
    SLO check takes each atom's e^{−μy} once for all rows: the same answers as row by row, with dead
    atoms (no requests) among the live ones and outcomes both ways."""
    rng = np.random.default_rng(11)
    atoms = _atoms(rng, 20, 6)
    b = _block(rng, atoms, 300, 6, loaded)
    b["queue_wait_ms"] = None
    b["atom_w"][rng.random(b["atom_w"].shape) < 0.2] = 0.0
    b["atom_w"][::13, atoms.service == 0] = 0.0
    shared_mu = np.broadcast_to(b["mu_q"][0], b["mu_q"].shape)
    by = service_atoms(atoms, 2)

    def check(mu_q: Any, slo: Any) -> Any:
        kw = {**b, "mu_q": mu_q}
        return block_latency(
            atoms, by, slo_bound_ms=np.full(2, 40.0), accumulator=None, step_s=STEP_S, slo_ms=slo, **kw
        )

    first = check(np.array(shared_mu), None)
    slo = np.column_stack([np.nanmedian(first.p95_ms, axis=0), np.nanmedian(first.p99_ms, axis=0)])
    rows = check(np.array(shared_mu), slo).within_slo  # (a copy: row by row)
    once = check(shared_mu, slo).within_slo
    assert rows is not None and once is not None
    assert 0.2 < rows.mean() < 0.8
    np.testing.assert_array_equal(once, rows)


def test_clear_rows_need_rare_waits_and_no_backlog() -> None:
    """The atom-wise path is the exact survival only where waits cannot count: a loaded step or one
    behind a backlog is folded with its waits (its run-level p99 is far above the waitless one)."""
    parts = _parts(6, loaded=True)
    acc, _ = _run(parts)
    saved = lat.CLEAR_WAIT
    lat.CLEAR_WAIT = 1.0  # (every queue's waits dropped, backlogs still kept)
    try:
        no_waits, _ = _run([(a, {**b, "queue_wait_ms": None}) for a, b in parts])
    finally:
        lat.CLEAR_WAIT = saved
    for v in (0, 1):
        assert acc.quantile_ms(v, 0.99) > 1.2 * no_waits.quantile_ms(v, 0.99)


def test_waitless_queues_behind_a_backlog_keep_its_wait() -> None:
    """Lightly loaded queues behind a fluid backlog: their steps are folded with the backlog's extra
    wait in every RTT (not taken atom by atom at the bare RTT)."""
    parts = _parts(8, loaded=False)
    rng = np.random.default_rng(9)
    for _, b in parts:
        steps, queues = b["mu_q"].shape
        b["queue_wait_ms"] = np.where(np.arange(queues) < 3, rng.uniform(5, 30, (steps, queues)), 0.0)
    acc, _ = _run(parts)
    for v in (0, 1):
        for p, rel in ((0.5, 3e-2), (0.95, 5e-3), (0.99, 5e-3)):
            assert acc.quantile_ms(v, p) == pytest.approx(_exact_quantile(parts, v, p), rel=rel), (v, p)


def test_merged_other_mu_counts_give_the_same_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counts at a throttled μ are merged once there are many parts (a long throttle): the same bits."""
    parts = _parts(10, loaded=False)
    kept, _ = _run(parts)
    monkeypatch.setattr(lat, "OTHER_PARTS", 0)
    merged, _ = _run(parts)
    assert len(merged._other) == 1 and len(kept._other) > 1
    for v in (0, 1):
        for p in (0.5, 0.95, 0.99):
            assert merged.quantile_ms(v, p) == kept.quantile_ms(v, p)
        assert merged.fraction_over(v, 35.0) == kept.fraction_over(v, 35.0)


def test_rows_read_in_batches_are_each_runs_own() -> None:
    """Run-level rows are summed READ_RUNS runs at a time, a row with other-μ counts on its own: each
    run's figures in a shared accumulator (replicas of a pass) are the bits of that run alone, across
    batches. The runs share their atoms; odd ones run at run 0's μ (counted at their columns' μ in both
    accumulators), runs 2, 6, … at their own μ (other-μ counts when shared, not alone), runs 4, 8, …
    at their own μ with a throttle."""
    runs = lat.READ_RUNS + 6
    atoms_of = [a for a, _ in _parts(100, loaded=False)]
    mu_0 = np.zeros(0)
    shared = RunAccumulator(2, groups=runs)
    alone = []
    for g in range(runs):
        rng = np.random.default_rng(1000 + g)
        parts = [(a, _block(rng, a, 12, 6, loaded=g % 3 == 0)) for a in atoms_of]
        mu = mu_0 if g % 2 else parts[0][1]["mu_q"][0].copy()  # one μ per queue for the whole run
        mu_0 = mu if g == 0 else mu_0
        for _, b in parts:
            b["mu_q"][:] = mu
            if g and g % 4 == 0:
                b["mu_q"][6:, ::3] *= 0.5  # throttled from the middle of the block on
        _feed(shared, parts, quantiles=False, group=g)
        alone.append(_run(parts, quantiles=False)[0])
    assert not alone[1]._other and not alone[2]._other and alone[4]._other
    for g in (0, 1, 2, 3, 4, lat.READ_RUNS - 1, lat.READ_RUNS, lat.READ_RUNS + 2, runs - 1):
        run = shared.member(g)
        for v in (0, 1):
            np.testing.assert_array_equal(shared._surv_row(g * 2 + v), alone[g]._surv_row(v))
            for p in (0.5, 0.95, 0.99):
                assert run.quantile_ms(v, p) == alone[g].quantile_ms(v, p)
            assert run.fraction_over(v, 35.0) == alone[g].fraction_over(v, 35.0)
