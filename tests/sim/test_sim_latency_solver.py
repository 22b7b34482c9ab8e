"""The quantile solve's fast kernel (e^{−μy} where a queue's waiting term cannot change the rounding)
against the closed form everywhere (the solver before issue #19's speed-up), on random mixtures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import microdc.sim.latency as lat
from microdc.sim.latency import (
    Atoms,
    _sojourn_full,
    _sojourn_mixed,
    block_latency,
    service_atoms,
    sojourn_survival_density,
)

#: Every point through the closed form: a threshold no waiting probability is below.
CLOSED_FORM = {np.dtype(np.float32): np.float32(-1.0), np.dtype(np.float64): -1.0}


def _kernel_inputs(rng: np.random.Generator, dt: Any, atoms: int = 40, points: int = 30) -> tuple[Any, ...]:
    pw = 10.0 ** rng.uniform(-40, -0.5, atoms)
    pw[::5] = 0.0
    mu = rng.uniform(5, 500, atoms)
    th = rng.uniform(0.5, 5000, atoms)
    th[::7] = mu[::7]
    y = rng.uniform(0, 0.3, (points, atoms))
    y[0] = 0.0
    return tuple(np.asarray(a, dtype=dt) for a in (y, pw[None, :], mu[None, :], th[None, :]))


@pytest.mark.parametrize("dt", [np.float32, np.float64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_kernel_is_the_closed_form_to_rounding(dt: Any, seed: int) -> None:
    """Where it leaves the waiting term out, the fast value is within an ulp or two of the closed form
    (which itself rounds); where the term matters it is the closed form's own value, bit for bit; a
    grid's points (sorted) give the same bits as the same points tested for their largest y."""
    y, pw, mu, th = _kernel_inputs(np.random.default_rng(seed), dt)
    fast, fast_d = _sojourn_mixed(y, pw, mu, th, density=True)
    b = [np.broadcast_to(a, y.shape).ravel() for a in (y, pw, mu, th)]
    full, full_d = _sojourn_full(*b, density=True)
    assert fast_d is not None and full_d is not None
    full, full_d = full.reshape(y.shape), full_d.reshape(y.shape)
    eps = float(np.finfo(dt).eps)
    np.testing.assert_allclose(fast, full, rtol=4 * eps, atol=0)
    np.testing.assert_allclose(fast_d, full_d, rtol=1e-6 if dt == np.float32 else 1e-12, atol=0)
    # an atom takes the closed form at all its points unless its waiting term is negligible at its
    # largest y (then at all of them)
    cand = pw > np.exp(-mu * y.max(axis=0, keepdims=True)) * lat.NEGLIGIBLE_WAIT[np.dtype(dt)]
    slow = np.broadcast_to(cand, y.shape)
    assert slow.any() and (~slow).any()  # both branches are exercised
    np.testing.assert_array_equal(fast[slow], full[slow])
    # the closed form on gathered points or on the whole array, then selected: the same bits
    for share in (0, 10**9):
        saved = lat.GATHER_SHARE
        lat.GATHER_SHARE = share
        try:
            other, other_d = _sojourn_mixed(y, pw, mu, th, density=True)
        finally:
            lat.GATHER_SHARE = saved
        np.testing.assert_array_equal(other, fast)
        np.testing.assert_array_equal(other_d, fast_d)
    ys = np.sort(y, axis=0)
    np.testing.assert_array_equal(
        _sojourn_mixed(ys, pw, mu, th, density=False, sorted_points=True)[0],
        _sojourn_mixed(ys, pw, mu, th, density=False)[0],
    )
    # the other layout (points on the last axis) gives the same bits
    # (float32 survival alone, the bracket grid's case, takes the in-place form of the closed form)
    alone, _ = _sojourn_mixed(y, pw, mu, th, density=False)
    flipped, _ = _sojourn_mixed(y.T.copy(), pw.T, mu.T, th.T, density=False, points_axis=-1)
    np.testing.assert_array_equal(flipped.T, alone)
    np.testing.assert_allclose(alone, full, rtol=2e-5 if dt == np.float32 else 4 * eps, atol=0)


