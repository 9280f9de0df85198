"""Whether a rule's condition can hold at one evaluation, decided with a few dict reads.

Most evaluations decide nothing: the condition does not hold and the rule instance has no
state (nothing pending, nothing firing), so the lifecycle has nothing to do. The engine asks
these predicates first and skips the full evaluation (the verdict, its numbers, the lifecycle)
when they say the condition cannot hold. A predicate is *sound*: it says ``False`` only where
:func:`~spendfuse.rules.conditions.evaluate_condition` would return a verdict that does not
hold, reading the same aggregates the same way, so skipping changes no decision. A condition
without a cheap test (a detector score) has no predicate and is always evaluated in full.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from spendfuse.rules.conditions import _OPS, samples_field
from spendfuse.rules.metrics.aggregates import AggregateView
from spendfuse.rules.metrics.baselines import BaselineProvider
from spendfuse.rules.metrics.catalog import METRICS
from spendfuse.rules.model import (
    AllCondition,
    AnyCondition,
    BudgetPercentCondition,
    BudgetSpec,
    Condition,
    RatioToBaselineCondition,
    ThresholdCondition,
)

BudgetLookup = Callable[[str, str, object], BudgetSpec | None]
CanHold = Callable[[AggregateView, BudgetLookup, BaselineProvider], bool]
"""``(view, the key's budget lookup, the engine's baseline provider) -> whether it can hold``."""


P = TypeVar("P", bound=Callable[..., bool])


def combined(cond: Condition, leaf: Callable[[Condition], P | None]) -> P | None:
    """A sound "may hold" predicate for ``cond`` from ``leaf``'s predicates for its simple
    conditions (shared by these per-event tests and the per-pass screens of ``screens.py``):
    ``all`` may hold only if each part that has a predicate may; ``any`` has one only if every
    part has one. None: no sound predicate."""
    if isinstance(cond, AllCondition):
        known = [p for p in (combined(c, leaf) for c in cond.conditions) if p is not None]
        if not known:
            return None

        def every(*args: Any) -> bool:
            for part in known:  # noqa: SIM110 - a loop: all() of a generator costs more here
                if not part(*args):
                    return False
            return True

        return every  # type: ignore[return-value]
    if isinstance(cond, AnyCondition):
        parts = [combined(c, leaf) for c in cond.conditions]
        if any(p is None for p in parts):
            return None
        return lambda *args: any(p(*args) for p in parts if p is not None)  # type: ignore[return-value]
    return leaf(cond)


def can_hold(cond: Condition) -> CanHold | None:
    """A predicate for ``cond``, or None when it has no cheap sound test."""
    return combined(cond, _leaf)


def _leaf(cond: Condition) -> CanHold | None:
    if isinstance(cond, ThresholdCondition):
        return _threshold(cond)
    if isinstance(cond, RatioToBaselineCondition):
        return _ratio(cond)
    if isinstance(cond, BudgetPercentCondition):
        return _budget(cond)
    return None


def _too_few(
    cond: ThresholdCondition | RatioToBaselineCondition,
) -> Callable[[AggregateView], bool] | None:
    """``min_samples`` as in :func:`~spendfuse.rules.conditions._too_few` (None: no minimum)."""
    need = cond.min_samples
    if not need:
        return None
    field = samples_field(cond.metric)
    window = cond.window
    return lambda view: view.field(window, field) < need


def _threshold(cond: ThresholdCondition) -> CanHold:
    op, metric, window, limit = _OPS[cond.op], cond.metric, cond.window, cond.value
    too_few = _too_few(cond)
    spec = METRICS[metric]
    if spec.kind == "sum" and too_few is None:
        field, scale = spec.numerator, spec.scale

        def summed(view: AggregateView, budget: BudgetLookup, base: BaselineProvider) -> bool:
            return op(float(view.field(window, field)) * scale, limit)  # as view.value reads it

        return summed

    def check(view: AggregateView, budget: BudgetLookup, base: BaselineProvider) -> bool:
        if too_few is not None and too_few(view):
            return False
        value = view.value(metric, window)
        return value is not None and op(value, limit)

    return check


def _ratio(cond: RatioToBaselineCondition) -> CanHold:
    """The ratio exactly as :func:`~spendfuse.rules.conditions._ratio` decides it, with the
    cheap reasons for no verdict first (a young key, too few samples, no current value and, for
    ``>``/``>=`` against a positive ratio, a current value of zero or less, which over a
    positive baseline cannot reach it); only then the baseline (the provider's, read from the
    same aggregates, so the same number the full evaluation gets). Most evaluations of a ratio
    rule decide nothing: the ratio is not over its limit and nothing is pending or firing."""
    history_s = cond.min_history.seconds
    too_few = _too_few(cond)
    metric, window = cond.metric, cond.window
    upward = cond.op in (">", ">=") and cond.value > 0
    op, limit = _OPS[cond.op], cond.value
    over_h = max(1, cond.baseline.seconds // 3600)

    def check(view: AggregateView, budget: BudgetLookup, baselines: BaselineProvider) -> bool:
        if view.history_hours() * 3600 < history_s:
            return False
        if too_few is not None and too_few(view):
            return False
        value = view.value(metric, window)
        if value is None or (upward and value <= 0):
            return False
        base = baselines.baseline(view, metric, window, over_h)
        return base is not None and base > 0 and op(value / base, limit)

    return check


def _budget(cond: BudgetPercentCondition) -> CanHold:
    op, kind, period, limit = _OPS[cond.op], cond.budget_kind, cond.period, cond.value

    def check(view: AggregateView, budget: BudgetLookup, base: BaselineProvider) -> bool:
        spec = budget(kind, period, view.event)
        if spec is None:
            return False
        return op(view.field(period, spec.measure) * 100.0 / spec.cap, limit)

    return check


def budget_can_hold(spec: BudgetSpec) -> CanHold | None:
    """A budget or quota's thresholds, for a budget with no instance state: none of them holds
    below the lowest. A forecast needs the period's bounds: no cheap test."""
    if spec.forecast or not spec.thresholds:
        return None
    lowest, period, measure = min(spec.thresholds), spec.period, spec.measure

    def check(view: AggregateView, budget: BudgetLookup, base: BaselineProvider) -> bool:
        return view.field(period, measure) * 100.0 / spec.cap >= lowest

    return check
