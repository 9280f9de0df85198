"""Turn a firing rule's actions into control commands, through the risk-tier guardrail.

Every command passes :func:`spendfuse.rules.guardrail.check_action` here, in code: a rule that
is not marked ``risk_protection`` (every cost or budget rule) never yields a degrade or kill
command for a medium/high/critical-risk scope; the alert carries the reason instead. Degrade
parameters can only *add* restrictions (cache-first, smaller model, fewer tokens, pauses); no
parameter exists that removes a safety step, so none can be sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from spendfuse.rules.guardrail import check_action
from spendfuse.rules.ids import stable_id
from spendfuse.rules.model import DegradeAction, KillSwitchAction
from spendfuse.rules.spend_limit import _params_for
from spendfuse.schemas.alert import Evidence
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType
from spendfuse.schemas.common import DegradationLevel, RiskTier, to_epoch_ms


@dataclass(slots=True)
class Scope:
    """Who a decision is about: the attributes a command target is taken from."""

    tenant_id: str
    use_case_id: str
    risk_tier: RiskTier
    model: str | None = None
    prompt: str | None = None
    tool: str | None = None
    route_policy: str | None = None

    def target_id(self, target: TargetType) -> str | None:
        return {
            TargetType.TENANT: self.tenant_id, TargetType.USE_CASE: self.use_case_id,
            TargetType.MODEL: self.model, TargetType.PROMPT: self.prompt,
            TargetType.TOOL: self.tool, TargetType.ROUTE_POLICY: self.route_policy,
        }[target]  # fmt: skip


@dataclass(slots=True)
class Planned:
    commands: list[ControlCommand] = field(default_factory=list)
    held: list[str] = field(default_factory=list)


def plan_commands(
    rule: str, actions: list[DegradeAction | KillSwitchAction], scope: Scope, *,
    risk_protection: bool, at: datetime, fingerprint: str, evidence: Evidence, reason: str,
) -> Planned:  # fmt: skip
    """Commands for the actions the guardrail allows; reasons for those it holds back."""
    out = Planned()
    for action in actions:
        verdict = check_action(scope.risk_tier, risk_protection=risk_protection,
                               action=action.kind)  # fmt: skip
        if not verdict.allowed:
            out.held.append(verdict.reason)
            continue
        target_id = scope.target_id(action.target)
        if not target_id or target_id == "*":
            out.held.append(f"{action.kind} on {action.target.value} skipped: the event does not"
                            f" name a {action.target.value}")  # fmt: skip
            continue
        out.commands.append(_command(rule, action, Target(type=action.target, id=target_id),
                                     scope, at, fingerprint, evidence, reason))  # fmt: skip
    return out


def _command(rule: str, action: DegradeAction | KillSwitchAction, target: Target, scope: Scope,
             at: datetime, fp: str, evidence: Evidence, reason: str) -> ControlCommand:
    kind = CommandKind(action.kind)
    level = DegradationLevel(action.level) if isinstance(action, DegradeAction) else None
    params = _params_for(level)
    if isinstance(action, DegradeAction):
        params = params.model_copy(update=action.params.model_dump(exclude_none=True))
    shadow = " (shadow: log only, do not apply)" if action.mode == "shadow" else ""
    return ControlCommand(
        command_id=stable_id(rule, target.key, kind.value, to_epoch_ms(at)),
        kind=kind, mode=action.mode, target=target, level=level, params=params,
        issued_by=f"rule:{rule}", reason=reason + shadow, evidence=evidence,
        tenant_id=scope.tenant_id, use_case_id=scope.use_case_id, alert_fingerprint=fp,
        issued_at=at, expires_at=at + timedelta(seconds=action.expires_in.seconds),
        how_to_lift=f"spendfuse restore {target.type.value} {target.id} --reason '...'",
    )  # fmt: skip


def restore_command(rule: str, issued: list[str], mode: str, scope: Scope, at: datetime,
                    fp: str, evidence: Evidence) -> ControlCommand:  # fmt: skip
    """Lift a command this rule issued (``issued`` = ``[target_type, target_id]``)."""
    target = Target(type=TargetType(issued[0]), id=issued[1])
    return ControlCommand(
        command_id=stable_id(rule, target.key, "restore", to_epoch_ms(at)),
        kind=CommandKind.RESTORE, mode=mode, target=target, level=DegradationLevel.L0,  # type: ignore[arg-type]
        issued_by=f"rule:{rule}", reason=f"{rule} cleared", evidence=evidence,
        tenant_id=scope.tenant_id, use_case_id=scope.use_case_id, alert_fingerprint=fp,
        issued_at=at,
    )  # fmt: skip
