"""Hourly rollups: sums per hour and attribution, drained when closed, additive when late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from spendfuse.finops.rollups import RollupAccumulator
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.pricing import price_event
from spendfuse.schemas.rollup import CostRollup
from tests.support.events import make_event

T0 = datetime(2026, 6, 29, 9, 0, tzinfo=UTC)


def priced(use_case: str = "copilot", *, minutes: float = 0, **fields: object) -> CostEvent:
    raw = make_event(
        use_case,
        at=T0 + timedelta(minutes=minutes),
        business_unit="contact_center",
        cost_center="cc_4102",
        **fields,
    )  # type: ignore[arg-type]
    return price_event(parse_cost_event_obj(raw))


def test_sums_per_hour_and_key() -> None:
    acc = RollupAccumulator()
    acc.add(priced(minutes=1, cost=0.5, input_tokens=100, output_tokens=10, api_calls=1))
    acc.add(priced(minutes=59, cost=0.25, input_tokens=50, output_tokens=5, is_retry=True))
    acc.add(priced(minutes=61, cost=1.0))
    acc.add(priced("kyc", minutes=2, cost=2.0, component="gpu", gpu_seconds=0.42))
    assert len(acc) == 3
    records = acc.drain()
    assert len(acc) == 0
    first = next(r for r in records if r.use_case_id == "copilot" and r.hour_start == T0)
    assert first.cost_usd == pytest.approx(0.75)
    assert (first.events, first.input_tokens, first.output_tokens, first.api_calls) == (
        2,
        150,
        15,
        1,
    )
    assert (first.retry_events, first.retry_cost_usd) == (1, 0.25)
    assert (first.business_unit, first.cost_center, first.component) == (
        "contact_center",
        "cc_4102",
        "model_call",
    )
    gpu = next(r for r in records if r.use_case_id == "kyc")
    assert gpu.gpu_seconds == pytest.approx(0.42) and gpu.component == "gpu"
    assert [r.hour_start for r in records] == sorted(r.hour_start for r in records)


def test_unpriced_events_are_counted_not_hidden() -> None:
    acc = RollupAccumulator()
    acc.add(priced(cost=None, model_or_service="in-house-llm-7"))
    acc.add(priced(cost=0.1))
    by_model = {r.model_or_service: r for r in acc.drain()}
    assert by_model["in-house-llm-7"].unpriced_events == 1
    assert by_model["in-house-llm-7"].events == 1
    assert by_model["in-house-llm-7"].cost_usd == 0.0
    assert by_model["gpt-4o-mini"].unpriced_events == 0


def test_drain_only_closed_hours_and_late_events_reopen() -> None:
    acc = RollupAccumulator()
    acc.add(priced(minutes=10, cost=1.0))
    acc.add(priced(minutes=70, cost=2.0))
    assert acc.drain(closed_before=T0 + timedelta(minutes=59)) == []
    closed = acc.drain(closed_before=T0 + timedelta(hours=1))
    assert [(r.hour_start, r.cost_usd) for r in closed] == [(T0, 1.0)]
    assert acc.open_hours() == [T0 + timedelta(hours=1)]
    acc.add(priced(minutes=20, cost=0.5))  # late for a drained hour: a second, additive record
    late = acc.drain(closed_before=T0 + timedelta(hours=1))
    assert [(r.hour_start, r.cost_usd) for r in late] == [(T0, 0.5)]
    assert sum(r.cost_usd for r in closed + late) == 1.5


def test_state_round_trips_through_json() -> None:
    acc = RollupAccumulator()
    for i in range(5):
        acc.add(priced(minutes=i * 20, cost=0.1 * (i + 1), api_calls=i))
    state = orjson.loads(orjson.dumps(acc.to_state()))
    restored = RollupAccumulator.from_state(state)
    assert restored.drain() == acc.drain()


def test_records_validate_and_serialize() -> None:
    acc = RollupAccumulator()
    acc.add(priced(cost=0.3))
    record = acc.drain()[0]
    wire = orjson.loads(record.model_dump_json())
    assert wire["hour_start"] == "2026-06-29T09:00:00.000Z"
    assert CostRollup.model_validate(wire) == record
    with pytest.raises(ValueError, match="start of a UTC hour"):
        CostRollup.model_validate({**wire, "hour_start": "2026-06-29T09:30:00Z"})
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        CostRollup.model_validate({**wire, "cost_usd": -1})
