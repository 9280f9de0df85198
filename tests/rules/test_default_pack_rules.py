"""Every rule of the default pack fires on a small fixture and stays quiet on a near miss."""

from __future__ import annotations

from datetime import timedelta

import pytest

from spendfuse.rules.loader import load_default_pack
from tests.rules.support import hourly, ruleset, run
from tests.support.events import BASE_TIME, make_event

BUDGETS = """
version: 1
tenants: [{tenant_id: acme, time_zone: Europe/Berlin}]
budgets:
  - {name: bot-daily, owner: "#finops", tenant_id: acme, use_case_id: bot, period: day,
     limit_usd: 100, thresholds: [100]}
  - {name: claims-monthly, owner: "#claims", tenant_id: acme, use_case_id: claims,
     period: month, limit_usd: 100, thresholds: [200]}
quotas:
  - {name: lab-quota, owner: "#sandbox", tenant_id: lab, environment: sandbox, period: month,
     limit_usd: 100, thresholds: [200]}
"""


def test_default_pack_loads_with_every_domain_rule() -> None:
    rs = load_default_pack()
    assert set(rs.rules) == {
        "daily_budget_burn",
        "cost_per_resolved_case_anomaly",
        "quality_cost_regression",
        "gpu_idle_burn",
        "queue_slo_breach",
        "agent_loop_cost_spike",
        "sandbox_runaway",
        "sandbox_hard_cap",
        "high_risk_budget_overrun",
        "carbon_efficiency_drift",
        "session_cost_over_1usd",
        "agent_step_limit",
        "cost_per_answer_hourly",
        "token_doubling_flat_traffic",
        "high_risk_quality_protection",
        "spend_rate_limit",
        "agent_loop_anomaly",
        "volume_shift_anomaly",
        "spend_spike_anomaly",
        "unit_cost_anomaly",
        "token_bloat_anomaly",
        "cache_collapse_anomaly",
        "unpriced_spend",
        "session_cost_outlier",
    }
    assert rs.route is not None and rs.inhibit_rules


# -- daily budget burn -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spend", "hour_utc", "fires"),
    [
        (70.0, 9, True),  # 10:00 in Berlin, 70%
        (69.0, 9, False),  # near miss: 69%
        (70.0, 13, False),  # 14:00 in Berlin: too late in the day to call it a burn
    ],
)
def test_daily_budget_burn(spend: float, hour_utc: int, fires: bool) -> None:
    at = BASE_TIME.replace(hour=hour_utc)
    events = [make_event("bot", cost=spend / 2, at=at, seconds=s) for s in (0, 1)]
    got = run(events, ruleset(BUDGETS)).of("daily_budget_burn")
    assert got.statuses() == (["firing"] if fires else [])
    if fires:
        assert [(c.kind.value, c.level.value) for c in got.commands] == [("degrade", "L1")]
        assert got.commands[0].params.cache_first is True
        assert got.alerts[0].evidence.value == pytest.approx(70.0)


# -- cost per resolved case --------------------------------------------------------------------
def _cases(cost_now: float) -> list[dict]:
    def outcome(i: int) -> dict:
        return {"business_outcome_id": f"case-{i}", "quality_score": 0.9}

    old = hourly("bot", 72, cost=1.0, **outcome(0))
    new = hourly("bot", 24, start_hours=72, cost=cost_now, **outcome(0))
    for i, e in enumerate(old + new):
        e["business_outcome_id"] = f"case-{i}"
    return old + new


@pytest.mark.parametrize(("cost_now", "fires"), [(1.5, True), (1.3, False)])
def test_cost_per_resolved_case_anomaly(cost_now: float, fires: bool) -> None:
    got = run(_cases(cost_now)).of("cost_per_resolved_case_anomaly")
    assert ("firing" in got.statuses()) is fires


# -- quality-cost regression -------------------------------------------------------------------
def _regression(cost_now: float, rejected_now: int) -> list[dict]:
    events = hourly("bot", 72, per_hour=4, cost=1.0, human_rejected=False)
    new = hourly("bot", 24, per_hour=4, start_hours=72, cost=cost_now, human_rejected=False)
    for i, e in enumerate(events):
        e["human_rejected"] = i % 4 == 0
    for i, e in enumerate(new):
        e["human_rejected"] = i % 4 < rejected_now
    return events + new


@pytest.mark.parametrize(
    ("cost_now", "rejected_now", "fires"),
    [
        (0.7, 2, True),  # cheaper, and twice the rejections
        (0.9, 2, False),  # not cheap enough to be the cause
        (0.7, 1, False),  # cheaper with unchanged quality is good news
    ],
)
def test_quality_cost_regression(cost_now: float, rejected_now: int, fires: bool) -> None:
    got = run(_regression(cost_now, rejected_now)).of("quality_cost_regression")
    assert ("firing" in got.statuses()) is fires
    assert got.commands == []


