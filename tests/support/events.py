"""Build cost events for tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

BASE_TIME = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def make_event(
    use_case_id: str,
    *,
    cost: float | None = 0.6,
    at: datetime | None = None,
    seconds: float = 0,
    risk_tier: str = "low",
    **overrides: Any,
) -> dict[str, Any]:
    when = (at or BASE_TIME) + timedelta(seconds=seconds)
    event: dict[str, Any] = {
        "schema_version": 1,
        "cost_event_id": uuid.uuid4().hex,
        "event_time": iso(when),
        "tenant_id": "acme",
        "use_case_id": use_case_id,
        "risk_tier": risk_tier,
        "environment": "prod",
        "component": "model_call",
        "provider": "openai",
        "model_or_service": "gpt-4o-mini",
        "input_tokens": 1200,
        "output_tokens": 300,
        "trace_id": uuid.uuid4().hex,
    }
    if cost is not None:
        event["allocated_cost_usd"] = cost
    event.update(overrides)
    return event


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