def _random_block(seed: int, steps: int, atoms: int, load: float, shared_mu: bool = False) -> dict[str, Any]:
    """A block of random mixtures over two services: waiting probabilities from 1e-45 up to ``load``.
    ``shared_mu``: one μ per service, as on unthrottled targets, except a few queues throttled to half
    speed in the first step (those steps have mixed μ)."""
    rng = np.random.default_rng(seed)
    queues = max(1, atoms // 2)
    a = Atoms(
        of_piece=np.arange(atoms),
        queue=rng.integers(0, queues, atoms),
        service=rng.integers(0, 2, atoms),
        rtt_ms=rng.uniform(1, 60, atoms),
    )
    w = rng.uniform(0, 1, (steps, atoms))
    w[w < 0.1] = 0.0
    mu = np.broadcast_to(rng.uniform(5, 400, queues), (steps, queues)).copy()
    pw = np.minimum(10.0 ** rng.uniform(-45, np.log10(load), (steps, queues)), 0.9)
    if shared_mu:  # each queue's service: that of its first atom (others on it share the queue's μ)
        q_service = np.zeros(queues, dtype=np.int64)
        q_service[a.queue[::-1]] = a.service[::-1]
        mu = np.broadcast_to(np.array([40.0, 300.0])[q_service], (steps, queues)).copy()
        mu[0, ::9] *= 0.5
    th = mu * rng.uniform(0.05, 20, (steps, queues))
    return {"atoms": a, "atom_w": w, "pw_q": pw, "mu_q": mu, "theta_q": th}


def _solve(b: dict[str, Any], closed_form: bool = False) -> Any:
    saved = lat.NEGLIGIBLE_WAIT
    lat.NEGLIGIBLE_WAIT = CLOSED_FORM if closed_form else saved
    try:
        return block_latency(
            by_service=service_atoms(b["atoms"], 2),
            slo_bound_ms=np.array([40.0, np.inf]),
            accumulator=None,
            step_s=60.0,
            **b,
        )
    finally:
        lat.NEGLIGIBLE_WAIT = saved


def _exact_survival(b: dict[str, Any], t: int, v: int, x_ms: float) -> float:
    """The mixture's survival at x for step t and service v, by the float64 closed form (physics)."""
    a = b["atoms"]
    sel = a.service == v
    q, w = a.queue[sel], b["atom_w"][t, sel]
    y = np.array([(x_ms - a.rtt_ms[sel]) / 1000.0])
    s, _ = sojourn_survival_density(y, b["pw_q"][t, q], b["mu_q"][t, q], b["theta_q"][t, q])
    return float((s[0] * w).sum() / w.sum())


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    steps=st.integers(1, 6),
    atoms=st.integers(1, 60),
    load=st.sampled_from([1e-30, 1e-9, 1e-3, 0.5]),
)
def test_solver_agrees_with_the_closed_form_everywhere(
    seed: int, steps: int, atoms: int, load: float
) -> None:
    """The fast solve against the same solve with the closed form at every point, and each quantile
    against the mixture itself: mean and share over the SLO within 1e-12 (float64, exact); quantiles
    within 1e-9 relative of the closed form's, and each solves S(x) = 1 − p to 1e-9 in probability
    by the physics kernel's float64 survival (the solve's tolerance is 1e-10 relative in x)."""
    b = _random_block(seed, steps, atoms, load)
    new, old = _solve(b), _solve(b, closed_form=True)
    for name in ("mean_ms", "over_slo"):
        np.testing.assert_allclose(
            getattr(new, name), getattr(old, name), rtol=1e-12, atol=1e-15, err_msg=name
        )
    for name, p in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        x_new, x_old = getattr(new, name), getattr(old, name)
        np.testing.assert_allclose(x_new, x_old, rtol=1e-9, atol=0, err_msg=name)
        for t, v in zip(*np.nonzero(~np.isnan(x_new)), strict=True):
            s_new = _exact_survival(b, t, v, x_new[t, v])
            assert abs(s_new - (1 - p)) <= 1e-9, (name, t, v, s_new)


