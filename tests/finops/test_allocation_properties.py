"""Whatever the rows and rules, allocation keeps every dollar: allocated + unallocated + direct
equals the input, and no share is negative."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spendfuse.finops.allocation import AllocationRules, allocate_period
from spendfuse.schemas.rollup import ROLLUP_DIMENSIONS, ROLLUP_MEASURES

USE_CASES = ["a", "b", "c", "d"]
SERVICES = ["gpu-pool", "vector-db", "gateway", "gpt"]


@st.composite
def rows(draw: st.DrawFn) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROLLUP_DIMENSIONS)
    row.update(dict.fromkeys(ROLLUP_MEASURES, 0))
    row.update(
        tenant_id="t",
        use_case_id=draw(st.sampled_from(USE_CASES)),
        cost_center=draw(st.sampled_from(["cc1", "cc2", None])),
        environment=draw(st.sampled_from(["prod", "dev"])),
        component=draw(st.sampled_from(["gpu", "retrieval", "model_call"])),
        model_or_service=draw(st.sampled_from(SERVICES)),
        allocation_method=draw(st.sampled_from(["direct_metered", "shared_pool"])),
        cost_usd=draw(st.floats(0, 1e6, allow_nan=False)),
        events=draw(st.integers(0, 50)),
        gpu_seconds=draw(st.floats(0, 1e4, allow_nan=False)),
        api_calls=draw(st.integers(0, 100)),
    )
    return row


pools = st.lists(
    st.one_of(
        st.fixed_dictionaries(
            {
                "match": st.fixed_dictionaries({"model_or_service": st.sampled_from(SERVICES)}),
                "method": st.just("proportional"),
                "driver": st.sampled_from(["gpu_seconds", "api_calls", "events", "cost_usd"]),
                "consumers": st.sampled_from([{}, {"environment": "prod"}]),
            }
        ),
        st.fixed_dictionaries(
            {
                "match": st.fixed_dictionaries({"use_case_id": st.sampled_from(USE_CASES)}),
                "method": st.just("even"),
            }
        ),
        st.fixed_dictionaries(
            {
                "match": st.fixed_dictionaries(
                    {"component": st.sampled_from(["gpu", "retrieval"])}
                ),
                "method": st.just("fixed"),
                "shares": st.lists(
                    st.fixed_dictionaries(
                        {
                            "to": st.fixed_dictionaries(
                                {"cost_center": st.sampled_from(["cc1", "cc9"])}
                            ),
                            "share": st.floats(0.01, 0.5),
                        }
                    ),
                    min_size=1,
                    max_size=2,
                ),
            }
        ),
    ),
    max_size=3,
)


@given(st.lists(rows(), max_size=30), pools)
def test_allocation_conserves_cost(period_rows: list[dict[str, Any]], raw_pools: list[Any]) -> None:
    rules = AllocationRules.model_validate(
        {"version": 1, "pools": [{**p, "name": f"p{i}"} for i, p in enumerate(raw_pools)]}
    )
    direct, shared = allocate_period(period_rows, rules)
    total_in = sum(r["cost_usd"] for r in period_rows)
    total_out = sum(r["cost_usd"] for r in direct) + sum(a.cost_usd for a in shared)
    assert total_out == pytest.approx(total_in, rel=1e-9, abs=1e-6)
    assert all(a.cost_usd >= -1e-6 for a in shared)
    assert all(a.share is None or -1e-9 <= a.share <= 1 + 1e-9 for a in shared)
    assert all(r["allocation_method"] != "shared_pool" for r in direct)  # never left as direct
