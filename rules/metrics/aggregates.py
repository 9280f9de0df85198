"""Windowed aggregates of one use case (or tenant), kept as bounded plain data in its state.

Layout of ``state`` (JSON-able, a Faust table value in the worker):

* ``m``: the current UTC clock minute's sums and queue-wait histogram;
* ``hq``: the current hour's queue-wait histogram (p95 over 1h);
* ``h``: a sparse ring of at most ``RING_HOURS`` (7×24) hourly buckets (``{str(hour): [sums in
  FIELDS order]}``),
  for the 24h/7d windows and the 7-day baselines;
* ``d`` / ``mo``: the current calendar day and month *in the tenant's time zone* (budgets);
* ``tr`` / ``oc``: every trace (spend, events, last seen) and business outcome id seen within
  their retention in event time (``TRACE_IDLE_MS`` since a trace's last event,
  ``OUTCOME_RETENTION_MS`` for outcomes), so per-trace cost and distinct counts are exact however
  many traces run at once; ids longer than ``MAX_ID_CHARS`` are kept as a fixed-size digest.

Nothing grows per event: every structure is fixed-size, or bounded by time.
"""

from __future__ import annotations

import hashlib
import heapq
import operator
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from spendfuse.rules.metrics.catalog import (
    FIELD_INDEX,
    FIELDS,
    METRICS,
    OUTCOME_TERM,
    TRACE_TERM,
    EventExtensions,
    SumTerm,
    event_sum_terms,
    parse_extensions,
)
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

RING_HOURS = 7 * 24
TRACE_IDLE_MS = 30 * 60_000  # a trace with no event for 30 minutes (event time) is over
OUTCOME_RETENTION_MS = 24 * 3_600_000  # an outcome id counts once per 24 hours of event time
MAX_ID_CHARS = 64
SAMPLE_EVENTS = 5  # event ids kept as an alert's evidence (the latest ones)
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
QUEUE_BOUNDS_MS = (50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)


def _add(target: dict[str, float], sums: dict[str, float]) -> None:
    for key, val in sums.items():
        if val:
            target[key] = target.get(key, 0.0) + val


def _queue_add(hist: list[float], wait_ms: float) -> None:
    hist[bisect_left(QUEUE_BOUNDS_MS, wait_ms)] += 1  # the first bound >= wait_ms (or overflow)
    hist[-1] = max(hist[-1], wait_ms)  # the last cell keeps the max, for the overflow bucket


def _new_hist() -> list[float]:
    return [0.0] * (len(QUEUE_BOUNDS_MS) + 2)


def id_key(value: str) -> str:
    """The key an id is kept under: itself, or a fixed-size digest of a long one."""
    if len(value) <= MAX_ID_CHARS:
        return value
    return "#" + hashlib.blake2b(value.encode(), digest_size=16).hexdigest()


def _remember(
    recent: dict[str, list[float]], key: str, cost: float, ts_ms: int, retention_ms: int
) -> bool:
    """Add to an id map ordered by last sight; ids unseen for ``retention_ms`` of event time are
    dropped (from the front, so the work per event stays constant). True if the id was new."""
    if len(key) > MAX_ID_CHARS:
        key = id_key(key)
    entry = recent.pop(key, None)
    new = entry is None
    if entry is None:
        entry = [0.0 + cost, 1.0, ts_ms]  # what adding to [0.0, 0.0, ts_ms] gives
    else:
        entry[0] += cost
        entry[1] += 1
        if len(entry) < 3 or ts_ms > entry[2]:
            entry[2:] = [ts_ms]
    recent[key] = entry
    horizon = ts_ms - retention_ms
    while recent:
        oldest, first = next(iter(recent.items()))
        if first[2] > horizon:
            break
        del recent[oldest]
    return new


_PERIOD_CACHE: dict[tuple[str, int], tuple[str, str, str]] = {}


