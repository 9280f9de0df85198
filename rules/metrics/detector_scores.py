"""A :class:`ScoreProvider` backed by the detector registry (``spendfuse.detectors``).

Plug it in with ``Engine(..., scores=DetectorScores({"name": "zscore"}))``; rule files do not
change (``detector_score`` conditions name a metric and window only). Each metric's detector
learns the *closed* hourly values of the aggregates' ring and scores the current hour; its state
is plain data (``to_state``) kept in the key's aggregates under ``det``, so replay and the
worker agree. Detector state can be several KB, so only metrics that rules actually score get
one.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from spendfuse.rules.metrics.aggregates import HOUR_MS, RING_HOURS, AggregateView
from spendfuse.rules.metrics.catalog import METRICS


def _hour_start(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * HOUR_MS / 1000, tz=UTC)


class DetectorScores:
    """Detector state is rebuilt from plain data only when needed: a live detector is reused
    while its key's state says it has learned up to the same hour (an LRU of ``cache_size``),
    and serialized again only when it learned something (once an hour)."""

    def __init__(self, spec: str | dict[str, Any] = "default", cache_size: int = 1024) -> None:
        self.spec = spec
        self.cache_size = cache_size
        self._live: OrderedDict[tuple[int, str], tuple[int, Any]] = OrderedDict()

    def _detector(self, view: AggregateView, metric: str, entry: dict[str, Any] | None) -> Any:
        from spendfuse.detectors import create, from_state

        key = (id(view.state), metric)
        live = self._live.pop(key, None)
        if entry is None:
            det = create(self.spec)
        elif live is not None and live[0] == entry["h"]:
            det = live[1]
        else:
            det = from_state(entry["d"])
        return det

    def score(self, view: AggregateView, metric: str, window: str) -> float | None:
        spec = METRICS[metric]
        bank: dict[str, Any] = view.state.setdefault("det", {})
        entry = bank.get(metric)
        det = self._detector(view, metric, entry)
        first = entry["h"] + 1 if entry else view.hour - view.history_hours()
        learned = entry is None
        for hour in range(max(first, view.hour - RING_HOURS + 1), view.hour):
            value = spec.value(view.hour_sums(hour))
            if value is not None:
                det.learn_one({"t": _hour_start(hour), "value": value})
                learned = True
        if learned or entry["h"] != view.hour - 1:
            bank[metric] = {"h": view.hour - 1, "d": det.to_state()}
        self._live[(id(view.state), metric)] = (bank[metric]["h"], det)
        while len(self._live) > self.cache_size:
            self._live.popitem(last=False)
        current = spec.value(view.hour_sums(view.hour))
        if current is None:
            return None
        return float(det.score_one({"t": _hour_start(view.hour), "value": current}))
