"""The metric catalog: every number a rule may compare, and the event fields behind it.

Aggregates keep *sums* (``FIELDS``) per time bucket; a metric is a sum, or a ratio of two sums,
so it can be computed over any window and over the 7-day baseline the same way. A few metrics
are per event (``step_number``) or per trace (``trace_cost_usd``), and the p95 queue wait comes
from a small fixed histogram.

Extension fields: the cost event keeps unknown fields, but decisions only read the extension
fields declared here (``EventExtensions``), each parsed and validated explicitly; an invalid
value is ignored as if absent, never trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from spendfuse.schemas.common import Component
from spendfuse.schemas.cost_event import CostEvent, PricingStatus

FIELDS = (
    "spend_usd",
    "calls",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "total_tokens",
    "cache_hits",
    "cache_lookups",
    "retry_cost_usd",
    "tool_cost_usd",
    "loop_cost_usd",
    "step_events",
    "traces",
    "outcomes",
    "gpu_seconds",
    "gpu_busy_seconds",
    "gpu_cost_usd",
    "human_reviews",
    "human_rejections",
    "quality_sum",
    "quality_n",
    "carbon_sum",
    "carbon_n",
    "unpriced_events",
)

WINDOWS = ("event", "trace", "1m", "1h", "24h", "7d", "day", "month", "quarter")
"""``1m``/``1h`` are the current clock minute/hour (UTC); ``24h``/``7d`` roll over hourly
buckets including the current one; ``day``/``month`` are calendar periods in the tenant's time
zone (what budgets use), and so is ``quarter`` (calendar quarters); ``event`` and ``trace`` are
the current event and its trace."""


class EventExtensions(BaseModel):
    """Optional extension fields a producer may add to a cost event (documented in README)."""

    model_config = ConfigDict(extra="ignore")

    queue_wait_ms: float | None = Field(default=None, ge=0)
    human_rejected: bool | None = None
    quality_score: float | None = Field(default=None, ge=0, le=1)
    carbon_intensity: float | None = Field(default=None, ge=0, description="gCO2e/kWh")
    gpu_utilization: float | None = Field(default=None, ge=0, le=1)


_NO_EXTENSIONS = EventExtensions()
_EXTENSION_NAMES = tuple(EventExtensions.model_fields)


def parse_extensions(event: CostEvent) -> EventExtensions:
    """Read the declared extension fields; each invalid one is dropped on its own."""
    extra = event.model_extra
    if not extra:
        return _NO_EXTENSIONS  # most events: no validation to run (read-only, never mutated)
    wanted = {k: extra[k] for k in _EXTENSION_NAMES if k in extra}
    if not wanted:
        return _NO_EXTENSIONS
    try:
        return EventExtensions.model_validate(wanted)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        return EventExtensions.model_validate({k: v for k, v in wanted.items() if k not in bad})


FIELD_INDEX: dict[str, int] = {name: i for i, name in enumerate(FIELDS)}

SumTerm = tuple[str, int, float]
"""One non-zero sum of an event: field name, its index in ``FIELDS``, the value added."""

TRACE_TERM: SumTerm = ("traces", FIELD_INDEX["traces"], 1)
OUTCOME_TERM: SumTerm = ("outcomes", FIELD_INDEX["outcomes"], 1)


def event_sum_terms(
    event: CostEvent, ext: EventExtensions
) -> tuple[tuple[SumTerm, ...], tuple[SumTerm, ...]]:
    """What one event adds to each summed field, but for the new trace and outcome counts
    (which depend on the aggregate the event counts in): the non-zero terms before and after
    them, in :func:`event_sums` order. Worked out once per event, however many aggregates."""
    cost = event.cost_usd
    is_tool = event.component is Component.TOOL_CALL
    retry = event.is_retry
    gpu_s = event.gpu_seconds
    idx = FIELD_INDEX
    head: list[SumTerm] = [("spend_usd", idx["spend_usd"], cost)] if cost else []
    head.append(("calls", idx["calls"], 1))
    for name, value in (
        ("input_tokens", event.input_tokens),
        ("output_tokens", event.output_tokens),
        ("cached_tokens", event.cached_tokens),
        ("total_tokens", event.total_tokens),
    ):
        if value:
            head.append((name, idx[name], value))
    cache = event.cache_status
    if cache == "hit":
        head.append(("cache_hits", idx["cache_hits"], 1))
    if cache is not None:
        head.append(("cache_lookups", idx["cache_lookups"], 1))
    if cost:
        if retry:
            head.append(("retry_cost_usd", idx["retry_cost_usd"], cost))
        if is_tool:
            head.append(("tool_cost_usd", idx["tool_cost_usd"], cost))
        if retry or is_tool:
            head.append(("loop_cost_usd", idx["loop_cost_usd"], cost))
    if event.step_number is not None:
        head.append(("step_events", idx["step_events"], 1))
    tail: list[SumTerm] = []
    if gpu_s:
        tail.append(("gpu_seconds", idx["gpu_seconds"], gpu_s))
        if cost:
            tail.append(("gpu_cost_usd", idx["gpu_cost_usd"], cost))
        if ext.gpu_utilization:
            busy = gpu_s * ext.gpu_utilization
            if busy:
                tail.append(("gpu_busy_seconds", idx["gpu_busy_seconds"], busy))
    if event.pricing_status is PricingStatus.UNPRICED:
        tail.append(("unpriced_events", idx["unpriced_events"], 1))
    if ext.human_rejected is not None:
        tail.append(("human_reviews", idx["human_reviews"], 1))
        if ext.human_rejected:
            tail.append(("human_rejections", idx["human_rejections"], 1))
    if ext.quality_score:
        tail.append(("quality_sum", idx["quality_sum"], ext.quality_score))
    if ext.quality_score is not None:
        tail.append(("quality_n", idx["quality_n"], 1))
    if ext.carbon_intensity:
        tail.append(("carbon_sum", idx["carbon_sum"], ext.carbon_intensity))
    if ext.carbon_intensity is not None:
        tail.append(("carbon_n", idx["carbon_n"], 1))
    return tuple(head), tuple(tail)


def event_sums(
    event: CostEvent, ext: EventExtensions, new_trace: bool, new_outcome: bool
) -> dict[str, float]:
    """What one event adds to each summed field (only the non-zero ones)."""
    head, tail = event_sum_terms(event, ext)
    ids = (TRACE_TERM,) * new_trace + (OUTCOME_TERM,) * new_outcome
    return {name: value for name, _, value in (*head, *ids, *tail)}


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    numerator: str = ""
    denominator: str = ""
    scale: float = 1.0
    kind: str = "sum"  # sum | ratio | p95 | event | trace
    unit: str = ""
    description: str = ""

    def windows(self) -> tuple[str, ...]:
        if self.kind == "event":
            return ("event",)
        if self.kind == "trace":
            return ("trace",)
        if self.kind == "p95":
            return ("1m", "1h")
        return ("1m", "1h", "24h", "7d", "day", "month", "quarter")

    def value(self, sums: dict[str, Any]) -> float | None:
        """The metric over one window's sums; None when a ratio has no denominator."""
        num = float(sums.get(self.numerator, 0.0))
        if self.kind == "sum":
            return num * self.scale
        den = float(sums.get(self.denominator, 0.0))
        return num * self.scale / den if den > 0 else None


