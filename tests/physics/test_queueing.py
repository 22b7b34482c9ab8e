from __future__ import annotations

import heapq
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy import integrate

from microdc.physics.queueing import (
    erlang_b,
    erlang_c,
    mmc_mean_response_s,
    mmc_mean_wait_s,
    mmc_response_quantile_s,
    mmc_response_survival,
    mmc_wait_quantile_s,
    utilization,
)


def erlang_b_recursion(a: float, c: int) -> float:
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def test_erlang_c_known_value() -> None:
    assert float(erlang_c(2.0, 1.0, 3)) == pytest.approx(4.0 / 9.0)
    # textbook: a = 2, c = 3 -> mean wait = C / (c mu - lambda) = 4/9 s
    assert float(mmc_mean_wait_s(2.0, 1.0, 3)) == pytest.approx(4.0 / 9.0)


@pytest.mark.parametrize(("a", "c"), [(0.1, 1), (5.0, 10), (50.5, 60), (900.0, 1000), (3000.0, 3100)])
def test_erlang_b_matches_recursion(a: float, c: int) -> None:
    assert float(erlang_b(a, c)) == pytest.approx(erlang_b_recursion(a, c), rel=1e-9)


def test_mm1_reduces_to_textbook() -> None:
    lam, mu = 0.8, 1.0
    assert float(erlang_c(lam, mu, 1)) == pytest.approx(0.8)
    assert float(mmc_mean_wait_s(lam, mu, 1)) == pytest.approx(lam / (mu * (mu - lam)))
    assert float(mmc_mean_response_s(lam, mu, 1)) == pytest.approx(1.0 / (mu - lam))
    # M/M/1 sojourn is Exp(mu - lambda)
    for p in (0.5, 0.95, 0.99):
        assert float(mmc_response_quantile_s(lam, mu, 1, p)) == pytest.approx(-math.log(1 - p) / (mu - lam))
    # wait quantile: P(W > t) = rho e^{-(mu-lam)t}
    assert float(mmc_wait_quantile_s(lam, mu, 1, 0.95)) == pytest.approx(math.log(0.8 / 0.05) / 0.2)
    assert float(mmc_wait_quantile_s(lam, mu, 1, 0.1)) == 0.0


def test_unstable_gives_inf() -> None:
    lam = np.array([3.0, 4.0, 1.0])
    c = np.array([3, 2, 2])
    assert np.all(erlang_c(lam, 1.0, c)[:2] == 1.0)
    assert np.all(np.isinf(mmc_mean_wait_s(lam, 1.0, c)[:2]))
    q = mmc_response_quantile_s(lam, 1.0, c, 0.95)
    assert np.all(np.isinf(q[:2])) and np.isfinite(q[2])
    assert np.all(np.isinf(mmc_wait_quantile_s(lam, 1.0, c)[:2]))
    np.testing.assert_allclose(utilization(lam, 1.0, c), [1.0, 2.0, 0.5])


def test_zero_arrivals() -> None:
    assert float(erlang_c(0.0, 2.0, 4)) == 0.0
    assert float(mmc_response_quantile_s(0.0, 2.0, 4, 0.95)) == pytest.approx(-math.log(0.05) / 2.0)


def test_survival_matches_numerical_convolution() -> None:
    lam, mu, c = 3.0, 1.0, 4
    pw = float(erlang_c(lam, mu, c))
    theta = c * mu - lam  # == mu: the degenerate hypoexponential case
    for t in (0.5, 2.0, 6.0):
        conv, _ = integrate.quad(lambda s, t=t: theta * math.exp(-theta * s) * math.exp(-mu * (t - s)), 0, t)
        expected = (1 - pw) * math.exp(-mu * t) + pw * (math.exp(-theta * t) + conv)
        assert float(mmc_response_survival(t, lam, mu, c)) == pytest.approx(expected, rel=1e-9)


def test_quantile_inverts_survival_vectorized() -> None:
    rng = np.random.default_rng(4)
    c = rng.integers(1, 200, 500)
    mu = rng.uniform(0.1, 10.0, 500)
    lam = rng.uniform(0.0, 0.999, 500) * c * mu
    p = rng.uniform(0.5, 0.999, 500)
    q = mmc_response_quantile_s(lam, mu, c, p)
    np.testing.assert_allclose(mmc_response_survival(q, lam, mu, c), 1 - p, rtol=1e-9, atol=1e-12)
    assert np.all(q >= mmc_wait_quantile_s(lam, mu, c, p))


@settings(max_examples=50, deadline=None)
@given(c=st.integers(1, 400), rho=st.floats(0.0, 0.995), mu=st.floats(0.01, 100.0))
@example(c=1, rho=0.5, mu=1.0)  # M/M/1 every run (the draw seldom picks c == 1)
@example(c=1, rho=0.995, mu=100.0)
@example(c=2, rho=0.75, mu=1.0)
def test_erlang_c_stable_range(c: int, rho: float, mu: float) -> None:
    lam = rho * c * mu
    pw = float(erlang_c(lam, mu, c))
    assert 0.0 <= pw <= 1.0
    if c == 1:
        assert pw == pytest.approx(rho, rel=1e-12, abs=1e-15)  # M/M/1: Erlang C equals rho exactly
    else:
        assert pw <= rho + 1e-12  # M/M/c: Erlang C <= rho
    assert math.isfinite(float(mmc_response_quantile_s(lam, mu, c, 0.99)))


