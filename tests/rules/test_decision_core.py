"""The one decision core: one action path behind the guardrail, scopes that filter what they
measure, groups, exact per-trace state, detectors named in rule files."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

import spendfuse.rules
from spendfuse.detectors import aliases
from spendfuse.rules.engine import OVER_KEY, Engine, TenantEngine
from spendfuse.schemas import CostEvent
from tests.rules.support import run
from tests.support.events import BASE_TIME, make_event
from tests.support.rules import with_rules

RULES_DIR = Path(spendfuse.rules.__file__).parent


def _constructed_in(path: Path, names: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
    }


def test_only_the_action_builder_makes_alerts_and_commands() -> None:
    """A rule kind returns verdicts; it has no way to build a command around the guardrail."""
    builders = {
        path.relative_to(RULES_DIR).as_posix()
        for path in RULES_DIR.rglob("*.py")
        if _constructed_in(path, {"Alert", "ControlCommand"})
    }
    assert builders == {"actions.py"}
    assert _constructed_in(RULES_DIR / "actions.py", {"check_action"}) == {"check_action"}


NEW_KINDS = """
version: 1
budgets:
  - {name: bot-day, owner: "#finops", tenant_id: acme, use_case_id: bot, period: day,
     limit_usd: 1, enforcement: hard, on_exhausted: {kind: kill_switch, target: use_case,
     expires_in: 1h}}
rules:
  - name: per_tool_kill
    group_by: [model]
    condition: {type: threshold, metric: spend_usd, window: 1m, value: 0.5}
    severity: high
    actions: [{kind: kill_switch, target: model, expires_in: 1h},
              {kind: degrade, level: L3, target: use_case}]
  - name: event_kill
    condition: {type: threshold, metric: event_cost_usd, window: event, value: 0.1}
    severity: high
    actions: [{kind: kill_switch, target: use_case, expires_in: 1h}]
"""


@pytest.mark.parametrize("tier", ["medium", "high", "critical"])
def test_no_rule_of_any_kind_commands_a_protected_tier(tier: str) -> None:
    events = [make_event("bot", risk_tier=tier, cost=2.0, seconds=s) for s in range(30)]
    got = run(events, with_rules(NEW_KINDS))
    assert got.commands == []
    held = {a.rule for a in got.alerts if a.guardrail_held}
    assert {"per_tool_kill", "event_kill", "budget:bot-day", "spend_rate_limit"} <= held


def test_one_low_risk_event_does_not_open_a_high_risk_use_case() -> None:
    """The guardrail sees the riskiest tier the use case has shown, not the event's own."""
    events = [make_event("bot", risk_tier="high", cost=0.01)]
    events += [make_event("bot", risk_tier="low", cost=2.0, seconds=s) for s in range(1, 5)]
    assert run(events, with_rules(NEW_KINDS)).commands == []


def test_a_scope_filters_what_the_rule_measures() -> None:
    """Long batch waits never count toward the customer-facing queue SLO (and its L2 degrade)."""
    batch = [
        make_event("chat", queue_wait_ms=5000, workflow_step="batch-embed", seconds=60 * m)
        for m in range(40)
    ]
    quick = [
        make_event("chat", queue_wait_ms=100, workflow_step="answer", seconds=60 * m + 1)
        for m in range(40)
    ]
    mixed = sorted(batch + quick, key=lambda e: e["event_time"])
    assert run(mixed).of("queue_slo_breach").alerts == []
    slow = [
        make_event("chat", queue_wait_ms=5000, workflow_step="answer", seconds=60 * m + 1)
        for m in range(40)
    ]
    got = run(sorted(batch + slow, key=lambda e: e["event_time"])).of("queue_slo_breach")
    assert [a.status for a in got.alerts] == ["firing"]


COST_CENTERS = """
version: 1
rules:
  - name: cost_center_day
    per: tenant
    group_by: [cost_center]
    condition: {type: threshold, metric: spend_usd, window: day, value: 10}
    severity: low
"""


def test_group_by_measures_each_group_apart() -> None:
    events = [make_event(f"uc{i % 3}", cost=1.0, cost_center="cc-a", seconds=i) for i in range(12)]
    events += [make_event(f"uc{i % 3}", cost=1.0, cost_center="cc-b", seconds=i) for i in range(8)]
    got = run(events, with_rules(COST_CENTERS, default_pack=False)).of("cost_center_day")
    assert [(a.status, a.labels["cost_center"]) for a in got.alerts] == [("firing", "cc-a")]
    assert got.alerts[0].fingerprint == "cost_center_day/acme/*/cc-a"
    assert got.alerts[0].evidence.value == pytest.approx(11.0)  # cc-a's spend alone


