"""Deduplication of cost events by ``cost_event_id`` over event-time day buckets.

Producers retry, so the same event can arrive twice. An id is remembered in the UTC day bucket of
its event time; an event is a duplicate if its id is in its own bucket or the one before, so a
repeat within at least 24 hours (and at most 48) is counted once. The Faust worker keeps the same
buckets in a tumbling windowed table with the same width, so replay and stream agree.
"""

from __future__ import annotations

from typing import Protocol

DEDUP_WINDOW_S = 24 * 3600


class DedupStore(Protocol):
    def seen(self, cost_event_id: str, ts_ms: int) -> bool: ...

    def remember(self, cost_event_id: str, ts_ms: int) -> None: ...


class MemoryDedupStore:
    """In-process dedup for replay: two live buckets, older ones dropped as event time advances."""

    def __init__(self, window_s: int = DEDUP_WINDOW_S) -> None:
        self.window_ms = window_s * 1000
        self._buckets: dict[int, set[str]] = {}

    def _bucket(self, ts_ms: int) -> int:
        return ts_ms // self.window_ms

    def seen(self, cost_event_id: str, ts_ms: int) -> bool:
        b = self._bucket(ts_ms)
        return any(cost_event_id in self._buckets.get(k, ()) for k in (b, b - 1))

    def remember(self, cost_event_id: str, ts_ms: int) -> None:
        b = self._bucket(ts_ms)
        self._buckets.setdefault(b, set()).add(cost_event_id)
        newest = max(self._buckets)
        for old in [k for k in self._buckets if k < newest - 2]:
            del self._buckets[old]
