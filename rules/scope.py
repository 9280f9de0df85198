"""Who a decision is about: an event's labels, the scope a command target is taken from, and
the group a rule measures it in.

Labels are only declared event fields, never extras, so a producer cannot invent a label that a
matcher or a route then trusts.
"""

from __future__ import annotations

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


#: the event attributes each label is made of: two events with the same values of these have
#: the same labels (a cheap cache key: one C-level ``attrgetter`` call instead of a reader each)
LABEL_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "tenant_id": ("tenant_id",),
    "use_case_id": ("use_case_id",),
    "environment": ("environment",),
    "risk_tier": ("risk_tier",),
    "component": ("component",),
    "model": ("model_or_service",),
    "tool": ("component", "model_or_service"),
    "route_policy": ("route_policy_version",),
    "provider": ("provider",),
    "workflow_step": ("workflow_step",),
    "business_unit": ("business_unit",),
    "cost_center": ("cost_center",),
    "user_role": ("user_role",),
    "prompt_version": ("prompt_version",),
    "cache_status": ("cache_status",),
}


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
