"""Great-circle distances on a spherical Earth, vectorized and memory-aware.

Distances feed the latency model and the placement problem, where matrices of
sites × demand points get large: a 1,000 × 100,000 matrix holds 1e8 numbers, which is
800 MB as float64 and 400 MB as float32. ``distance_matrix_km`` therefore computes in
row blocks of bounded temporary size (never one giant broadcast with several
full-size temporaries) and can store the result as float32; ``iter_distance_blocks_km``
yields row blocks so a caller can reduce them (e.g. nearest site) without ever holding
the whole matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
ArrayLike = npt.ArrayLike

#: Mean Earth radius (IUGG, R1 = (2a + b) / 3), km.
EARTH_RADIUS_KM = 6371.0088

#: Default cap on the float64 temporaries of one block (bytes).
DEFAULT_BLOCK_BYTES = 64 * 1024 * 1024

# float64 temporaries alive per matrix element while a block is computed (measured
# conservatively from the expression in ``_haversine_block``).
_TEMPS_PER_ELEMENT = 4


def great_circle_km(
    lat1_deg: ArrayLike, lon1_deg: ArrayLike, lat2_deg: ArrayLike, lon2_deg: ArrayLike
) -> FloatArray:
    """Haversine great-circle distance in km; inputs in degrees, broadcast like numpy.

    The haversine form is used (not the spherical law of cosines) because it stays
    accurate for the short, metre-to-kilometre distances of edge deployments.
    """
    lat1 = np.radians(np.asarray(lat1_deg, dtype=np.float64))
    lon1 = np.radians(np.asarray(lon1_deg, dtype=np.float64))
    lat2 = np.radians(np.asarray(lat2_deg, dtype=np.float64))
    lon2 = np.radians(np.asarray(lon2_deg, dtype=np.float64))
    h = np.sin((lat2 - lat1) / 2.0) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2.0) ** 2
    return np.asarray(2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), dtype=np.float64)


def matrix_nbytes(n_src: int, n_dst: int, dtype: npt.DTypeLike = np.float64) -> int:
    """Bytes needed to hold an ``n_src × n_dst`` distance matrix of ``dtype``."""
    return int(n_src) * int(n_dst) * np.dtype(dtype).itemsize


class _Trig:
    """Per-point half-angle sines and cosines, so blocks need no transcendental calls."""

    def __init__(self, lat_deg: ArrayLike, lon_deg: ArrayLike, label: str) -> None:
        lat = np.radians(np.asarray(lat_deg, dtype=np.float64)).ravel()
        lon = np.radians(np.asarray(lon_deg, dtype=np.float64)).ravel()
        if lat.shape != lon.shape:
            raise ValueError(f"{label} latitude and longitude differ in length: {lat.size} vs {lon.size}")
        if not (np.all(np.isfinite(lat)) and np.all(np.isfinite(lon))):
            raise ValueError(f"{label} coordinates must be finite")
        self.n = lat.size
        self.cos_lat = np.cos(lat)
        self.sin_hlat = np.sin(lat / 2.0)
        self.cos_hlat = np.cos(lat / 2.0)
        self.sin_hlon = np.sin(lon / 2.0)
        self.cos_hlon = np.cos(lon / 2.0)


def _haversine_block(src: _Trig, rows: slice, dst: _Trig) -> FloatArray:
    # sin((b - a)/2) = sin(b/2)cos(a/2) - cos(b/2)sin(a/2): exact, and avoids calling
    # sin/cos on n×m arrays (only products, one sqrt and one arcsin per element).
    h = np.multiply.outer(src.cos_hlat[rows], dst.sin_hlat)
    h -= np.multiply.outer(src.sin_hlat[rows], dst.cos_hlat)
    h *= h
    s_lon = np.multiply.outer(src.cos_hlon[rows], dst.sin_hlon)
    s_lon -= np.multiply.outer(src.sin_hlon[rows], dst.cos_hlon)
    s_lon *= s_lon
    s_lon *= np.multiply.outer(src.cos_lat[rows], dst.cos_lat)
    h += s_lon
    np.clip(h, 0.0, 1.0, out=h)
    np.sqrt(h, out=h)
    np.arcsin(h, out=h)
    h *= 2.0 * EARTH_RADIUS_KM
    return h


def pairwise_km(
    src_lat_deg: ArrayLike, src_lon_deg: ArrayLike, dst_lat_deg: ArrayLike, dst_lon_deg: ArrayLike
) -> FloatArray:
    """Distance of each pair (src[i], dst[i]) in km, by the same operations as `distance_matrix_km`, so
    each value equals that matrix's entry bit for bit (a caller can look pairs up instead of keeping
    the matrix)."""
    src = _Trig(src_lat_deg, src_lon_deg, "source")
    dst = _Trig(dst_lat_deg, dst_lon_deg, "destination")
    if src.n != dst.n:
        raise ValueError(f"pairwise_km needs as many sources as destinations: {src.n} vs {dst.n}")
    h = src.cos_hlat * dst.sin_hlat
    h -= src.sin_hlat * dst.cos_hlat
    h *= h
    s_lon = src.cos_hlon * dst.sin_hlon
    s_lon -= src.sin_hlon * dst.cos_hlon
    s_lon *= s_lon
    s_lon *= src.cos_lat * dst.cos_lat
    h += s_lon
    np.clip(h, 0.0, 1.0, out=h)
    np.sqrt(h, out=h)
    np.arcsin(h, out=h)
    h *= 2.0 * EARTH_RADIUS_KM
    return h


def _rows_per_block(n_dst: int, block_bytes: int) -> int:
    per_row = max(1, n_dst) * 8 * _TEMPS_PER_ELEMENT
    return max(1, int(block_bytes // per_row))


def iter_distance_blocks_km(
    src_lat_deg: ArrayLike,
    src_lon_deg: ArrayLike,
    dst_lat_deg: ArrayLike,
    dst_lon_deg: ArrayLike,
    *,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    dtype: npt.DTypeLike = np.float64,
) -> Iterator[tuple[slice, npt.NDArray[Any]]]:
    """Yield ``(row_slice, block)`` pairs covering the source × destination matrix.

    Each block is ``(rows, n_dst)`` in ``dtype``; temporaries stay under about
    ``block_bytes``. Use this to reduce huge matrices (argmin, thresholds) without
    materialising them. The loop is over row blocks, never over pairs.
    """
    src = _Trig(src_lat_deg, src_lon_deg, "source")
    dst = _Trig(dst_lat_deg, dst_lon_deg, "destination")
    step = _rows_per_block(dst.n, block_bytes)
    out_dtype = np.dtype(dtype)
    for start in range(0, src.n, step):
        rows = slice(start, min(start + step, src.n))
        block = _haversine_block(src, rows, dst)
        yield rows, (block if out_dtype == np.float64 else block.astype(out_dtype))


def distance_matrix_km(
    src_lat_deg: ArrayLike,
    src_lon_deg: ArrayLike,
    dst_lat_deg: ArrayLike,
    dst_lon_deg: ArrayLike,
    *,
    dtype: npt.DTypeLike = np.float64,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> npt.NDArray[Any]:
    """Full ``(n_src, n_dst)`` great-circle distance matrix in km.

    Memory: the result needs ``matrix_nbytes(n, m, dtype)`` bytes (float32 halves
    it; its 7 significant digits are ~1 m at 10,000 km, ample for latency). Temporary
    memory is bounded by ``block_bytes`` regardless of matrix size.
    """
    src = _Trig(src_lat_deg, src_lon_deg, "source")
    dst = _Trig(dst_lat_deg, dst_lon_deg, "destination")
    out = np.empty((src.n, dst.n), dtype=np.dtype(dtype))
    step = _rows_per_block(dst.n, block_bytes)
    for start in range(0, src.n, step):
        rows = slice(start, min(start + step, src.n))
        out[rows] = _haversine_block(src, rows, dst)
    return out
