"""Row-wise helpers of the block engine: a block is (steps × …), one step per row."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def rowcount(idx: IntArray, weights: FloatArray, n: int) -> FloatArray:
    """``np.bincount(idx, weights=row, minlength=n)`` for every row of a (steps × len(idx)) block, in
    one call; each bin adds its weights in the same order as the one-row bincount (bit for bit)."""
    b = weights.shape[0]
    if b == 1:
        return np.asarray(np.bincount(idx, weights=weights[0], minlength=n), dtype=np.float64)[None, :]
    flat = (np.arange(b, dtype=np.int64)[:, None] * n + idx[None, :]).ravel()
    out = np.bincount(flat, weights=np.ascontiguousarray(weights).ravel(), minlength=b * n)
    return np.asarray(out, dtype=np.float64).reshape(b, n)


def shared_row(x: FloatArray) -> FloatArray:
    """``x``'s first row where every row is that one row broadcast (a zero row stride, as from
    ``np.broadcast_to``), else ``x``: row-wise work on it can then be done once (broadcasting back
    gives the same numbers)."""
    return x[0] if x.ndim == 2 and x.shape[0] > 0 and x.strides[0] == 0 else x
