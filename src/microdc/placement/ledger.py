"""One cost and energy ledger: the functions that price a fleet's year, called alike by the planner
(annual means), its hourly expectation of a plan (placement.expected) and the twin (each step).

Every cost line is linear in what it prices, so summing the twin's steps of these functions gives the
plan's annual figure when nothing fails; only facility power is non-linear, and that comes from one
function too (physics.site_power.module_power), evaluated per hour by the plan and per step by the twin.

Cost lines (annual, the scenario's currency):
- ``site_energy``: MDC facility energy at the site's price plus the carbon price on its emissions;
- ``cloud_compute`` / ``cloud_memory``: cores billed (busy cores over the service's target utilization)
  and memory, per hour at the region's prices;
- ``cloud_egress``: responses out of a cloud region; ``network_backhaul``: requests carried to it;
- ``cloud_carbon``: carbon price on cloud energy (cores × watts per core × PUE);
- ``site_transport``: requests and responses of site-served demand carried between the demand's access
  point and the MDC, priced by distance class (``network.transport_classes``);
- ``data_sync``: raw data an MDC syncs to the cloud (``data_gb_per_day``) at ``network_price_per_gb``;
- ``cloud_storage``: raw data kept in a cloud region (:func:`stored_gb`) at its price per GB-month.

Storage (docs/storage.md): each demand keeps :func:`stored_gb` of raw data where it is served (its data
class's ``retention_days`` of ``data_gb_per_day``); the planner, check-plan's cost line and the twin's
storage report all take the volume from here. Its cost is fixed at a site (``storage_capex``,
``storage_energy``: the installed TB) and ``cloud_storage`` per GB-month in a cloud region.
Transport energy (``physics.transport``) is counted in kWh and carbon, not priced: its cost is in the
per-GB prices.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from microdc.model.scenario import Network, Scenario
from microdc.physics.transport import Segments, default_segments, device_path_kwh_per_gb, sync_path_kwh_per_gb

FloatArray = npt.NDArray[np.float64]

HOURS_PER_YEAR = 8760.0
SECONDS_PER_YEAR = HOURS_PER_YEAR * 3600.0

#: The cost lines of a year that depend on load (the fixed ones are the plan's: site, capex).
LOAD_LINES = (
    "site_energy",
    "cloud_compute",
    "cloud_memory",
    "cloud_egress",
    "network_backhaul",
    "cloud_carbon",
    "site_transport",
    "data_sync",
    "cloud_storage",
)


def gigabytes(rate_rps: npt.ArrayLike, kb: npt.ArrayLike, seconds: float) -> FloatArray:
    """GB carried by ``rate_rps`` requests per second of ``kb`` kB each over ``seconds``."""
    return np.asarray(np.asarray(rate_rps) * np.asarray(kb) * seconds / 1e6, dtype=np.float64)


def energy_cost(
    energy_kwh: npt.ArrayLike, price_per_kwh: npt.ArrayLike, carbon_g: npt.ArrayLike, carbon_price: float
) -> FloatArray:
    """Energy at its price plus the carbon price (per tonne) on its emissions."""
    e, c = np.asarray(energy_kwh), np.asarray(carbon_g)
    return np.asarray(e * np.asarray(price_per_kwh) + c * carbon_price / 1e6, dtype=np.float64)


def carbon_cost(carbon_g: npt.ArrayLike, carbon_price: float) -> FloatArray:
    return np.asarray(np.asarray(carbon_g) * carbon_price / 1e6, dtype=np.float64)


GB_PER_TB = 1000.0  # decimal, as drives are sold
MONTHS_PER_YEAR = 12.0


def stored_gb(data_gb_per_day: npt.ArrayLike, retention_days: npt.ArrayLike) -> FloatArray:
    """Raw data kept at once in steady state: each day's data is kept ``retention_days`` days."""
    return np.asarray(np.asarray(data_gb_per_day) * np.asarray(retention_days), dtype=np.float64)


