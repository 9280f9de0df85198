"""The dashboard shows the YAML budgets of the running rules and a showback from rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spendfuse.dashboard_state import DashboardConfig, DashboardState
from spendfuse.finops.rollups import RollupAccumulator
from spendfuse.rules.loader import load_rules
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.pricing import price_event
from tests.support.events import make_event

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BUDGETS = """
version: 1
tenants: [{tenant_id: acme, time_zone: Europe/Berlin}]
budgets:
  - {name: bot-daily, owner: "#bots", tenant_id: acme, use_case_id: bot, period: day,
     limit_usd: 20}
  - {name: acme-cc7-monthly, owner: finops@acme.example, tenant_id: acme, cost_center: cc-7,
     period: month, limit_usd: 1000}
quotas:
  - {name: bot-tokens, owner: "#bots", tenant_id: acme, use_case_id: bot, period: day,
     measure: total_tokens, limit: 100000}
"""


@pytest.fixture
def rules(tmp_path) -> RuleSet:
    (tmp_path / "budgets.yaml").write_text(BUDGETS)
    return load_rules(tmp_path, default_pack=False)


def _event(use_case: str, cost: float, at: datetime, **kw):
    return price_event(parse_cost_event_obj(make_event(use_case, cost=cost, at=at, **kw)))


def test_budgets_show_as_configured_with_spent_percent_and_forecast(rules: RuleSet) -> None:
    state = DashboardState(DashboardConfig(daily_budget_usd=999.0), rules=lambda: rules)
    # Berlin's day started at 23:00 UTC: an event at 22:30 UTC is yesterday's there
    state.add_event(_event("bot", 7.0, T0.replace(hour=22, minute=30) - timedelta(days=1)))
    for minute in range(0, 60, 6):  # $1 every 6 minutes, 11:00-12:00 UTC
        state.add_event(
            _event("bot", 1.0, T0 - timedelta(hours=1, minutes=-minute), cost_center="cc-7")
        )
    snap = state.snapshot(T0)
    rows = {b["name"]: b for b in snap["budgets"]}
    assert set(rows) == {"bot-daily", "acme-cc7-monthly", "bot-tokens"}
    daily = rows["bot-daily"]
    assert (daily["scope"], daily["period"], daily["limit"]) == (
        "tenant acme · use case bot",
        "day",
        20.0,
    )
    assert daily["spent"] == pytest.approx(10.0) and daily["percent"] == pytest.approx(50.0)
    assert daily["period_start"] == "2026-11-22T23:00:00.000Z"
    # $10 in the 12.9 hours from local midnight to the last event: $18.6 by the day's end
    assert daily["forecast"] == pytest.approx(10.0 / (12.9 / 24), rel=1e-3)
    assert daily["status"] == "ok" and daily["exhausted_at"] is None
    assert rows["acme-cc7-monthly"]["spent"] == pytest.approx(10.0)  # cc-7 events only
    assert rows["bot-tokens"]["spent"] == 10 * 1500 and rows["bot-tokens"]["measure"] == (
        "total_tokens"
    )
    card = snap["use_cases"][0]
    assert card["budget_day"]["source"] == "bot-daily"
    assert card["budget_day"]["budget_usd"] == 20.0
    assert card["budget_month"]["source"] == "default"  # no monthly budget of its own
    assert "YAML budgets" in snap["budget_source"]


def test_a_reloaded_budget_shows_its_new_limit(rules: RuleSet, tmp_path) -> None:
    current = {"rs": rules}
    state = DashboardState(rules=lambda: current["rs"])
    state.add_event(_event("bot", 5.0, T0))
    (tmp_path / "budgets.yaml").write_text(BUDGETS.replace("limit_usd: 20", "limit_usd: 50"))
    current["rs"] = load_rules(tmp_path, default_pack=False)
    state.add_event(_event("bot", 5.0, T0 + timedelta(minutes=1)))
    daily = next(b for b in state.snapshot(T0)["budgets"] if b["name"] == "bot-daily")
    assert daily["limit"] == 50.0 and daily["spent"] == pytest.approx(5.0)  # counted anew


def test_no_rules_means_no_budget_rows_and_default_cards() -> None:
    state = DashboardState(DashboardConfig(daily_budget_usd=10.0))
    state.add_event(_event("bot", 1.0, T0))
    snap = state.snapshot(T0)
    assert snap["budgets"] == []
    assert snap["use_cases"][0]["budget_day"]["source"] == "default"


def test_showback_sums_the_latest_rollup_per_key_for_today_and_this_month() -> None:
    state = DashboardState()
    acc = RollupAccumulator()
    acc.add(_event("bot", 2.0, T0, cost_center="cc-1", business_unit="retail"))
    acc.add(_event("bot", 3.0, T0 - timedelta(days=2), cost_center="cc-1", business_unit="retail"))
    acc.add(_event("claims", 4.0, T0, cost_center="cc-2", business_unit="ins"))
    acc.add(_event("claims", 9.0, T0 - timedelta(days=40), cost_center="cc-2"))  # last month
    rows = acc.drain()
    state.add_rollups(rows)
    state.add_rollups(r.model_copy(update={"cost_usd": r.cost_usd * 2}) for r in rows)  # replace
    sb = state.snapshot(T0)["showback"]
    assert (sb["day"], sb["month"]) == ("2026-11-23", "2026-11")
    by_cc = {r["name"]: (r["day_usd"], r["month_usd"]) for r in sb["dimensions"]["cost_center"]}
    assert by_cc == {"cc-1": (4.0, 10.0), "cc-2": (8.0, 8.0)}
    by_uc = {r["name"]: r["month_usd"] for r in sb["dimensions"]["use_case_id"]}
    assert by_uc == {"bot": 10.0, "claims": 8.0}
    assert [r["name"] for r in sb["dimensions"]["business_unit"]] == ["retail", "ins"]