# -- GPU idle burn -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("util", "days", "fires"),
    [
        (0.2, 8, True),  # Mon 23 .. Mon 30 Nov 2026: 5 business days held
        (0.2, 5, False),  # Mon .. Fri: only 4 complete business days
        (0.36, 8, False),  # busy enough
    ],
)
def test_gpu_idle_burn(util: float, days: int, fires: bool) -> None:
    events = [
        make_event(
            "train",
            component="gpu",
            gpu_seconds=3600,
            gpu_utilization=util,
            at=BASE_TIME + timedelta(days=d),
        )
        for d in range(days)
    ]
    got = run(events).of("gpu_idle_burn")
    assert got.statuses() == (["firing"] if fires else [])


# -- queue SLO breach --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("wait_ms", "minutes", "fires"),
    [
        (1500, 31, True),
        (1500, 29, False),
        (900, 40, False),
    ],
)
def test_queue_slo_breach(wait_ms: float, minutes: int, fires: bool) -> None:
    events = [make_event("chat", queue_wait_ms=wait_ms, seconds=60 * m) for m in range(minutes)]
    got = run(events).of("queue_slo_breach")
    assert got.statuses() == (["firing"] if fires else [])
    if fires:
        params = got.commands[0].params
        assert (
            got.commands[0].level.value,
            params.spillover,
            params.pause_batch,
            params.pause_sandbox,
        ) == ("L2", True, True, True)
        assert got.alerts[0].fired_at == BASE_TIME + timedelta(minutes=30)


def test_batch_routes_are_not_customer_facing() -> None:
    events = [
        make_event("etl", queue_wait_ms=5000, workflow_step="batch-embed", seconds=60 * m)
        for m in range(40)
    ]
    assert run(events).of("queue_slo_breach").alerts == []


# -- agent loop cost spike ---------------------------------------------------------------------
def _tool_calls(now: int) -> list[dict]:
    tool = {"component": "tool_call", "model_or_service": "web-search", "cost": 0.25}
    history = hourly("agent", 48, **tool)
    current = [
        make_event("agent", at=BASE_TIME + timedelta(hours=48, minutes=5 * i), **tool)
        for i in range(now)
    ]
    return history + current


# Over 2x baseline and $0.50 from the 3rd call (minute 10); held 10 minutes at the 5th.
@pytest.mark.parametrize(("calls_now", "fires"), [(5, True), (4, False)])
def test_agent_loop_cost_spike(calls_now: int, fires: bool) -> None:
    got = run(_tool_calls(calls_now)).of("agent_loop_cost_spike")
    assert got.statuses() == (["firing"] if fires else [])
    if fires:
        command = got.commands[0]
        assert (command.kind.value, command.target.type.value, command.target.id) == (
            "kill_switch",
            "tool",
            "web-search",
        )
        assert command.ttl_s == 3600  # an hour from its publication


# -- sandbox tenant quota ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spend", "runaway", "capped"),
    [
        (90.0, True, False),
        (89.0, False, False),
        (100.0, True, True),
    ],
)
def test_sandbox_quota(spend: float, runaway: bool, capped: bool) -> None:
    events = [
        make_event(f"uc{i}", tenant_id="lab", environment="sandbox", cost=spend / 4, seconds=i)
        for i in range(4)
    ]
    got = run(events, ruleset(BUDGETS))
    assert ("firing" in got.of("sandbox_runaway").statuses()) is runaway
    cap = got.of("sandbox_hard_cap")
    assert bool(cap.alerts) is capped
    if capped:
        assert [(c.kind.value, c.target.type.value, c.target.id) for c in cap.commands] == [
            ("kill_switch", "tenant", "lab")
        ]


# -- high-risk budget overrun ------------------------------------------------------------------
@pytest.mark.parametrize(("spend", "fires"), [(115.0, True), (114.0, False)])
def test_high_risk_budget_overrun(spend: float, fires: bool) -> None:
    events = [make_event("claims", risk_tier="high", cost=spend / 2, seconds=s) for s in (0, 1)]
    got = run(events, ruleset(BUDGETS))
    assert got.of("high_risk_budget_overrun").statuses() == (["firing"] if fires else [])
    assert got.commands == []  # review only, whatever fired


