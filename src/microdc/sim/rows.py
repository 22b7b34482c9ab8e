"""Row-wise helpers of the block engine: a block is (steps × …), one step per row."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


#: Numbers per chunk of rows where row-wise work runs over wide blocks (sources, pieces): its
#: temporaries stay in cache and their memory is reused chunk after chunk, instead of block-sized ones
#: paged in afresh (a page fault costs more than the arithmetic on its 512 numbers).
CHUNK_ELEMENTS = 32_768


def row_chunks(rows: int, width: int) -> list[slice]:
    """Consecutive slices of ``rows`` rows of ``width`` numbers each, about CHUNK_ELEMENTS a slice."""
    step = max(1, CHUNK_ELEMENTS // max(width, 1))
    return [slice(j, min(j + step, rows)) for j in range(0, rows, step)]


def rowcount(idx: IntArray, weights: FloatArray, n: int) -> FloatArray:
    """``np.bincount(idx, weights=row, minlength=n)`` for every row of a (steps × len(idx)) block, a
    chunk of rows per call; each bin adds its weights in the same order as the one-row bincount (bit
    for bit)."""
    b, p = weights.shape
    chunks = row_chunks(b, p)
    rows = chunks[0].stop if chunks else 0
    flat = (np.arange(rows, dtype=np.int64)[:, None] * n + idx[None, :]).ravel()
    out = np.empty((b, n))
    for sl in chunks:
        m = sl.stop - sl.start
        w = np.ascontiguousarray(weights[sl]).ravel()
        out[sl] = np.bincount(flat[: m * p], weights=w, minlength=m * n).reshape(m, n)
    return out


def shared_row(x: FloatArray) -> FloatArray:
    """``x``'s first row where every row is that one row broadcast (a zero row stride, as from
    ``np.broadcast_to``), else ``x``: row-wise work on it can then be done once (broadcasting back
    gives the same numbers)."""
    return x[0] if x.ndim == 2 and x.shape[0] > 0 and x.strides[0] == 0 else x