def test_fast_solve_is_the_same_per_step_in_any_block() -> None:
    """Each step's figures do not depend on the steps solved with it (same bits alone or in a block)."""
    rng = np.random.default_rng(4)
    atoms, queues, steps = 30, 12, 5
    a = Atoms(
        np.arange(atoms), rng.integers(0, queues, atoms), rng.integers(0, 2, atoms), rng.uniform(1, 60, atoms)
    )
    by = service_atoms(a, 2)
    w = rng.uniform(0.1, 1, (steps, atoms))
    mu = np.full((steps, queues), 250.0)
    pw = 10.0 ** rng.uniform(-40, -2, (steps, queues))
    th = mu * rng.uniform(0.5, 10, (steps, queues))
    slo = np.array([30.0, 45.0])
    block = block_latency(a, by, w, pw, mu, th, slo, None, 60.0)
    for t in range(steps):
        one = block_latency(a, by, w[t : t + 1], pw[t : t + 1], mu[t : t + 1], th[t : t + 1], slo, None, 60.0)
        for name in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "over_slo"):
            np.testing.assert_array_equal(getattr(one, name)[0], getattr(block, name)[t], err_msg=name)


@pytest.mark.parametrize("load", [1e-30, 1e-9, 1e-3, 0.5])
def test_factored_grid_solve_agrees_with_the_closed_form(load: float) -> None:
    """Services with many atoms take the factored bracket grid (one μ per service, prefix sums over
    RTT): quantiles within 1e-9 relative of the closed form's solve and each solving S(x) = 1 − p to
    1e-9; mean and share over the SLO as exact as before; each step the same bits alone as in its block."""
    b = _random_block(7, 4, 4 * lat.FACTOR_MIN_ATOMS, load, shared_mu=True)
    assert min(np.bincount(b["atoms"].service)) >= lat.FACTOR_MIN_ATOMS
    new, old = _solve(b), _solve(b, closed_form=True)
    for name in ("mean_ms", "over_slo"):
        np.testing.assert_allclose(getattr(new, name), getattr(old, name), rtol=1e-12, atol=1e-15)
    for name, p in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        x_new = getattr(new, name)
        np.testing.assert_allclose(x_new, getattr(old, name), rtol=1e-9, atol=0, err_msg=name)
        for t, v in zip(*np.nonzero(~np.isnan(x_new)), strict=True):
            assert abs(_exact_survival(b, t, v, x_new[t, v]) - (1 - p)) <= 1e-9, (name, t, v)
    for t in range(b["atom_w"].shape[0]):
        one = _solve({**b, **{k: b[k][t : t + 1] for k in ("atom_w", "pw_q", "mu_q", "theta_q")}})
        for name in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "over_slo"):
            np.testing.assert_array_equal(getattr(one, name)[0], getattr(new, name)[t], err_msg=name)


def test_factored_grid_is_the_mixture() -> None:
    """The factored bracket grid against the exact float64 mixture, on rows with one μ (some atoms with
    a waiting term, some with no weight), with mixed μ and with an overflowing μ · span (those two take
    the per-atom grid): each row within the float32 grid's accuracy, and the same bits alone."""
    rng = np.random.default_rng(11)
    steps, atoms = 6, 150
    x = 5.0 + rng.uniform(50, 400, (steps, 1, 1)) * np.linspace(0.0, 1.0, 48) ** 2
    wn = rng.random((steps, 1, atoms))
    wn[..., ::10] = 0.0
    wn /= wn.sum(axis=-1, keepdims=True)
    rtt = rng.uniform(5, 60, (steps, 1, atoms))
    pw = 10.0 ** rng.uniform(-60, -20, (steps, 1, atoms))
    pw[..., ::13] = rng.uniform(0.05, 0.6, pw[..., ::13].shape)  # queues whose waiting term counts
    mu = np.full((steps, 1, atoms), 80.0)
    mu[..., ::10] = 1.0  # as _solve gives atoms with no weight
    mu[1, 0, 3] = 40.0  # a throttled target: mixed μ
    mu[2] = 4000.0  # μ · span beyond the float64 exponent bound
    th = mu * rng.uniform(0.1, 10, mu.shape)
    args = (x, wn, rtt, pw, mu, th)
    got = lat._grid_survival_factored(*args)
    exact = lat._mixture(*args, exact=True)[0]
    factored = [0, 3, 4, 5]  # float64 but for waiting terms below 2^-26 of e^{-μy}; the others float32
    np.testing.assert_allclose(got[factored], exact[factored], rtol=0, atol=1e-7)
    np.testing.assert_allclose(got, exact, rtol=0, atol=2e-6)
    for t in range(steps):
        np.testing.assert_array_equal(
            lat._grid_survival_factored(*(z[t : t + 1] for z in args)), got[t : t + 1]
        )
    np.testing.assert_array_equal(got[1:3], lat._grid_survival(*(z[1:3] for z in args)))


