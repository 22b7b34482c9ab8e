"""The checker's own physics: demand sizing, device → target round trip and the M/M/c response quantile.

`microdc check-plan` must not pass a plan because a bug in the solver's sizing or latency code also sits
in the checker, so this module re-implements them from their documented formulas (docs/planner.md,
docs/physics.md, docs/architecture.md) with different algorithms, and imports nothing of the solver's
(`placement.problem`, `physics.queueing`, `physics.latency.device_rtt_ms`, `physics.geo`); only
calibration *constants* and the scenario's own data are shared. tests/placement/test_check_physics.py
compares both implementations on the built-in examples and the tiny test scenario: each checks the other.

- **Sizing**: mean rate = devices × rate per device; peak = mean × the profile's peak factor (a diurnal
  profile's is max(weekly) · max(hourly) / (mean(weekly) · mean(hourly)), a trace's is its maximum over
  its mean); cores at peak = peak × CPU seconds per request / target utilization; memory = peak / requests
  per instance × memory per instance; busy cores on average = mean × CPU seconds; storage = data per day
  × the data class's retention days, in TB of 1000 GB (docs/storage.md).
- **Round trip**, device → MDC within the scenario's metro radius = access + edge hop + METRO_INFLATION ×
  straight-fibre round trip; device → cloud = access + max(fibre, base + fibre × (1 + extra / (1 + d /
  scale))), the calibrated Internet model; device → MDC beyond the metro radius = that Internet round trip
  plus the edge hop. Distances are great-circle (haversine in its atan2 form).
- **Response quantile**: the M/M/c sojourn time at the service's target utilization, c = the demand's
  cores (rounded up) but at least the smallest server's cores. Erlang C comes from the Erlang B recursion
  B_k = a·B_{k-1} / (k + a·B_{k-1}); the quantile solves P(T > t) = 1 − q by bisection, with
  P(T > t) = (1 − C)·e^{−μt} + C·(θe^{−μt} − μe^{−θt}) / (θ − μ), θ = cμ − λ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from microdc.model import Scenario
from microdc.model.components import DiurnalProfile, Profile
from microdc.model.profiles import profile_peak
from microdc.physics.latency import FIBRE_GROUP_INDEX, METRO_INFLATION, SPEED_OF_LIGHT_KM_S, LatencyModel

FloatArray = npt.NDArray[np.float64]

#: Mean Earth radius, km (the same constant the scenario's geometry uses, physics.geo.EARTH_RADIUS_KM).
EARTH_RADIUS_KM = 6371.0088
#: Round trip over one km of straight fibre, ms: there and back at c / n.
FIBRE_RTT_MS_PER_KM = 2.0 * 1000.0 * FIBRE_GROUP_INDEX / SPEED_OF_LIGHT_KM_S


@dataclass(frozen=True)
class Sizes:
    """Per-demand sizes, in scenario order (C,)."""

    mean_rps: FloatArray
    peak_rps: FloatArray
    cores_peak: FloatArray
    busy_cores_mean: FloatArray
    memory_gb: FloatArray
    service_s: FloatArray
    utilization: FloatArray
    slo_p95_ms: FloatArray  # inf where the service has no p95 SLO
    slo_p99_ms: FloatArray
    storage_tb: FloatArray  # raw data kept where the demand is served, TB


def peak_factor(p: Profile | None, s: Scenario) -> float:
    """The profile's peak over its mean (1 for a flat or missing profile)."""
    if p is None:
        return 1.0
    if isinstance(p, DiurnalProfile):
        w, h = np.asarray(p.weekly, float), np.asarray(p.hourly, float)
        mean = float(w.mean() * h.mean())
        return float(w.max() * h.max() / mean) if mean > 0 else 1.0
    return profile_peak(p, s.base_dir)  # a trace: reading the file is the model's job


def demand_sizes(s: Scenario) -> Sizes:
    """Size every demand source, one plain loop over the scenario's demand."""
    services = {v.id: v for v in s.services}
    peaks: dict[str, float] = {}
    retention = {name: pol.retention_days for name, pol in s.policies.data_classes.items()}
    rows: list[tuple[float, ...]] = []
    inf = math.inf
    for d in s.demand:
        svc = services[d.service]
        if d.profile not in peaks:
            peaks[d.profile] = peak_factor(s.profiles.get(d.profile), s)
        mean = d.devices * d.rate_per_device_rps
        peak = mean * peaks[d.profile]
        cpu = svc.cpu_seconds_per_request
        rows.append(
            (
                mean,
                peak,
                peak * cpu / svc.target_utilization,
                mean * cpu,
                peak * svc.memory_gb_per_instance / svc.requests_per_instance,
                cpu,
                svc.target_utilization,
                svc.slo.p95_ms if svc.slo.p95_ms is not None else inf,
                svc.slo.p99_ms if svc.slo.p99_ms is not None else inf,
                d.data_gb_per_day * retention[d.data_class] / 1000.0,
            )
        )
    cols = np.array(rows, dtype=np.float64).reshape(len(rows), 10).T
    return Sizes(*(np.ascontiguousarray(c) for c in cols))


