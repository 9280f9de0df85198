"""Price a cost event that arrived without a cost.

In order, the first that applies sets ``allocated_cost_usd``, ``pricing_status`` and
``pricing_version``:

1. the producer's own ``allocated_cost_usd`` (``provided``; kept as sent);
2. the producer's ``unit_price`` times the event's quantity (``unit_price``; see
   :func:`quantity_of`);
3. the price book, when one is configured (``price_book``; its ``pricing_version`` is stamped):
   an internal unit price for the component and service, else a negotiated token price;
4. the genai-prices list price for the model's tokens (``catalog``);
5. otherwise the event is ``unpriced``: accepted and counted as such (never a silent $0 spent).

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

from spendfuse.schemas.common import Component
from spendfuse.schemas.cost_event import CostEvent, PricingStatus
from spendfuse.schemas.pricebook import ModelPrice, PriceBook, PriceUnit

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


_PER_CALL = frozenset(
    {Component.TOOL_CALL, Component.RETRIEVAL, Component.HUMAN_REVIEW, Component.OBSERVABILITY}
)


def quantity_of(event: CostEvent) -> float:
    """The quantity a producer's ``unit_price`` multiplies; 0 when the event carries none.

    ``gpu``: ``gpu_seconds``. Tool calls, retrievals, human reviews and observability charges:
    ``api_calls``, or 1 when absent (one event is one billable unit of work). Model calls and
    judges: their tokens (input + output), else GPU seconds, else calls.
    """
    if event.component is Component.GPU:
        return event.gpu_seconds
    if event.component in _PER_CALL:
        return event.api_calls or 1
    return event.input_tokens + event.output_tokens or event.gpu_seconds or event.api_calls


def _book_price(event: CostEvent, book: PriceBook) -> float | None:
    service = book.service_price(event.component, event.provider, event.model_or_service)
    if service is not None:
        if service.unit is PriceUnit.GPU_SECOND:
            return service.usd_per_unit * event.gpu_seconds if event.gpu_seconds else None
        return service.usd_per_unit * (event.api_calls or 1)
    model = book.model_price(event.provider, event.model_or_service)
    if model is None or not (event.input_tokens or event.output_tokens):
        return None
    return _token_cost(event, model)


def _token_cost(event: CostEvent, price: ModelPrice) -> float:
    cached = min(event.cached_tokens, event.input_tokens)
    reasoning = min(event.reasoning_tokens, event.output_tokens)
    cached_rate = price.cached_input_usd_per_1m_tokens
    reasoning_rate = price.reasoning_usd_per_1m_tokens
    usd = (
        (event.input_tokens - cached) * price.input_usd_per_1m_tokens
        + cached * (price.input_usd_per_1m_tokens if cached_rate is None else cached_rate)
        + (event.output_tokens - reasoning) * price.output_usd_per_1m_tokens
        + reasoning * (price.output_usd_per_1m_tokens if reasoning_rate is None else reasoning_rate)
    )
    return usd / 1_000_000


def _set(event: CostEvent, name: str, value: object) -> None:
    """``event.<name> = value`` as pydantic does it for a declared field of a model without
    ``validate_assignment`` (the value and the fields set), minus its per-call dispatch:
    every accepted event is priced."""
    event.__dict__[name] = value
    event.__pydantic_fields_set__.add(name)


def price_event(event: CostEvent, book: PriceBook | None = None) -> CostEvent:
    """Fill ``allocated_cost_usd`` when absent (see the module docstring for the order); mark
    an event nothing can price ``unpriced``.

    Mutates and returns ``event``. An event that carries its own cost keeps it.
    """
    if event.allocated_cost_usd is not None:
        _set(event, "pricing_status", PricingStatus.PROVIDED)
        return event
    if event.unit_price is not None:
        quantity = quantity_of(event)
        if quantity:
            _set(event, "allocated_cost_usd", round(event.unit_price * quantity, 10))
            _set(event, "pricing_status", PricingStatus.UNIT_PRICE)
            return event
    if book is not None:
        cost = _book_price(event, book)
        if cost is not None:
            _set(event, "allocated_cost_usd", round(cost, 10))
            _set(event, "pricing_version", book.pricing_version)
            _set(event, "pricing_status", PricingStatus.PRICE_BOOK)
            return event
    has_tokens = event.input_tokens or event.output_tokens
    rates = _rates(event.provider, event.model_or_service) if event.model_or_service else None
    if not has_tokens or rates is None:
        _set(event, "pricing_status", PricingStatus.UNPRICED)
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
    _set(event, "allocated_cost_usd", round(cost, 10))
    _set(event, "pricing_version", catalog_version())
    _set(event, "pricing_status", PricingStatus.CATALOG)
    return event