def _one_mu_block(seed: int, steps: int = 8) -> dict[str, Any]:
    """One service of 2 · FACTOR_MIN_ATOMS atoms, one queue each, sharing one μ per step: RTTs on a
    0.5 ms lattice (ties), some weights zero, one step with a single live atom, one with a throttled
    queue (mixed μ); μ from slow (every quantile beyond the last atom: the closed form) to fast
    (quantiles among the atoms: Newton on the per-atom mixture); waiting probabilities from 1e-60 to
    0.4 with θ on both sides of μ, some tiny C with θ ≪ μ (their waiting term dominates far out)."""
    rng = np.random.default_rng(seed)
    n = 2 * lat.FACTOR_MIN_ATOMS
    a = Atoms(
        np.arange(n), np.arange(n), np.zeros(n, dtype=np.int64), np.round(rng.uniform(5, 40, n) * 2) / 2
    )
    w = rng.uniform(0, 1, (steps, n))
    w[w < 0.2] = 0.0
    w[1, 1:] = 0.0  # one live atom
    mu = np.broadcast_to(rng.choice([20.0, 60.0, 250.0, 900.0], (steps, 1)), (steps, n)).copy()
    mu[2, 5] *= 0.5  # a throttled target
    pw = 10.0 ** rng.uniform(-60, -1, (steps, n))
    pw[:, ::17] = rng.uniform(0.05, 0.4, pw[:, ::17].shape)
    th = mu * rng.uniform(0.05, 20, (steps, n))
    tiny = rng.random((steps, n)) < 0.1  # C ≈ 1e-20 behind θ ≪ μ
    pw[tiny], th[tiny] = 1e-20, mu[tiny] * 0.01
    return {"atoms": a, "atom_w": w, "pw_q": pw, "mu_q": mu, "theta_q": th}