def test_p95_against_discrete_event_simulation() -> None:
    """FCFS M/M/c simulated directly; the exact p95 must sit inside the sampling error."""
    lam, mu, c, n = 3.2, 1.0, 4, 200_000
    rng = np.random.default_rng(7)
    arrivals = np.cumsum(rng.exponential(1 / lam, n))
    service = rng.exponential(1 / mu, n)
    free = [0.0] * c
    sojourn = np.empty(n)
    for i in range(n):
        start = max(arrivals[i], heapq.heappop(free))
        heapq.heappush(free, start + service[i])
        sojourn[i] = start + service[i] - arrivals[i]
    sojourn = sojourn[10_000:]
    exact = float(mmc_response_quantile_s(lam, mu, c, 0.95))
    assert np.quantile(sojourn, 0.95) == pytest.approx(exact, rel=0.04)
    assert sojourn.mean() == pytest.approx(float(mmc_mean_response_s(lam, mu, c)), rel=0.04)


def _erlang_b_full(a: np.ndarray, c: np.ndarray) -> np.ndarray:
    """erlang_b's formula with scipy's pdtr at every point (no shortcut): the oracle."""
    from scipy import special

    log_pmf = special.xlogy(c, a) - a - special.gammaln(c + 1.0)
    with np.errstate(divide="ignore"):
        log_cdf = np.log(special.pdtr(c, a))
    b = np.exp(log_pmf - log_cdf)
    with np.errstate(divide="ignore", over="ignore"):
        tail = np.clip(1.0 - c / np.where(a > 0, a, 1.0), 0.0, 1.0)
    return np.clip(np.where(np.isfinite(log_cdf), b, tail), 0.0, 1.0)


def test_erlang_b_skips_pdtr_only_where_it_is_exactly_one() -> None:
    """erlang_b leaves out scipy's pdtr where it proves the cdf is 1.0: checked for every server count
    up to 2,048 (and a few far larger) over loads from 1e-9 to far above c, densest where the rule's
    two bounds (log pmf = −45, a = (c + 1)/2) fall: the same float64 as the full formula everywhere,
    and pdtr exactly 1.0 wherever the rule skips it."""
    from scipy import special

    from microdc.physics import queueing

    c = np.concatenate([np.arange(1, 2049), [4096, 10_000, 65_536, 10**6]]).astype(np.float64)
    # the load where log pmf(c; a) crosses the threshold, by bisection (log pmf rises with a below c)
    lo, hi = np.zeros_like(c), c.copy()
    for _ in range(80):
        mid = (lo + hi) / 2
        low = special.xlogy(c, mid) - mid - special.gammaln(c + 1.0) < queueing._CDF_ONE_LOG_PMF
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    spread = np.geomspace(1e-9, 1.0, 600)[None, :] * np.maximum(60.0, 4.0 * c)[:, None]
    near = 1.0 + np.linspace(-0.02, 0.02, 81)[None, :]
    ulps = np.array([-2, -1, 0, 1, 2])[None, :] * np.spacing(1.0)
    a = np.concatenate(
        [
            np.zeros((c.size, 1)),
            spread,
            lo[:, None] * near,
            lo[:, None] * (1.0 + ulps),
            hi[:, None] * (1.0 + ulps),
            (c[:, None] + 1.0) / 2 * near,
            (c[:, None] + 1.0) / 2 * (1.0 + ulps),
        ],
        axis=1,
    )
    cc = np.broadcast_to(c[:, None], a.shape)
    assert np.array_equal(erlang_b(a, c[:, None]), _erlang_b_full(a, cc))
    skip = (special.xlogy(cc, a) - a - special.gammaln(cc + 1.0) < queueing._CDF_ONE_LOG_PMF) & (
        a + a <= cc + 1.0
    )
    assert skip.mean() > 0.1 and (~skip).mean() > 0.1  # both sides of the rule are exercised
    assert np.all(special.pdtr(cc[skip], a[skip]) == 1.0)


def test_log_factorial_is_gammaln_bit_for_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """ln c! from the table (grown on demand) and beyond it: gammaln(c + 1)'s own numbers."""
    from scipy import special

    from microdc.physics import queueing

    monkeypatch.setattr(queueing, "_log_factorials", queueing._log_factorials[:10])  # (it must grow)
    c = np.concatenate([np.arange(0.0, 5000.0), [0.0, 1.0, 7.0, 4999.0]])
    np.testing.assert_array_equal(queueing.log_factorial(c), special.gammaln(c + 1.0))
    assert queueing._log_factorials.size >= 5000
    big = np.full(100, float(queueing.LOG_FACTORIAL_TABLE_MAX + 3))
    np.testing.assert_array_equal(queueing.log_factorial(big), special.gammaln(big + 1.0))
    few = np.array([3.0, 60.0])
    np.testing.assert_array_equal(queueing.log_factorial(few), special.gammaln(few + 1.0))
