"""M/M/c (Erlang C) queueing delay, vectorized over arrays of (λ, μ, c).

Used by the fluid simulator as the queueing delay of a site, and validated against a
discrete-event simulation, so tail quantiles are exact for M/M/c FCFS, not approximated.

Notation: arrival rate λ (1/s), service rate per server μ (1/s), c servers, offered
load a = λ/μ, utilization ρ = a/c. For ρ ≥ 1 the queue is unstable: probabilities
of waiting are 1 and all times are ``inf``.

* Erlang B via the Poisson ratio ``B = pmf(c; a) / cdf(c; a)``, evaluated in log
  space (``scipy.special``); for stable queues (a < c) the cdf is ≥ ~0.5, so nothing
  underflows even for thousands of servers.
* Erlang C: ``C = B / (1 − ρ(1 − B))``, the probability an arrival waits.
* Waiting time W: ``P(W > t) = C·exp(−θ t)`` with ``θ = cμ − λ``; so E[W] = C/θ and
  the p-quantile is ``ln(C/(1−p))/θ`` when p > 1 − C, else 0.
* Sojourn (response) time T = W + S, S ~ Exp(μ) independent of W (FCFS). With
  probability 1 − C, T = S; otherwise T = Exp(θ) + Exp(μ), a hypoexponential::

      P(T > t) = (1 − C)·e^{−μt} + C·e^{−rt}·(1 + r·t·φ((R − r)t)),
      r = min(θ, μ), R = max(θ, μ), φ(x) = (1 − e^{−x})/x  (φ(0) = 1),

  which equals the textbook (θe^{−μt} − μe^{−θt})/(θ − μ) but stays exact as θ → μ.
  The p-quantile is found by vectorized bisection between the proven bounds
  max(q_W(p), q_S(p)) ≤ q_T(p) ≤ q_W(p′) + q_S(p′), p′ = (1 + p)/2.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import special

FloatArray = npt.NDArray[np.float64]

_BISECTION_STEPS = 80

#: Where log pmf(c; a) < this and a ≤ (c + 1)/2, scipy's pdtr(c, a) is exactly 1.0, so erlang_b skips
#: it. Why: the upper tail P(X > c) = Σ_{k>c} pmf(k) ≤ pmf(c) · (a/(c+1)) / (1 − a/(c+2)) ≤ pmf(c)
#: < e^-45 ≈ 3e-20 there, and pdtr computes such a cdf as 1.0 − (its series for the tail) (igamc's
#: branch for x < a), which rounds to 1.0 whenever the tail is below 2^-54 ≈ 5.6e-17 (c ≥ 1; at a = 0
#: pdtr returns 1.0 outright). tests/physics/test_queueing.py checks it over the ranges of the twin.
_CDF_ONE_LOG_PMF = -45.0


def _prepare(
    arrival_rate: npt.ArrayLike, service_rate: npt.ArrayLike, servers: npt.ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    lam = np.asarray(arrival_rate, dtype=np.float64)
    mu = np.asarray(service_rate, dtype=np.float64)
    c_raw = np.asarray(servers)
    c = c_raw.astype(np.float64)
    if np.any(lam < 0.0) or not np.all(np.isfinite(lam)):
        raise ValueError("arrival_rate must be finite and >= 0")
    if np.any(mu <= 0.0) or not np.all(np.isfinite(mu)):
        raise ValueError("service_rate must be finite and > 0")
    if np.any(c < 1.0) or np.any(c != np.floor(c)):
        raise ValueError("servers must be integers >= 1")
    lam, mu, c = np.broadcast_arrays(lam, mu, c)
    return lam, mu, c


def erlang_b(offered_load: npt.ArrayLike, servers: npt.ArrayLike) -> FloatArray:
    """Erlang B blocking probability for offered load a (Erlangs) on c servers.

    Computed as pmf(c; a)/cdf(c; a) of a Poisson(a), in log space: exact to rounding
    whenever the cdf is representable (always for a ≤ c, the stable M/M/c range). Only
    when a ≫ c does the cdf underflow; then the asymptote B ≈ 1 − c/a is returned.
    """
    a = np.asarray(offered_load, dtype=np.float64)
    c = np.asarray(servers).astype(np.float64)
    if np.any(a < 0.0) or np.any(c < 0.0) or np.any(c != np.floor(c)):
        raise ValueError("need offered_load >= 0 and integer servers >= 0")
    return _erlang_b(a, c)


def _erlang_b(a: FloatArray, c: FloatArray) -> FloatArray:
    """erlang_b of checked arguments (a ≥ 0, whole c ≥ 0)."""
    log_gamma = log_factorial(c)  # before broadcasting: once per server count given
    a, c = np.broadcast_arrays(a, c)
    log_pmf = special.xlogy(c, a) - a - log_gamma
    # pdtr only where it can differ from 1.0 (see _CDF_ONE_LOG_PMF); elsewhere log(1.0) = 0.0
    need = ~((log_pmf < _CDF_ONE_LOG_PMF) & (a + a <= c + 1.0))
    log_cdf = np.zeros(a.shape)
    if need.any():
        with np.errstate(divide="ignore"):
            log_cdf[need] = np.log(special.pdtr(c[need], a[need]))
    b = np.exp(log_pmf - log_cdf)
    # Far in the lower tail (a >> c) the cdf underflows; there the asymptote is exact enough.
    lost = ~np.isfinite(log_cdf)
    if lost.any():
        with np.errstate(divide="ignore", over="ignore"):
            b[lost] = np.clip(1.0 - c[lost] / np.where(a[lost] > 0, a[lost], 1.0), 0.0, 1.0)
    return np.minimum(np.maximum(b, 0.0), 1.0)  # (np.clip's numbers, in fewer passes)


#: Server counts up to this many get ln c! from a table (log_factorial); larger ones from gammaln.
LOG_FACTORIAL_TABLE_MAX = 1 << 20
_log_factorials = special.gammaln(np.arange(1025, dtype=np.float64) + 1.0)


def log_factorial(c: FloatArray) -> FloatArray:
    """ln c! of whole numbers ``c`` ≥ 0: ``special.gammaln(c + 1.0)``, read from a table of gammaln's
    own values (grown on demand) where c ≤ LOG_FACTORIAL_TABLE_MAX, so the same numbers at a fraction
    of the cost for the twin's (steps × queues) server counts."""
    global _log_factorials
    if c.size < 64:
        return np.asarray(special.gammaln(c + 1.0), dtype=np.float64)
    top = float(c.max(initial=0.0))
    if top > LOG_FACTORIAL_TABLE_MAX:
        return np.asarray(special.gammaln(c + 1.0), dtype=np.float64)
    if top >= _log_factorials.size:
        size = int(min(max(2 * _log_factorials.size, top + 1), LOG_FACTORIAL_TABLE_MAX + 1))
        _log_factorials = special.gammaln(np.arange(size, dtype=np.float64) + 1.0)
    return np.asarray(_log_factorials[c.astype(np.int64)], dtype=np.float64)


def erlang_c(arrival_rate: npt.ArrayLike, service_rate: npt.ArrayLike, servers: npt.ArrayLike) -> FloatArray:
    """Probability that an arrival must wait in M/M/c (1 when ρ ≥ 1)."""
    lam, mu, c = _prepare(arrival_rate, service_rate, servers)
    a = lam / mu
    rho = a / c
    # (checked by _prepare; the servers as given: per queue, not per row and queue)
    b = _erlang_b(a, np.asarray(servers).astype(np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        pw = b / (1.0 - rho * (1.0 - b))
    return np.asarray(np.where(rho >= 1.0, 1.0, np.minimum(np.maximum(pw, 0.0), 1.0)), dtype=np.float64)


def utilization(
    arrival_rate: npt.ArrayLike, service_rate: npt.ArrayLike, servers: npt.ArrayLike
) -> FloatArray:
    """ρ = λ / (c μ)."""
    lam, mu, c = _prepare(arrival_rate, service_rate, servers)
    return np.asarray(lam / (c * mu), dtype=np.float64)


def _decay_rate(lam: FloatArray, mu: FloatArray, c: FloatArray) -> FloatArray:
    return np.asarray(c * mu - lam, dtype=np.float64)


def mmc_mean_wait_s(
    arrival_rate: npt.ArrayLike, service_rate: npt.ArrayLike, servers: npt.ArrayLike
) -> FloatArray:
    """Mean time in queue E[W] = C/(cμ − λ), s; inf when ρ ≥ 1."""
    lam, mu, c = _prepare(arrival_rate, service_rate, servers)
    pw = erlang_c(lam, mu, c)
    theta = _decay_rate(lam, mu, c)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = pw / theta
    return np.asarray(np.where(theta > 0.0, w, np.inf), dtype=np.float64)


def mmc_mean_response_s(
    arrival_rate: npt.ArrayLike, service_rate: npt.ArrayLike, servers: npt.ArrayLike
) -> FloatArray:
    """Mean sojourn time E[T] = E[W] + 1/μ, s."""
    lam, mu, c = _prepare(arrival_rate, service_rate, servers)
    return np.asarray(mmc_mean_wait_s(lam, mu, c) + 1.0 / mu, dtype=np.float64)


def _check_p(p: npt.ArrayLike) -> FloatArray:
    q = np.asarray(p, dtype=np.float64)
    if np.any(q < 0.0) or np.any(q >= 1.0) or not np.all(np.isfinite(q)):
        raise ValueError("quantile level p must lie in [0, 1)")
    return q


def mmc_wait_quantile_s(
    arrival_rate: npt.ArrayLike, service_rate: npt.ArrayLike, servers: npt.ArrayLike, p: npt.ArrayLike = 0.95
) -> FloatArray:
    """p-quantile of the waiting time in queue, s (0 if at least a fraction p never waits)."""
    lam, mu, c = _prepare(arrival_rate, service_rate, servers)
    q = _check_p(p)
    lam, mu, c, q = np.broadcast_arrays(lam, mu, c, q)
    pw = erlang_c(lam, mu, c)
    theta = _decay_rate(lam, mu, c)
    tail = 1.0 - q
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.log(pw / tail) / theta
    t = np.where(pw > tail, t, 0.0)
    return np.asarray(np.where(theta > 0.0, t, np.inf), dtype=np.float64)


def _phi(x: FloatArray) -> FloatArray:
    """(1 − e^{−x}) / x with φ(0) = 1, accurate for small x (x ≥ 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = -np.expm1(-x) / x
    return np.asarray(np.where(x > 1e-12, v, 1.0 - 0.5 * x), dtype=np.float64)


def _survival(t: FloatArray, pw: FloatArray, mu: FloatArray, theta: FloatArray) -> FloatArray:
    r = np.minimum(theta, mu)
    big = np.maximum(theta, mu)
    hypo = np.exp(-r * t) * (1.0 + r * t * _phi((big - r) * t))
    return np.asarray((1.0 - pw) * np.exp(-mu * t) + pw * hypo, dtype=np.float64)


def mmc_response_survival(
    t_s: npt.ArrayLike, arrival_rate: npt.ArrayLike, service_rate: npt.ArrayLike, servers: npt.ArrayLike
) -> FloatArray:
    """P(T > t) for the M/M/c FCFS sojourn time (exact closed form); 1 when ρ ≥ 1."""
    lam, mu, c = _prepare(arrival_rate, service_rate, servers)
    t = np.asarray(t_s, dtype=np.float64)
    if np.any(t < 0.0):
        raise ValueError("t_s must be >= 0")
    t, lam, mu, c = np.broadcast_arrays(t, lam, mu, c)
    pw = erlang_c(lam, mu, c)
    theta = _decay_rate(lam, mu, c)
    stable = theta > 0.0
    surv = _survival(t, pw, mu, np.where(stable, theta, 1.0))
    return np.asarray(np.where(stable, surv, 1.0), dtype=np.float64)


def mmc_response_quantile_s(
    arrival_rate: npt.ArrayLike, service_rate: npt.ArrayLike, servers: npt.ArrayLike, p: npt.ArrayLike = 0.95
) -> FloatArray:
    """Exact p-quantile of the M/M/c FCFS sojourn time (wait + service), s.

    Solves ``P(T > t) = 1 − p`` by bisection on every element at once (relative
    precision ~1e-15 after 80 halvings); ``inf`` when ρ ≥ 1.
    """
    lam, mu, c = _prepare(arrival_rate, service_rate, servers)
    q = _check_p(p)
    lam, mu, c, q = np.broadcast_arrays(lam, mu, c, q)
    theta = _decay_rate(lam, mu, c)
    stable = theta > 0.0
    lam_s = np.where(stable, lam, 0.0)  # placeholders keep the arithmetic finite where unstable
    pw = erlang_c(lam_s, mu, c)
    th = np.where(stable, theta, c * mu)
    tail = 1.0 - q

    def wait_q(level_tail: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore"):
            return np.asarray(np.where(pw > level_tail, np.log(pw / level_tail) / th, 0.0), dtype=np.float64)

    lo = np.maximum(wait_q(tail), -np.log(tail) / mu)
    half = tail / 2.0
    hi = wait_q(half) - np.log(half) / mu
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        above = _survival(mid, pw, mu, th) > tail
        lo = np.where(above, mid, lo)
        hi = np.where(above, hi, mid)
    return np.asarray(np.where(stable, 0.5 * (lo + hi), np.inf), dtype=np.float64)
