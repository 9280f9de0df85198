"""Price a cost event from its tokens when the producer did not send a cost.

The catalog is genai-prices (Pydantic's maintained price data for LLM APIs). Its lookup costs
about 200 µs, so per (provider, model) we derive linear per-token rates once and price events
from them; prompts long enough to reach a tiered price (over 128K input tokens) go through the
full lookup. ``pricing_version`` records the catalog release the price came from.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from spendfuse.schemas.cost_event import CostEvent, PricingStatus

_TIER_SAFE_INPUT_TOKENS = 128_000
_PROBE_TOKENS = 1_000_000


@lru_cache(maxsize=1)
def catalog_version() -> str:
    return f"genai-prices-{importlib.metadata.version('genai-prices')}"


@dataclass(frozen=True, slots=True)
class TokenRates:
    """USD per token for one model at the base tier."""

    input_usd: float
    cached_input_usd: float
    output_usd: float


@lru_cache(maxsize=4096)
def _rates(provider: str | None, model: str) -> TokenRates | None:
    import genai_prices

    def price(**tokens: int) -> Decimal:
        usage = genai_prices.Usage(**tokens)
        return genai_prices.calc_price(usage, model_ref=model, provider_id=provider).total_price

    try:
        input_usd = price(input_tokens=_PROBE_TOKENS)
        cached_usd = price(input_tokens=_PROBE_TOKENS, cache_read_tokens=_PROBE_TOKENS)
        output_usd = price(output_tokens=_PROBE_TOKENS)
    except (LookupError, ValueError):
        return None
    return TokenRates(
        float(input_usd) / _PROBE_TOKENS,
        float(cached_usd) / _PROBE_TOKENS,
        float(output_usd) / _PROBE_TOKENS,
    )


def _exact_price(event: CostEvent) -> float:
    import genai_prices

    usage = genai_prices.Usage(
        input_tokens=event.input_tokens,
        cache_read_tokens=event.cached_tokens,
        output_tokens=event.output_tokens,
    )
    calc = genai_prices.calc_price(
        usage, model_ref=event.model_or_service or "", provider_id=event.provider
    )
    return float(calc.total_price)


def price_event(event: CostEvent) -> CostEvent:
    """Fill ``allocated_cost_usd`` from the catalog when absent; mark unpriced events.

    Mutates and returns ``event``. An event that carries its own cost keeps it.
    """
    if event.allocated_cost_usd is not None:
        event.pricing_status = PricingStatus.PROVIDED
        return event
    has_tokens = event.input_tokens or event.output_tokens
    rates = _rates(event.provider, event.model_or_service) if event.model_or_service else None
    if not has_tokens or rates is None:
        event.pricing_status = PricingStatus.UNPRICED
        return event
    if event.input_tokens > _TIER_SAFE_INPUT_TOKENS:
        cost = _exact_price(event)
    else:
        cached = min(event.cached_tokens, event.input_tokens)
        cost = (
            (event.input_tokens - cached) * rates.input_usd
            + cached * rates.cached_input_usd
            + event.output_tokens * rates.output_usd
        )
    event.allocated_cost_usd = round(cost, 10)
    event.pricing_version = catalog_version()
    event.pricing_status = PricingStatus.CATALOG
    return event
