"""The hourly cost rollup: priced spend summed per hour and attribution, for reports.

One record holds the sums of the cost events of one UTC hour that share one attribution key
(:data:`ROLLUP_DIMENSIONS`). The worker publishes each (hour, key) with its **full totals** under
a stable Kafka key (:func:`rollup_key`): a record published again (a late event corrected the
hour, a restart re-handled its events, the open hour was refreshed) *replaces* the earlier one,
so the rollups topic is compacted by that key and a reader keeps the latest record of each key,
then sums across keys. An event later than the worker keeps an hour open for correction is
counted in a *revision* record of its hour (``revision`` set: a key of its own), so nothing is
lost or counted twice. Published on :data:`spendfuse.schemas.topics.COST_ROLLUPS`; read by
``spendfuse report``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from spendfuse.schemas.common import UtcDatetime
from spendfuse.schemas.cost_event import Amount, Count

ROLLUP_DIMENSIONS: tuple[str, ...] = (
    "tenant_id",
    "business_unit",
    "cost_center",
    "use_case_id",
    "environment",
    "risk_tier",
    "component",
    "provider",
    "model_or_service",
    "allocation_method",
)
"""The attribution key of a rollup, after its hour. ``allocation_method`` tells direct spend
from shared costs (``shared_pool``) that reports allocate."""

ROLLUP_MEASURES: tuple[str, ...] = (
    "cost_usd",
    "events",
    "unpriced_events",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "api_calls",
    "gpu_seconds",
    "retry_events",
    "retry_cost_usd",
)
"""The sums a rollup carries; every one adds up across records of the same hour and key."""

HOUR_MS = 3_600_000


def _on_the_hour(value: datetime) -> datetime:
    if value.minute or value.second or value.microsecond:
        raise ValueError("must be the start of a UTC hour, e.g. 2026-11-23T09:00:00Z")
    return value


class CostRollup(BaseModel):
    """Sums of one hour's priced cost events for one attribution key (version 1)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    rollup_version: Literal[1] = 1
    hour_start: Annotated[UtcDatetime, AfterValidator(_on_the_hour)]
    tenant_id: str = Field(min_length=1, max_length=200)
    business_unit: str | None = None
    cost_center: str | None = None
    use_case_id: str = Field(min_length=1, max_length=200)
    environment: str
    risk_tier: str
    component: str
    provider: str | None = None
    model_or_service: str | None = None
    allocation_method: str = "direct_metered"
    revision: UtcDatetime | None = Field(
        default=None,
        description="Set on a record of events that arrived after their hour was no longer kept "
        "for correction: the hour (UTC) they arrived in. Its own key; it adds to the hour.",
    )

    cost_usd: Amount = 0.0
    events: Count = 0
    unpriced_events: Count = Field(
        default=0, description="Events nothing could price: counted here, $0 in cost_usd."
    )
    input_tokens: Count = 0
    output_tokens: Count = 0
    cached_tokens: Count = 0
    reasoning_tokens: Count = 0
    api_calls: Count = 0
    gpu_seconds: Amount = 0.0
    retry_events: Count = 0
    retry_cost_usd: Amount = 0.0


def rollup_key(record: CostRollup) -> bytes:
    """Kafka key of a rollup record: its hour, attribution and revision, so a compacted topic
    keeps one record (the latest, full totals) per key."""
    parts = [record.hour_start.strftime("%Y-%m-%dT%H")]
    parts += ["" if (v := getattr(record, d)) is None else str(v) for d in ROLLUP_DIMENSIONS]
    parts.append(record.revision.strftime("%Y-%m-%dT%H") if record.revision else "")
    return "|".join(parts).encode()