def haversine_km(
    lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike, lon2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distance, km (degrees in; atan2 form of the haversine)."""
    p1, p2 = np.radians(np.asarray(lat1, float)), np.radians(np.asarray(lat2, float))
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, float)) - np.radians(np.asarray(lon1, float))
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    a = np.clip(a, 0.0, 1.0)
    return np.asarray(2.0 * EARTH_RADIUS_KM * np.arctan2(np.sqrt(a), np.sqrt(1.0 - a)), dtype=np.float64)


def round_trip_ms(
    distance_km: npt.ArrayLike,
    is_cloud: npt.ArrayLike,
    *,
    access_ms: float,
    edge_extra_ms: float,
    metro_radius_km: float,
    calibration: LatencyModel | None = None,
) -> FloatArray:
    """Device → target round trip, ms, by the documented formula (see the module docstring)."""
    cal = calibration or LatencyModel()
    d = np.asarray(distance_km, dtype=np.float64)
    cloud = np.broadcast_to(np.asarray(is_cloud, dtype=bool), d.shape)
    fibre = FIBRE_RTT_MS_PER_KM * d
    stretch = 1.0 + cal.extra_inflation / (1.0 + d / cal.inflation_scale_km)
    internet = access_ms + np.maximum(fibre, cal.base_ms + fibre * stretch)
    out = np.where(cloud, internet, 0.0)
    for_mdc = ~cloud
    in_metro = for_mdc & (d <= metro_radius_km)
    out[in_metro] = (access_ms + edge_extra_ms + METRO_INFLATION * fibre)[in_metro]
    out[for_mdc & ~in_metro] = (internet + edge_extra_ms)[for_mdc & ~in_metro]
    return np.asarray(out, dtype=np.float64)


def erlang_c(offered: FloatArray, servers: npt.NDArray[np.int64]) -> FloatArray:
    """P(wait) in M/M/c for offered load a (Erlangs) on c servers, by the Erlang B recursion.

    The recursion runs over k = 1..max(c) on the elements whose c is still ≥ k (sorted by c, the active
    ones form a prefix), so the work is the sum of the c's. 1 where a ≥ c (unstable)."""
    a = np.asarray(offered, np.float64).ravel()
    c = np.asarray(servers, np.int64).ravel()
    order = np.argsort(-c, kind="stable")
    a_s, c_s = a[order], c[order]
    b = np.ones_like(a_s)
    n_active = c_s.size
    for k in range(1, int(c_s.max(initial=0)) + 1):
        while n_active and c_s[n_active - 1] < k:
            n_active -= 1
        ab = a_s[:n_active] * b[:n_active]
        b[:n_active] = ab / (k + ab)
    rho = a_s / c_s
    with np.errstate(divide="ignore", invalid="ignore"):
        pw = b / (1.0 - rho * (1.0 - b))
    pw = np.where(rho >= 1.0, 1.0, np.clip(pw, 0.0, 1.0))
    out = np.empty_like(pw)
    out[order] = pw
    return out.reshape(np.shape(offered))


def _sojourn_survival(t: FloatArray, pw: FloatArray, mu: FloatArray, theta: FloatArray) -> FloatArray:
    """P(T > t) for T = W + S: W = 0 w.p. 1 − C, else Exp(θ); S ~ Exp(μ)."""
    lo, hi = np.minimum(mu, theta), np.maximum(mu, theta)
    x = (hi - lo) * t
    with np.errstate(divide="ignore", invalid="ignore"):
        g = np.where(x > 1e-12, -np.expm1(-x) / x, 1.0 - 0.5 * x)  # (1 − e^{−x}) / x
    both = np.exp(-lo * t) * (1.0 + lo * t * g)  # P(Exp(θ) + Exp(μ) > t), symmetric in θ, μ
    return np.asarray((1.0 - pw) * np.exp(-mu * t) + pw * both, dtype=np.float64)


def mmc_quantile_ms(
    service_s: npt.ArrayLike,
    cores: npt.ArrayLike,
    utilization: npt.ArrayLike,
    q: float,
    min_pool_cores: float,
) -> FloatArray:
    """q-quantile of the response time (wait + service), ms, of each demand's M/M/c queue at its target
    utilization: c = ceil(cores) but at least min_pool_cores (and 1)."""
    svc = np.asarray(service_s, np.float64)
    util = np.broadcast_to(np.asarray(utilization, np.float64), svc.shape)
    c = np.maximum(np.ceil(np.asarray(cores, np.float64)), max(float(min_pool_cores), 1.0))
    # Queues that differ only by demand share (c, utilization, service time): solve each once.
    keys = np.stack([c.ravel(), util.ravel(), svc.ravel()], axis=1)
    uniq, back = np.unique(keys, axis=0, return_inverse=True)
    cu, uu, su = uniq[:, 0], uniq[:, 1], uniq[:, 2]
    mu = 1.0 / su
    offered = uu * cu  # λ/μ at the target utilization
    pw = erlang_c(offered, cu.astype(np.int64))
    theta = mu * (cu - offered)  # cμ − λ
    stable = theta > 0
    theta = np.where(stable, theta, 1.0)
    tail = 1.0 - q
    hi = 1.0 / np.minimum(mu, theta)
    for _ in range(200):  # grow the bracket until the tail is below 1 − q everywhere
        short = _sojourn_survival(hi, pw, mu, theta) > tail
        if not short.any():
            break
        hi = np.where(short, 2.0 * hi, hi)
    lo = np.zeros_like(hi)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        above = _sojourn_survival(mid, pw, mu, theta) > tail
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    t = np.where(stable, 0.5 * (lo + hi), np.inf)
    return np.asarray(1000.0 * t[np.asarray(back).ravel()], dtype=np.float64).reshape(svc.shape)
