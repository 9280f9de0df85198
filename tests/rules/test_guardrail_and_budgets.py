"""The risk-tier guardrail in code, shadow mode, and multi-threshold budget alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from spendfuse.rules.actions import plan_commands
from spendfuse.rules.engine import compile_rule
from spendfuse.rules.loader import load_default_pack
from spendfuse.rules.model import DegradeAction, KillSwitchAction
from spendfuse.rules.scope import Scope
from spendfuse.schemas import Evidence, RiskTier
from spendfuse.schemas.command import TargetType
from tests.rules.support import ruleset, run
from tests.support.events import BASE_TIME, make_event

BUDGETS = """
version: 1
tenants: [{tenant_id: acme, time_zone: Europe/Berlin}]
budgets:
  - {name: bot-daily, owner: "#finops", tenant_id: acme, use_case_id: bot, period: day,
     limit_usd: 100, enforcement: hard, on_exhausted: {kind: kill_switch, target: use_case,
     expires_in: 6h}}
  - {name: acme-month, owner: finops@acme.example, tenant_id: acme, period: month,
     limit_usd: 1000}
"""


@pytest.mark.parametrize("tier", ["medium", "high", "critical"])
def test_budget_pressure_on_risky_use_case_alerts_and_never_commands(tier: str) -> None:
    events = [make_event("bot", risk_tier=tier, cost=30.0, seconds=s) for s in range(4)]
    got = run(events, ruleset(BUDGETS))
    assert got.commands == []
    burn = got.of("daily_budget_burn").alerts
    assert len(burn) == 1 and f"{tier}-risk" in burn[0].guardrail_held[0]
    exhausted = [
        a for a in got.alerts if a.rule == "budget:bot-daily" and a.labels["threshold"] == "100"
    ]
    assert len(exhausted) == 1 and "guardrail" in exhausted[0].guardrail_held[0]
    assert exhausted[0].labels["action"] == "none"


def test_same_pressure_on_low_risk_acts() -> None:
    events = [make_event("bot", cost=30.0, seconds=s) for s in range(4)]
    commands = run(events, ruleset(BUDGETS)).commands
    kinds = sorted(c.kind.value for c in commands if c.issued_by != "rule:spend_rate_limit")
    assert kinds == ["degrade", "kill_switch"]


@pytest.mark.parametrize("tier", list(RiskTier))
def test_no_cost_rule_of_the_pack_can_command_a_protected_tier(tier: RiskTier) -> None:
    """Every action of every non-risk-protection rule, planned against every tier."""
    scope = Scope("acme", "uc", tier, model="m", prompt="p", tool="t", route_policy="r", trace="tr")
    for spec in load_default_pack().rules.values():
        acts = [a for a in spec.actions if isinstance(a, DegradeAction | KillSwitchAction)]
        meta = compile_rule(spec, "use_case_id").meta
        planned = plan_commands(meta, scope, BASE_TIME, "fp", Evidence(metric="m", value=1), "r")
        stops_a_task = [a for a in acts if a.target is TargetType.TRACE]  # at every tier
        if tier is RiskTier.LOW or spec.risk_protection:
            assert len(planned.commands) == len(acts)
        else:
            assert [c.target.type for c in planned.commands] == [TargetType.TRACE] * len(
                stops_a_task
            )
            assert len(planned.held) == len(acts) - len(stops_a_task)
        for command in planned.commands:  # and never beyond the scope that tripped it
            assert command.within is not None and command.within.tenant_id == "acme"
            if not (spec.risk_protection or command.target.type is TargetType.TRACE):
                assert command.within.risk_tiers == (RiskTier.LOW,)


def test_l4_requires_risk_protection() -> None:
    bad = """
version: 1
rules:
  - name: sneaky
    condition: {type: threshold, metric: spend_usd, window: 1h, value: 1}
    severity: high
    actions: [{kind: degrade, level: L4}]
"""
    with pytest.raises(Exception, match="risk_protection: true"):
        ruleset(bad)


def test_shadow_command_is_marked_and_still_published() -> None:
    shadow = """
version: 1
rules:
  - name: try_new_cap
    condition: {type: threshold, metric: spend_usd, window: 1h, op: ">", value: 1}
    severity: low
    actions: [{kind: kill_switch, target: model, mode: shadow, expires_in: 30m}]
