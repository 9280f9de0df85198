"""Windowed aggregates of one use case (or tenant), kept as bounded plain data in its state.

Layout of ``state`` (JSON-able, a Faust table value in the worker):

* ``m``: the current UTC clock minute's sums and queue-wait histogram;
* ``hq``: the current hour's queue-wait histogram (p95 over 1h);
* ``h``: a sparse ring of at most ``RING_HOURS`` (7×24) hourly buckets (``{str(hour): [sums in
  FIELDS order]}``),
  for the 24h/7d windows and the 7-day baselines;
* ``d`` / ``mo``: the current calendar day and month *in the tenant's time zone* (budgets);
* ``tr`` / ``oc``: the most recent trace ids (spend, events) and business outcome ids, each
  capped at ``RECENT_IDS``, to count distinct traces/outcomes and per-trace spend. An id over
  ``ID_KEY_MAX`` characters is kept as a fixed-size hash (:func:`id_key`), so 256 ids of any
  length take at most a few tens of KB.

Nothing grows per event: every structure is fixed-size or capped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from spendfuse.rules.metrics.catalog import (
    FIELDS,
    METRICS,
    EventExtensions,
    event_sums,
    parse_extensions,
)
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

RING_HOURS = 7 * 24
RECENT_IDS = 256
ID_KEY_MAX = 64


def id_key(value: str) -> str:
    """A trace or outcome id as the state keeps it: itself, or a 34-character hash of a long
    one (an event may carry a 60 KB trace_id; a few of those made the state megabytes)."""
    if len(value) <= ID_KEY_MAX:
        return value
    return "#" + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()


HOUR_MS = 3_600_000
MINUTE_MS = 60_000
QUEUE_BOUNDS_MS = (50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)


def _add(target: dict[str, float], sums: dict[str, float]) -> None:
    for key, val in sums.items():
        if val:
            target[key] = target.get(key, 0.0) + val


def _queue_add(hist: list[float], wait_ms: float) -> None:
    idx = next((i for i, b in enumerate(QUEUE_BOUNDS_MS) if wait_ms <= b), len(QUEUE_BOUNDS_MS))
    hist[idx] += 1
    hist[-1] = max(hist[-1], wait_ms)  # the last cell keeps the max, for the overflow bucket


def _new_hist() -> list[float]:
    return [0.0] * (len(QUEUE_BOUNDS_MS) + 2)


def _remember(recent: dict[str, list[float]], key: str, cost: float) -> bool:
    """Add to a capped insertion-ordered id map; True if the id was new."""
    entry = recent.pop(key, None)
    new = entry is None
    entry = entry or [0.0, 0.0]
    entry[0] += cost
    entry[1] += 1
    recent[key] = entry
    while len(recent) > RECENT_IDS:
        recent.pop(next(iter(recent)))
    return new


_PERIOD_CACHE: dict[tuple[str, int], tuple[str, str]] = {}


def _period_keys(event_time: datetime, tz: ZoneInfo) -> tuple[str, str]:
    """The tenant-local day and month of ``event_time``, cached per clock minute (every time
    zone's offset is a whole number of minutes, so a minute never straddles two local days)."""
    cache_key = (tz.key, int(event_time.timestamp()) // 60)
    hit = _PERIOD_CACHE.get(cache_key)
    if hit is None:
        if len(_PERIOD_CACHE) > 4096:
            _PERIOD_CACHE.clear()
        local = event_time.astimezone(tz)
        hit = _PERIOD_CACHE[cache_key] = (local.date().isoformat(),
                                          f"{local.year:04d}-{local.month:02d}")  # fmt: skip
    return hit


def _roll(bucket: dict[str, Any] | None, key: Any) -> tuple[dict[str, Any], bool]:
    """Bucket for ``key``: the same one, a fresh one (newer key), or None-flag for older."""
    if bucket is None or key > bucket["k"]:
        return {"k": key, "s": {}}, True
    return bucket, key == bucket["k"]


_FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}


def _vec_add(vec: list[float], sums: dict[str, float]) -> None:
    for key, val in sums.items():
        if val:
            vec[_FIELD_INDEX[key]] += val


def _ring_add(state: dict[str, Any], hour: int, sums: dict[str, float]) -> None:
    """Sparse hourly ring ``{str(hour): [sum per FIELDS entry]}``; old hours are pruned.

    Hourly buckets are arrays in ``FIELDS`` order rather than name -> sum maps: the ring is most
    of a use case's state (168 buckets), and naming every sum in every bucket tripled its size.
    """
    ring: dict[str, list[float]] = state.setdefault("h", {})
    newest = state.get("now_h", hour)
    if hour > newest:
        newest = state["now_h"] = hour
        for key in [k for k in ring if int(k) <= newest - RING_HOURS]:
            del ring[key]
    state.setdefault("now_h", newest)
    if hour > newest - RING_HOURS:
        bucket = ring.get(str(hour))
        if bucket is None:
            bucket = ring[str(hour)] = [0.0] * len(FIELDS)
        _vec_add(bucket, sums)


def update_aggregates(state: dict[str, Any], event: CostEvent, tz: ZoneInfo) -> AggregateView:
    """Add one event to every window; returns the view rules evaluate on."""
    ext = parse_extensions(event)
    ts_ms = to_epoch_ms(event.event_time)
    new_trace = _remember(state.setdefault("tr", {}), id_key(event.trace_id), event.cost_usd) \
        if event.trace_id else False  # fmt: skip
    new_outcome = False
    if event.business_outcome_id:
        new_outcome = _remember(state.setdefault("oc", {}), id_key(event.business_outcome_id), 0.0)
    sums = event_sums(event, ext, new_trace, new_outcome)
    minute, hour = ts_ms // MINUTE_MS, ts_ms // HOUR_MS
    m, m_current = _roll(state.get("m"), minute)
    state["m"] = m
    if m_current:
        _add(m["s"], sums)
    hq, hq_current = _roll(state.get("hq"), hour)
    state["hq"] = hq
    if ext.queue_wait_ms is not None:
        if m_current:
            _queue_add(m.setdefault("q", _new_hist()), ext.queue_wait_ms)
        if hq_current:
            _queue_add(hq.setdefault("q", _new_hist()), ext.queue_wait_ms)
    if hour < state.get("now_h", hour):
        state.pop("bl", None)  # a late event changed a past hour: drop the cached baseline
    _ring_add(state, hour, sums)
    state["first_h"] = min(state.get("first_h", hour), hour)
    day_key, month_key = _period_keys(event.event_time, tz)
    for name, key in (("d", day_key), ("mo", month_key)):
        bucket, current = _roll(state.get(name), key)
        state[name] = bucket
        if current:
            _add(bucket["s"], sums)
    return AggregateView(state, event, ext, tz)


@dataclass(slots=True)
class AggregateView:
    """Read-only access to one key's aggregates at the time of ``event``."""

    state: dict[str, Any]
    event: CostEvent
    ext: EventExtensions
    tz: ZoneInfo

    @property
    def hour(self) -> int:
        return self.state["now_h"]

    def history_hours(self) -> int:
        """Complete hours observed before the current one (at most the ring's length)."""
        return min(self.hour - self.state.get("first_h", self.hour), RING_HOURS - 1)

    def hour_sums(self, hour: int) -> dict[str, float]:
        vec = self.state.get("h", {}).get(str(hour))
        if not vec:
            return {}
        return {FIELDS[i]: v for i, v in enumerate(vec) if v}

    def sums(self, window: str) -> dict[str, float]:
        if window == "1m":
            return self.state.get("m", {}).get("s", {})
        if window in ("day", "month"):
            return self.state.get("d" if window == "day" else "mo", {}).get("s", {})
        hours = {"1h": 1, "24h": 24, "7d": RING_HOURS}[window]
        return self.range_sums(self.hour - hours + 1, self.hour)

    def range_sums(self, first_hour: int, last_hour: int) -> dict[str, float]:
        """Sums over whole hours. The part wholly in the past is cached in the state (``bl``,
        a few ranges) until the hour moves on or a late event lands in a past hour; a range
        ending now is that cached past plus the current hour."""
        first_hour = max(first_hour, self.hour - RING_HOURS + 1)
        if last_hour >= self.hour:
            past = self.range_sums(first_hour, self.hour - 1) if first_hour < self.hour else {}
            out = dict(past)
            _add(out, self.hour_sums(self.hour))
            return out
        cache = self.state.get("bl")
        if cache is None or cache.get("h") != self.hour:
            cache = self.state["bl"] = {"h": self.hour, "r": {}}
        key = f"{first_hour}:{last_hour}"
        hit = cache["r"].get(key)
        if hit is not None:
            return hit
        out: dict[str, float] = {}
        for hour in range(first_hour, last_hour + 1):
            _add(out, self.hour_sums(hour))
        if len(cache["r"]) < 8:
            cache["r"][key] = out
        return out

    def value(self, metric_name: str, window: str) -> float | None:
        metric = METRICS[metric_name]
        if metric.kind == "event":
            return self._event_value(metric_name)
        if metric.kind == "trace":
            return self._trace_value(metric_name)
        if metric.kind == "p95":
            bucket = self.state.get("m" if window == "1m" else "hq", {})
            return _p95(bucket.get("q"))
        return metric.value(self.sums(window))

    def _event_value(self, name: str) -> float | None:
        if name == "step_number":
            step = self.event.step_number
            return float(step) if step is not None else None
        return self.event.cost_usd

    def _trace_value(self, name: str) -> float | None:
        entry = self.state.get("tr", {}).get(id_key(self.event.trace_id or ""))
        if entry is None:
            return None
        return entry[0] if name == "trace_cost_usd" else entry[1]


def _p95(hist: list[float] | None) -> float | None:
    if not hist:
        return None
    counts = hist[:-1]
    total = sum(counts)
    if total == 0:
        return None
    running = 0.0
    for idx, count in enumerate(counts):
        running += count
        if running >= 0.95 * total:
            return float(QUEUE_BOUNDS_MS[idx]) if idx < len(QUEUE_BOUNDS_MS) else hist[-1]
    return hist[-1]


__all__ = ["FIELDS", "AggregateView", "update_aggregates"]
