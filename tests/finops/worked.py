"""A month of the domain's worked example as cost events (June 2026, one tenant's AI portfolio).

The customer-service copilot is the seed worksheet at full scale: model $41,500, retrieval
$7,800, judge $5,600, tools $3,900, human review $18,000, observability $2,200, in all $79,000
for contact_center / cc_4102. The shared costs follow the seed's allocation table: a GPU pool
(by GPU seconds), a vector database (by query count), idle reserved GPU capacity (to its reserved
owner), shared observability (evenly over production use cases) and the platform baseline
(listed on its own).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.events import make_event

JUNE = datetime(2026, 6, 1, tzinfo=UTC)
WORKSHEET = {
    "model_call": 41_500.0,
    "retrieval": 7_800.0,
    "judge": 5_600.0,
    "tool_call": 3_900.0,
    "human_review": 18_000.0,
    "observability": 2_200.0,
}
SERVICES = {
    "model_call": "gpt-4o-mini",
    "retrieval": "vector-db",
    "judge": "citation-judge",
    "tool_call": "crm_lookup",
    "human_review": "qa-review",
    "observability": "trace-store",
}
SHARED = {
    "gpu_pool": 3_000.0,
    "vector_db": 400.0,
    # 1,000 reserved GPU hours, 800 used (the seed's 80 % utilization): 200 idle hours x $2
    "idle_reserved_gpu": 200 * 2.0,
    "observability": 90.0,
    "platform": 1_000.0,
}


def _event(n: int, use_case: str, bu: str, cc: str, day: int, **fields: Any) -> dict[str, Any]:
    fields.setdefault("input_tokens", 0)
    fields.setdefault("output_tokens", 0)
    return make_event(
        use_case,
        at=JUNE + timedelta(days=day, hours=9),
        cost_event_id=f"we-{n}",
        tenant_id="retail_banking_us",
        business_unit=bu,
        cost_center=cc,
        **fields,
    )


def month_events() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(*args: Any, **fields: Any) -> None:
        out.append(_event(len(out), *args, **fields))

    copilot = ("customer_service_copilot", "contact_center", "cc_4102")
    for day in range(10):  # the worksheet, spread over ten days
        for component, usd in WORKSHEET.items():
            extra = (
                {"api_calls": 30, "model_or_service": "vector-db"}
                if component == "retrieval"
                else {}
            )
            add(*copilot, day * 3, component=component, cost=usd / 10, **extra)
    aml = ("aml_copilot", "compliance", "cc_5200")
    kyc = ("kyc_extraction", "kyc_ops", "cc_6100")
    for day in range(3):
        add(
            *aml,
            day,
            component="gpu",
            model_or_service="a100-pool",
            gpu_seconds=10_000.0,
            cost=11.0,
            risk_tier="high",
        )
    add(*kyc, 4, component="gpu", model_or_service="a100-pool", gpu_seconds=10_000.0, cost=11.0)
    add(*kyc, 5, component="retrieval", model_or_service="vector-db", api_calls=100, cost=0.04)
    add("sandbox_agent", "labs", "cc_9000", 6, cost=5.0, environment="sandbox")
    platform = ("platform", "ai_platform", "cc_1000")
    shared = {"allocation_method": "shared_pool"}
    add(
        "shared-gpu-pool",
        *platform[1:],
        29,
        component="gpu",
        model_or_service="a100-pool",
        cost=SHARED["gpu_pool"],
        **shared,
    )
    add(
        "shared-vector-db",
        *platform[1:],
        29,
        component="retrieval",
        model_or_service="vector-db-cluster",
        cost=SHARED["vector_db"],
        **shared,
    )
    add(
        "shared-gpu-pool",
        *platform[1:],
        29,
        component="gpu",
        model_or_service="a100-reserved-idle",
        cost=SHARED["idle_reserved_gpu"],
    )
    add(
        "shared-observability",
        *platform[1:],
        29,
        component="observability",
        model_or_service="trace-store",
        cost=SHARED["observability"],
        **shared,
    )
    add(
        "platform-baseline",
        *platform[1:],
        29,
        component="observability",
        model_or_service="gateway",
        cost=SHARED["platform"],
        **shared,
    )
    return out


TOTAL = sum(WORKSHEET.values()) + sum(SHARED.values()) + 3 * 11.0 + 11.0 + 0.04 + 5.0
