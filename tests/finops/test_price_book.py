"""The price book: internal and negotiated prices, unit_price x quantity, and unpriced spend."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from spendfuse.finops import ConfigFileError, load_price_book
from spendfuse.schemas import PricingStatus
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.pricebook import PriceBook
from spendfuse.schemas.pricing import price_event, quantity_of
from tests.support.events import make_event

EXAMPLE = Path(__file__).parents[2] / "src" / "spendfuse" / "finops" / "example_pricebook.yaml"


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return load_price_book(EXAMPLE)


def event(**fields: object) -> CostEvent:
    fields.setdefault("cost", None)
    return parse_cost_event_obj(make_event("u1", **fields))  # type: ignore[arg-type]


def test_example_price_book_loads(book: PriceBook) -> None:
    assert book.pricing_version == "pricebook_2026_06"
    assert len(book.models) == 2 and len(book.services) == 4


def test_tool_calls_priced_per_call_worked_example(book: PriceBook) -> None:
    """Seed worked example: $1,200 of API calls over 240,000 calls is $0.005 per call."""
    events = [
        price_event(
            event(component="tool_call", model_or_service="crm_lookup", api_calls=calls), book
        )
        for calls in (100_000, 90_000, 50_000)
    ]
    assert sum(e.allocated_cost_usd or 0 for e in events) == pytest.approx(1200.0)
    assert {e.pricing_status for e in events} == {PricingStatus.PRICE_BOOK}
    assert {e.pricing_version for e in events} == {"pricebook_2026_06"}


def test_gpu_seconds_human_review_and_retrieval(book: PriceBook) -> None:
    gpu = price_event(
        event(
            component="gpu",
            model_or_service="a100-pool",
            gpu_seconds=3600,
            input_tokens=0,
            output_tokens=0,
        ),
        book,
    )
    assert gpu.allocated_cost_usd == pytest.approx(3.96)
    review = price_event(event(component="human_review", model_or_service="qa-team"), book)
    assert review.allocated_cost_usd == pytest.approx(1.5)  # one event is one reviewed item
    reviews = price_event(event(component="human_review", api_calls=4), book)
    assert reviews.allocated_cost_usd == pytest.approx(6.0)
    search = price_event(
        event(component="retrieval", model_or_service="vector-db", api_calls=2), book
    )
    assert search.allocated_cost_usd == pytest.approx(0.0008)


def test_negotiated_token_price_beats_the_catalog(book: PriceBook) -> None:
    listed = price_event(event(model_or_service="in-house-llm-7"))
    assert listed.pricing_status is PricingStatus.UNPRICED  # no catalog price for it
    priced = price_event(
        event(model_or_service="in-house-llm-7", input_tokens=1_000_000, output_tokens=100_000),
        book,
    )
    assert priced.pricing_status is PricingStatus.PRICE_BOOK
    assert priced.allocated_cost_usd == pytest.approx(0.3 + 0.09)


def test_provider_specific_price_cached_and_reasoning_tokens(book: PriceBook) -> None:
    priced = price_event(
        event(
            provider="approved_model_provider_a",
            model_or_service="medium_rag_model",
            input_tokens=2410,
            cached_tokens=410,
            output_tokens=380,
        ),
        book,
    )
    assert priced.allocated_cost_usd == pytest.approx((2000 * 2 + 410 * 0.5 + 380 * 8) / 1e6)
    other = price_event(
        event(
            provider="someone_else",
            model_or_service="medium_rag_model",
            input_tokens=2410,
            output_tokens=380,
        ),
        book,
    )
    assert other.pricing_status is PricingStatus.UNPRICED  # only provider_a's price is known
    custom = PriceBook.model_validate(
        {
            "version": 1,
            "pricing_version": "v2",
            "models": [
                {
                    "model": "m",
                    "input_usd_per_1m_tokens": 1,
                    "output_usd_per_1m_tokens": 4,
                    "reasoning_usd_per_1m_tokens": 10,
                }
            ],
        }
    )
    reasoning = price_event(
        event(model_or_service="m", input_tokens=0, output_tokens=1000, reasoning_tokens=600),
        custom,
    )
    assert reasoning.allocated_cost_usd == pytest.approx((400 * 4 + 600 * 10) / 1e6)


def test_unit_price_times_quantity() -> None:
    """unit_price x api_calls for tool calls, x GPU seconds for GPU, x tokens for models
    (seed worked example: $2,500 for 1M tokens is $0.0025 per token)."""
    tool = price_event(event(component="tool_call", unit_price=0.02, api_calls=3))
    assert tool.allocated_cost_usd == pytest.approx(0.06)
    assert tool.pricing_status is PricingStatus.UNIT_PRICE
    gpu = price_event(event(component="gpu", unit_price=0.001, gpu_seconds=42.0))
    assert gpu.allocated_cost_usd == pytest.approx(0.042)
    tokens = price_event(
        event(
            unit_price=0.0025,
            input_tokens=800_000,
            output_tokens=200_000,
            pricing_version="vendor_2026_06",
        )
    )
    assert tokens.allocated_cost_usd == pytest.approx(2500.0)
    assert tokens.pricing_version == "vendor_2026_06"  # the producer's own price list


def test_quantity_of_each_component() -> None:
    assert quantity_of(event(component="tool_call")) == 1
    assert quantity_of(event(component="retrieval", api_calls=5)) == 5
    assert quantity_of(event(component="gpu", gpu_seconds=0.42)) == 0.42
    assert quantity_of(event(component="gpu")) == 0  # no quantity: not priced from unit_price
    assert quantity_of(event(input_tokens=10, output_tokens=5)) == 15


def test_order_provided_then_unit_price_then_book(book: PriceBook) -> None:
    provided = price_event(
        event(cost=0.42, component="tool_call", model_or_service="crm_lookup", unit_price=9.0), book
    )
    assert provided.allocated_cost_usd == 0.42
    assert provided.pricing_status is PricingStatus.PROVIDED
    unit = price_event(
        event(component="tool_call", model_or_service="crm_lookup", unit_price=0.01), book
    )
    assert unit.allocated_cost_usd == pytest.approx(0.01)
    assert unit.pricing_status is PricingStatus.UNIT_PRICE
    gpu_without_seconds = price_event(
        event(
            component="gpu",
            model_or_service="a100-pool",
            unit_price=0.001,
            input_tokens=0,
            output_tokens=0,
        ),
        book,
    )
    assert gpu_without_seconds.pricing_status is PricingStatus.UNPRICED
    assert gpu_without_seconds.allocated_cost_usd is None


def test_bad_price_book_errors_name_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "version: 1\n"
        "pricing_version: pb1\n"
        "services:\n"
        "  - component: gpu\n"
        "    unit: gpu_hour\n"
        "    usd_per_unit: -1\n"
        "models:\n"
        "  - {model: m, input_usd_per_1m_tokens: 1}\n"
    )
    with pytest.raises(ConfigFileError) as info:
        load_price_book(path)
    text = str(info.value)
    assert f"{path}:5:11 services[0].unit: Input should be 'gpu_second', 'call' or 'item'" in text
    assert f"{path}:6:19 services[0].usd_per_unit: Input should be greater than or equal to 0" in (
        text
    )
    assert f"{path}:8:5 models[0].output_usd_per_1m_tokens: Field required" in text


def test_duplicate_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(
        "version: 1\npricing_version: pb1\nservices:\n"
        "  - {component: human_review, unit: item, usd_per_unit: 1}\n"
        "  - {component: human_review, unit: item, usd_per_unit: 2, colour: red}\n"
    )
    with pytest.raises(ConfigFileError) as info:
        load_price_book(path)
    assert "services[1].colour: Extra inputs are not permitted" in str(info.value)
    path.write_text(
        "version: 1\npricing_version: pb1\nservices:\n"
        "  - {component: human_review, unit: item, usd_per_unit: 1}\n"
        "  - {component: human_review, unit: item, usd_per_unit: 2}\n"
    )
    with pytest.raises(ConfigFileError, match=r"services\[1\]: human_review / None .* twice"):
        load_price_book(path)


def test_the_worker_pipeline_prices_with_the_configured_book(tmp_path: Path) -> None:
    """``SPENDFUSE_PRICE_BOOK_PATH`` reaches the record driver replay and the worker share."""
    import orjson

    from spendfuse.replay import replay_records
    from spendfuse.rules_runtime import build_pipeline
    from spendfuse.settings import Settings
    from tests.support.events import make_event

    event = make_event(
        "crm",
        cost=None,
        component="tool_call",
        model_or_service="crm_lookup",
        input_tokens=0,
        output_tokens=0,
    )
    pipeline = build_pipeline(Settings(price_book_path=EXAMPLE), default_pack=False)
    states: dict = {}
    from spendfuse.dedup import MemoryDedupStore

    record = pipeline.run_record(orjson.dumps(event), datetime.now(UTC), MemoryDedupStore(), states)
    priced = record.accepted[0]
    assert priced.allocated_cost_usd == pytest.approx(0.005)
    assert priced.pricing_version == "pricebook_2026_06"
    assert replay_records([orjson.dumps(event)], pipeline).outcomes["accepted"] == 1
