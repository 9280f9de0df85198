"""Budgets and quotas as a rule kind: one verdict per threshold (e.g. 50/80/95/100%).

Periods are calendar days or months in the tenant's IANA time zone. Each threshold is its own
rule instance in the one lifecycle (``lifecycle.py``): it fires once when the period's spend
crosses it and resolves when the period rolls over. Each alert says the percent used, the
projected time of exhaustion at the period's burn rate so far, and when the period ends in the
tenant's local time. A hard budget's ``on_exhausted`` action rides on its 100% instance and goes
through the same builder and guardrail as every rule.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from spendfuse.rules.actions import RuleMeta
from spendfuse.rules.conditions import Verdict
from spendfuse.rules.metrics.aggregates import PERIOD_PARTS, AggregateView
from spendfuse.rules.model import BudgetSpec
from spendfuse.schemas.common import Severity, format_rfc3339


def period_bounds(at: datetime, period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end of the day/month/quarter containing ``at``, as aware local datetimes."""
    local = at.astimezone(tz)
    if period == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
        return start, nxt
    first_month = local.month if period == "month" else (local.month - 1) // 3 * 3 + 1
    start = local.replace(month=first_month, day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = start
    for _ in range(1 if period == "month" else 3):
        nxt = (nxt + timedelta(days=32)).replace(day=1)
    return start, nxt


def project_exhaustion(
    spent: float, limit: float, start: datetime, at: datetime
) -> datetime | None:
    """When spend reaches ``limit`` at the period's average burn rate; None if not burning."""
    elapsed_s = (at - start).total_seconds()
    if spent >= limit:
        return at
    if spent <= 0 or elapsed_s <= 0:
        return None
    return at + timedelta(seconds=(limit - spent) / (spent / elapsed_s))


def severity_of(threshold: float) -> Severity:
    if threshold >= 100:
        return Severity.HIGH
    return Severity.MEDIUM if threshold >= 80 else Severity.LOW


def budget_metas(kind: str, spec: BudgetSpec) -> tuple[RuleMeta, RuleMeta]:
    """The rule as the builder sees it: below 100% alert only; at 100% the hard action too."""
    common = {
        "name": f"{kind}:{spec.name}",
        "severity": Severity.MEDIUM,
        "per": "use_case" if spec.use_case_id else "tenant",
        "labels": {"owner": spec.owner, "budget": spec.name},
        "silence_matcher": f'budget="{spec.name}"',
        "environment": spec.environment.value if spec.environment else None,
    }
    acts = (spec.on_exhausted,) if spec.on_exhausted is not None else ()
    return RuleMeta(**common), RuleMeta(**common, actions=acts)  # type: ignore[arg-type]


_ADJ = {"day": "daily", "month": "monthly", "quarter": "quarterly"}
_UNITS = {"total_tokens": "tokens", "calls": "requests", "step_events": "agent steps"}
FORECAST_MIN_ELAPSED = 0.1  # a projection needs a tenth of the period behind it
FORECAST_CLEAR = 0.9  # a firing forecast clears once the projection falls under 90% of the limit


def _amount(spec: BudgetSpec, value: float) -> str:
    if spec.measure == "spend_usd":
        return f"${value:,.2f}"
    return f"{value:,.0f} {_UNITS[spec.measure]}"


def budget_verdicts(
    kind: str, spec: BudgetSpec, view: AggregateView, forecast_firing: bool = False
) -> list[Verdict]:
    """One verdict per threshold at the current event, and the forecast's."""
    period_key = view.state.get(PERIOD_PARTS[spec.period], {}).get("k")
    spent = view.sums(spec.period).get(spec.measure, 0.0)
    cap = spec.cap
    pct = spent * 100.0 / cap
    at = view.event.event_time
    start, end = period_bounds(at, spec.period, view.tz)
    eta = project_exhaustion(spent, cap, start, at)
    who = spec.use_case_id or "tenant {tenant_id}"
    annotations = {
        "percent_used": round(pct, 2),
        "measure": spec.measure,
        "spent": round(spent, 6),
        "limit": cap,
        "period": period_key,
        "period_ends_local": end.isoformat(),
        "projected_exhaustion": format_rfc3339(eta) if eta else None,
        "projected_exhaustion_local": eta.astimezone(view.tz).isoformat() if eta else None,
        "owner": spec.owner,
        "enforcement": spec.enforcement,
    }
    if spec.measure == "spend_usd":
        annotations["spent_usd"], annotations["limit_usd"] = round(spent, 6), cap
    used = f"({_amount(spec, spent)} of {_amount(spec, cap)})"
    out = []
    for threshold in sorted(spec.thresholds):
        holds = pct >= threshold
        summary = f"{who} used {pct:.0f}% of its {_ADJ[spec.period]} {kind} {spec.name} {used}"
        if threshold >= 100 and spec.on_exhausted is not None:
            summary = f"{kind} {spec.name} exhausted: " + summary
        out.append(
            Verdict(
                holds=holds,
                metric=f"{kind}_percent[{spec.period}]",
                value=round(pct, 3),
                threshold=threshold,
                baseline=cap,
                instance=f"{threshold:g}",
                summary=summary,
                severity=severity_of(threshold),
                alert_key=f"{period_key}",
                labels={"threshold": f"{threshold:g}"},
                annotations=annotations if holds else {"period": period_key},
            )
        )
    if spec.forecast:
        out.append(_forecast(kind, spec, spent, start, end, at, period_key, forecast_firing))
    return out


def _forecast(kind: str, spec: BudgetSpec, spent: float, start: datetime, end: datetime,
              at: datetime, period_key: Any, firing: bool) -> Verdict:  # fmt: skip
    """The period's projection at its burn rate so far against the limit. It needs a tenth of
    the period behind it, and clears only under 90% of the limit (no flapping on the line);
    once the limit is spent, the thresholds say so instead."""
    period_s = (end - start).total_seconds()
    elapsed_s = (at - start).total_seconds()
    projected = spent / elapsed_s * period_s if elapsed_s > 0 else 0.0
    cap = spec.cap
    line = cap * (FORECAST_CLEAR if firing else 1.0)
    holds = elapsed_s >= FORECAST_MIN_ELAPSED * period_s and projected >= line and spent < cap
    who = spec.use_case_id or "tenant {tenant_id}"
    return Verdict(
        holds=holds,
        metric=f"{kind}_forecast[{spec.period}]",
        value=round(projected * 100.0 / cap, 3),
        threshold=100.0,
        baseline=cap,
        instance="forecast",
        summary=(
            f"{who} is on course for {_amount(spec, projected)} this {spec.period}, over its "
            f"{kind} {spec.name} of {_amount(spec, cap)} (spent {_amount(spec, spent)} so far)"
        ),
        severity=Severity.MEDIUM,
        alert_key=f"{period_key}",
        labels={"threshold": "forecast"},
        annotations={
            "period": period_key,
            "projected": round(projected, 6),
            "limit": cap,
            "period_ends_local": end.isoformat(),
        },
    )
