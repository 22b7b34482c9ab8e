"""Device → target round trip, the same model the planner uses (placement.problem):

- to an MDC at a base station within the metro radius: radio access + the extra hop into the MDC +
  metro fibre between base stations (route stretch ``METRO_INFLATION`` over the straight fibre line);
- to a cloud region (or an MDC beyond the metro radius, plus its hop): radio access + the calibrated
  Internet path (physics.latency.LatencyModel).

Both are never below the straight-fibre bound.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from microdc.physics.geo import distance_matrix_km, great_circle_km
from microdc.physics.latency import METRO_INFLATION, LatencyModel, device_rtt_ms, fibre_bound_rtt_ms

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

_MODEL = LatencyModel()


def _rtt_from_distance(
    d: FloatArray, is_cloud: BoolArray, access_ms: float, edge_extra_ms: float, metro_radius_km: float
) -> FloatArray:
    return device_rtt_ms(
        d, is_cloud, access_ms=access_ms, edge_extra_ms=edge_extra_ms, metro_radius_km=metro_radius_km
    )


def rtt_matrix_ms(
    src_lat: npt.ArrayLike,
    src_lon: npt.ArrayLike,
    dst_lat: npt.ArrayLike,
    dst_lon: npt.ArrayLike,
    is_cloud: BoolArray,
    *,
    access_ms: float,
    edge_extra_ms: float,
    metro_radius_km: float,
) -> FloatArray:
    """(K, S) device → target round trip, ms."""
    d = distance_matrix_km(src_lat, src_lon, dst_lat, dst_lon)
    return _rtt_from_distance(
        d, np.asarray(is_cloud, dtype=bool)[None, :], access_ms, edge_extra_ms, metro_radius_km
    )


def rtt_pairs_ms(
    src_lat: npt.ArrayLike,
    src_lon: npt.ArrayLike,
    dst_lat: npt.ArrayLike,
    dst_lon: npt.ArrayLike,
    is_cloud: npt.ArrayLike,
    *,
    access_ms: float,
    edge_extra_ms: float,
    metro_radius_km: float,
) -> FloatArray:
    """(N,) round trip for N (device, target) pairs, ms."""
    d = great_circle_km(src_lat, src_lon, dst_lat, dst_lon)
    return _rtt_from_distance(
        np.asarray(d), np.asarray(is_cloud, dtype=bool), access_ms, edge_extra_ms, metro_radius_km
    )


def fibre_floor_ms(
    src_lat: npt.ArrayLike, src_lon: npt.ArrayLike, dst_lat: npt.ArrayLike, dst_lon: npt.ArrayLike
) -> FloatArray:
    """(N,) straight-fibre round-trip bound for N pairs, ms (the floor no latency may go below)."""
    return fibre_bound_rtt_ms(great_circle_km(src_lat, src_lon, dst_lat, dst_lon))


class TargetGeometry:
    """Per-target trigonometry (float32) for fast (K, S) RTT matrices in the placer's hot loop.

    float32 keeps ~0.3 m at 1 km and ~1e-6 relative error: ample for ranking and SLO checks."""

    def __init__(
        self,
        lat: npt.ArrayLike,
        lon: npt.ArrayLike,
        is_cloud: npt.ArrayLike,
        access_ms: float,
        edge_extra_ms: float,
        metro_radius_km: float,
    ) -> None:
        la = np.radians(np.asarray(lat, dtype=np.float64))
        lo = np.radians(np.asarray(lon, dtype=np.float64))
        f = np.float32
        self.sin_hlat, self.cos_hlat = np.sin(la / 2).astype(f), np.cos(la / 2).astype(f)
        self.sin_hlon, self.cos_hlon = np.sin(lo / 2).astype(f), np.cos(lo / 2).astype(f)
        self.cos_lat = np.cos(la).astype(f)
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.cloud = np.flatnonzero(np.asarray(is_cloud, dtype=bool))
        self.access_ms = access_ms
        self.edge_extra_ms = edge_extra_ms
        self.metro_radius_km = metro_radius_km
        self.sites = np.flatnonzero(~np.asarray(is_cloud, dtype=bool))

    def rtt_ms(self, lat: npt.ArrayLike, lon: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """(K, S) device → target RTT, ms, float32."""
        la = np.radians(np.asarray(lat, dtype=np.float64))
        lo = np.radians(np.asarray(lon, dtype=np.float64))
        f = np.float32
        s_hla, c_hla = np.sin(la / 2).astype(f), np.cos(la / 2).astype(f)
        s_hlo, c_hlo = np.sin(lo / 2).astype(f), np.cos(lo / 2).astype(f)
        h = np.multiply.outer(c_hla, self.sin_hlat)
        h -= np.multiply.outer(s_hla, self.cos_hlat)
        h *= h
        b = np.multiply.outer(c_hlo, self.sin_hlon)
        b -= np.multiply.outer(s_hlo, self.cos_hlon)
        b *= b
        b *= np.multiply.outer(np.cos(la).astype(f), self.cos_lat)
        h += b
        np.clip(h, 0.0, 1.0, out=h)
        np.sqrt(h, out=h)
        np.arcsin(h, out=h)
        from microdc.physics.geo import EARTH_RADIUS_KM
        from microdc.physics.latency import FIBRE_RTT_MS_PER_KM

        h *= f(2.0 * EARTH_RADIUS_KM)  # great-circle km
        far_km = np.where(h > f(self.metro_radius_km), h, f(np.nan))
        far_km[:, self.cloud] = np.nan
        h *= f(METRO_INFLATION * FIBRE_RTT_MS_PER_KM)
        h += f(self.access_ms + self.edge_extra_ms)
        far = np.isfinite(far_km)
        if far.any():  # MDCs beyond the metro radius: the Internet path plus the hop into the MDC
            h[far] = (
                _MODEL.rtt_ms(far_km[far].astype(np.float64)) + self.access_ms + self.edge_extra_ms
            ).astype(f)
        if self.cloud.size:
            d = great_circle_km(
                np.asarray(lat, dtype=np.float64)[:, None],
                np.asarray(lon, dtype=np.float64)[:, None],
                self.lat[self.cloud][None, :],
                self.lon[self.cloud][None, :],
            )
            h[:, self.cloud] = (_MODEL.rtt_ms(d) + self.access_ms).astype(f)
        return h
