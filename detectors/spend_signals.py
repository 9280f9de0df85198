"""The per-use-case signals the spend anomaly detectors watch, bucketed by event time.

Why separate signals: total spend alone cannot tell growth from waste. Traffic that doubles at a
flat cost per call doubles spend but is not an inefficiency; the same traffic at a higher cost per
call is. So each bucket yields volume signals (spend, calls) *and* unit signals (cost per call,
tokens per call, cache hit rate) and agent-loop signals (retry and tool cost, steps per trace),
and each gets its own baseline.

State is a plain dict (it lives in the use case's Faust table value); :func:`add_event` updates
the open bucket and returns the buckets it closed, with empty buckets filled in for gaps so that
quiet hours teach the baseline too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from spendfuse.schemas.common import Component, to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

MAX_GAP_BUCKETS = 288  # at most a day of empty 5-minute buckets is replayed into the baselines

_SUMS = (
    "spend",
    "calls",
    "events",
    "tokens",
    "cache_hits",
    "cache_known",
    "retry_cost",
    "tool_cost",
    "loop_cost",
    "tasks",
    "log_cost",
    "log_cost_n",
    "log_tokens",
    "log_tokens_n",
)


@dataclass(frozen=True, slots=True)
class ClosedBucket:
    start: datetime
    values: dict[str, float]  # signal name -> value (unit signals absent when too few calls)
    #: per-call unit signal -> (calls, mean log value per call): what a sequential test on
    #: the calls one by one (``unit_shift``) weighs
    per_call: dict[str, tuple[float, float]] = field(default_factory=dict)


def _empty() -> dict[str, float]:
    return dict.fromkeys(_SUMS, 0.0) | {"max_step": 0.0}


_NO_BUCKETS: list[ClosedBucket] = []  # never appended to: what an event that closes none returns


def add_event(
    state: dict[str, Any],
    event: CostEvent,
    bucket_s: int,
    min_calls: int,
    ts_ms: int | None = None,
    carry: int = 0,
) -> list[ClosedBucket]:
    """Fold ``event`` into the open bucket; return the buckets it closed (oldest first).

    ``ts_ms``: the event time in epoch ms when the caller has it already (the engine computes
    it once per event); the list returned when no bucket closed is shared, so callers only read it.
    ``carry``: how many buckets in a row may pool their calls for the unit signals. A bucket
    with fewer than ``min_calls`` calls (cache-known calls for the hit rate) gives no unit
    signal and hands its calls on to the next bucket, until the pool has ``min_calls`` or
    ``carry`` buckets have passed, so thin traffic is judged every ``min_calls`` calls instead
    of rarely or never. 0: every bucket stands alone.
    """
    size_ms = bucket_s * 1000
    ts = to_epoch_ms(event.event_time) if ts_ms is None else ts_ms
    start = ts - ts % size_ms
    current = state.get("start_ms")
    if current == start:  # the common case: the open bucket
        acc = state["acc"]
        if "tasks" not in acc:  # a bucket opened by an older version: its sums start now
            acc.update({k: 0.0 for k in _SUMS if k not in acc})
        _accumulate(acc, event)
        return _NO_BUCKETS
    closed: list[ClosedBucket] = []
    if current is None:
        state["start_ms"], state["acc"] = start, _empty()
    elif start > current:
        closed.append(_close(current, state["acc"], min_calls, state, carry))
        gap = min((start - current) // size_ms - 1, MAX_GAP_BUCKETS)
        for k in range(1, gap + 1):
            at = start - (gap - k + 1) * size_ms
            closed.append(_close(at, _empty(), min_calls, state, carry))
        state["start_ms"], state["acc"] = start, _empty()
    elif start < current:
        return closed  # late for a closed bucket: counted elsewhere, not re-opened
    _accumulate(state["acc"], event)
    return closed


def _accumulate(acc: dict[str, float], event: CostEvent) -> None:
    cost = event.cost_usd
    component = event.component
    retry = event.is_retry
    step = event.step_number
    acc["spend"] += cost
    acc["events"] += 1
    if component is Component.MODEL_CALL:
        acc["calls"] += 1
        tokens = event.input_tokens + event.output_tokens
        acc["tokens"] += tokens
        if not retry and (step is None or step == 1):
            acc["tasks"] += 1  # a task (trace) starts; a call without steps is its own task
        if cost > 0.0:  # an unpriced call has no unit cost to weigh
            acc["log_cost"] += math.log(cost)
            acc["log_cost_n"] += 1
        if tokens > 0:
            acc["log_tokens"] += math.log(tokens)
            acc["log_tokens_n"] += 1
        cache = event.cache_status
        if cache is not None:
            acc["cache_known"] += 1
            acc["cache_hits"] += cache in ("hit", "partial")
    elif component is Component.TOOL_CALL:
        acc["tool_cost"] += cost
    if retry:
        acc["retry_cost"] += cost
        acc["loop_cost"] += cost
    elif step is not None and step > 10:
        acc["loop_cost"] += cost
    if step is not None and step > acc["max_step"]:
        acc["max_step"] = float(step)


_POOLED = (
    "spend",
    "calls",
    "tokens",
    "cache_hits",
    "cache_known",
    "log_cost",
    "log_cost_n",
    "log_tokens",
    "log_tokens_n",
)


def _close(
    start_ms: int, acc: dict[str, float], min_calls: int, state: dict[str, Any], carry: int
) -> ClosedBucket:
    values = {
        "spend_usd": acc["spend"],
        "calls": acc["calls"],
        "retry_and_tool_cost_usd": acc["retry_cost"] + acc["tool_cost"],
        "loop_cost_usd": acc["loop_cost"],
        "max_steps_per_trace": acc["max_step"],
        "tasks": acc.get("tasks", 0.0),
    }
    per_call: dict[str, tuple[float, float]] = {}
    unit, held = acc, 1
    if carry:
        pool = state.pop("pool", None)
        if pool is not None:  # the calls handed on by the buckets before (see add_event)
            unit = {k: acc.get(k, 0.0) + pool.get(k, 0.0) for k in _POOLED}
            held = int(pool["held"]) + 1
    if unit["calls"] >= min_calls:
        values["cost_per_call_usd"] = unit["spend"] / unit["calls"]
        values["tokens_per_call"] = unit["tokens"] / unit["calls"]
        for signal, key in (("cost_per_call_usd", "log_cost"), ("tokens_per_call", "log_tokens")):
            n = unit.get(key + "_n", 0.0)
            if n > 0:
                per_call[signal] = (n, unit[key] / n)
    if unit["cache_known"] >= min_calls:
        values["cache_hit_rate"] = unit["cache_hits"] / unit["cache_known"]
    short_calls = unit["calls"] < min_calls
    short_cache = unit["cache_known"] < min_calls
    if carry and (short_calls or short_cache) and held < carry:
        # Hand on what gave no signal yet: the calls (and their spend and tokens) for the
        # unit signals, the cache-known calls for the hit rate, each pooled on its own.
        state["pool"] = {
            "spend": unit["spend"] if short_calls else 0.0,
            "calls": unit["calls"] if short_calls else 0.0,
            "tokens": unit["tokens"] if short_calls else 0.0,
            **{k: unit.get(k, 0.0) if short_calls else 0.0 for k in _POOLED[5:]},
            "cache_hits": unit["cache_hits"] if short_cache else 0.0,
            "cache_known": unit["cache_known"] if short_cache else 0.0,
            "held": held,
        }
    return ClosedBucket(datetime.fromtimestamp(start_ms / 1000, tz=UTC), values, per_call)
