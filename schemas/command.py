"""The control command: what gateways apply, published on the log-compacted ``spendfuse.control``.

The topic is keyed by :meth:`ControlCommand.key` (``"<target type>:<target id>"``, plus the scope
when the command is scoped) so that, after compaction, the latest command per key is the state in
force: a gateway that (re)starts reads the topic from the beginning and knows at once what is
killed or degraded.

Time. A rule decides in event time (``decided_at``, the evidence, and the deterministic
``command_id``), but how long a command is valid and which of two commands is newer come from the
*publisher*: when a command is signed, :mod:`spendfuse.control.stamp` sets ``issued_at`` to the
publisher's clock, ``expires_at`` to ``issued_at + ttl_s`` and a per-key ``version`` (a hybrid
logical clock in milliseconds). Gateways order by ``version``, so log order, compaction and every
gateway agree, and an event dated 2099 cannot make a kill last until 2099.

Reach. ``within`` narrows a command to the scope that tripped it (tenant, use case, environment,
risk tiers): a tool kill issued for one low-risk use case touches only that use case's requests.
A gateway never applies a command that is not ``risk_protection`` to a request whose risk tier is
not low (the guardrail, enforced again at the edge).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spendfuse.schemas.alert import Evidence
from spendfuse.schemas.common import DegradationLevel, Environment, RiskTier, UtcDatetime

# Set by the publisher when it signs (spendfuse.control.stamp), not by the rule that decided.
PUBLISH_STAMP = ("issued_at", "expires_at", "ttl_s", "version", "decided_at")


class CommandKind(StrEnum):
    KILL_SWITCH = "kill_switch"
    DEGRADE = "degrade"
    RESTORE = "restore"


class TargetType(StrEnum):
    MODEL = "model"
    PROMPT = "prompt"
    TENANT = "tenant"
    USE_CASE = "use_case"
    TOOL = "tool"
    ROUTE_POLICY = "route_policy"
    TRACE = "trace"  # one agent task (trace or session): stops a loop without touching its route


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: TargetType
    id: str = Field(min_length=1)

    @property
    def key(self) -> str:
        return f"{self.type.value}:{self.id}"


class Within(BaseModel):
    """The scope a command is confined to; every qualifier set must hold for a request.

    A request that does not state a qualifier's attribute is *outside* the scope (it cannot be
    shown to be inside), so a scoped command never reaches traffic it was not issued for.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    tenant_id: str | None = Field(default=None, min_length=1)
    use_case_id: str | None = Field(default=None, min_length=1)
    environment: Environment | None = None
    risk_tiers: tuple[RiskTier, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _canonical(self) -> Within:
        if self.risk_tiers is not None:  # one spelling per set, so one record key per scope
            ordered = tuple(t for t in RiskTier if t in set(self.risk_tiers))
            object.__setattr__(self, "risk_tiers", ordered)
        return self

    @property
    def key(self) -> str:
        """The scope's part of the record key: stable, ordered, empty when nothing is set."""
        parts = []
        if self.tenant_id is not None:
            parts.append(f"tenant={self.tenant_id}")
        if self.use_case_id is not None:
            parts.append(f"use_case={self.use_case_id}")
        if self.environment is not None:
            parts.append(f"env={self.environment.value}")
        if self.risk_tiers is not None:
            parts.append("risk=" + "+".join(t.value for t in self.risk_tiers))
        return "|".join(parts)

    def is_empty(self) -> bool:
        return not self.key


def within(
    *,
    tenant_id: str | None = None,
    use_case_id: str | None = None,
    environment: Environment | str | None = None,
    risk_tiers: Iterable[RiskTier | str] | None = None,
) -> Within | None:
    """The ``within`` a rule puts on a command for the scope that tripped it (None if empty).

    Pure helper for the rule side: pass the tripped scope's tenant and use case, its environment
    when the rule's scope names one, and the risk tiers it may act on (for a cost rule, the low
    tier only: ``risk_tiers=["low"]``).
    """
    scope = Within(
        tenant_id=tenant_id,
        use_case_id=use_case_id,
        environment=Environment(environment) if environment is not None else None,
        risk_tiers=tuple(RiskTier(t) for t in risk_tiers) if risk_tiers is not None else None,
    )
    return None if scope.is_empty() else scope


def cost_scope(
    tenant_id: str, use_case_id: str, environment: Environment | str | None = None
) -> Within:
    """The scope of a command a cost or budget rule issues: this tenant, this use case, the
    environment if the rule is about one, and low-risk requests only."""
    scope = within(
        tenant_id=tenant_id,
        use_case_id=use_case_id,
        environment=environment,
        risk_tiers=[RiskTier.LOW],
    )
    assert scope is not None
    return scope


class DegradeParams(BaseModel):
    """What a gateway changes at a degradation level (unset means "leave as is")."""

    model_config = ConfigDict(extra="forbid")

    cache_first: bool | None = None
    model_tier: Literal["small", "standard", "approved_fallback"] | None = None
    max_output_tokens: int | None = Field(default=None, gt=0)
    pause_batch: bool | None = None
    pause_sandbox: bool | None = None
    spillover: bool | None = None
    scaling_stopped: bool | None = None
    manual_workflow: bool | None = None


# What each degradation level asks of a gateway (the domain's L0-L4 table). Rules, operators and
# gateways read this one table; a command's explicit params are applied over its level's.
LEVEL_PARAMS: dict[DegradationLevel, DegradeParams] = {
    DegradationLevel.L1: DegradeParams(cache_first=True, model_tier="small", max_output_tokens=512),
    DegradationLevel.L2: DegradeParams(spillover=True, pause_batch=True, pause_sandbox=True),
    DegradationLevel.L3: DegradeParams(
        model_tier="approved_fallback", pause_batch=True, pause_sandbox=True
    ),
    DegradationLevel.L4: DegradeParams(scaling_stopped=True, manual_workflow=True),
}


def level_params(level: DegradationLevel | str | None) -> DegradeParams:
    """A fresh copy of a level's gateway parameters (empty for L0 and for no level)."""
    if level is None:
        return DegradeParams()
    params = LEVEL_PARAMS.get(DegradationLevel(level))
    return params.model_copy() if params is not None else DegradeParams()


class ControlCommand(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: Literal[1] = 1
    command_id: str = Field(description="Deterministic per decision, so re-issuing is idempotent.")
    kind: CommandKind
    mode: Literal["enforce", "shadow"] = "enforce"
    target: Target
    level: DegradationLevel | None = None
    params: DegradeParams = Field(default_factory=DegradeParams)
    issued_by: str = Field(description='"rule:<name>" or "operator:<who>".')
    reason: str
    evidence: Evidence | None = None
    tenant_id: str | None = None
    use_case_id: str | None = None
    alert_fingerprint: str | None = None
    within: Within | None = Field(
        default=None, description="The scope the command is confined to (None: the whole target)."
    )
    risk_protection: bool = Field(
        default=False,
        description="Set only by risk-protection (L4) rules, loop guards on a trace and operators:"
        " a command without it never acts on a request whose risk tier is not low.",
    )
    issued_at: UtcDatetime = Field(description="The publisher's clock when the command was signed.")
    ttl_s: float | None = Field(
        default=None, gt=0, description="How long the command holds, counted from ``issued_at``."
    )
    expires_at: UtcDatetime | None = Field(
        default=None, description="``issued_at + ttl_s``, stamped by the publisher."
    )
    version: int | None = Field(
        default=None,
        ge=0,
        description="Per-key order assigned and signed by the publisher (hybrid logical clock,"
        " ms); gateways keep the highest. Unset only on records of older publishers.",
    )
    decided_at: UtcDatetime | None = Field(
        default=None, description="The event time the rule decided at (evidence, not validity)."
    )
    how_to_lift: str | None = None
    handoff_to_human: bool = Field(
        default=False,
        description="The command stops an agent task of a medium or higher risk tier: the task is"
        " handed to a human (gateways surface it in the denial), not silently dropped.",
    )
    # Signatures travel in the record's `spendfuse-signature` header, over the exact key and
    # value bytes (spendfuse.control.signing), so the body needs no canonical form.

    def key(self) -> str:
        """The record key: the target's, plus ``|`` and the scope's when the command is scoped."""
        if self.within is None or self.within.is_empty():
            return self.target.key
        return f"{self.target.key}|{self.within.key}"

    def ttl_seconds(self) -> float | None:
        """``ttl_s``, or (older builders) the span between ``issued_at`` and ``expires_at``."""
        if self.ttl_s is not None:
            return self.ttl_s
        if self.expires_at is None:
            return None
        return max((self.expires_at - self.issued_at).total_seconds(), 0.001)

    def decision_view(self) -> dict[str, Any]:
        """The command as the rule decided it, without what the publisher stamps (its clock,
        version): equal for a replay and the stream, which publish at different times."""
        dumped = self.model_dump(mode="json")
        view = {k: v for k, v in dumped.items() if k not in PUBLISH_STAMP}
        view["decided_at"] = dumped["decided_at"] or dumped["issued_at"]
        view["ttl_s"] = self.ttl_seconds()
        return view

    def order(self) -> int:
        """What gateways compare: the signed ``version``, else ``issued_at`` in ms."""
        if self.version is not None:
            return self.version
        return int(self.issued_at.timestamp() * 1000)
