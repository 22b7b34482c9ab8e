"""Network round-trip time from great-circle distance, bounded below by light in fibre.

Model (server-to-server, calibrated on WonderNetwork pings; see ``tools/calibrate_latency.py``
and ``docs/physics.md``)::

    rtt_ms(d) = max(fibre_bound_ms(d), base_ms + (2 d / v_fibre) · inflation(d))
    inflation(d) = 1 + extra_inflation / (1 + d / inflation_scale_km)

``base_ms`` captures fixed per-path costs (switching, queueing, the first and last
metro hops between data centres); ``inflation`` is the route stretch over the
straight fibre path, which shrinks with distance because long-haul routes follow
straighter backbones. Together they give the observed ~4.6× the fibre bound below
500 km falling to ~1.8× above 5,000 km.

The calibration data is data-centre-to-data-centre. Traffic that starts on an end
device also crosses an access network (Wi-Fi/4G/5G/DSL/fibre last mile); that cost is
``access_ms`` and is added only when asked (``access=True``), once per round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from microdc.physics.geo import distance_matrix_km

FloatArray = npt.NDArray[np.float64]

#: Speed of light in vacuum, km/s.
SPEED_OF_LIGHT_KM_S = 299_792.458
#: Group index of standard single-mode fibre (G.652 at 1550 nm).
FIBRE_GROUP_INDEX = 1.468
#: Signal speed in fibre, km/s (≈ 204,218 km/s).
FIBRE_SPEED_KM_S = SPEED_OF_LIGHT_KM_S / FIBRE_GROUP_INDEX
#: Round trip over one km of straight fibre, ms (≈ 0.98 ms per 100 km).
FIBRE_RTT_MS_PER_KM = 2.0 * 1000.0 / FIBRE_SPEED_KM_S


def fibre_bound_rtt_ms(distance_km: npt.ArrayLike) -> FloatArray:
    """Physical lower bound: round trip over a straight fibre along the great circle."""
    d = np.asarray(distance_km, dtype=np.float64)
    return np.asarray(FIBRE_RTT_MS_PER_KM * d, dtype=np.float64)


@dataclass(frozen=True)
class LatencyModel:
    """Calibrated distance → RTT model; parameters default to the published fit.

    Attributes:
        base_ms: fixed server-to-server round-trip cost, ms.
        extra_inflation: route stretch above 1 at zero distance (dimensionless).
        inflation_scale_km: distance at which the extra stretch has halved, km.
        access_ms: last-mile access-network round trip added for device-origin
            traffic (``access=True``); not part of the calibration. 10 ms is a
            typical good fixed-broadband / 5G figure; use ~30 ms for 4G.
    """

    # Defaults produced by ``python tools/calibrate_latency.py`` (see docs/physics.md).
    base_ms: float = 6.3013
    extra_inflation: float = 1.0180
    inflation_scale_km: float = 24930.0
    access_ms: float = 10.0

    def __post_init__(self) -> None:
        for name in ("base_ms", "extra_inflation", "access_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"LatencyModel.{name} must be finite and >= 0, got {value!r}")
        if not (math.isfinite(self.inflation_scale_km) and self.inflation_scale_km > 0.0):
            raise ValueError(f"LatencyModel.inflation_scale_km must be > 0, got {self.inflation_scale_km!r}")

    @staticmethod
    def fibre_bound_rtt_ms(distance_km: npt.ArrayLike) -> FloatArray:
        """Straight-fibre round trip (the floor every prediction respects)."""
        return fibre_bound_rtt_ms(distance_km)

    def route_inflation(self, distance_km: npt.ArrayLike) -> FloatArray:
        """Route length over great-circle length used by the model (≥ 1, decreasing)."""
        d = np.asarray(distance_km, dtype=np.float64)
        return np.asarray(1.0 + self.extra_inflation / (1.0 + d / self.inflation_scale_km), dtype=np.float64)

    def rtt_ms(self, distance_km: npt.ArrayLike, *, access: bool = False) -> FloatArray:
        """Round-trip time in ms for great-circle distances in km (any shape).

        ``access=True`` adds ``access_ms`` for traffic from an end device. The result is
        never below the fibre bound, whatever the parameters.
        """
        d = np.asarray(distance_km, dtype=np.float64)
        if np.any(d < 0.0) or not np.all(np.isfinite(d)):
            raise ValueError("distances must be finite and >= 0")
        bound = fibre_bound_rtt_ms(d)
        rtt = np.maximum(bound, self.base_ms + bound * self.route_inflation(d))
        if access:
            rtt = rtt + self.access_ms
        return np.asarray(rtt, dtype=np.float64)

    def one_way_ms(self, distance_km: npt.ArrayLike, *, access: bool = False) -> FloatArray:
        """Half the round trip (paths are assumed symmetric)."""
        return np.asarray(0.5 * self.rtt_ms(distance_km, access=access), dtype=np.float64)

    def matrix_ms(
        self,
        src_lat_deg: npt.ArrayLike,
        src_lon_deg: npt.ArrayLike,
        dst_lat_deg: npt.ArrayLike,
        dst_lon_deg: npt.ArrayLike,
        *,
        access: bool = False,
    ) -> FloatArray:
        """``(n_src, n_dst)`` RTT matrix in ms between coordinate lists (degrees).

        Holds two float64 matrices at a time; for very large fleets compute RTTs per
        block from ``geo.iter_distance_blocks_km`` instead.
        """
        d = distance_matrix_km(src_lat_deg, src_lon_deg, dst_lat_deg, dst_lon_deg)
        return self.rtt_ms(d, access=access)


#: Metro fibre between base stations: route stretch over the straight line.
METRO_INFLATION = 2.0


def device_rtt_ms(
    distance_km: npt.ArrayLike,
    is_cloud: npt.ArrayLike,
    *,
    access_ms: float,
    edge_extra_ms: float,
    metro_radius_km: float,
    model: LatencyModel | None = None,
) -> FloatArray:
    """Round trip from an end device to a target, ms (the one formula the planner, the placer and the
    simulator share): radio/last-mile access, then either the hop into a base-station MDC plus metro
    fibre between base stations (only within ``metro_radius_km``: one operator's metro network), or
    the calibrated Internet path (a cloud region, or an MDC beyond the metro radius, which also pays
    the hop into the MDC). Never below fibre."""
    d = np.asarray(distance_km, dtype=np.float64)
    cloud = np.broadcast_to(np.asarray(is_cloud, dtype=bool), d.shape)
    metro = ~cloud & (d <= metro_radius_km)
    edge = access_ms + edge_extra_ms + METRO_INFLATION * fibre_bound_rtt_ms(d)
    if metro.all():
        return np.asarray(edge, dtype=np.float64)
    internet = (model or LatencyModel()).rtt_ms(np.where(metro, 0.0, d)) + access_ms
    internet = np.where(cloud, internet, internet + edge_extra_ms)
    return np.asarray(np.where(metro, edge, internet), dtype=np.float64)
