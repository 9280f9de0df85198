"""Hand the pages the C allocator holds free back to the system, now and then.

glibc's ``malloc`` keeps freed memory for reuse: RocksDB's memtables (allocated and freed as
they fill and flush, from its background threads' arenas too), the states read back from the
store and dropped, and the commit's serialized records leave free pages inside the heap that
``free`` alone does not return. Over a long run the worker's RSS so crept up while the memory
in use did not (``benchmarks/long_run_memory.py --malloc-trim`` prints both). ``malloc_trim(0)``
returns every whole free page of every arena; a timer calls it every
``SPENDFUSE_MALLOC_TRIM_S`` seconds. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class HeapTrimmer:
    """Calls ``malloc_trim(0)``; counts the calls."""

    def __init__(self, trim: Callable[[int], int] | None = None) -> None:
        self._trim = trim if trim is not None else libc_malloc_trim()
        self.trims = 0

    @property
    def available(self) -> bool:
        return self._trim is not None

    def trim(self) -> bool:
        """True if memory was handed back (glibc says whether any was)."""
        if self._trim is None:
            return False
        self.trims += 1
        return bool(self._trim(0))


def register_heap_trim(app: Any, interval_s: float, metrics: Any = None) -> HeapTrimmer | None:
    """Trim every ``interval_s`` seconds (counted in ``spendfuse_malloc_trims_total``); 0 turns
    it off."""
    trimmer = HeapTrimmer()
    if interval_s <= 0 or not trimmer.available:
        return None

    @app.timer(interval_s, name="malloc_trim")
    async def malloc_trim() -> None:
        try:
            trimmer.trim()
            if metrics is not None:
                metrics.malloc_trims.inc()
        except Exception:  # never stops the timer
            log.exception("malloc_trim failed")

    return trimmer
