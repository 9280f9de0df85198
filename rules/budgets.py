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
from zoneinfo import ZoneInfo

from spendfuse.rules.actions import RuleMeta
from spendfuse.rules.conditions import Verdict
from spendfuse.rules.metrics.aggregates import AggregateView
from spendfuse.rules.model import BudgetSpec
from spendfuse.schemas.common import Severity, format_rfc3339


def period_bounds(at: datetime, period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end of the day/month containing ``at``, as aware local datetimes."""
    local = at.astimezone(tz)
    if period == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
    else:
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (start + timedelta(days=32)).replace(day=1)
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


def budget_verdicts(kind: str, spec: BudgetSpec, view: AggregateView) -> list[Verdict]:
    """One verdict per threshold at the current event."""
    period_key = view.state.get("d" if spec.period == "day" else "mo", {}).get("k")
    spent = view.sums(spec.period).get("spend_usd", 0.0)
    pct = spent * 100.0 / spec.limit_usd
    at = view.event.event_time
    start, end = period_bounds(at, spec.period, view.tz)
    eta = project_exhaustion(spent, spec.limit_usd, start, at)
    who = spec.use_case_id or "tenant {tenant_id}"
    annotations = {
        "percent_used": round(pct, 2),
        "spent_usd": round(spent, 6),
        "limit_usd": spec.limit_usd,
        "period": period_key,
        "period_ends_local": end.isoformat(),
        "projected_exhaustion": format_rfc3339(eta) if eta else None,
        "projected_exhaustion_local": eta.astimezone(view.tz).isoformat() if eta else None,
        "owner": spec.owner,
        "enforcement": spec.enforcement,
    }
    out = []
    for threshold in sorted(spec.thresholds):
        holds = pct >= threshold
        summary = (
            f"{who} used {pct:.0f}% of its {spec.period}ly {kind} {spec.name} "
            f"(${spent:.2f} of ${spec.limit_usd:.2f})"
        )
        if threshold >= 100 and spec.on_exhausted is not None:
            summary = f"{kind} {spec.name} exhausted: " + summary
        out.append(
            Verdict(
                holds=holds,
                metric=f"{kind}_percent[{spec.period}]",
                value=round(pct, 3),
                threshold=threshold,
                baseline=spec.limit_usd,
                instance=f"{threshold:g}",
                summary=summary,
                severity=severity_of(threshold),
                alert_key=f"{period_key}",
                labels={"threshold": f"{threshold:g}"},
                annotations=annotations if holds else {"period": period_key},
            )
        )
    return out
