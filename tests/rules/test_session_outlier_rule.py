"""The ``session_outlier`` rule kind and the default pack's ``session_cost_outlier`` rule: a
session past its use case's learned P99.9 is alerted once and only that session is stopped."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

import pytest

from spendfuse.rules.errors import RuleFileError
from spendfuse.rules.loader import parse_rule_file
from spendfuse.rules.ruleset import merge_files
from spendfuse.schemas.command import CommandKind, TargetType
from tests.rules.support import ruleset, run
from tests.support.events import BASE_TIME, make_event

RULE = "session_cost_outlier"


def _normal_sessions(use_case: str, n: int, *, seed: int = 1, **fields: Any) -> list[dict]:
    """``n`` sessions of three events, one starting every 20 s, each costing $0.03 to $0.05."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        total = rng.uniform(0.03, 0.05)
        for k in range(3):
            at = BASE_TIME + timedelta(seconds=20 * i + 2 * k)
            events.append(make_event(use_case, cost=total / 3, trace_id=f"s{i}", at=at, **fields))
    return events


def _runaway(use_case: str, after: list[dict], steps: int = 30, **fields: Any) -> list[dict]:
    """One session at $0.02 a step, every 3 s, starting a minute after ``after`` ends."""
    start = BASE_TIME + timedelta(seconds=20 * (len(after) // 3) + 60)
    return [
        make_event(
            use_case,
            cost=0.02,
            trace_id="runaway",
            step_number=k + 1,
            at=start + timedelta(seconds=3 * k),
            **fields,
        )
        for k in range(steps)
    ]


def test_a_session_past_p999_fires_once_and_stops_only_that_trace() -> None:
    normal = _normal_sessions("bot", 700)
    runaway = _runaway("bot", normal)
    out = run([*normal, *runaway]).of(RULE)
    firing = [a for a in out.alerts if a.status == "firing"]
    assert len(firing) == 1, [a.summary for a in firing]
    alert = firing[0]
    # the crossing event: the first step whose running cost passed the learned quantile
    threshold = alert.evidence.threshold
    assert threshold is not None and 0.045 <= threshold <= 0.06
    crossed = next(k for k in range(1, 31) if 0.02 * k > threshold)
    crossing = datetime.fromisoformat(runaway[crossed - 1]["event_time"].replace("Z", "+00:00"))
    assert alert.fired_at == crossing
    [top] = alert.evidence.top_traces
    assert (top.trace_id, top.steps) == ("runaway", crossed)
    assert top.cost_usd == pytest.approx(0.02 * crossed)
    assert alert.labels["trace_id"] == "runaway"
    assert "runaway" in alert.summary and f"{crossed} steps" in alert.summary
    # exactly one command: a kill of that trace, confined to its tenant and use case
    assert [(c.kind, c.target.type, c.target.id) for c in out.commands] == [
        (CommandKind.KILL_SWITCH, TargetType.TRACE, "runaway")
    ]
    cmd = out.commands[0]
    assert cmd.within is not None
    assert (cmd.within.tenant_id, cmd.within.use_case_id) == ("acme", "bot")
    assert cmd.risk_protection and not cmd.handoff_to_human
    assert alert.actions_taken == [cmd.command_id]


def test_on_a_high_risk_use_case_the_trace_is_stopped_and_handed_to_a_human() -> None:
    normal = _normal_sessions("triage", 700, risk_tier="high")
    out = run([*normal, *_runaway("triage", normal, risk_tier="high")]).of(RULE)
    assert [(c.target.type, c.target.id) for c in out.commands] == [(TargetType.TRACE, "runaway")]
    assert out.commands[0].handoff_to_human
    assert out.alerts[0].guardrail_held == []


def test_normal_sessions_do_not_fire() -> None:
    out = run(_normal_sessions("bot", 1500, seed=7)).of(RULE)
    assert out.alerts == [] and out.commands == []


def test_a_cold_use_case_under_min_sessions_does_not_fire() -> None:
    normal = _normal_sessions("young", 400)  # fewer finished sessions than min_sessions (500)
    out = run([*normal, *_runaway("young", normal, steps=200)]).of(RULE)
    assert out.alerts == [] and out.commands == []


def test_the_alert_resolves_and_the_kill_is_left_to_expire() -> None:
    normal = _normal_sessions("bot", 700)
    runaway = _runaway("bot", normal)
    later = make_event("bot", cost=0.01, trace_id="next", at=BASE_TIME + timedelta(hours=6))
    out = run([*normal, *runaway, later]).of(RULE)
    assert [a.status for a in out.alerts] == ["firing", "resolved"]
    assert [c.kind for c in out.commands] == [CommandKind.KILL_SWITCH]  # no restore


def test_min_sessions_and_quantile_come_from_the_rule_file() -> None:
    rs = ruleset(
        """version: 1
rules:
  - name: session_cost_outlier
    condition: {type: session_outlier, quantile: 0.99, min_sessions: 50, min_cost_usd: 0.01}
    severity: high
"""
    )
    normal = _normal_sessions("bot", 150)
    out = run([*normal, *_runaway("bot", normal)], rs).of(RULE)
    assert [a.status for a in out.alerts] == ["firing"]
    assert out.commands == []  # this override only alerts


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (
            "{type: session_outliers}",
            "test.yaml:4:16 rules[0].condition: unknown type 'session_outliers' "
            "(hint: did you mean 'session_outlier'?",
        ),
        (
            "{type: session_outlier, quantile: 1.5}",
            "test.yaml:4:50 rules[0].condition.quantile: Input should be less than 1 (hint: ",
        ),
        (
            "{type: session_outlier, min_sesions: 10}",
            "test.yaml:4:53 rules[0].condition.min_sesions: Extra inputs are not permitted "
            "(hint: did you mean 'min_sessions'?)",
        ),
        (
            "{type: all, conditions: [{type: session_outlier}]}",
            "test.yaml:3:5 rules[0]: an anomaly or session_outlier condition cannot be nested in"
            " all/any (hint: give it a rule of its own)",
        ),
    ],
)
def test_loader_errors_name_the_place_and_the_fix(condition: str, expected: str) -> None:
    text = f"version: 1\nrules:\n  - name: a\n    condition: {condition}\n    severity: low\n"
    with pytest.raises(RuleFileError) as info:
        merge_files([("test.yaml", parse_rule_file(text, "test.yaml"))])
    assert str(info.value.issues[0]).startswith(expected), str(info.value.issues[0])
