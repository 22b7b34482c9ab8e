"""Electricity of carrying data over the network, per GB and segment (access, metro, core).

Source: J. Aslan, K. Mayers, J. G. Koomey and C. France, "Electricity intensity of Internet data
transmission: untangling the estimates", Journal of Industrial Ecology 22(4), 2018: 0.06 kWh/GB for
the fixed-line Internet (access and core, no end devices, no data centres) in 2015, halving about every
two years (2000–2015). Extrapolated to a scenario's year; 2023 gives 0.00375 kWh/GB.

Aslan et al. give one figure for the whole path. The split over segments, 50 % access, 25 % metro
(aggregation) and 25 % core, is microdc's assumption, following the common finding that per-bit access
equipment dominates (Baliga et al., "Green cloud computing", Proc. IEEE 99(1), 2011); a scenario can
give its own figures (``network.energy_kwh_per_gb``).

Which segments a path crosses: a device to an MDC on its metro network crosses access and metro; to a
cloud region, or to an MDC beyond the metro radius, access, metro and core; an MDC syncing to the cloud
crosses metro and core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Aslan et al. (2018): kWh per GB in the reference year, and the halving time of that intensity.
ASLAN_KWH_PER_GB = 0.06
ASLAN_YEAR = 2015
ASLAN_HALVING_YEARS = 2.0
#: Shares of the path's energy by segment (microdc's assumption, see the module docstring).
SEGMENT_SHARES = (0.5, 0.25, 0.25)


@dataclass(frozen=True)
class Segments:
    """kWh per GB in each network segment."""

    access: float
    metro: float
    core: float


def aslan_kwh_per_gb(year: float) -> float:
    """Whole-path electricity intensity in a year, kWh/GB (the trend of Aslan et al. 2018)."""
    return ASLAN_KWH_PER_GB * 0.5 ** ((year - ASLAN_YEAR) / ASLAN_HALVING_YEARS)


def default_segments(year: float) -> Segments:
    total = aslan_kwh_per_gb(year)
    a, m, c = SEGMENT_SHARES
    return Segments(access=total * a, metro=total * m, core=total * c)


def device_path_kwh_per_gb(
    distance_km: npt.ArrayLike, is_cloud: npt.ArrayLike, metro_radius_km: float, seg: Segments
) -> FloatArray:
    """kWh per GB between a device and its target: access + metro, plus core to a cloud region or to
    an MDC beyond the metro radius."""
    d = np.asarray(distance_km, dtype=np.float64)
    far = np.asarray(is_cloud, dtype=bool) | (d > metro_radius_km)
    return np.asarray(seg.access + seg.metro + np.where(far, seg.core, 0.0), dtype=np.float64)


def sync_path_kwh_per_gb(seg: Segments) -> float:
    """kWh per GB an MDC syncs to the cloud: metro and core."""
    return seg.metro + seg.core
