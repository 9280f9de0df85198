"""The one action path: every alert and every control command of every rule is built here.

Rule kinds never build an :class:`Alert` or a :class:`ControlCommand`; they return verdicts, the
lifecycle (``lifecycle.py``) says fire / refresh / resolve, and this module turns that into
decisions. So the risk-tier guardrail (``guardrail.py``) is applied in exactly one place, to
every action of every rule: a rule not marked ``risk_protection`` never yields a degrade or kill
for a medium/high/critical-risk scope, whatever kind of rule it is; the alert says what was held
back instead. Degrade parameters can only *add* restrictions, so none removes a safety step.

Suggested commands (silence, lift) are shell-quoted: event fields end up in them.
"""

from __future__ import annotations

import shlex
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spendfuse.rules.conditions import Verdict
from spendfuse.rules.decisions import Decisions
from spendfuse.rules.guardrail import check_action
from spendfuse.rules.ids import stable_id
from spendfuse.rules.model import DegradeAction, KillSwitchAction
from spendfuse.rules.scope import Scope
from spendfuse.schemas.alert import Alert, Evidence, TraceContribution
from spendfuse.schemas.command import (
    CommandKind,
    ControlCommand,
    Target,
    TargetType,
    Within,
    level_params,
    within,
)
from spendfuse.schemas.common import DegradationLevel, RiskTier, Severity

CommandAction = DegradeAction | KillSwitchAction


@dataclass(frozen=True, slots=True)
class RuleMeta:
    """What the builder needs to know of a rule, whatever its kind."""

    name: str
    severity: Severity
    actions: tuple[CommandAction, ...] = ()
    risk_protection: bool = False
    per: str = "use_case"
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, Any] = field(default_factory=dict)
    summary: str | None = None  # a str.format template over the verdict and the scope
    silence_matcher: str | None = None  # default: the alert's fingerprint
    environment: str | None = None  # the one environment the rule's scope is about, if any

    @property
    def restores(self) -> bool:
        return any(a.restore_on_clear for a in self.actions)


def fingerprint(rule: RuleMeta, scope: Scope, group: tuple[str, ...] = ()) -> str:
    """The identity of an incident: rule, tenant, use case (``*`` tenant-wide), group values."""
    uc = "*" if rule.per == "tenant" else scope.use_case_id
    return "/".join((rule.name, scope.tenant_id, uc, *group))


def evidence_of(verdict: Verdict, rule: RuleMeta) -> Evidence:
    return Evidence(
        metric=verdict.metric or rule.name,
        value=round(verdict.value or 0.0, 8),
        threshold=verdict.threshold,
        baseline=None if verdict.baseline is None else round(verdict.baseline, 8),
        window_s=verdict.window_s,
        window_start=verdict.window_start,
        top_traces=[
            TraceContribution(trace_id=t, cost_usd=round(c, 8), steps=n)
            for t, c, n in verdict.traces
        ],
    )


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def summary_of(rule: RuleMeta, verdict: Verdict, scope: Scope) -> str:
    template = (
        verdict.summary
        or rule.summary
        or ("{rule} on {use_case_id}: {metric} = {value:.4g} (threshold {threshold})")
    )
    value = verdict.value or 0.0
    values: dict[str, Any] = defaultdict(
        lambda: "?",
        rule=rule.name,
        metric=verdict.metric,
        tenant_id=scope.tenant_id,
        use_case_id=scope.use_case_id,
        value=value,
        threshold=verdict.threshold,
        baseline=verdict.baseline or 0.0,
        ratio=value,
    )
    values.update(verdict.fields)
    try:
        return template.format_map(values)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return f"{rule.name} on {scope.use_case_id}: {verdict.metric} = {verdict.value}"


def _silence_hint(rule: RuleMeta, fp: str) -> str:
    matcher = rule.silence_matcher or f'fingerprint="{fp}"'
    return (
        f"spendfuse silence add --matcher {shlex.quote(matcher)} --for 1h "
        "--author you --comment why"
    )


def lift_hint(target: Target) -> str:
    return f"spendfuse restore {target.type.value} {shlex.quote(target.id)} --reason '...'"