# -- carbon efficiency drift -------------------------------------------------------------------
@pytest.mark.parametrize(("intensity", "fires"), [(400.0, True), (360.0, False)])
def test_carbon_efficiency_drift(intensity: float, fires: bool) -> None:
    batch = {"workflow_step": "batch-reindex"}
    events = hourly("idx", 48, carbon_intensity=300.0, **batch)
    events.append(
        make_event("idx", at=BASE_TIME + timedelta(hours=48), carbon_intensity=intensity, **batch)
    )
    assert run(events).of("carbon_efficiency_drift").statuses() == (["firing"] if fires else [])


# -- seed rules --------------------------------------------------------------------------------
@pytest.mark.parametrize(("each", "fires"), [(0.4, True), (0.3, False)])
def test_session_cost_over_1usd(each: float, fires: bool) -> None:
    events = [make_event("bot", cost=each, trace_id="t1", seconds=s) for s in range(3)]
    assert run(events).of("session_cost_over_1usd").statuses() == (["firing"] if fires else [])


@pytest.mark.parametrize(("step", "fires"), [(11, True), (10, False)])
def test_agent_step_limit(step: int, fires: bool) -> None:
    events = [
        make_event("agent", trace_id="t", step_number=n, seconds=n) for n in range(1, step + 1)
    ]
    got = run(events).of("agent_step_limit")
    assert got.statuses() == (["firing"] if fires else [])
    assert [c.kind.value for c in got.commands] == (["kill_switch"] if fires else [])


@pytest.mark.parametrize(("cost_now", "fires"), [(1.5, True), (1.35, False)])
def test_cost_per_answer_hourly(cost_now: float, fires: bool) -> None:
    events = hourly("bot", 48, cost=1.0)
    # min_samples 30 is reached at minute 15; the rule then holds for its 20 minutes
    events += hourly("bot", 1, per_hour=120, start_hours=48, cost=cost_now)
    for i, e in enumerate(events):
        e["business_outcome_id"] = f"answer-{i}"
    assert run(events).of("cost_per_answer_hourly").statuses() == (["firing"] if fires else [])


@pytest.mark.parametrize(
    ("tokens", "calls", "fires"),
    [
        (2200, 10, True),  # twice the tokens per request, same traffic
        (1900, 10, False),  # near miss: 1.9x
        (1000, 20, False),  # growth: twice the traffic at the same unit tokens
    ],
)
def test_token_doubling_flat_traffic(tokens: int, calls: int, fires: bool) -> None:
    events = hourly("bot", 48, per_hour=10, input_tokens=800, output_tokens=200)
    events += hourly(
        "bot", 1, per_hour=calls, start_hours=48, input_tokens=tokens - 200, output_tokens=200
    )
    got = run(events).of("token_doubling_flat_traffic")
    assert ("firing" in got.statuses()) is fires


@pytest.mark.parametrize(("quality", "fires"), [(0.5, True), (0.75, False)])
def test_high_risk_quality_protection_acts_on_high_risk(quality: float, fires: bool) -> None:
    events = [
        make_event("claims", risk_tier="high", quality_score=quality, seconds=60 * m)
        for m in range(11)
    ]
    got = run(events).of("high_risk_quality_protection")
    assert got.statuses() == (["firing"] if fires else [])
    if fires:  # L4 risk protection is the one thing allowed to act on a high-risk use case
        assert [(c.kind.value, c.level.value) for c in got.commands] == [("degrade", "L4")]
        assert got.alerts[0].guardrail_held == []


def test_daily_budget_burn_names_the_budget_owner() -> None:
    events = [make_event("bot", cost=35.0, seconds=s) for s in (0, 1)]
    alert = run(events, ruleset(BUDGETS)).of("daily_budget_burn").alerts[0]
    assert alert.labels["owner"] == "#finops" and alert.annotations["notify"] == ["#finops"]


def test_sandbox_quota_counts_only_sandbox_spend() -> None:
    prod = [make_event("prod-uc", tenant_id="lab", cost=500.0, seconds=i) for i in range(2)]
    sandbox = [make_event("play", tenant_id="lab", environment="sandbox", cost=45.0, seconds=9)]
    got = run(prod + sandbox, ruleset(BUDGETS))
    assert got.of("sandbox_runaway").alerts == []  # $45 of a $100 sandbox quota


def test_a_blip_under_the_threshold_does_not_resolve_keep_firing_for() -> None:
    events = [make_event("agent", trace_id="t", step_number=n, seconds=n) for n in range(1, 12)]
    events.append(make_event("agent", trace_id="u", step_number=1, seconds=60))  # 49s later
    events.append(make_event("agent", trace_id="u", step_number=2, seconds=12 * 60))  # 11m
    got = run(events).of("agent_step_limit")
    assert got.statuses() == ["firing", "resolved"]
    assert got.alerts[1].resolved_at == BASE_TIME + timedelta(minutes=12)
    assert [c.kind.value for c in got.commands] == ["kill_switch", "restore"]
