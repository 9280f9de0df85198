"""The outcome event: how a business outcome (a case, an answer, an action) turned out.

Cost events name the outcome they work towards in ``business_outcome_id``; when the outcome is
known (an answer accepted, a case resolved, an action rejected) the system of record publishes
one outcome event on :data:`spendfuse.schemas.topics.OUTCOMES`, keyed by use case like cost
events. It may come long after the spend (a case resolved days later); the ledger
(:mod:`spendfuse.finops.outcomes`) keeps outcomes for a retention window, so lateness is bounded
by time, not by a number of ids. A later outcome event for the same id (by ``event_time``)
replaces the earlier one: a case reopened and then resolved counts once, as resolved.

Example::

    {"schema_version": 1, "outcome_event_id": "oe-849201-1",
     "event_time": "2026-06-29T16:20:00Z", "tenant_id": "retail_banking_us",
     "use_case_id": "customer_service_copilot", "business_outcome_id": "case_849201",
     "outcome_type": "resolved_case", "status": "resolved", "value_usd": 4.10}
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spendfuse.schemas.codec import DEFAULT_MAX_EVENT_BYTES, describe_rejection
from spendfuse.schemas.cost_event import MAX_ID_CHARS, MAX_LABEL_CHARS, Amount, EventTime
from spendfuse.schemas.errors import EventRejectedError


class OutcomeStatus(StrEnum):
    """How the outcome turned out. ``success`` and ``resolved`` count as successful."""

    SUCCESS = "success"  # e.g. a quality-passed or accepted answer, an accepted action
    RESOLVED = "resolved"  # a case closed as resolved
    FAILURE = "failure"  # rejected, escalated unresolved, abandoned

    @property
    def is_success(self) -> bool:
        return self is not OutcomeStatus.FAILURE


class OutcomeEvent(BaseModel):
    """One outcome of one ``business_outcome_id`` (schema version 1)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: Literal[1]
    outcome_event_id: str = Field(
        min_length=1, max_length=MAX_ID_CHARS, description="Unique, for dedup."
    )
    event_time: EventTime = Field(description="When the outcome was recorded (RFC 3339, UTC).")
    tenant_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    use_case_id: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    business_outcome_id: str = Field(
        min_length=1, max_length=MAX_ID_CHARS, description="The id the cost events carry."
    )
    status: OutcomeStatus
    outcome_type: str | None = Field(
        default=None,
        max_length=MAX_LABEL_CHARS,
        description="What the outcome is: successful_answer, resolved_case, accepted_action...",
    )
    value_usd: Amount | None = Field(
        default=None, description="Business value of this outcome (labor saved, loss avoided)."
    )


def decode_outcome_event(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> OutcomeEvent:
    """Decode and validate one outcome event; raise ``EventRejectedError`` (for the DLQ) if bad."""
    if len(raw) > max_bytes:
        raise EventRejectedError(
            "oversized", f"the payload is {len(raw)} bytes, over the limit of {max_bytes}"
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventRejectedError("invalid_json", f"not a JSON object: {exc}") from None
    if not isinstance(obj, dict):
        raise EventRejectedError("invalid_json", "the payload must be a JSON object")
    try:
        return OutcomeEvent.model_validate(obj)
    except ValidationError as exc:
        raise describe_rejection(exc) from None