@dataclass(slots=True)
class Planned:
    commands: list[ControlCommand] = field(default_factory=list)
    held: list[str] = field(default_factory=list)


def command_scope(rule: RuleMeta, scope: Scope, target: TargetType) -> Within | None:
    """What a command is confined to: never further than the scope that tripped it.

    A cost rule's command reaches only low-risk requests of the tenant and use case (and the
    environment its scope is about); a risk-protection rule's reaches every tier of them. A
    tenant-wide rule's command stays in its tenant.
    """
    use_case = None if rule.per == "tenant" or scope.use_case_id == "*" else scope.use_case_id
    tiers = None if rule.risk_protection or target is TargetType.TRACE else [RiskTier.LOW]
    return within(
        tenant_id=scope.tenant_id,
        use_case_id=use_case,
        environment=rule.environment,
        risk_tiers=tiers,
    )


def plan_commands(
    rule: RuleMeta,
    scope: Scope,
    at: datetime,
    fp: str,
    evidence: Evidence,
    reason: str,
    overrides: Mapping[str, str] | None = None,
) -> Planned:
    """Commands for the actions the guardrail allows; reasons for those it holds back.

    The only place a rule's command is made: the guardrail check cannot be skipped. Stopping one
    looping task (a ``trace`` target) removes no safety step of its route, so the guardrail lets
    it through at every tier; every other automatic action on a medium/high/critical-risk scope
    needs a risk-protection rule.
    """
    out = Planned()
    for action in rule.actions:
        stops_a_task = action.target is TargetType.TRACE and action.kind == "kill_switch"
        verdict = check_action(
            scope.risk_tier,
            risk_protection=rule.risk_protection or stops_a_task,
            action=action.kind,
        )
        if not verdict.allowed:
            out.held.append(verdict.reason)
            continue
        target_id = (overrides or {}).get(action.target.value) or scope.target_id(action.target)
        if not target_id or target_id == "*":
            out.held.append(
                f"{action.kind} on {action.target.value} skipped: the event does not"
                f" name a {action.target.value}"
            )
            continue
        target = Target(type=action.target, id=target_id)
        command = _command(rule, action, target, scope, at, fp, evidence, reason)
        if stops_a_task:
            command.risk_protection = True
            command.handoff_to_human = scope.risk_tier is not RiskTier.LOW
        out.commands.append(command)
    return out


def _command(
    rule: RuleMeta,
    action: CommandAction,
    target: Target,
    scope: Scope,
    at: datetime,
    fp: str,
    evidence: Evidence,
    reason: str,
) -> ControlCommand:
    kind = CommandKind(action.kind)
    level = DegradationLevel(action.level) if isinstance(action, DegradeAction) else None
    params = level_params(level)  # the domain's L0-L4 table, one copy (schemas/command.py)
    if isinstance(action, DegradeAction):
        params = params.model_copy(update=action.params.model_dump(exclude_none=True))
    shadow = " (shadow: log only, do not apply)" if action.mode == "shadow" else ""
    return ControlCommand(
        command_id=stable_id(rule.name, target.key, kind.value, int(at.timestamp() * 1000)),
        kind=kind,
        mode=action.mode,
        target=target,
        level=level,
        params=params,
        issued_by=f"rule:{rule.name}",
        reason=reason + shadow,
        evidence=evidence,
        tenant_id=scope.tenant_id,
        use_case_id=scope.use_case_id,
        alert_fingerprint=fp,
        issued_at=at,
        ttl_s=action.expires_in.seconds,
        within=command_scope(rule, scope, target.type),
        risk_protection=rule.risk_protection,
        how_to_lift=lift_hint(target),
    )


