"""Run events through the rule engines in tests, and a rule set built from YAML text."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from spendfuse.rules import Decisions
from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.rules.loader import load_default_pack, parse_rule_file
from spendfuse.rules.ruleset import RuleSet, merge_files
from spendfuse.schemas import Alert, ControlCommand, CostEvent
from tests.support.events import BASE_TIME, make_event


def ruleset(extra_yaml: str | None = None, default_pack: bool = True) -> RuleSet:
    base = load_default_pack() if default_pack else None
    if extra_yaml is None:
        return base or RuleSet()
    return merge_files([("test.yaml", parse_rule_file(extra_yaml, "test.yaml"))], base)


@dataclass
class Run:
    alerts: list[Alert] = field(default_factory=list)
    commands: list[ControlCommand] = field(default_factory=list)

    def of(self, rule: str) -> Run:
        return Run(
            [a for a in self.alerts if a.rule == rule],
            [c for c in self.commands if c.issued_by == f"rule:{rule}"],
        )

    def statuses(self) -> list[str]:
        return [a.status for a in self.alerts]


def run(events: list[dict[str, Any]], rs: RuleSet | None = None) -> Run:
    """Both stages, as replay runs them: per use case, then per tenant."""
    rs = rs or ruleset()
    engine, tenant = Engine(ruleset=rs), TenantEngine(rs)
    states: dict[str, dict[str, Any]] = defaultdict(dict)
    tenant_states: dict[str, dict[str, Any]] = defaultdict(dict)
    out = Run()
    for raw in events:
        event = CostEvent.model_validate(raw)
        decisions = Decisions()
        decisions.extend(engine.process(event, states[event.use_case_id]))
        decisions.extend(tenant.process(event, tenant_states[event.tenant_id]))
        out.alerts.extend(decisions.alerts)
        out.commands.extend(decisions.commands)
    return out


def hourly(
    use_case: str, hours: int, *, per_hour: int = 1, start_hours: int = 0, **fields: Any
) -> list[dict[str, Any]]:
    """``per_hour`` events in each of ``hours`` hours, from BASE_TIME + ``start_hours``."""
    out = []
    for h in range(start_hours, start_hours + hours):
        for i in range(per_hour):
            at = BASE_TIME + timedelta(hours=h, minutes=i * 60 // per_hour)
            out.append(make_event(use_case, at=at, **fields))
    return out