def test_groups_are_capped_and_the_overflow_counted() -> None:
    capped = COST_CENTERS.replace(
        "group_by: [cost_center]", "group_by: [cost_center]\n    max_groups: 2"
    )
    engine, state = TenantEngine(with_rules(capped, default_pack=False)), {}
    for i in range(5):
        engine.process(CostEvent.model_validate(make_event("u", cost_center=f"cc{i}")), state)
    assert len(state["__agg__"]) == 1 and len(next(iter(state["__agg__"].values()))) == 2
    assert state[OVER_KEY] == 3


def test_session_cost_is_exact_among_many_concurrent_traces() -> None:
    """A $1.20 session with 300 other traces in between still alerts."""
    session = [make_event("busy", cost=0.4, trace_id="long-one", seconds=s) for s in (0, 50, 100)]
    others = [make_event("busy", cost=0.001, seconds=i / 10) for i in range(1, 1000)]
    events = sorted(
        [session[0], *others[:300], session[1], *others[300:], session[2]],
        key=lambda e: e["event_time"],
    )
    got = run(events).of("session_cost_over_1usd").alerts
    assert [a.evidence.value for a in got] == [pytest.approx(1.2)]
    # evidence one command away: the costliest open traces and the latest events measured
    assert got[0].evidence.top_traces[0].trace_id == "long-one"
    assert got[0].evidence.top_traces[0].cost_usd == pytest.approx(1.2)
    assert got[0].evidence.sample_event_ids[-1] == session[2]["cost_event_id"]
    assert len(got[0].evidence.sample_event_ids) == 5


def test_spend_spike_says_unit_cost_when_traffic_is_flat() -> None:
    """Flat traffic at 5x the cost per call: the spike is waste, not growth."""
    engine, state = Engine(with_rules("version: 1\n", default_pack=True)), {}
    start = BASE_TIME - timedelta(days=2)
    spike_at = BASE_TIME
    alerts = []
    for minute in range(2 * 24 * 60 + 60):
        at = start + timedelta(minutes=minute)
        cost = 0.01 * (5 if at >= spike_at else 1)
        for k in range(3):
            event = make_event("steady", cost=cost, at=at, seconds=k * 15)
            alerts += engine.process(CostEvent.model_validate(event), state).alerts
    spikes = [a for a in alerts if a.rule == "spend_spike_anomaly" and a.status == "firing"]
    assert spikes and spikes[0].labels["driver"] == "unit cost"
    assert "unit cost" in spikes[0].summary


DEFAULT_DETECTOR = """
version: 1
rules:
  - name: spend_default_detector
    condition: {type: anomaly, signal: spend_usd, bucket: 1m, detector: default}
    severity: low
"""


def test_a_rule_file_can_name_the_default_detector() -> None:
    engine, state = Engine(with_rules(DEFAULT_DETECTOR, default_pack=False)), {}
    for minute in range(30):
        event = make_event("u", cost=0.1, seconds=60 * minute)
        engine.process(CostEvent.model_validate(event), state)
    instance = state["spend_default_detector"]["~"]
    assert instance["det"]["name"] == aliases()["default"]  # create("default"), from YAML


def test_a_long_incident_reissues_its_commands_before_they_expire() -> None:
    rule = """
version: 1
rules:
  - name: pricey
    condition: {type: threshold, metric: spend_usd, window: 1m, value: 1}
    severity: high
    actions: [{kind: degrade, level: L1, expires_in: 10m}]
"""
    events = [make_event("u", cost=2.0, seconds=60 * m) for m in range(12)]
    got = run(events, with_rules(rule, default_pack=False)).of("pricey")
    assert [a.status for a in got.alerts] == ["firing"]
    issued = [c.issued_at for c in got.commands]
    assert issued == [
        BASE_TIME,
        BASE_TIME + timedelta(minutes=5),
        BASE_TIME + timedelta(minutes=10),
    ]
    # each lasts 10 minutes from its publication: re-issued every 5, enforcement never lapses
    assert {c.ttl_s for c in got.commands} == {600}
