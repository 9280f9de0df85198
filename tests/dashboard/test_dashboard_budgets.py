"""The dashboard shows the YAML budgets of the running rules and a showback from rollups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spendfuse.dashboard_rollup_ledger import RollupLedger
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


def _feed(state: DashboardState, events) -> list:
    """Hand the dashboard events as the worker does, then the rollup rows they make."""
    acc = RollupAccumulator()
    for event in events:
        state.add_event(event)
        acc.add(event)
    rows = acc.drain()
    state.add_rollups(rows)
    return rows


def test_budgets_show_as_configured_with_spent_percent_and_forecast(rules: RuleSet) -> None:
    state = DashboardState(DashboardConfig(daily_budget_usd=999.0), rules=lambda: rules)
    # Berlin's day started at 23:00 UTC: an event at 22:30 UTC is yesterday's there
    events = [_event("bot", 7.0, T0.replace(hour=22, minute=30) - timedelta(days=1))]
    for minute in range(0, 60, 6):  # $1 every 6 minutes, 11:00-12:00 UTC
        events.append(
            _event("bot", 1.0, T0 - timedelta(hours=1, minutes=-minute), cost_center="cc-7")
        )
    _feed(state, events)
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
    _feed(state, [_event("bot", 5.0, T0)])
    (tmp_path / "budgets.yaml").write_text(BUDGETS.replace("limit_usd: 20", "limit_usd: 50"))
    current["rs"] = load_rules(tmp_path, default_pack=False)
    _feed(state, [_event("bot", 5.0, T0), _event("bot", 5.0, T0 + timedelta(minutes=1))])
    daily = next(b for b in state.snapshot(T0)["budgets"] if b["name"] == "bot-daily")
    assert daily["limit"] == 50.0 and daily["spent"] == pytest.approx(10.0)  # the hour's total


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


SCOPED = """
version: 1
tenants: [{tenant_id: acme, time_zone: Europe/Berlin}, {tenant_id: mumbai, time_zone: Asia/Kolkata}]
budgets:
  - {name: acme-day, owner: o, tenant_id: acme, period: day, limit_usd: 100}
  - {name: acme-dev-day, owner: o, tenant_id: acme, environment: dev, period: day, limit_usd: 100}
  - {name: acme-high-month, owner: o, tenant_id: acme, risk_tier: high, period: month,
     limit_usd: 100}
  - {name: acme-cc9-quarter, owner: o, tenant_id: acme, cost_center: cc-9, business_unit: bu-1,
     period: quarter, limit_usd: 100}
  - {name: mumbai-day, owner: o, tenant_id: mumbai, period: day, limit_usd: 100}
quotas:
  - {name: acme-requests, owner: o, tenant_id: acme, period: day, measure: calls, limit: 1000}
  - {name: acme-steps, owner: o, tenant_id: acme, period: day, measure: step_events, limit: 99}
