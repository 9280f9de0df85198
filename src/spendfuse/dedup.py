"""Deduplication of cost events by ``cost_event_id`` over event-time day buckets.

Producers retry, so the same event can arrive twice. An id is remembered in the UTC day bucket of
its event time; an event is a duplicate if its id is in its own bucket or the one before, so a
repeat within at least 24 hours (and at most 48) is counted once. The Faust worker keeps the same
buckets on disk (:mod:`spendfuse.streams.dedup_table`), so replay and stream agree.

Memory is bounded by time, not by traffic or by what producers send: only the buckets of the
last :data:`KEEP_DAYS` days before the reference day, that day and the next are kept, and an
event time further ahead than the next day is *clamped* to it for dedup (:func:`dedup_day`), so
an id dated 2099 is dropped with tomorrow's bucket instead of living forever (and cannot push
every live bucket out either). The reference day is the worker's clock in the stream; replay,
which has no meaningful clock, uses the newest (clamped) event day it has seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

DEDUP_WINDOW_S = 24 * 3600
DAY_MS = DEDUP_WINDOW_S * 1000
KEEP_DAYS = 2
"""Buckets kept before the reference day: a late repeat up to two days old is still caught."""


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


def dedup_day(ts_ms: int, today: int) -> int:
    """The bucket of an event at ``ts_ms``: its UTC day, at most the day after ``today``."""
    return min(ts_ms // DAY_MS, today + 1)


class DedupStore(Protocol):
    def seen(self, cost_event_id: str, ts_ms: int) -> bool: ...

    def remember(self, cost_event_id: str, ts_ms: int) -> None: ...


class MemoryDedupStore:
    """In-process dedup for replay: the live buckets, older ones dropped as event time advances.

    Future event times are clamped by the clock as in the stream; a clamped id does not move
    replay's reference day, so one event dated 2099 cannot drop every live bucket."""

    def __init__(
        self, window_s: int = DEDUP_WINDOW_S, clock_ms: Callable[[], int] = wall_clock_ms
    ) -> None:
        self.window_ms = window_s * 1000
        self.clock_ms = clock_ms
        self._buckets: dict[int, set[str]] = {}
        self._newest: int | None = None  # the newest unclamped bucket: replay's reference day

    def _bucket(self, ts_ms: int) -> tuple[int, bool]:
        day = ts_ms // self.window_ms
        bucket = min(day, self.clock_ms() // self.window_ms + 1)
        return bucket, bucket != day

    def seen(self, cost_event_id: str, ts_ms: int) -> bool:
        b, _ = self._bucket(ts_ms)
        return any(cost_event_id in self._buckets.get(k, ()) for k in (b, b - 1))

    def remember(self, cost_event_id: str, ts_ms: int) -> None:
        b, clamped = self._bucket(ts_ms)
        if not clamped and (self._newest is None or b > self._newest):
            self._newest = b
            for old in [k for k in self._buckets if k < b - KEEP_DAYS]:
                del self._buckets[old]
        if self._newest is not None and b < self._newest - KEEP_DAYS:
            return  # older than every kept bucket
        self._buckets.setdefault(b, set()).add(cost_event_id)
