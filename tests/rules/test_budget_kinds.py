"""Budgets beyond a USD day or month: quarters, token/request/step quotas, budgets of one cost
center, business unit or risk tier, and a forecast that alerts before the money is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spendfuse.rules.ruleset import RuleSet
from tests.rules.support import run
from tests.support.events import make_event
from tests.support.rules import with_rules

Q4 = datetime(2026, 10, 1, tzinfo=UTC)


def _rules(budgets: str) -> RuleSet:
    return with_rules(f"version: 1\nbudgets:\n{budgets}", default_pack=False)


def test_a_quarter_budget_counts_the_whole_quarter_and_rolls_over() -> None:
    rs = _rules(
        "  - {name: q, owner: '#finops', tenant_id: acme, use_case_id: bot, period: quarter,\n"
        "     limit_usd: 100, thresholds: [80]}\n"
    )
    # $30 in each month of Q4: the 80% threshold is crossed in December, not before
    events = [make_event("bot", cost=30.0, at=Q4 + timedelta(days=31 * m)) for m in range(3)]
    events.append(make_event("bot", cost=1.0, at=datetime(2027, 1, 2, tzinfo=UTC)))
    got = run(events, rs).of("budget:q")
    assert [(a.status, a.fired_at.month) for a in got.alerts] == [("firing", 12), ("resolved", 12)]
    assert got.alerts[0].annotations["period"] == "2026-Q4"
    assert got.alerts[1].resolved_at.year == 2027


def test_a_token_quota_counts_tokens_not_dollars() -> None:
    rs = _rules(
        "  - {name: tok, owner: '#finops', tenant_id: acme, use_case_id: bot, period: day,\n"
        "     measure: total_tokens, limit: 10000, thresholds: [100]}\n"
    )
    events = [make_event("bot", cost=0.0001, seconds=s, input_tokens=2000, output_tokens=500)
              for s in range(4)]  # fmt: skip
    got = run(events, rs).of("budget:tok")
    assert [a.status for a in got.alerts] == ["firing"]
    assert got.alerts[0].evidence.value == pytest.approx(100.0)  # 4 x 2,500 tokens of 10,000
    assert "daily budget tok (10,000 tokens of 10,000 tokens)" in got.alerts[0].summary


def test_limit_usd_is_for_spend_and_a_budget_needs_one_limit() -> None:
    with pytest.raises(Exception, match="a calls quota takes limit"):
        _rules(
            "  - {name: r, owner: x, tenant_id: acme, period: day, measure: calls, limit_usd: 5}\n"
        )
    with pytest.raises(Exception, match="one limit"):
        _rules("  - {name: r, owner: x, tenant_id: acme, period: day}\n")


@pytest.mark.parametrize(("field", "value"), [("cost_center", "cc-7"), ("business_unit", "claims")])
def test_a_budget_of_one_slice_measures_that_slice_only(field: str, value: str) -> None:
    rs = _rules(
        f"  - {{name: slice, owner: '#finops', tenant_id: acme, {field}: {value}, period: day,\n"
        "     limit_usd: 10, thresholds: [100]}\n"
    )
    mine = [make_event(f"uc{i}", cost=3.0, seconds=i, **{field: value}) for i in range(3)]
    other = [make_event(f"uc{i}", cost=50.0, seconds=i, **{field: "other"}) for i in range(3)]
    assert run(mine + other, rs).of("budget:slice").alerts == []  # $9 of its own
    more = [*mine, *other, make_event("uc9", cost=2.0, seconds=9, **{field: value})]
    got = run(more, rs).of("budget:slice").alerts
    assert [a.status for a in got] == ["firing"] and got[0].use_case_id == "*"
    assert got[0].evidence.value == pytest.approx(110.0)


def test_a_risk_tier_budget_counts_that_tier_only() -> None:
    rs = _rules(
        "  - {name: high, owner: '#risk', tenant_id: acme, risk_tier: high, period: day,\n"
        "     limit_usd: 10, thresholds: [100]}\n"
    )
    low = [make_event("a", cost=20.0, seconds=1)]
    high = [make_event("b", cost=6.0, risk_tier="high", seconds=s) for s in (2, 3)]
    got = run(low + high, rs).of("budget:high").alerts
    assert [round(a.evidence.value) for a in got] == [120]


FORECAST = (
    "  - {name: month, owner: '#finops', tenant_id: acme, use_case_id: bot, period: month,\n"
    "     limit_usd: 3000, thresholds: [100], forecast: true, enforcement: hard,\n"
    "     on_exhausted: {kind: kill_switch, target: use_case, expires_in: 1h}}\n"
)


def test_the_forecast_alerts_when_the_burn_rate_will_cross_the_budget() -> None:
    """$150 a day on a $3,000 month: on course for $4,650 by day 4, long before 100%."""
    start = datetime(2026, 12, 1, tzinfo=UTC)
    events = [make_event("bot", cost=150.0 / 4, at=start + timedelta(hours=6 * k))
              for k in range(4 * 6)]  # fmt: skip
    got = run(events, _rules(FORECAST)).of("budget:month")
    fired = [a for a in got.alerts if a.labels.get("threshold") == "forecast"]
    assert [a.status for a in fired] == ["firing"]
    assert fired[0].actions_taken == []  # a forecast warns; only the spent limit acts
    assert fired[0].fired_at.day == 4  # a tenth of December behind it
    assert 100 < fired[0].evidence.value < 200  # the projection, in percent of the budget
    assert "on course for $" in fired[0].summary and "over its budget month" in fired[0].summary


def test_no_forecast_alert_on_a_burn_rate_under_the_budget() -> None:
    start = datetime(2026, 12, 1, tzinfo=UTC)
    events = [make_event("bot", cost=80.0 / 4, at=start + timedelta(hours=6 * k))
              for k in range(10 * 4)]  # fmt: skip
    assert run(events, _rules(FORECAST)).of("budget:month").alerts == []