"""


def _rows(*events) -> list:
    acc = RollupAccumulator()
    acc.add_all(events)
    return acc.drain()


def test_budget_spend_sums_the_latest_rollup_per_key_in_scope_and_period(tmp_path) -> None:
    (tmp_path / "b.yaml").write_text(SCOPED)
    rules = load_rules(tmp_path, default_pack=False)
    state = DashboardState(rules=lambda: rules)
    now = T0  # 12:00 UTC, 13:00 in Berlin; Berlin's day began 23:00 UTC
    first = _rows(
        _event("bot", 1.0, now - timedelta(minutes=50)),  # 11:00 hour, prod, low
        _event("bot", 2.0, now - timedelta(hours=12, minutes=30)),  # 23:30 UTC: today in Berlin
        _event("bot", 4.0, now - timedelta(hours=13, minutes=30)),  # 22:30 UTC: yesterday there
        _event("bot", 8.0, now - timedelta(minutes=40), environment="dev"),
        _event("risky", 16.0, now - timedelta(days=3), risk_tier="high"),  # same month
        _event("risky", 32.0, now - timedelta(days=40), risk_tier="high"),  # last month
        _event("fin", 64.0, now - timedelta(days=30), cost_center="cc-9", business_unit="bu-1"),
        _event("fin", 128.0, now - timedelta(days=30), cost_center="cc-9"),  # no bu-1
        _event("bot", 256.0, now, tenant_id="other"),
    )
    state.add_rollups(first)
    early = {b["name"]: b for b in state.snapshot(now)["budgets"]}
    assert early["acme-day"]["spent"] == pytest.approx(2.0 + 1.0 + 8.0)
    # the 11:00 prod row published again with its full totals (a late event for 11:00):
    # it replaces the earlier row, it does not add to it
    eleven = next(r for r in first if r.hour_start.hour == 11 and r.environment == "prod")
    state.add_rollups([eleven.model_copy(update={"cost_usd": 1.5, "events": 2})])
    # an event later than its hour was kept for: a revision row of its own key, adding to 11:00
    state.add_rollups([eleven.model_copy(update={"cost_usd": 0.25, "events": 1, "revision": now})])
    rows = {b["name"]: b for b in state.snapshot(now + timedelta(minutes=5))["budgets"]}
    assert rows["acme-day"]["spent"] == pytest.approx(2.0 + 1.5 + 0.25 + 8.0)
    assert rows["acme-day"]["period_start"] == "2026-11-22T23:00:00.000Z"
    assert rows["acme-day"]["period_note"] is None  # whole-hour zone: exact
    assert rows["acme-dev-day"]["spent"] == pytest.approx(8.0)
    assert rows["acme-high-month"]["spent"] == pytest.approx(16.0)
    assert rows["acme-cc9-quarter"]["spent"] == pytest.approx(64.0)
    assert rows["acme-requests"]["spent"] == 1 + 2 + 1 + 1  # events: 23:30, 11:00 (2), rev, dev
    steps = rows["acme-steps"]
    assert (steps["spent"], steps["percent"], steps["status"]) == (None, None, "not in rollups")
    assert rows["mumbai-day"]["status"] == "no spend yet"


def test_a_half_hour_zone_counts_each_utc_hour_in_the_period_it_starts_in(tmp_path) -> None:
    (tmp_path / "b.yaml").write_text(SCOPED)
    rules = load_rules(tmp_path, default_pack=False)
    state = DashboardState(rules=lambda: rules)
    # Kolkata is UTC+5:30: its day starts at 18:30 UTC
    day_start = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)
    state.add_rollups(
        _rows(
            _event("bot", 1.0, day_start - timedelta(minutes=20), tenant_id="mumbai"),  # 18:10
            _event("bot", 2.0, day_start + timedelta(minutes=10), tenant_id="mumbai"),  # 18:40
            _event("bot", 4.0, day_start + timedelta(minutes=40), tenant_id="mumbai"),  # 19:10
        )
    )
    row = next(b for b in state.snapshot(T0)["budgets"] if b["name"] == "mumbai-day")
    # the 18:00 UTC hour starts before local midnight: all of it is yesterday's, 18:40 included
    assert row["spent"] == pytest.approx(4.0)
    assert row["period_start"] == "2026-11-22T18:30:00.000Z"
    assert "half-hour" in row["period_note"]


def test_a_restarted_dashboard_shows_the_same_spend_from_the_rollups_alone(
    rules: RuleSet,
) -> None:
    before = DashboardState(DashboardConfig(daily_budget_usd=50.0), rules=lambda: rules)
    events = [
        _event("bot", 0.5, T0 - timedelta(minutes=m), cost_center="cc-7") for m in range(0, 90, 3)
    ]
    events.append(_event("helper", 3.0, T0 - timedelta(minutes=5)))
    rows = _feed(before, events)
    # after a restart the worker has handled nothing yet; it reads the rollups topic back
    after = DashboardState(DashboardConfig(daily_budget_usd=50.0), rules=lambda: rules)
    after.add_rollups(rows)
    after.add_event(_event("helper", 0.0, T0))  # a first event: the use case has a card again

    def spent(state: DashboardState) -> dict[str, float]:
        return {b["name"]: b["spent"] for b in state.snapshot(T0)["budgets"]}

    assert spent(after) == spent(before)
    assert spent(after)["bot-daily"] == pytest.approx(15.0)
    card = next(c for c in after.snapshot(T0)["use_cases"] if c["use_case_id"] == "helper")
    assert card["budget_day"]["source"] == "default"
    assert card["budget_day"]["used_usd"] == pytest.approx(3.0)  # from the rollups, not events


def test_the_kept_sums_match_a_fresh_read_of_the_rows_after_replacements_and_drops(
    tmp_path,
) -> None:
    (tmp_path / "b.yaml").write_text(SCOPED)
    rules = load_rules(tmp_path, default_pack=False)
    ledger = RollupLedger(max_rows=40)
    specs = [*rules.budgets.values(), *rules.quotas.values()]
    for spec in specs:  # asked for before any row: every later row updates the kept sums
        assert ledger.period_spend(spec, rules.tz(spec.tenant_id)) is None
    rows = []
    for h in range(60):  # more rows than the ledger keeps: the oldest written go first
        at = T0 - timedelta(hours=h)
        rows += _rows(
            _event("bot", 0.1 * (h % 5 + 1), at, environment="dev" if h % 3 else "prod"),
            _event("fin", 1.0, at, cost_center="cc-9", business_unit="bu-1"),
        )
    ledger.add(rows[::2])
    ledger.add(r.model_copy(update={"cost_usd": r.cost_usd + 1}) for r in rows)  # replaced
    assert len(ledger) == 40 and ledger.dropped > 0
    fresh = RollupLedger()
    fresh.add(
        ledger_rows := [r.model_copy(update={"cost_usd": r.cost_usd + 1}) for r in rows][-40:]
    )
    assert len(ledger_rows) == len(fresh) == 40
    for spec in specs:
        kept = ledger.period_spend(spec, rules.tz(spec.tenant_id))
        read = fresh.period_spend(spec, rules.tz(spec.tenant_id))
        assert (kept is None) == (read is None), spec.name
        if kept is not None and read is not None:
            assert kept.spent == pytest.approx(read.spent), spec.name
            assert (kept.start, kept.newest_hour_ms) == (read.start, read.newest_hour_ms)
    assert ledger.use_case_spend("acme", "bot", 0, 2**62) == pytest.approx(
        fresh.use_case_spend("acme", "bot", 0, 2**62)
    )


def test_rows_too_far_behind_the_newest_hour_are_dropped_with_their_sums(rules: RuleSet) -> None:
    ledger = RollupLedger(keep_ms=3 * 24 * 3600 * 1000)
    spec = rules.budgets["bot-daily"]
    ledger.add(_rows(_event("bot", 5.0, T0 - timedelta(days=10))))
    old = ledger.period_spend(spec, rules.tz("acme"))
    assert old is not None and old.spent == pytest.approx(5.0)
    ledger.add(_rows(_event("bot", 1.0, T0)))
    assert len(ledger) == 1  # ten days behind the newest hour: gone
    assert ledger.use_case_spend("acme", "bot", 0, 2**62) == pytest.approx(1.0)
    now = ledger.period_spend(spec, rules.tz("acme"))
    assert now is not None and now.spent == pytest.approx(1.0)
