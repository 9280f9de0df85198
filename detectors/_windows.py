"""Bounded rolling structures with plain-data state, shared by the custom detectors."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from datetime import datetime
from typing import Any


class RankWindow:
    """The last ``size`` values, also kept sorted, giving empirical tail probabilities.

    Why: rank-based tail probabilities are scale-free (one global threshold works for cents
    and for thousands of dollars) and robust to heavy tails. ``bisect``/``insort`` on a Python
    list costs O(log n) compares + an O(n) memmove, far cheaper than numpy for a point at a time.
    State is just the FIFO (the sorted copy is rebuilt exactly by sorting it).
    """

    __slots__ = ("fifo", "size", "srt")

    def __init__(self, size: int, values: list[float] | None = None) -> None:
        self.size = size
        self.fifo: deque[float] = deque(values or ())
        self.srt: list[float] = sorted(self.fifo)

    def __len__(self) -> int:
        return len(self.fifo)

    def add(self, v: float) -> None:
        fifo = self.fifo
        fifo.append(v)
        insort(self.srt, v)
        if len(fifo) > self.size:
            srt = self.srt
            del srt[bisect_left(srt, fifo.popleft())]

    def tail(self, v: float, gamma: float) -> float:
        """P(X >= v): ``#{x >= v} / (n + 1)``; past the maximum, a power-law decay
        ``(max / v) ** gamma / (n + 1)`` so that bigger outliers keep getting smaller p-values."""
        srt = self.srt
        m = len(srt)
        if m == 0:
            return 1.0
        c = m - bisect_left(srt, v)
        if c > 0:
            return c / (m + 1.0)
        top = srt[-1]
        if top <= 0.0:  # all history is 0 (a flat series): anything positive is new
            return 1e-3 / (m + 1.0)
        return (top / v) ** gamma / (m + 1.0)

    def to_state(self) -> list[float]:
        return list(self.fifo)


def seconds_of_day(t: Any) -> float:
    """Wall-clock seconds since midnight of ``t`` (datetime, or epoch seconds as a number).

    Why wall-clock fields rather than ``t.timestamp()``: naive datetimes would otherwise be
    interpreted in the host's time zone, making scores depend on where the service runs.
    """
    if isinstance(t, datetime):
        return t.hour * 3600 + t.minute * 60 + t.second + t.microsecond * 1e-6
    return float(t) % 86400.0


def day_index(t: Any) -> int:
    """Calendar day of ``t`` (wall-clock date ordinal, or epoch days for a number)."""
    if isinstance(t, datetime):
        return t.toordinal()
    return int(float(t) // 86400.0)
