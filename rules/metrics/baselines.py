"""Baselines and detector scores behind ``ratio_to_baseline`` and ``detector_score`` conditions.

Rule files name a metric, a window and a baseline; *how* the baseline is computed is a provider
behind a small protocol, so the seasonal baselines and detectors built in ``detectors/`` can be
plugged in (``Engine(..., baselines=..., scores=...)``) without changing a rule file.

The defaults need no extra state: they read the 7×24 hourly ring of the aggregates, always
excluding the current hour (the one being judged).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Protocol

from spendfuse.rules.metrics.aggregates import RING_HOURS, AggregateView
from spendfuse.rules.metrics.catalog import METRICS

_WINDOW_HOURS = {"1m": 1 / 60, "1h": 1.0, "24h": 24.0, "day": 24.0, "7d": 168.0, "month": 720.0}


class BaselineProvider(Protocol):
    def baseline(self, view: AggregateView, metric: str, window: str, over_h: int) -> float | None:
        """Expected value of ``metric`` over ``window``, learned from the ``over_h`` hours
        before the current one; None when it cannot say (no history, no denominator)."""
        ...


class ScoreProvider(Protocol):
    def score(self, view: AggregateView, metric: str, window: str) -> float | None:
        """Anomaly score of the current ``metric`` over ``window`` in [0, 1]; None if unknown."""
        ...


class RollingMeanBaseline:
    """Rolling mean over the previous ``over_h`` hours (default 7 days), current hour excluded.

    Short windows (``1m``, ``1h``) are compared with the same time of day: the mean over the
    same hour and its two neighbours on each earlier day in range (up to 7×3 hours), so a busy
    afternoon is not an anomaly against quiet nights. With less than a day of history, or for
    longer windows, every hour in range counts. A summed metric's baseline is its mean per hour
    scaled to the window; a ratio metric's is the ratio of the summed numerator and denominator
    (a traffic-weighted mean).
    """

    def __init__(self, seasonal: bool = True) -> None:
        self.seasonal = seasonal

    def _hours(self, view: AggregateView, window: str, hours: int) -> list[int]:
        return _chosen_hours(view.hour, window, hours, self.seasonal)

    def baseline(self, view: AggregateView, metric: str, window: str, over_h: int) -> float | None:
        hours = min(over_h, view.history_hours(), RING_HOURS - 1)
        if hours <= 0:
            return None
        chosen = self._hours(view, window, hours)
        if len(chosen) == hours:
            sums = view.range_sums(view.hour - hours, view.hour - 1)
        else:
            sums = view.hours_sums(chosen, f"s:{hours}")
        spec = METRICS[metric]
        if spec.kind == "sum":
            value = spec.value(sums)
            return None if value is None else value / len(chosen) * _WINDOW_HOURS.get(window, 1.0)
        return spec.value(sums)


@lru_cache(maxsize=4096)
def _chosen_hours(hour: int, window: str, hours: int, seasonal: bool) -> list[int]:
    """The past hours a baseline averages (see :class:`RollingMeanBaseline`); the same for
    every event of an hour, so worked out once (callers only read the list)."""
    first = hour - hours
    if seasonal and window in ("1m", "1h"):
        daily = [hour - 24 * k + d for k in range(1, 8) for d in (-1, 0, 1)]
        same_time = [h for h in daily if first <= h < hour]
        if len(same_time) >= 3:
            return same_time
    return list(range(first, hour))


class ZScoreFromHourly:
    """Score of the current hour against the previous hours: ``clip(z / 6, 0, 1)``.

    Only upward deviations score (runaway spend is the concern); stand-in until the detector
    bank keeps per-metric detector state.
    """

    def score(self, view: AggregateView, metric: str, window: str) -> float | None:
        spec = METRICS[metric]
        history = [
            spec.value(view.hour_sums(h))
            for h in range(view.hour - view.history_hours(), view.hour)
        ]
        values = [v for v in history if v is not None]
        current = spec.value(view.hour_sums(view.hour))
        if len(values) < 3 or current is None:
            return None
        mean = sum(values) / len(values)
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
        z = (current - mean) / max(std, 1e-9 + abs(mean) * 0.05)
        return min(max(z / 6.0, 0.0), 1.0)