def _period_keys(event_time: datetime, tz: ZoneInfo) -> tuple[str, str, str]:
    """The tenant-local day, month and quarter of ``event_time``, cached per clock minute
    (every time zone's offset is a whole number of minutes, so a minute never straddles two
    local days)."""
    cache_key = (tz.key, int(event_time.timestamp()) // 60)
    hit = _PERIOD_CACHE.get(cache_key)
    if hit is None:
        if len(_PERIOD_CACHE) > 4096:
            _PERIOD_CACHE.clear()
        local = event_time.astimezone(tz)
        hit = _PERIOD_CACHE[cache_key] = (
            local.date().isoformat(),
            f"{local.year:04d}-{local.month:02d}",
            f"{local.year:04d}-Q{(local.month - 1) // 3 + 1}",
        )
    return hit


def _current(state: dict[str, Any], name: str, key: Any) -> dict[str, Any] | None:
    """The bucket ``state[name]`` when ``key`` is its period: the same one, a fresh one (a newer
    key replaces it), or None for an older key (a late event: that period is gone)."""
    bucket = state.get(name)
    if bucket is None or key > bucket["k"]:
        bucket = state[name] = {"k": key, "s": {}}
        return bucket
    return bucket if key == bucket["k"] else None


def _add_all(
    targets: list[dict[str, float]], vec: list[float] | None, terms: tuple[SumTerm, ...]
) -> None:
    """One event's sums into every window it counts in: each target gets exactly one addition
    per non-zero field, its new keys inserted in event-sum order (the same floats and the same
    key order as adding field by field)."""
    for target in targets:
        get = target.get
        for key, _, val in terms:
            target[key] = get(key, 0.0) + val
    if vec is not None:
        for _, idx, val in terms:
            vec[idx] += val


def _ring_bucket(state: dict[str, Any], hour: int, hour_key: str) -> list[float] | None:
    """Sparse hourly ring ``{str(hour): [sum per FIELDS entry]}``; old hours are pruned.

    Hourly buckets are arrays in ``FIELDS`` order rather than name -> sum maps: the ring is most
    of a use case's state (168 buckets), and naming every sum in every bucket tripled its size.
    ``hour_key`` is ``str(hour)``.
    """
    ring: dict[str, list[float]] | None = state.get("h")
    if ring is None:
        ring = state["h"] = {}
    newest = state.get("now_h")
    if newest is None:
        newest = state["now_h"] = hour
    elif hour > newest:
        newest = state["now_h"] = hour
        for key in [k for k in ring if int(k) <= newest - RING_HOURS]:
            del ring[key]
    if hour <= newest - RING_HOURS:
        return None
    bucket = ring.get(hour_key)
    if bucket is None:
        bucket = ring[hour_key] = [0.0] * len(FIELDS)
    return bucket


def _first_hour(state: dict[str, Any], hour: int) -> None:
    """Remember the earliest hour seen: how much history a baseline has."""
    first = state.get("first_h")
    if first is None or hour < first:
        state["first_h"] = hour


#: the parts of the aggregates: per-trace and outcome ids, the minute, the hourly ring (with the
#: hour's queue histogram), the local day and the local month
PERIOD_PARTS = {"day": "d", "month": "mo", "quarter": "qt"}  # tenant-local calendar periods
ALL_PARTS = frozenset({"ids", "m", "h", "d", "mo", "qt"})
_PERIOD_NAMES = frozenset(PERIOD_PARTS.values())
_BUCKET_PARTS = {"1m": "m", **PERIOD_PARTS}  # windows read from one bucket's sums
_WINDOW_HOURS = {"24h": 24, "7d": RING_HOURS}  # windows summed over past hours and the current
WINDOW_PARTS = {
    "event": (),
    "trace": ("ids",),
    "1m": ("m",),
    "1h": ("h",),
    "24h": ("h",),
    "7d": ("h",),
    "day": ("d",),
    "month": ("mo",),
    "quarter": ("qt",),
}


class EventFacts:
    """What one event adds, worked out once however many aggregates it counts in (the key's
    own and each rule scope's): its extensions, its evidence id, its minute and hour, its
    tenant-local periods and its sums (one per combination of new trace / new outcome, the only
    parts that differ between aggregates). Read-only once built: every aggregate gets the same
    values."""

    __slots__ = (
        "_parts",
        "_periods",
        "_terms",
        "_tz",
        "event",
        "ext",
        "hour",
        "hour_key",
        "minute",
        "queue_wait_ms",
        "sample_id",
        "ts_ms",
    )

    def __init__(self, event: CostEvent, ts_ms: int | None = None) -> None:
        self.event = event
        self.ext = ext = parse_extensions(event)
        self.queue_wait_ms = ext.queue_wait_ms
        self.ts_ms = ts_ms = to_epoch_ms(event.event_time) if ts_ms is None else ts_ms
        self.minute = ts_ms // MINUTE_MS
        self.hour = ts_ms // HOUR_MS
        self.hour_key = str(self.hour)
        self.sample_id = id_key(event.cost_event_id)
        self._parts: tuple[tuple[SumTerm, ...], tuple[SumTerm, ...]] | None = None
        self._terms: list[tuple[SumTerm, ...] | None] = [None, None, None, None]
        self._periods: tuple[str, str, str] | None = None
        self._tz: ZoneInfo | None = None

    def sums(self, new_trace: bool, new_outcome: bool) -> dict[str, float]:
        """The event's non-zero sums by field name (:func:`event_sums`)."""
        return {name: value for name, _, value in self.terms(new_trace, new_outcome)}

    def terms(self, new_trace: bool, new_outcome: bool) -> tuple[SumTerm, ...]:
        """The event's non-zero sums, in :func:`event_sums` order, as :func:`_add_all` adds
        them; the terms but the trace and outcome counts are worked out once per event."""
        slot = 2 * new_trace + new_outcome
        hit = self._terms[slot]
        if hit is None:
            if self._parts is None:
                self._parts = event_sum_terms(self.event, self.ext)
            head, tail = self._parts
            ids = (TRACE_TERM,) * new_trace + (OUTCOME_TERM,) * new_outcome
            hit = self._terms[slot] = head + ids + tail
        return hit

    def periods(self, tz: ZoneInfo) -> tuple[str, str, str]:
        """:func:`_period_keys` of the event in ``tz`` (one per engine pass: one tenant)."""
        if self._periods is None or tz is not self._tz:
            self._periods, self._tz = _period_keys(self.event.event_time, tz), tz
        return self._periods


def _remember_ids(state: dict[str, Any], event: CostEvent, ts_ms: int) -> tuple[bool, bool]:
    """The event's trace and business outcome into the id maps: (new trace, new outcome)."""
    new_trace = new_outcome = False
    if event.trace_id:
        recent = state.get("tr")
        if recent is None:
            recent = state["tr"] = {}
        new_trace = _remember(recent, event.trace_id, event.cost_usd, ts_ms, TRACE_IDLE_MS)
    if event.business_outcome_id:
        recent = state.get("oc")
        if recent is None:
            recent = state["oc"] = {}
        new_outcome = _remember(recent, event.business_outcome_id, 0.0, ts_ms, OUTCOME_RETENTION_MS)
    return new_trace, new_outcome


def _sample(state: dict[str, Any], sample_id: str) -> None:
    """Keep the last few event ids: an alert's evidence."""
    samples = state.get("ev")
    if samples is None:
        samples = state["ev"] = []
    samples.append(sample_id)
    if len(samples) > SAMPLE_EVENTS:
        del samples[0]


def update_aggregates(
    state: dict[str, Any],
    event: CostEvent,
    tz: ZoneInfo,
    needs: frozenset[str] = ALL_PARTS,
    ts_ms: int | None = None,
    facts: EventFacts | None = None,
) -> AggregateView:
    """Add one event to the windows in ``needs`` (all by default; a rule's own filtered
    aggregates keep only what its conditions read); returns the view rules evaluate on.
    ``ts_ms``: the event's time in epoch ms, when the caller has it already. ``facts``: the
    event's :class:`EventFacts`, shared by the aggregates of one event (one time zone)."""
    if facts is None:
        facts = EventFacts(event, ts_ms)
    if needs is not ALL_PARTS:
        return _update_parts(state, event, facts, tz, needs)
    new_trace, new_outcome = (
        _remember_ids(state, event, facts.ts_ms)
        if event.trace_id or event.business_outcome_id
        else (False, False)
    )
    _sample(state, facts.sample_id)
    hour = facts.hour
    targets = []
    m = _current(state, "m", facts.minute)
    if m is not None:
        targets.append(m["s"])
    hq = _current(state, "hq", hour)
    wait_ms = facts.queue_wait_ms
    if wait_ms is not None:
        if m is not None:
            _queue_add(m.setdefault("q", _new_hist()), wait_ms)
        if hq is not None:
            _queue_add(hq.setdefault("q", _new_hist()), wait_ms)
    if "bl" in state and hour < state.get("now_h", hour):
        del state["bl"]  # a late event changed a past hour: drop the cached baseline
    vec = _ring_bucket(state, hour, facts.hour_key)
    _first_hour(state, hour)
    day_key, month_key, quarter_key = facts.periods(tz)
    for name, key in (("d", day_key), ("mo", month_key), ("qt", quarter_key)):
        bucket = _current(state, name, key)
        if bucket is not None:
            targets.append(bucket["s"])
    _add_all(targets, vec, facts.terms(new_trace, new_outcome))
    return AggregateView(state, event, facts.ext, tz)


def _update_parts(
    state: dict[str, Any],
    event: CostEvent,
    facts: EventFacts,
    tz: ZoneInfo,
    needs: frozenset[str],
) -> AggregateView:
    new_trace = new_outcome = False
    if "ids" in needs and (event.trace_id or event.business_outcome_id):
        new_trace, new_outcome = _remember_ids(state, event, facts.ts_ms)
    _sample(state, facts.sample_id)
    if not needs - {"ids"}:
        return AggregateView(state, event, facts.ext, tz)
    targets: list[dict[str, float]] = []
    vec = None
    wait_ms = facts.queue_wait_ms
    if "m" in needs:
        m = _current(state, "m", facts.minute)
        if m is not None:
            targets.append(m["s"])
            if wait_ms is not None:
                _queue_add(m.setdefault("q", _new_hist()), wait_ms)
    if "h" in needs:
        hour = facts.hour
        hq = _current(state, "hq", hour)
        if wait_ms is not None and hq is not None:
            _queue_add(hq.setdefault("q", _new_hist()), wait_ms)
        if "bl" in state and hour < state.get("now_h", hour):
            del state["bl"]
        vec = _ring_bucket(state, hour, facts.hour_key)
        _first_hour(state, hour)
    if needs & _PERIOD_NAMES:
        day_key, month_key, quarter_key = facts.periods(tz)
        for name, key in (("d", day_key), ("mo", month_key), ("qt", quarter_key)):
            if name in needs:
                bucket = _current(state, name, key)
                if bucket is not None:
                    targets.append(bucket["s"])
    _add_all(targets, vec, facts.terms(new_trace, new_outcome))
    return AggregateView(state, event, facts.ext, tz)


@dataclass(slots=True)
class AggregateView:
    """Read-only access to one key's aggregates at the time of ``event``."""

    state: dict[str, Any]
    event: CostEvent
    ext: EventExtensions
    tz: ZoneInfo
    # hourly-window fields already summed: a view lives for one event's evaluations, during
    # which its aggregates do not change, and many rules read the same few fields
    _summed: dict[tuple[str, str], float] = dataclass_field(default_factory=dict)
    # the same reasoning, for what those sums are made of: the history's length, the current
    # hour's bucket (() when it has none) and the past ranges read (first, last hour) -> sums
    _history: int | None = None
    _vec: list[float] | tuple[()] | None = None
    _ranges: dict[tuple[int, int], dict[str, float]] | None = None

    @property
    def hour(self) -> int:
        return self.state["now_h"]

    def history_hours(self) -> int:
        """Complete hours observed before the current one (at most the ring's length)."""
        history = self._history
        if history is None:
            hour = self.state["now_h"]
            history = self._history = min(hour - self.state.get("first_h", hour), RING_HOURS - 1)
        return history

    def hour_sums(self, hour: int) -> dict[str, float]:
        vec = self.state.get("h", {}).get(str(hour))
        if not vec:
            return {}
        return {FIELDS[i]: v for i, v in enumerate(vec) if v}

    def sums(self, window: str) -> dict[str, float]:
        if window == "1m":
            return self.state.get("m", {}).get("s", {})
        if window in PERIOD_PARTS:
            return self.state.get(PERIOD_PARTS[window], {}).get("s", {})
        hours = {"1h": 1, "24h": 24, "7d": RING_HOURS}[window]
        return self.range_sums(self.hour - hours + 1, self.hour)

    def _past_cache(self) -> dict[str, Any]:
        """Sums over past hours, kept until the hour moves on or a late event lands in a past
        hour (``bl`` in the state): baselines read the same past at every event of an hour."""
        hour = self.state["now_h"]
        cache = self.state.get("bl")
        if cache is None or cache.get("h") != hour:
            cache = self.state["bl"] = {"h": hour, "r": {}}
        return cache["r"]

    def hours_sums(self, hours: Iterable[int], key: str) -> dict[str, float]:
        """Sums over the given past hours (cached under ``key`` for the current hour)."""
        cache = self._past_cache()
        hit = cache.get(key)
        if hit is not None:
            return hit
        ring = self.state.get("h", {})
        acc = [0.0] * len(FIELDS)
        for hour in hours:
            vec = ring.get(str(hour))
            if vec:
                acc = list(map(operator.add, acc, vec))
        out = {FIELDS[i]: v for i, v in enumerate(acc) if v}
        if len(cache) < 16:
            cache[key] = out
        return out

    def range_sums(self, first_hour: int, last_hour: int) -> dict[str, float]:
        """Sums over whole hours. The part wholly in the past is cached in the state (``bl``,
        a few ranges) until the hour moves on or a late event lands in a past hour; a range
        ending now is that cached past plus the current hour."""
        hour = self.state["now_h"]
        first_hour = max(first_hour, hour - RING_HOURS + 1)
        if last_hour >= hour:
            past = self.range_sums(first_hour, hour - 1) if first_hour < hour else {}
            out = dict(past)
            _add(out, self.hour_sums(hour))
            return out
        ranges = self._ranges
        if ranges is None:
            ranges = self._ranges = {}
        hit = ranges.get((first_hour, last_hour))
        if hit is None:
            hit = ranges[first_hour, last_hour] = self.hours_sums(
                range(first_hour, last_hour + 1), f"{first_hour}:{last_hour}"
            )
        return hit

    def field(self, window: str, name: str) -> float:
        """One summed field over ``window``: what ``sums(window).get(name, 0.0)`` is, without
        building every field's sum (conditions read one or two fields per evaluation)."""
        part = _BUCKET_PARTS.get(window)
        if part is not None:
            return self.state.get(part, {}).get("s", {}).get(name, 0.0)
        key = (window, name)
        hit = self._summed.get(key)
        if hit is None:
            hit = self._summed[key] = self._hourly_field(window, name)
        return hit

    def _hourly_field(self, window: str, name: str) -> float:
        hour = self.state["now_h"]
        vec = self._vec
        if vec is None:
            vec = self._vec = self.state.get("h", {}).get(str(hour)) or ()
        current = vec[FIELD_INDEX[name]] if vec else 0.0
        if window == "1h":
            return current if current else 0.0
        first_hour = max(hour - _WINDOW_HOURS[window] + 1, hour - RING_HOURS + 1)
        if first_hour >= hour:
            return current if current else 0.0
        past = self.range_sums(first_hour, hour - 1).get(name, 0.0)
        return past + current if current else past

    def value(self, metric_name: str, window: str) -> float | None:
        metric = METRICS[metric_name]
        kind = metric.kind
        if kind == "event":
            return self._event_value(metric_name)
        if kind == "trace":
            return self._trace_value(metric_name)
        if kind == "p95":
            bucket = self.state.get("m" if window == "1m" else "hq", {})
            return _p95(bucket.get("q"))
        num = float(self.field(window, metric.numerator))
        if kind == "sum":
            return num * metric.scale
        den = float(self.field(window, metric.denominator))
        return num * metric.scale / den if den > 0 else None

    def _event_value(self, name: str) -> float | None:
        if name == "step_number":
            step = self.event.step_number
            return float(step) if step is not None else None
        return self.event.cost_usd

    def top_traces(self, n: int = 5) -> list[tuple[str, float]]:
        """The ``n`` costliest traces still open (within their idle timeout), costliest first."""
        traces = self.state.get("tr", {})
        best = heapq.nlargest(n, traces.items(), key=lambda item: item[1][0])
        return [(trace, round(entry[0], 8)) for trace, entry in best if entry[0] > 0]

    def sample_event_ids(self) -> list[str]:
        return list(self.state.get("ev", []))

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


__all__ = ["FIELDS", "AggregateView", "EventFacts", "update_aggregates"]
