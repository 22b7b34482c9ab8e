"""glibc's allocator, set so a block's temporaries reuse the heap instead of faulting pages in again.

Each block of the twin allocates and frees arrays of up to ``block_elements`` numbers (16 MB at the
default) dozens of times. glibc serves an allocation above M_MMAP_THRESHOLD (128 KiB at start,
raised on the fly towards 32 MiB as such chunks are freed) with a fresh mmap(), and hands free memory
at the top of its heap back to the system once more than M_TRIM_THRESHOLD (twice the mmap threshold)
is free; the next block's arrays then fault their pages in again, each page zeroed by the kernel.
Measured on 100 replicas of eu-sovereign in one pass: 140,000 page faults and 0.3–0.5 s of system time,
about a third of the pass (docs/benchmarks.md).

``keep_block_memory`` raises both thresholds (mmap to glibc's own dynamic maximum, trim to several
blocks' worth), once per process and only upwards. It changes no number a run computes, only where
its memory comes from; the price is that up to the trim threshold of freed memory stays with the
process. It does nothing off glibc, or where MICRODC_KEEP_BLOCK_MEMORY=0.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import sys
from collections.abc import Callable

#: mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: glibc's own ceiling for its dynamic mmap threshold (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit)
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
#: Free memory kept at the heap's top before it goes back to the system: at least this, and at least
#: BLOCKS_KEPT blocks' largest arrays
MIN_TRIM_BYTES = 128 * 1024 * 1024
BLOCKS_KEPT = 8

_trim_set = 0


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    """glibc's mallopt, looked up once per process (platform.libc_ver reads the interpreter's binary)."""
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        fn = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


def keep_block_memory(block_bytes: int) -> bool:
    """Let freed block arrays of up to ``block_bytes`` be reused from the heap (module docstring).
    Returns whether the allocator's settings are (now) raised."""
    global _trim_set
    if os.environ.get("MICRODC_KEEP_BLOCK_MEMORY", "1") == "0":
        return False
    trim = max(MIN_TRIM_BYTES, BLOCKS_KEPT * int(block_bytes))
    trim = min(trim, 2**31 - 1)  # (an int parameter)
    if trim <= _trim_set:
        return True
    fn = _mallopt()
    if fn is None:
        return False
    ok = bool(fn(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(fn(M_TRIM_THRESHOLD, trim))
    if ok:
        _trim_set = trim
    return ok
