"""Shared field types and enumerations of the wire contracts.

The vocabularies (risk tiers, environments, components, allocation methods) are those of the
domain model; enums are ``StrEnum`` so that they serialize as their plain string value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer
from pydantic_core import PydanticCustomError


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a time zone, e.g. 2026-11-23T16:20:00Z (RFC 3339, UTC)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:59:59-01:00 is after year 9999 in UTC
        raise PydanticCustomError(
            "datetime_out_of_range", "the time is outside years 1-9999 once converted to UTC"
        ) from None


def format_rfc3339(value: datetime) -> str:
    """RFC 3339 in UTC with millisecond precision and a ``Z`` suffix."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_require_utc),
    PlainSerializer(format_rfc3339, return_type=str, when_used="json"),
]
"""A timezone-aware instant, normalized to UTC and serialized as RFC 3339 (``...Z``)."""


def to_epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class RiskTier(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Environment(StrEnum):
    PROD = "prod"
    STAGING = "staging"
    DEV = "dev"
    SANDBOX = "sandbox"


class Component(StrEnum):
    MODEL_CALL = "model_call"
    RETRIEVAL = "retrieval"
    TOOL_CALL = "tool_call"
    JUDGE = "judge"
    HUMAN_REVIEW = "human_review"
    OBSERVABILITY = "observability"
    GPU = "gpu"


class AllocationMethod(StrEnum):
    DIRECT_METERED = "direct_metered"
    PROPORTIONAL = "proportional"
    SHARED_POOL = "shared_pool"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class DegradationLevel(StrEnum):
    """What a ``degrade`` command asks of a gateway (the domain's L0-L4 table)."""

    L0 = "L0"  # normal: default routes
    L1 = "L1"  # cost pressure: low-risk cache-first, small model, shorter outputs
    L2 = "L2"  # capacity pressure: on-demand spillover, defer batch
    L3 = "L3"  # incident pressure: approved fallback, pause sandbox and batch
    L4 = "L4"  # risk protection: stop scaling, force the manual workflow