def demand_stored_gb(s: Scenario) -> FloatArray:
    """(C,) GB each demand source keeps where it is served (its class's retention of its daily data)."""
    daily = np.array([d.data_gb_per_day for d in s.demand], dtype=np.float64)
    keep = np.array([s.policy_for(d.data_class).retention_days for d in s.demand], dtype=np.float64)
    return stored_gb(daily, keep)


def storage_energy_kwh(
    tb: npt.ArrayLike, w_per_tb: npt.ArrayLike, pue: npt.ArrayLike, hours: float
) -> FloatArray:
    """Facility energy of installed storage: constant power per TB (drives spin whether full or not)."""
    return np.asarray(
        np.asarray(tb) * np.asarray(w_per_tb) * np.asarray(pue) * hours / 1000.0, dtype=np.float64
    )


def cloud_storage_cost(gb: npt.ArrayLike, price_per_gb_month: npt.ArrayLike, hours: float) -> FloatArray:
    """Object storage of ``gb`` held for ``hours`` at a price per GB-month (a month: a twelfth of a year)."""
    months = MONTHS_PER_YEAR * hours / HOURS_PER_YEAR
    return np.asarray(np.asarray(gb) * np.asarray(price_per_gb_month) * months, dtype=np.float64)


def cloud_cores(
    rate_rps: npt.ArrayLike, cpu_s: npt.ArrayLike, target_utilization: npt.ArrayLike
) -> FloatArray:
    """Cores a cloud region bills for a load: busy cores over the service's target utilization."""
    return np.asarray(
        np.asarray(rate_rps) * np.asarray(cpu_s) / np.asarray(target_utilization), dtype=np.float64
    )


def cloud_energy_kwh(
    cores: npt.ArrayLike, watts_per_core: npt.ArrayLike, pue: npt.ArrayLike, hours: float
) -> FloatArray:
    return np.asarray(
        np.asarray(cores) * np.asarray(watts_per_core) * np.asarray(pue) * hours / 1000.0, dtype=np.float64
    )


def transport_class(distance_km: npt.ArrayLike, network: Network) -> npt.NDArray[np.int64]:
    """Index of the distance class (``network.transport_classes``) of each distance."""
    bounds = np.array([c.max_km for c in network.transport_classes[:-1]], dtype=np.float64)
    return np.asarray(
        np.searchsorted(bounds, np.asarray(distance_km, dtype=np.float64), side="left"), dtype=np.int64
    )


def transport_price_per_gb(distance_km: npt.ArrayLike, network: Network) -> FloatArray:
    """Backhaul price per GB between a demand's access point and an MDC this far away."""
    prices = np.array([c.price_per_gb for c in network.transport_classes], dtype=np.float64)
    return np.asarray(prices[transport_class(distance_km, network)], dtype=np.float64)


def segments(s: Scenario) -> Segments:
    """The scenario's network energy per GB and segment (its own, or Aslan et al. at its start year)."""
    e = s.network.energy_kwh_per_gb
    if e is None:
        return default_segments(s.start.year)
    return Segments(access=e.access, metro=e.metro, core=e.core)


def device_transport(
    distance_km: npt.ArrayLike, is_cloud: npt.ArrayLike, s: Scenario
) -> tuple[FloatArray, FloatArray]:
    """Per (device, target) pair: the backhaul price per GB of its requests and responses (0 for cloud
    targets, whose traffic the cloud lines price) and the electricity per GB of the path, kWh."""
    d = np.asarray(distance_km, dtype=np.float64)
    cloud = np.asarray(is_cloud, dtype=bool)
    price = np.where(cloud, 0.0, transport_price_per_gb(d, s.network))
    kwh = device_path_kwh_per_gb(d, cloud, s.network.metro_radius_km, segments(s))
    return np.asarray(price, dtype=np.float64), kwh


def sync_kwh_per_gb(s: Scenario) -> float:
    """Electricity per GB an MDC syncs to the cloud."""
    return sync_path_kwh_per_gb(segments(s))
