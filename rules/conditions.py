"""Evaluate a rule's condition on the aggregates at one event: pure, no state of its own."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from spendfuse.rules.metrics.aggregates import AggregateView
from spendfuse.rules.metrics.baselines import BaselineProvider, ScoreProvider
from spendfuse.rules.metrics.catalog import METRICS
from spendfuse.rules.model import (
    AllCondition,
    AnyCondition,
    BudgetPercentCondition,
    BudgetSpec,
    Condition,
    DetectorScoreCondition,
    RatioToBaselineCondition,
    ThresholdCondition,
)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


@dataclass(slots=True)
class Verdict:
    """Whether a condition holds for one group at one point in event time, and the numbers
    behind it: what every rule kind returns, and all the lifecycle and the builder read."""

    holds: bool
    metric: str = ""
    value: float | None = None
    threshold: float | None = None
    baseline: float | None = None
    parts: list[Verdict] = field(default_factory=list)
    at_ms: int | None = None  # the verdict's own time (a closed bucket's start); else the event's
    instance: str = ""  # a sub-key of the rule instance (a budget's threshold)
    window_s: int | None = None
    window_start: Any = None
    summary: str | None = None  # overrides the rule's summary template
    severity: Any = None  # overrides the rule's severity
    alert_key: str | None = None  # what makes the alert id unique instead of the firing time
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, Any] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)  # extra values for the summary
    targets: dict[str, str] = field(default_factory=dict)  # target type -> id overrides
    #: evidence traces (id, cost, steps) when the verdict is about given traces; else the
    #: engine names the costliest open traces of the rule's window
    traces: list[tuple[str, float, int | None]] = field(default_factory=list)


_TOO_EARLY = Verdict(False, "not enough history")


@dataclass(slots=True)
class EvalContext:
    view: AggregateView
    baselines: BaselineProvider
    scores: Callable[[Any], ScoreProvider]  # detector spec -> its score provider
    budget: Callable[[str, str], BudgetSpec | None]  # (kind, period) -> the budget in scope
    labels: dict[str, str] = field(default_factory=dict)  # the event's labels, computed once
    now_ms: int = 0  # the event's time


def samples_field(metric_name: str) -> str:
    """The summed field ``min_samples`` counts for a metric: a ratio's denominator, else calls
    (one definition for the full evaluation, ``can_hold`` and the pass screens)."""
    metric = METRICS[metric_name]
    return metric.denominator if metric.kind == "ratio" else "calls"


def _too_few(cond: Condition, ctx: EvalContext) -> bool:
    need = getattr(cond, "min_samples", 0)
    if not need:
        return False
    field = samples_field(cond.metric)  # type: ignore[union-attr]
    return ctx.view.field(cond.window, field) < need  # type: ignore[union-attr]


def evaluate_condition(cond: Condition, ctx: EvalContext) -> Verdict:
    if isinstance(cond, RatioToBaselineCondition) and _young(cond, ctx):
        return _TOO_EARLY  # checked first: the cheapest reason a young key has no verdict
    if _too_few(cond, ctx):
        return _TOO_EARLY
    if isinstance(cond, ThresholdCondition):
        value = ctx.view.value(cond.metric, cond.window)
        ok = value is not None and _OPS[cond.op](value, cond.value)
        return Verdict(ok, f"{cond.metric}[{cond.window}]", value, cond.value)
    if isinstance(cond, RatioToBaselineCondition):
        return _ratio(cond, ctx)
    if isinstance(cond, DetectorScoreCondition):
        score = ctx.scores(cond.detector.spec()).score(ctx.view, cond.metric, cond.window)
        ok = score is not None and _OPS[cond.op](score, cond.value)
        return Verdict(ok, f"score({cond.metric}[{cond.window}])", score, cond.value)
    if isinstance(cond, BudgetPercentCondition):
        return _budget(cond, ctx)
    parts = [evaluate_condition(c, ctx) for c in cond.conditions]
    combine = all if isinstance(cond, AllCondition) else any
    head = parts[0]
    assert isinstance(cond, AllCondition | AnyCondition)
    return Verdict(
        combine(p.holds for p in parts),
        head.metric,
        head.value,
        head.threshold,
        head.baseline,
        parts,
    )


def _young(cond: RatioToBaselineCondition, ctx: EvalContext) -> bool:
    return ctx.view.history_hours() * 3600 < cond.min_history.seconds


def _ratio(cond: RatioToBaselineCondition, ctx: EvalContext) -> Verdict:
    name = f"{cond.metric}[{cond.window}]/baseline[{cond.baseline}]"
    over_h = max(1, cond.baseline.seconds // 3600)
    base = ctx.baselines.baseline(ctx.view, cond.metric, cond.window, over_h)
    value = ctx.view.value(cond.metric, cond.window)
    if base is None or value is None or base <= 0:
        return Verdict(False, name, None, cond.value, base)
    ratio = value / base
    return Verdict(_OPS[cond.op](ratio, cond.value), name, ratio, cond.value, base)


def _budget(cond: BudgetPercentCondition, ctx: EvalContext) -> Verdict:
    budget = ctx.budget(cond.budget_kind, cond.period)
    name = f"{cond.budget_kind}_percent[{cond.period}]"
    if budget is None:
        return Verdict(False, name, None, cond.value)
    spent = ctx.view.sums(cond.period).get(budget.measure, 0.0)
    pct = spent * 100.0 / budget.cap
    return Verdict(_OPS[cond.op](pct, cond.value), name, pct, cond.value, budget.cap)