def _alert(
    rule: RuleMeta,
    verdict: Verdict,
    scope: Scope,
    fp: str,
    fired_ms: int,
    status: str,
    labels: Mapping[str, str],
) -> Alert:
    return Alert(
        alert_id=stable_id(fp, verdict.alert_key or fired_ms),
        fingerprint=fp,
        rule=rule.name,
        status=status,  # type: ignore[arg-type]
        severity=verdict.severity or rule.severity,
        tenant_id=scope.tenant_id,
        use_case_id="*" if rule.per == "tenant" else scope.use_case_id,
        summary=summary_of(rule, verdict, scope)
        if status == "firing"
        else f"{rule.name} cleared for {scope.use_case_id if rule.per != 'tenant' else '*'}",
        evidence=evidence_of(verdict, rule),
        fired_at=_dt(fired_ms),
        labels={
            "risk_tier": scope.risk_tier.value,
            **({"environment": scope.environment} if scope.environment else {}),
            "per": rule.per,
            **rule.labels,
            **labels,
            **verdict.labels,
        },
        how_to_silence=_silence_hint(rule, fp),
        annotations={
            **{k: v for k, v in rule.annotations.items() if k != "summary"},
            **verdict.annotations,
        },
    )


def fire(
    rule: RuleMeta, verdict: Verdict, scope: Scope, at_ms: int, fp: str, labels: Mapping[str, str]
) -> tuple[Decisions, list[list[str]], str]:
    """A firing: its alert and the commands the guardrail allows.

    Returns the decisions, the targets issued (for refresh and restore) and their mode.
    """
    at = _dt(at_ms)
    evidence = evidence_of(verdict, rule)
    planned = plan_commands(
        rule, scope, at, fp, evidence, summary_of(rule, verdict, scope), verdict.targets
    )
    alert = _alert(rule, verdict, scope, fp, at_ms, "firing", labels)
    alert.actions_taken = [c.command_id for c in planned.commands]
    alert.guardrail_held = planned.held
    enforced = [c for c in planned.commands if c.mode == "enforce"]
    alert.labels["action"] = enforced[0].kind.value if enforced else "none"
    shadow = [c.command_id for c in planned.commands if c.mode == "shadow"]
    if shadow:
        alert.annotations["shadow_commands"] = shadow
    issued = [_issued(c) for c in planned.commands]
    mode = planned.commands[0].mode if planned.commands else "enforce"
    return Decisions(alerts=[alert], commands=planned.commands), issued, mode


def _issued(command: ControlCommand) -> list[Any]:
    """What a firing issued, as plain data: enough to restore exactly that key (target+scope)."""
    scope = command.within.model_dump(mode="json", exclude_none=True) if command.within else None
    return [command.target.type.value, command.target.id, scope, command.risk_protection]


def refresh(rule: RuleMeta, verdict: Verdict, scope: Scope, at_ms: int, fp: str) -> Decisions:
    """Re-issue a still-firing incident's commands before they expire (new ids, same targets)."""
    at = _dt(at_ms)
    evidence = evidence_of(verdict, rule)
    reason = summary_of(rule, verdict, scope) + " (still firing: re-issued before expiry)"
    planned = plan_commands(rule, scope, at, fp, evidence, reason, verdict.targets)
    return Decisions(commands=planned.commands)


def resolve(
    rule: RuleMeta,
    verdict: Verdict,
    scope: Scope,
    at_ms: int,
    fp: str,
    fired_ms: int,
    issued: list[list[str]],
    mode: str,
    labels: Mapping[str, str],
) -> Decisions:
    """The resolution of an incident, and restores of exactly what its firing issued."""
    alert = _alert(rule, verdict, scope, fp, fired_ms, "resolved", labels)
    alert.resolved_at = _dt(at_ms)
    out = Decisions(alerts=[alert])
    if not rule.restores:
        return out
    evidence = evidence_of(verdict, rule)
    for target_type, target_id, *rest in issued:
        target = Target(type=TargetType(target_type), id=target_id)
        scope_of = rest[0] if rest and rest[0] else None
        out.commands.append(
            ControlCommand(
                command_id=stable_id(rule.name, target.key, "restore", at_ms),
                kind=CommandKind.RESTORE,
                mode=mode,  # type: ignore[arg-type]
                target=target,
                level=DegradationLevel.L0,
                issued_by=f"rule:{rule.name}",
                reason=f"{rule.name} cleared",
                evidence=evidence,
                tenant_id=scope.tenant_id,
                use_case_id=scope.use_case_id,
                alert_fingerprint=fp,
                issued_at=_dt(at_ms),
                within=Within.model_validate(scope_of) if scope_of else None,
                risk_protection=bool(rest[1]) if len(rest) > 1 else False,
            )
        )
    return out
