"""The price book: internal and negotiated prices, versioned, as the FinOps team writes them.

List prices for LLM APIs come from the genai-prices catalog (:mod:`spendfuse.schemas.pricing`);
the price book holds what the catalog cannot know: negotiated per-model token prices, and the
internal prices of GPU seconds, tool and API calls, human review items, retrieval or
observability charges. Its ``pricing_version`` is stamped on every event it prices, so a figure
can always be traced back to the prices behind it (and recomputed when they change).

A YAML price book looks like::

    version: 1                          # the file format
    pricing_version: pricebook_2026_06  # stamped on each event this book prices
    models:                             # USD per million tokens, per model (any provider
      - model: medium_rag_model         #   when provider is absent)
        provider: approved_model_provider_a
        input_usd_per_1m_tokens: 0.80
        cached_input_usd_per_1m_tokens: 0.20   # default: the input price
        output_usd_per_1m_tokens: 3.20
        reasoning_usd_per_1m_tokens: 3.20      # default: the output price
    services:                           # USD per unit, per component (and service)
      - {component: gpu, model_or_service: a100-pool, unit: gpu_second, usd_per_unit: 0.0011}
      - {component: tool_call, model_or_service: crm_lookup, unit: call, usd_per_unit: 0.002}
      - {component: human_review, unit: item, usd_per_unit: 1.5}

Pure: this module validates an already-parsed mapping; ``spendfuse.finops.load_price_book``
reads the file and reports errors with their line.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from spendfuse.schemas.common import Component
from spendfuse.schemas.cost_event import MAX_AMOUNT

Price = Annotated[float, Field(ge=0, le=MAX_AMOUNT, allow_inf_nan=False, strict=False)]
"""A finite, non-negative USD price; 0 is an explicit "free", never a missing price."""
Name = Annotated[str, Field(min_length=1, max_length=200)]


class PriceUnit(StrEnum):
    """What one ``usd_per_unit`` buys, and so which event field is the quantity."""

    GPU_SECOND = "gpu_second"  # quantity: gpu_seconds
    CALL = "call"  # quantity: api_calls (1 when absent: one event is one call)
    ITEM = "item"  # quantity: api_calls (1 when absent: one event is one reviewed item)


class ModelPrice(BaseModel):
    """Negotiated or internal token prices for one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Name
    provider: Name | None = None
    input_usd_per_1m_tokens: Price
    output_usd_per_1m_tokens: Price
    cached_input_usd_per_1m_tokens: Price | None = None
    reasoning_usd_per_1m_tokens: Price | None = None


class ServicePrice(BaseModel):
    """An internal price per unit for a component (and optionally one service or provider)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    component: Component
    model_or_service: Name | None = None
    provider: Name | None = None
    unit: PriceUnit
    usd_per_unit: Price


class PriceBook(BaseModel):
    """A versioned price book (file format version 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    pricing_version: Name = Field(description="Stamped on each event this book prices.")
    currency: Literal["USD"] = "USD"
    models: list[ModelPrice] = Field(default_factory=list)
    services: list[ServicePrice] = Field(default_factory=list)

    _models: dict[tuple[str | None, str], ModelPrice] = PrivateAttr(default_factory=dict)
    _services: dict[tuple[Any, ...], ServicePrice] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        self._models = {(m.provider, m.model): m for m in self.models}
        self._services = {(s.component, s.provider, s.model_or_service): s for s in self.services}

    @model_validator(mode="after")
    def _no_duplicates(self) -> PriceBook:
        seen: set[tuple[Any, ...]] = set()
        for i, m in enumerate(self.models):
            key = ("model", m.provider, m.model)
            if key in seen:
                raise ValueError(
                    f"models[{i}]: {m.model!r} (provider {m.provider!r}) is priced twice; "
                    "keep one entry per model and provider"
                )
            seen.add(key)
        for i, s in enumerate(self.services):
            key = ("service", s.component, s.provider, s.model_or_service)
            if key in seen:
                raise ValueError(
                    f"services[{i}]: {s.component.value} / {s.model_or_service!r} (provider "
                    f"{s.provider!r}) is priced twice; keep one entry per component, service "
                    "and provider"
                )
            seen.add(key)
        return self

    def model_price(self, provider: str | None, model: str | None) -> ModelPrice | None:
        """The most specific token price for ``model``: its provider's entry, else any's."""
        if not model:
            return None
        return self._models.get((provider, model)) or self._models.get((None, model))

    def service_price(
        self, component: Component, provider: str | None, service: str | None
    ) -> ServicePrice | None:
        """The most specific unit price: service and provider, service, provider, component."""
        for key in (
            (component, provider, service),
            (component, None, service),
            (component, provider, None),
            (component, None, None),
        ):
            found = self._services.get(key)
            if found is not None:
                return found
        return None


def parse_price_book(data: Any) -> PriceBook:
    """Validate a parsed YAML/JSON mapping as a price book (raises ``ValidationError``)."""
    return PriceBook.model_validate(data)