@pytest.mark.parametrize("seed", range(6))
def test_tail_solve_agrees_with_the_grid_and_newton_solve(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows whose atoms share one μ: where a quantile lies beyond the last atom it starts from the
    closed form and Newton runs on the factored mixture (_Tail), else on the per-atom mixture. Against
    the per-atom grid and Newton on every row (services below FACTOR_MIN_ATOMS take that path):
    quantiles within XTOL, share over the SLO within 1e-12 (the waiting terms of θ ≪ μ dominate it),
    means the same; each quantile solves S(x) = 1 − p by the physics closed form; both branches run."""
    b = _one_mu_block(seed)
    by = service_atoms(b["atoms"], 1)
    slo = np.array([120.0])
    calls = {"tail": 0, "mixture": 0}
    mixture, tail_survival = lat._mixture, lat._Tail.survival

    def mixture_spy(*args: Any, **kw: Any) -> Any:
        calls["mixture"] += 1
        return mixture(*args, **kw)

    def tail_spy(self: Any, *args: Any, **kw: Any) -> Any:
        calls["tail"] += 1
        return tail_survival(self, *args, **kw)

    monkeypatch.setattr(lat, "_mixture", mixture_spy)
    monkeypatch.setattr(lat._Tail, "survival", tail_spy)
    new = block_latency(by_service=by, slo_bound_ms=slo, accumulator=None, step_s=60.0, **b)
    assert calls["tail"] and calls["mixture"], calls
    monkeypatch.setattr(lat, "FACTOR_MIN_ATOMS", 10**9)
    old = block_latency(by_service=by, slo_bound_ms=slo, accumulator=None, step_s=60.0, **b)
    np.testing.assert_array_equal(new.mean_ms, old.mean_ms)
    np.testing.assert_allclose(new.over_slo, old.over_slo, rtol=1e-12, atol=0)
    for name, p in (("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)):
        x_new = getattr(new, name)
        np.testing.assert_allclose(x_new, getattr(old, name), rtol=lat.XTOL, atol=0, err_msg=name)
        for t, v in zip(*np.nonzero(~np.isnan(x_new)), strict=True):
            assert abs(_exact_survival(b, t, v, x_new[t, v]) - (1 - p)) <= 1e-9, (name, t)


def test_tail_mixture_is_the_closed_form_beyond_the_last_atom() -> None:
    """_Tail's survival at points beyond every atom against the per-atom float64 mixture: relative
    1e-12 at quantile-like points and at a far SLO bound where e^{−μy} is 1e-40 and the waiting terms
    of queues with θ ≪ μ and C of 1e-20 make S (their bound C μ y e^{−μy} does not hold there)."""
    rng = np.random.default_rng(3)
    steps, n = 4, 200
    wn = rng.random((steps, 1, n))
    wn[..., ::9] = 0.0
    wn /= wn.sum(axis=-1, keepdims=True)
    rtt = np.round(rng.uniform(5, 30, (steps, 1, n)) * 2) / 2
    mu = np.full((steps, 1, n), 300.0)
    pw = 10.0 ** rng.uniform(-60, -8, (steps, 1, n))
    th = mu * rng.uniform(1.0, 20, (steps, 1, n))
    pw[..., ::11], th[..., ::11] = 1e-20, 3.0
    x = 30.0 + np.array([[[1.0, 5.0, 12.0, 330.0]]]) * np.ones((steps, 1, 1))
    one = lat._one_mu(x[..., -1], wn, rtt, mu)
    tail = lat._Tail.build(one, wn, rtt)
    assert tail.ok.all() and (x >= tail.r_max[..., None]).all()
    s, d = tail.survival(x, wn, rtt, pw, mu, th)
    s_ref, d_ref = lat._mixture(x, wn, rtt, pw, mu, th, exact=True)
    np.testing.assert_allclose(s, s_ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(d, d_ref, rtol=1e-12, atol=0)
    pure = np.exp(-tail.m[..., None] * (x - tail.x0[..., None])) * tail.p_sum[..., None]
    assert (s[..., -1] > 1e3 * pure[..., -1]).all()  # far out, the waiting terms are S


def test_factored_grid_keeps_small_waiting_terms_that_dominate_far_out() -> None:
    """The factored grid gives an atom the closed form unless C is below 2^-26 of e^{−μy} at the grid's
    last point: with C of 1e-10 behind θ ≪ μ (far below 2^-26 itself, above it times e^{−μy} there) the
    waiting terms are most of S at the far points, which must match the exact mixture relatively."""
    rng = np.random.default_rng(5)
    steps, n = 3, 120
    x = 5.0 + 400.0 * np.linspace(0.0, 1.0, 48) ** 2 * np.ones((steps, 1, 1))
    wn = rng.random((steps, 1, n))
    wn /= wn.sum(axis=-1, keepdims=True)
    rtt = rng.uniform(5, 20, (steps, 1, n))
    mu = np.full((steps, 1, n), 80.0)
    pw = 10.0 ** rng.uniform(-60, -30, (steps, 1, n))
    th = mu * rng.uniform(1.0, 10, (steps, 1, n))
    pw[..., ::4], th[..., ::4] = 1e-10, 0.8
    got = lat._grid_survival_factored(x, wn, rtt, pw, mu, th)
    exact = lat._mixture(x, wn, rtt, pw, mu, th, exact=True)[0]
    far = x[0, 0] > 350.0
    pure = (wn * np.exp(-mu * np.maximum(x[..., :, None] - rtt[..., None, :], 0) * 1e-3)).sum(axis=-1)
    assert (exact[..., far] > 1.5 * pure[..., far]).all()  # the waiting terms count
    np.testing.assert_allclose(got[..., far], exact[..., far], rtol=1e-6, atol=0)
