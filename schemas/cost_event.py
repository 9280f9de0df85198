"""The cost event: one priced unit of AI spend with the attribution needed to charge it back.

Producers (gateways, agent frameworks, apps) publish one event per model call, retrieval, tool
call, judge run, human review, observability charge or slice of GPU time. Field names are the
domain model's; the README maps them to FOCUS columns and OpenTelemetry GenAI attributes.

Unknown fields are kept (``extra="allow"``) so that a newer producer does not lose data going
through an older worker, but decisions only ever read the declared fields below.

Numbers are bounded so that no single event can poison the running sums the detectors keep: no
NaN or infinity (one ``inf`` turns every later mean into NaN), no negatives, no ``true`` for
``1``, counts up to 2**53 (exact in the float64 aggregates) and amounts up to
:data:`MAX_AMOUNT`. ``event_time`` must fall in [:data:`EARLIEST_EVENT_TIME`,
:data:`LATEST_EVENT_TIME`): a time outside that range is a producer bug (an unset clock, seconds
read as milliseconds), and one event from year 9999 would move every event-time window past all
real traffic.

Every string field has a maximum length (:data:`MAX_ID_CHARS` for ids, :data:`MAX_LABEL_CHARS`
for labels, :data:`MAX_NAME_CHARS` for free-form names); a longer one is refused as
``string_too_long``, naming the field, its length and the limit. Without it a single 60 KB
``trace_id`` rides into every structure keyed by trace, and into alerts' evidence.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from spendfuse.schemas.common import (
    AllocationMethod,
    Component,
    Environment,
    RiskTier,
    UtcDatetime,
    format_rfc3339,
)

EARLIEST_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_EVENT_TIME = datetime(2100, 1, 1, tzinfo=UTC)
MAX_COUNT = 2**53
"""Largest token, call or step count: integers above it are not exact in float64 aggregates."""
MAX_AMOUNT = 1e9
"""Largest USD amount (cost, unit price) or GPU seconds in one event; keeps sums finite."""
MAX_ID_CHARS = 256
"""Longest id (``cost_event_id``, ``tenant_id``, ``use_case_id``, ``trace_id``,
``business_outcome_id``): four times a W3C trace id written out, room for composite ids; state
keeps ids over 64 characters as a fixed-size digest, so an id at this limit costs no more."""
MAX_LABEL_CHARS = 128
"""Longest label (``business_unit``, ``cost_center``, ``user_role``, ``provider``, versions,
``retention_class``): a short name that rules group by and the dashboard shows."""
MAX_NAME_CHARS = 512
"""Longest free-form name (``workflow_step``, ``model_or_service``: a model ARN or a deployment
path can run to a few hundred characters)."""
STRING_KINDS = {
    MAX_ID_CHARS: ("an id", "a hash of a longer id fits"),
    MAX_LABEL_CHARS: ("a label", "a code, not a description"),
    MAX_NAME_CHARS: ("a name", "shorten it or move detail to an extra field"),
}
"""What a string field with each limit holds, and the fix a refusal names."""


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("number_type", "Input should be a number, not true or false")
    return value


def _plausible_event_time(value: datetime) -> datetime:
    if not EARLIEST_EVENT_TIME <= value < LATEST_EVENT_TIME:
        raise PydanticCustomError(
            "event_time_out_of_range",
            "{got} is outside {earliest} .. {latest}",
            {
                "got": format_rfc3339(value),
                "earliest": EARLIEST_EVENT_TIME.date().isoformat(),
                "latest": LATEST_EVENT_TIME.date().isoformat(),
            },
        )
    return value


# The constraints come before the validator so that they stay in the core int/float schema
# (checked in order: finite, then >= 0, then the bound), not as separate after-validators.
Count = Annotated[int, Field(ge=0, le=MAX_COUNT), BeforeValidator(_not_a_bool)]
"""A whole, non-negative number (tokens, calls, steps)."""
Amount = Annotated[
    float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False), BeforeValidator(_not_a_bool)
]
"""A finite, non-negative number (USD, GPU seconds)."""
EventTime = Annotated[UtcDatetime, AfterValidator(_plausible_event_time)]

SUPPORTED_SCHEMA_VERSIONS: frozenset[int] = frozenset({1})
CURRENT_SCHEMA_VERSION = 1


class PricingStatus(StrEnum):
    """Where ``allocated_cost_usd`` came from."""

    PROVIDED = "provided"  # the producer metered it
    UNIT_PRICE = "unit_price"  # computed here: the producer's unit_price x the event's quantity
    PRICE_BOOK = "price_book"  # computed here from the configured price book (pricing_version)
    CATALOG = "catalog"  # computed here from tokens and the price catalog
    UNPRICED = "unpriced"  # no cost and no price known: counted, but spends $0 until priced


class CostEvent(BaseModel):
    """A single cost event (schema version 1)."""

    model_config = ConfigDict(extra="allow", frozen=False, use_enum_values=False)

    schema_version: Literal[1] = Field(
        description="Version of this contract; events with an unknown version are dead-lettered."
    )
    cost_event_id: str = Field(
        min_length=1, max_length=MAX_ID_CHARS, description="Unique id, for dedup."
    )
    event_time: EventTime = Field(
        description="When the spend happened, RFC 3339 with a zone (normalized to UTC), from "
        "2000-01-01 (inclusive) to 2100-01-01 (exclusive); outside that it is refused as "
        "event_time_out_of_range. Never compared with a clock for decisions: a late or early "
        "event is accepted (and counted in the worker's late / ahead metrics)."
    )

    # Request-level attribution
    tenant_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    use_case_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    risk_tier: RiskTier
    environment: Environment
    trace_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    business_unit: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    cost_center: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    workflow_step: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    user_role: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    route_policy_version: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    cache_status: Literal["hit", "miss", "partial", "bypass"] | None = None
    business_outcome_id: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    prompt_version: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)

    # Agent events
    step_number: Count | None = Field(
        default=None, description="Step number of this call within its agent task (trace)."
    )
    is_retry: bool = False

    # Cost-level attribution
    component: Component
    provider: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    model_or_service: str | None = Field(default=None, max_length=MAX_NAME_CHARS)
    input_tokens: Count = 0
    output_tokens: Count = Field(
        default=0, description="Output tokens, reasoning tokens included (as providers bill them)."
    )
    reasoning_tokens: Count = Field(
        default=0, description="The part of output_tokens spent on reasoning."
    )
    cached_tokens: Count = Field(
        default=0, description="The part of input_tokens served from the provider's cache."
    )
    gpu_seconds: Amount = 0.0
    api_calls: Count = 0
    unit_price: Amount | None = None
    allocated_cost_usd: Amount | None = None
    allocation_method: AllocationMethod = AllocationMethod.DIRECT_METERED
    pricing_version: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)
    retention_class: str | None = Field(default=None, max_length=MAX_LABEL_CHARS)

    pricing_status: PricingStatus = PricingStatus.PROVIDED

    @property
    def cost_usd(self) -> float:
        """The spend this event counts for; 0 for an unpriced event."""
        return self.allocated_cost_usd or 0.0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens
