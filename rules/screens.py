"""Whether a rule's condition can hold at *any* event of a pass, decided once per pass.

The engine evaluates every rule at every event its scope matches (decisions never depend on how
events were split into records). Most of those evaluations decide nothing, and
:mod:`~spendfuse.rules.can_hold` already skips them one event at a time. A pass of many events
of one key (an envelope, or the lines of one use case that replay or the worker handles
together) can do better: every summed field only grows, so what the pass can add to any window
is bounded by what its events add in total, and a rule whose condition cannot hold even at
those bounds cannot hold at any event of the pass. Such a rule, with nothing pending or firing,
sleeps for the pass: its aggregates are still kept, it is just not evaluated.

A screen is *sound*: it says ``False`` only where every per-event evaluation of the pass would
return a verdict that does not hold. It reads the aggregates as they are before the pass and
writes nothing but the cache of past hours' sums the per-event evaluations fill too (``bl``:
derived sums, the same whoever reads them first), and its bounds are inflated by a relative
1e-9 so that no order of float additions can put a true value above its bound. Where a bound
is not simple (a ``<`` comparison, a p95 over a pass that adds queue waits, a rule with
``group_by``, a ratio to a baseline over a pass that leaves the hour the baseline is read in)
there is no screen and the rule is evaluated at every event as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from spendfuse.rules.can_hold import BudgetLookup, combined
from spendfuse.rules.conditions import _OPS, samples_field
from spendfuse.rules.metrics.aggregates import (
    HOUR_MS,
    PERIOD_PARTS,
    RING_HOURS,
    AggregateView,
    EventFacts,
    id_key,
)
from spendfuse.rules.metrics.baselines import BaselineProvider
from spendfuse.rules.metrics.catalog import METRICS, EventExtensions, Metric
from spendfuse.rules.model import (
    BudgetPercentCondition,
    BudgetSpec,
    Condition,
    RatioToBaselineCondition,
    ThresholdCondition,
)

_SLACK = 1e-9  # relative: float sums in another order differ far less than this
_NO_EXTENSIONS = EventExtensions()
_UPWARD = (">", ">=")


class PassBounds:
    """What one pass of events (one key, in order) can add at most to any aggregate of it:
    each summed field's total over all its events (a superset of any rule scope's events, and
    every field is a sum of non-negative amounts), the hours it touches, and the largest value
    of the per-event metrics."""

    __slots__ = (
        "_views",
        "by_env",
        "max_cost",
        "max_hour",
        "max_step",
        "min_hour",
        "queue_waits",
        "sums",
        "trace_ids",
        "tz",
    )

    def __init__(self, facts: Sequence[EventFacts], tz: ZoneInfo) -> None:
        sums: dict[str, float] = {}
        by_env: dict[Any, Any] = {}
        max_step = max_cost = 0.0
        hours = [f.ts_ms // HOUR_MS for f in facts]
        traces = outcomes = 0
        trace_ids: set[str] = set()
        for item in facts:
            event = item.event
            for key, _, val in item.terms(False, False):
                sums[key] = sums.get(key, 0.0) + val
            if event.trace_id:  # at most one new trace and one new outcome per event
                traces += 1
                trace_ids.add(event.trace_id)
            if event.business_outcome_id:
                outcomes += 1
            by_env.setdefault(event.environment, event)
            step = event.step_number
            if step is not None and step > max_step:
                max_step = float(step)
            if event.cost_usd > max_cost:
                max_cost = event.cost_usd
        if traces:
            sums["traces"] = float(traces)
        if outcomes:
            sums["outcomes"] = float(outcomes)
        self.sums = sums
        self.trace_ids = trace_ids  # the traces the pass's events belong to
        # whether any event adds a queue wait (else a p95 only keeps its value, or has none)
        self.queue_waits = any(item.ext.queue_wait_ms is not None for item in facts)
        self.by_env = by_env  # one event per environment: what a budget lookup reads
        self.min_hour, self.max_hour = min(hours), max(hours)
        self.max_step, self.max_cost = max_step, max_cost
        self.tz = tz
        self._views: dict[int, AggregateView] = {}

    def view(self, agg: dict[str, Any]) -> AggregateView:
        """The aggregates as they are before the pass, read as rules read them (one view per
        aggregates for the pass, so each window's sum is worked out once for every rule)."""
        hit = self._views.get(id(agg))
        if hit is None:
            event = next(iter(self.by_env.values()))
            hit = self._views[id(agg)] = AggregateView(agg, event, _NO_EXTENSIONS, self.tz)
        return hit

    def before(self, agg: dict[str, Any], window: str, field: str) -> float:
        """``field`` summed over ``window`` in the aggregates as they are (0 for an empty key)."""
        if window == "1m":
            return agg.get("m", {}).get("s", {}).get(field, 0.0)
        if window in PERIOD_PARTS:
            return agg.get(PERIOD_PARTS[window], {}).get("s", {}).get(field, 0.0)
        if "now_h" not in agg:
            return 0.0
        return self.view(agg).field(window, field)


Screen = Callable[[dict[str, Any], PassBounds, BudgetLookup, BaselineProvider], bool]
"""``(the rule's aggregates before the pass, the pass's bounds, the key's budget lookup, the
engine's baseline provider) -> whether the condition may hold``."""


def _up(value: float) -> float:
    return value + abs(value) * _SLACK + 1e-12


def _most(agg: dict[str, Any], bounds: PassBounds, window: str, field: str) -> float:
    """The most ``field`` can sum to over ``window`` at any event of the pass."""
    return _up(bounds.before(agg, window, field) + bounds.sums.get(field, 0.0))


def _value_bound(
    agg: dict[str, Any], bounds: PassBounds, metric: Metric, window: str
) -> float | None:
    """The most the metric can be over ``window`` at any event of the pass; None: no bound.
    A ratio's numerator can only grow and its denominator never shrinks below what it is."""
    if metric.kind == "event":
        most = bounds.max_step if metric.name == "step_number" else bounds.max_cost
        return _up(most)
    if metric.kind not in ("sum", "ratio") or metric.scale < 0:
        return None
    num = _most(agg, bounds, window, metric.numerator)
    if metric.kind == "sum":
        return num * metric.scale
    den = bounds.before(agg, window, metric.denominator)
    if den > 0:
        return _up(num * metric.scale / den)
    return 0.0 if num <= 1e-12 else None  # nothing to divide: 0 (or no value) at most


def _trace_bound(agg: dict[str, Any], bounds: PassBounds, metric: Metric) -> float | None:
    """The most a trace's spend (or steps) can reach at any event of the pass: the most any of
    the pass's traces has so far, plus all the pass adds. None: no event has a trace (no value)."""
    if not bounds.trace_ids:
        return None
    entries = agg.get("tr", {})
    slot = 0 if metric.name == "trace_cost_usd" else 1
    so_far = max(entries.get(id_key(t), (0.0, 0.0))[slot] for t in bounds.trace_ids)
    added = bounds.sums.get("spend_usd", 0.0) if slot == 0 else bounds.sums.get("calls", 0.0)
    return _up(so_far + added)


def _too_few(cond: ThresholdCondition | RatioToBaselineCondition) -> Screen | None:
    need = cond.min_samples
    if not need:
        return None
    field = samples_field(cond.metric)
    window = cond.window
    return lambda agg, bounds, *_: _most(agg, bounds, window, field) < need


def screen(cond: Condition) -> Screen | None:
    """A per-pass screen for ``cond``, or None where there is no simple sound bound (``all``
    and ``any`` combine their parts' screens as :func:`~spendfuse.rules.can_hold.combined`)."""
    return combined(cond, _leaf)


def _leaf(cond: Condition) -> Screen | None:
    if isinstance(cond, ThresholdCondition):
        return _threshold(cond)
    if isinstance(cond, RatioToBaselineCondition):
        return _ratio(cond)
    if isinstance(cond, BudgetPercentCondition):
        return _budget(cond)
    return None


def _threshold(cond: ThresholdCondition) -> Screen | None:
    metric = METRICS[cond.metric]
    if cond.op not in _UPWARD:
        return None
    op, limit, window = _OPS[cond.op], cond.value, cond.window
    too_few = _too_few(cond)

    def may(agg: dict[str, Any], bounds: PassBounds, *_: Any) -> bool:
        if too_few is not None and too_few(agg, bounds):
            return False
        if metric.kind == "p95":  # no new wait: the window's p95 as it is, or none at all
            if bounds.queue_waits:
                return True
            p95 = bounds.view(agg).value(cond.metric, window)
            return p95 is not None and op(p95, limit)
        if metric.kind == "trace":
            trace_most = _trace_bound(agg, bounds, metric)
            return trace_most is not None and op(trace_most, limit)
        most = _value_bound(agg, bounds, metric, window)
        return most is None or op(most, limit)

    return may


def _ratio(cond: RatioToBaselineCondition) -> Screen:
    """The gates of :func:`~spendfuse.rules.can_hold._ratio` at their bounds: a key too young
    all pass long, too few samples, a current value that cannot reach a positive ratio. The
    ratio itself is bounded only when the whole pass is in the hour the aggregates are at (the
    baseline, read from past hours, is then the same at every event of the pass)."""
    history_s = cond.min_history.seconds
    too_few = _too_few(cond)
    metric, window = METRICS[cond.metric], cond.window
    upward = cond.op in _UPWARD and cond.value > 0
    op, limit = _OPS[cond.op], cond.value
    over_h = max(1, cond.baseline.seconds // 3600)

    def may(
        agg: dict[str, Any],
        bounds: PassBounds,
        budget: BudgetLookup,
        baselines: BaselineProvider,
    ) -> bool:
        hour, first = agg.get("now_h"), agg.get("first_h")
        newest = bounds.max_hour if hour is None else max(hour, bounds.max_hour)
        oldest = bounds.min_hour if first is None else min(first, bounds.min_hour)
        if min(newest - oldest, RING_HOURS - 1) * 3600 < history_s:
            return False
        if too_few is not None and too_few(agg, bounds):
            return False
        if not upward:
            return True
        most = _value_bound(agg, bounds, metric, window)
        if most is None:
            return True
        if most <= 0:
            return False
        if hour is None or bounds.min_hour != hour or bounds.max_hour != hour:
            return True
        base = baselines.baseline(bounds.view(agg), cond.metric, window, over_h)
        return base is not None and base > 0 and op(_up(most / base), limit)

    return may


def _budget(cond: BudgetPercentCondition) -> Screen | None:
    if cond.op not in _UPWARD:
        return None
    op, kind, period, limit = _OPS[cond.op], cond.budget_kind, cond.period, cond.value

    def may(agg: dict[str, Any], bounds: PassBounds, budget: BudgetLookup, *_: Any) -> bool:
        for event in bounds.by_env.values():  # the budget in scope depends on the environment
            spec = budget(kind, period, event)
            if spec is None:
                continue
            if op(_most(agg, bounds, period, spec.measure) * 100.0 / spec.cap, limit):
                return True
        return False

    return may


def budget_screen(spec: BudgetSpec) -> Screen | None:
    """A budget or quota's thresholds over a pass (see :func:`budget_can_hold`)."""
    if spec.forecast or not spec.thresholds:
        return None
    lowest, period, measure = min(spec.thresholds), spec.period, spec.measure

    def may(agg: dict[str, Any], bounds: PassBounds, *_: Any) -> bool:
        return _most(agg, bounds, period, measure) * 100.0 / spec.cap >= lowest

    return may
