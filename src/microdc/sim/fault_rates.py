"""Random faults per physical candidate site, drawn from the scenario's failure rates.

Why per *candidate* site and not per built site: the schedule is a property of the world, not of a
plan, so every alternative (microdc's plan, cloud-only, nearest, greedy) faces the same faults at the
sites it chose to build; an alternative that avoids a failure-prone site is credited for it.

Up-times are exponential (a constant hazard: MTBF field data are counts per year, which identify a rate
and nothing more) and repair times lognormal with mean MTTR (right-skewed: most repairs are quick, a few
wait for parts or a crew; the usual maintainability model). Each (site, kind) has its own random stream
derived from the seed and the site id, so adding a site or a kind never changes another site's faults.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import pandas as pd

from microdc.model import Scenario
from microdc.model.reliability import FAULT_KINDS, FailureRate
from microdc.sim.faults import Fault, FaultKind, FaultSpec

SOURCE = "failure rates"


def _stream(seed: int, site: str, kind: str) -> np.random.Generator:
    key = [seed & 0xFFFFFFFF, seed >> 32 & 0xFFFFFFFF, zlib.crc32(site.encode()), FAULT_KINDS.index(kind)]
    return np.random.default_rng(np.random.SeedSequence(key))


def draw_schedule(
    rate: FailureRate, horizon_h: float, rng: np.random.Generator, repair_sigma: float
) -> list[tuple[float, float]]:
    """(start, end) hours of each fault in [0, horizon): alternating Exp(MTBF) up, LogN(mean MTTR) down."""
    mu = math.log(rate.mttr_hours) - repair_sigma**2 / 2.0  # so that the mean repair time is MTTR
    out: list[tuple[float, float]] = []
    t = 0.0
    while True:
        t += float(rng.exponential(rate.mtbf_hours))
        if t >= horizon_h:
            return out
        down = float(rng.lognormal(mu, repair_sigma))
        out.append((t, t + down))
        t += down


def site_faults(s: Scenario, start: pd.Timestamp, days: float, seed: int) -> FaultSpec:
    """The fault schedule of every candidate site over [start, start + days), seeded."""
    horizon_h = days * 24.0
    rel = s.reliability
    faults: list[Fault] = []
    for site in s.sites:
        rates = rel.rates_for(site.failure_class)
        for kind in FAULT_KINDS:
            rng = _stream(seed, site.id, kind)
            for a, b in draw_schedule(rates[kind], horizon_h, rng, rel.repair_sigma):
                t0 = (start + pd.Timedelta(hours=a)).round("s")
                t1 = (start + pd.Timedelta(hours=b)).round("s")
                if t1 > t0:
                    faults.append(Fault(FaultKind(kind), site.id, t0, t1, SOURCE))
    faults.sort(key=lambda f: (f.start, f.site, f.kind.value))
    return FaultSpec(tuple(faults))
