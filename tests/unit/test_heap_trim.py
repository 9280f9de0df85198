"""Freed C-heap pages go back to the system only when trimmed.

Real allocations in this process: 10,000 buffers of 8 KiB (over Python's small-object limit, so
glibc's ``malloc`` serves them), nine in ten freed. Their pages stay in RSS until
``malloc_trim``; the worker's timer calls it (``SPENDFUSE_MALLOC_TRIM_S``).
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from spendfuse.streams.heap_trim import HeapTrimmer, libc_malloc_trim, register_heap_trim

MiB = 1024 * 1024
pytestmark = pytest.mark.skipif(libc_malloc_trim() is None, reason="not glibc")


def _rss() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096


def _fragment() -> list[bytearray]:
    """80 MiB allocated, 72 MiB of it freed in holes between the buffers kept."""
    buffers = [bytearray(8192) for _ in range(10_000)]
    for buf in buffers:
        buf[::4096] = b"\x01" * len(buf[::4096])  # touch every page
    kept = buffers[::10]
    del buffers
    gc.collect()
    return kept


def test_freed_pages_stay_in_rss_until_trimmed() -> None:
    kept = _fragment()
    before = _rss()
    _fragment()  # more holes, none returned by free alone
    held = _rss()
    trimmer = HeapTrimmer()
    assert trimmer.trim()
    after = _rss()
    assert trimmer.trims == 1
    assert held - after > 40 * MiB, (before, held, after)  # most of the 2 x 72 MiB freed
    assert kept[0][0] == 1  # what is in use stays


def test_without_glibc_it_does_nothing() -> None:
    trimmer = HeapTrimmer(trim=None)
    trimmer._trim = None
    assert not trimmer.available and not trimmer.trim()


def test_a_zero_interval_registers_no_timer() -> None:
    class _App:
        def timer(self, *_a: object, **_k: object) -> object:
            raise AssertionError("no timer for 0")

    assert register_heap_trim(_App(), 0) is None