"""
    events = [make_event("bot", cost=0.8, seconds=s) for s in range(2)]
    events.append(make_event("bot", cost=0.1, seconds=3600))  # next hour: clears
    got = run(events, ruleset(shadow, default_pack=False))
    fire, restore = got.commands
    assert (fire.mode, fire.kind.value, fire.target.id) == ("shadow", "kill_switch", "gpt-4o-mini")
    assert "shadow" in fire.reason
    assert (restore.mode, restore.kind.value) == ("shadow", "restore")
    assert got.alerts[0].labels["action"] == "none"  # a shadow action inhibits nothing
    assert got.alerts[0].annotations["shadow_commands"] == [fire.command_id]


def test_budget_thresholds_fire_once_each_per_period_with_projection() -> None:
    # Berlin day of Mon 23 Nov: 23:00Z on the 22nd .. 23:00Z on the 23rd.
    events = [make_event("bot", cost=10.0, seconds=600 * i) for i in range(12)]  # $120 by 10:50Z
    got = run(events, ruleset(BUDGETS))
    budget = [
        a
        for a in got.alerts
        if a.rule == "budget:bot-daily" and not a.fingerprint.endswith("/action")
    ]
    assert [a.evidence.threshold for a in budget] == [50, 80, 95, 100]
    assert len({a.fingerprint for a in budget}) == 4
    first = budget[0]
    assert first.annotations["percent_used"] == 50.0
    assert first.annotations["period_ends_local"] == "2026-11-24T00:00:00+01:00"
    # $50 in the 10h40 since local midnight (23:00Z .. 09:40Z): the other $50 takes 10h40 more.
    assert first.annotations["projected_exhaustion"] == "2026-11-23T20:20:00.000Z"
    assert first.annotations["projected_exhaustion_local"] == "2026-11-23T21:20:00+01:00"
    assert first.annotations["owner"] == "#finops"


def test_budget_period_rollover_resolves_each_fired_threshold_once() -> None:
    events = [make_event("bot", cost=60.0, seconds=s) for s in range(2)]
    events.append(make_event("bot", cost=1.0, at=BASE_TIME + timedelta(days=1)))
    got = run(events, ruleset(BUDGETS))
    budget = [a for a in got.alerts if a.rule == "budget:bot-daily"]
    resolved = [a for a in budget if a.status == "resolved"]
    assert sorted(a.evidence.threshold for a in resolved) == [50, 80, 95, 100]
    firing_ids = {a.alert_id for a in budget if a.status == "firing"}
    assert {a.alert_id for a in resolved} <= firing_ids
    assert [c.kind.value for c in got.commands if c.issued_by == "rule:budget:bot-daily"] == [
        "kill_switch",
        "restore",
    ]


def test_tenant_budget_runs_in_the_tenant_stage() -> None:
    events = [make_event(f"uc{i}", cost=300.0, seconds=i) for i in range(3)]  # 3 use cases
    got = run(events, ruleset(BUDGETS)).of("budget:acme-month")
    assert [a.evidence.threshold for a in got.alerts] == [50, 80]
    assert {a.use_case_id for a in got.alerts} == {"*"}


DETECTOR_RULE = """
version: 1
rules:
  - name: spend_anomaly
    condition: {type: detector_score, metric: spend_usd, window: 1h, op: ">=", value: 0.5}
    severity: medium
"""


NAMED_DETECTOR_RULE = """
version: 1
rules:
  - name: spend_anomaly
    condition: {type: detector_score, metric: spend_usd, window: 1h, op: ">=", value: 0.5,
                detector: {name: zscore, params: {grace_period: 5}}}
    severity: medium
"""


@pytest.mark.parametrize(("scores", "fires"), [("zscore", True), (None, True)])
def test_detector_score_condition_with_default_and_registry_scores(scores, fires) -> None:
    """A provider given to the engine, or (None) the detector the rule file names."""
    from spendfuse.rules.engine import Engine
    from spendfuse.rules.metrics.detector_scores import DetectorScores
    from spendfuse.schemas import CostEvent
    from tests.rules.support import hourly

    rs = ruleset(DETECTOR_RULE if scores else NAMED_DETECTOR_RULE, default_pack=False)
    provider = DetectorScores({"name": scores, "params": {"grace_period": 5}}) if scores else None
    engine, state = Engine(ruleset=rs, scores=provider), {}
    events = hourly("bot", 60, cost=1.0)
    for i, e in enumerate(events):
        e["allocated_cost_usd"] = 1.0 + 0.1 * (i % 3)
    quiet = [engine.process(CostEvent.model_validate(e), state) for e in events]
    assert not any(d.alerts for d in quiet)  # steady spend: no anomaly
    spike = [
        make_event("bot", cost=2.0, at=BASE_TIME + timedelta(hours=60, minutes=m)) for m in range(5)
    ]
    got = [a for e in spike for a in engine.process(CostEvent.model_validate(e), state).alerts]
    assert [a.status for a in got] == (["firing"] if fires else [])