def _s(name: str, field: str, unit: str, desc: str) -> Metric:
    return Metric(name, field, unit=unit, description=desc)


def _r(name: str, num: str, den: str, unit: str, desc: str, scale: float = 1.0) -> Metric:
    return Metric(name, num, den, scale, "ratio", unit, desc)


_CATALOG = [
    _s("spend_usd", "spend_usd", "USD", "spend"),
    _s("calls", "calls", "events", "billable events (requests)"),
    _s("input_tokens", "input_tokens", "tokens", "input tokens"),
    _s("output_tokens", "output_tokens", "tokens", "output tokens, reasoning included"),
    _s("cached_tokens", "cached_tokens", "tokens", "input tokens served from cache"),
    _s("total_tokens", "total_tokens", "tokens", "input + output tokens"),
    _s("retry_cost_usd", "retry_cost_usd", "USD", "spend on retried calls"),
    _s("tool_cost_usd", "tool_cost_usd", "USD", "spend on tool calls"),
    _s("loop_cost_usd", "loop_cost_usd", "USD", "retry or tool-loop spend"),
    _s("outcomes", "outcomes", "outcomes", "distinct business outcomes (recent ids)"),
    _s("traces", "traces", "traces", "distinct traces (recent ids)"),
    _s("gpu_seconds", "gpu_seconds", "s", "provisioned GPU seconds"),
    _s("unpriced_events", "unpriced_events", "events", "events nothing could price (at $0)"),
    _r("unpriced_share", "unpriced_events", "calls", "ratio", "share of events left unpriced"),
    _r("tokens_per_request", "total_tokens", "calls", "tokens", "tokens per event"),
    _r("cost_per_request", "spend_usd", "calls", "USD", "spend per event"),
    _r("cost_per_1k_tokens", "spend_usd", "total_tokens", "USD", "spend per 1K tokens", 1000.0),
    _r("cache_hit_rate", "cache_hits", "cache_lookups", "ratio", "cache hits / lookups"),
    _r("loop_cost_share", "loop_cost_usd", "spend_usd", "ratio", "retry+tool share of spend"),
    _r("steps_per_trace", "step_events", "traces", "steps", "agent steps per task"),
    _r("cost_per_trace", "spend_usd", "traces", "USD", "spend per trace (session)"),
    _r("cost_per_outcome", "spend_usd", "outcomes", "USD", "spend per business outcome"),
    _r("gpu_utilization", "gpu_busy_seconds", "gpu_seconds", "ratio", "busy / provisioned GPU"),
    _r("cost_per_gpu_second", "gpu_cost_usd", "gpu_seconds", "USD", "GPU spend per second"),
    _r(
        "human_rejection_rate",
        "human_rejections",
        "human_reviews",
        "ratio",
        "human-rejected share of reviewed answers (extension human_rejected)",
    ),
    _r("quality_score", "quality_sum", "quality_n", "score", "mean quality (extension)"),
    _r("carbon_intensity", "carbon_sum", "carbon_n", "gCO2e/kWh", "mean grid carbon (extension)"),
    Metric(
        "queue_wait_p95_ms",
        kind="p95",
        unit="ms",
        description="p95 queue wait (extension queue_wait_ms)",
    ),
    Metric("step_number", kind="event", unit="steps", description="this event's agent step"),
    Metric("event_cost_usd", kind="event", unit="USD", description="this event's spend"),
    Metric("trace_cost_usd", kind="trace", unit="USD", description="spend of this event's trace"),
    Metric("trace_steps", kind="trace", unit="steps", description="events in this trace"),
]
METRICS: dict[str, Metric] = {m.name: m for m in _CATALOG}
