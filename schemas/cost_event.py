"""The cost event: one priced unit of AI spend with the attribution needed to charge it back.

Producers (gateways, agent frameworks, apps) publish one event per model call, retrieval, tool
call, judge run, human review, observability charge or slice of GPU time. Field names are the
domain model's; the README maps them to FOCUS columns and OpenTelemetry GenAI attributes.

Unknown fields are kept (``extra="allow"``) so that a newer producer does not lose data going
through an older worker, but decisions only ever read the declared fields below.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt

from spendfuse.schemas.common import (
    AllocationMethod,
    Component,
    Environment,
    RiskTier,
    UtcDatetime,
)

SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({1})
CURRENT_SCHEMA_VERSION = 1


class PricingStatus(StrEnum):
    """Where ``allocated_cost_usd`` came from."""

    PROVIDED = "provided"  # the producer metered it
    CATALOG = "catalog"  # computed here from tokens and the price catalog
    UNPRICED = "unpriced"  # no cost and no price known: counted, but spends $0 until priced


class CostEvent(BaseModel):
    """A single cost event (schema version 1)."""

    model_config = ConfigDict(extra="allow", frozen=False, use_enum_values=False)

    schema_version: Literal[1] = Field(
        description="Version of this contract; events with an unknown version are dead-lettered."
    )
    cost_event_id: str = Field(min_length=1, max_length=200, description="Unique id, for dedup.")
    event_time: UtcDatetime = Field(description="When the spend happened, RFC 3339 in UTC.")

    # Request-level attribution
    tenant_id: str = Field(min_length=1, max_length=200)
    use_case_id: str = Field(min_length=1, max_length=200)
    risk_tier: RiskTier
    environment: Environment
    trace_id: str | None = None
    business_unit: str | None = None
    cost_center: str | None = None
    workflow_step: str | None = None
    user_role: str | None = None
    route_policy_version: str | None = None
    cache_status: Literal["hit", "miss", "partial", "bypass"] | None = None
    business_outcome_id: str | None = None
    prompt_version: str | None = None

    # Agent events
    step_number: NonNegativeInt | None = Field(
        default=None, description="Step number of this call within its agent task (trace)."
    )
    is_retry: bool = False

    # Cost-level attribution
    component: Component
    provider: str | None = None
    model_or_service: str | None = None
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = Field(
        default=0, description="Output tokens, reasoning tokens included (as providers bill them)."
    )
    reasoning_tokens: NonNegativeInt = Field(
        default=0, description="The part of output_tokens spent on reasoning."
    )
    cached_tokens: NonNegativeInt = Field(
        default=0, description="The part of input_tokens served from the provider's cache."
    )
    gpu_seconds: NonNegativeFloat = 0.0
    api_calls: NonNegativeInt = 0
    unit_price: NonNegativeFloat | None = None
    allocated_cost_usd: NonNegativeFloat | None = None
    allocation_method: AllocationMethod = AllocationMethod.DIRECT_METERED
    pricing_version: str | None = None
    retention_class: str | None = None

    pricing_status: PricingStatus = PricingStatus.PROVIDED

    @property
    def cost_usd(self) -> float:
        """The spend this event counts for; 0 for an unpriced event."""
        return self.allocated_cost_usd or 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
