"""Deduplication of cost events by ``cost_event_id`` over event-time day buckets.

Producers retry, so the same event can arrive twice. An id is remembered in the UTC day bucket of
its event time; an event is a duplicate if its id is in its own bucket or the one before, so a
repeat within at least 24 hours (and at most 48) is counted once. The Faust worker keeps the same
buckets on disk (:mod:`spendfuse.streams.dedup_table`), so replay and stream agree.

Memory is bounded by time, not by traffic or by what producers send: only the buckets of the
newest event day seen and the :data:`KEEP_DAYS` days before it are kept, and an event time
further ahead than the clock's tomorrow is *clamped* to it for dedup (:class:`DayClock`), so an
id dated 2099 is dropped with that bucket instead of living forever, and cannot push every live
bucket out either.
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


class DayClock:
    """Which day bucket an id goes in and which buckets are kept; shared by replay and stream.

    The bucket is the event time's UTC day, clamped to at most the day after the clock's. The
    reference day is the newest *unclamped* bucket seen: buckets older than ``KEEP_DAYS`` days
    before it are dropped. Event time decides (a replay of last month's events dedups as it did
    live); the clock only bounds the future, so the buckets alive are at most the reference day,
    the ``KEEP_DAYS`` before it and the clock's tomorrow.
    """

    def __init__(self, clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.clock_ms = clock_ms
        self.newest: int | None = None

    def bucket(self, ts_ms: int) -> tuple[int, bool]:
        """The bucket of an event at ``ts_ms`` and whether its time was clamped."""
        day = ts_ms // DAY_MS
        tomorrow = self.clock_ms() // DAY_MS + 1
        return (tomorrow, True) if day > tomorrow else (day, False)

    def advance(self, ts_ms: int) -> tuple[int, bool]:
        """The bucket to remember an id of ``ts_ms`` in, and whether it is kept at all; moves
        the reference day on."""
        day, clamped = self.bucket(ts_ms)
        if not clamped and (self.newest is None or day > self.newest):
            self.newest = day
        return day, self.newest is None or day >= self.newest - KEEP_DAYS

    def first_kept(self) -> int | None:
        return None if self.newest is None else self.newest - KEEP_DAYS


class DedupStore(Protocol):
    def seen(self, cost_event_id: str, ts_ms: int) -> bool: ...

    def remember(self, cost_event_id: str, ts_ms: int) -> None: ...


class MemoryDedupStore:
    """In-process dedup for replay: the live buckets, older ones dropped as event time advances
    (see :class:`DayClock`)."""

    def __init__(self, clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.days = DayClock(clock_ms)
        self._buckets: dict[int, set[str]] = {}
        self._pruned_below: int | None = None  # the first kept day when buckets were last pruned

    def seen(self, cost_event_id: str, ts_ms: int) -> bool:
        b, _ = self.days.bucket(ts_ms)
        buckets = self._buckets
        today, yesterday = buckets.get(b), buckets.get(b - 1)
        return (today is not None and cost_event_id in today) or (
            yesterday is not None and cost_event_id in yesterday
        )

    def remember(self, cost_event_id: str, ts_ms: int) -> None:
        b, kept = self.days.advance(ts_ms)
        if not kept:
            return  # older than every kept bucket
        first = self.days.first_kept()
        if first != self._pruned_below:  # the reference day moved on: drop what fell out
            self._pruned_below = first
            for old in [k for k in self._buckets if first is not None and k < first]:
                del self._buckets[old]
        self._buckets.setdefault(b, set()).add(cost_event_id)
