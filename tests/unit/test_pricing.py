"""Events without a cost are priced from the catalog, or flagged unpriced and still counted."""

from __future__ import annotations

import genai_prices
import pytest

from spendfuse.schemas import PricingStatus
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.pricing import price_event
from tests.support.events import make_event


def test_priced_from_catalog_matches_genai_prices() -> None:
    event = parse_cost_event_obj(
        make_event("u1", cost=None, input_tokens=10_000, cached_tokens=4_000, output_tokens=800)
    )
    price_event(event)
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=10_000, cache_read_tokens=4_000, output_tokens=800),
        model_ref="gpt-4o-mini",
        provider_id="openai",
    ).total_price
    assert event.pricing_status is PricingStatus.CATALOG
    assert event.allocated_cost_usd == pytest.approx(float(expected), rel=1e-9)
    assert event.pricing_version and event.pricing_version.startswith("genai-prices-")


def test_producer_cost_is_kept() -> None:
    event = price_event(parse_cost_event_obj(make_event("u1", cost=0.42)))
    assert event.allocated_cost_usd == 0.42
    assert event.pricing_status is PricingStatus.PROVIDED


def test_unknown_model_is_accepted_as_unpriced() -> None:
    event = price_event(
        parse_cost_event_obj(make_event("u1", cost=None, model_or_service="in-house-llm-7"))
    )
    assert event.pricing_status is PricingStatus.UNPRICED
    assert event.allocated_cost_usd is None
    assert event.cost_usd == 0.0
