"""Who a decision is about: an event's labels, the scope a command target is taken from, and
the group a rule measures it in.

Labels are only declared event fields, never extras, so a producer cannot invent a label that a
matcher or a route then trusts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from spendfuse.schemas.command import TargetType
from spendfuse.schemas.common import Component, RiskTier
from spendfuse.schemas.cost_event import CostEvent

RISK_ORDER = (RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL)

#: every label a rule may filter on or group by (``group_by`` keys are checked against these)
LABELS = (
    "tenant_id",
    "use_case_id",
    "environment",
    "risk_tier",
    "component",
    "model",
    "tool",
    "route_policy",
    "provider",
    "workflow_step",
    "business_unit",
    "cost_center",
    "user_role",
    "prompt_version",
    "cache_status",
    "trace_id",
)


def event_labels(event: CostEvent) -> dict[str, str]:
    """The labels scopes, matchers and ``group_by`` see (absent fields are left out)."""
    component = event.component
    labels = {
        "tenant_id": event.tenant_id,
        "use_case_id": event.use_case_id,
        "environment": event.environment.value,
        "risk_tier": event.risk_tier.value,
        "component": component.value,
    }
    model = event.model_or_service
    if model is not None:
        labels["model"] = model
        if component is Component.TOOL_CALL:
            labels["tool"] = model
    for name, value in (
        ("route_policy", event.route_policy_version),
        ("provider", event.provider),
        ("workflow_step", event.workflow_step),
        ("business_unit", event.business_unit),
        ("cost_center", event.cost_center),
        ("user_role", event.user_role),
        ("prompt_version", event.prompt_version),
        ("cache_status", event.cache_status),
    ):
        if value is not None:
            labels[name] = value
    return labels


def _tool(event: CostEvent) -> str | None:
    return event.model_or_service if event.component is Component.TOOL_CALL else None


#: one label of an event, read on its own: what :func:`event_labels` puts under that name (None
#: where it leaves the label out), for a cache key of just the labels a rule set reads
LABEL_READERS: dict[str, Callable[[CostEvent], str | None]] = {
    "tenant_id": lambda e: e.tenant_id,
    "use_case_id": lambda e: e.use_case_id,
    "environment": lambda e: e.environment.value,
    "risk_tier": lambda e: e.risk_tier.value,
    "component": lambda e: e.component.value,
    "model": lambda e: e.model_or_service,
    "tool": _tool,
    "route_policy": lambda e: e.route_policy_version,
    "provider": lambda e: e.provider,
    "workflow_step": lambda e: e.workflow_step,
    "business_unit": lambda e: e.business_unit,
    "cost_center": lambda e: e.cost_center,
    "user_role": lambda e: e.user_role,
    "prompt_version": lambda e: e.prompt_version,
    "cache_status": lambda e: e.cache_status,
}


def label_reader(name: str) -> Callable[[CostEvent], str | None]:
    """How to read label ``name`` off an event (a name no event carries reads as absent)."""
    return LABEL_READERS.get(name, lambda e: None)


def riskier(a: RiskTier, b: RiskTier) -> RiskTier:
    return a if RISK_ORDER.index(a) >= RISK_ORDER.index(b) else b


@dataclass(slots=True)
class Scope:
    """The attributes a command target is taken from, and the risk tier the guardrail sees.

    ``risk_tier`` is the riskiest tier the rule's key (use case or tenant) has shown, never just
    the triggering event's own tier, so one low-risk-labelled event cannot open a high-risk use
    case to an automatic action.
    """

    tenant_id: str
    use_case_id: str
    risk_tier: RiskTier
    model: str | None = None
    prompt: str | None = None
    tool: str | None = None
    route_policy: str | None = None
    trace: str | None = None
    environment: str | None = None

    @classmethod
    def of(cls, event: CostEvent, risk_tier: RiskTier | None = None) -> Scope:
        tool = event.model_or_service if event.component is Component.TOOL_CALL else None
        return cls(
            event.tenant_id,
            event.use_case_id,
            risk_tier or event.risk_tier,
            event.model_or_service,
            event.prompt_version,
            tool,
            event.route_policy_version,
            event.trace_id,
            event.environment.value,
        )

    def target_id(self, target: TargetType) -> str | None:
        return {
            TargetType.TENANT: self.tenant_id,
            TargetType.USE_CASE: self.use_case_id,
            TargetType.MODEL: self.model,
            TargetType.PROMPT: self.prompt,
            TargetType.TOOL: self.tool,
            TargetType.ROUTE_POLICY: self.route_policy,
            TargetType.TRACE: self.trace,
        }.get(target)
