"""The windowed aggregates add each event's sums exactly: every window's sums are the event sums
added one event after the other (the same floats, in the same order), whatever mix of trace,
outcome, GPU time and extension fields the events carry."""

from __future__ import annotations

import random
from zoneinfo import ZoneInfo

from spendfuse.rules.metrics.aggregates import (
    ALL_PARTS,
    HOUR_MS,
    MINUTE_MS,
    EventFacts,
    update_aggregates,
)
from spendfuse.rules.metrics.catalog import FIELDS, event_sums, parse_extensions
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent
from tests.support.events import make_event

UTC = ZoneInfo("UTC")


def _events(n: int, seed: int) -> list[CostEvent]:
    rng = random.Random(seed)
    traces = [f"t{k}" for k in range(6)]
    out = []
    for i in range(n):
        extra: dict = {}
        if rng.random() < 0.3:
            extra["gpu_seconds"] = rng.choice([0.0, 0.5, 1.25])
            extra["gpu_utilization"] = rng.choice([0.0, 0.4, 1.0])
        if rng.random() < 0.3:
            extra["quality_score"] = rng.choice([0.0, 0.7, 1.0])
            extra["human_rejected"] = rng.choice([True, False])
            extra["carbon_intensity"] = rng.choice([0.0, 350.5])
            extra["queue_wait_ms"] = rng.choice([0.0, 120.0, 20_000.0])
        if rng.random() < 0.5:
            extra["business_outcome_id"] = f"o{rng.randrange(4)}"
        event = make_event(
            "u",
            cost=rng.choice([None, 0.0, 0.013, 0.2, 1.1]),
            seconds=17 * i,
            trace_id=rng.choice([*traces, None]),
            component=rng.choice(["model_call", "tool_call"]),
            is_retry=rng.random() < 0.2,
            step_number=rng.choice([None, 1, 3, 12]),
            cache_status=rng.choice([None, "hit", "miss"]),
            **extra,
        )
        out.append(parse_cost_event_obj(event))
    return out


def test_every_window_sums_the_event_sums_in_order() -> None:
    events = _events(600, seed=4)
    state: dict = {}
    minute: dict[int, dict[str, float]] = {}
    hourly: dict[int, list[float]] = {}
    seen_traces: set[str] = set()
    seen_outcomes: set[str] = set()
    for event in events:
        facts = EventFacts(event)
        update_aggregates(state, event, UTC, ALL_PARTS, facts=facts)
        new_trace = bool(event.trace_id) and event.trace_id not in seen_traces
        new_outcome = bool(event.business_outcome_id) and (
            event.business_outcome_id not in seen_outcomes
        )
        seen_traces.add(event.trace_id or "")
        seen_outcomes.add(event.business_outcome_id or "")
        sums = event_sums(event, parse_extensions(event), new_trace, new_outcome)
        assert all(sums.values()), sums  # only non-zero sums
        ts = to_epoch_ms(event.event_time)
        target = minute.setdefault(ts // MINUTE_MS, {})
        vec = hourly.setdefault(ts // HOUR_MS, [0.0] * len(FIELDS))
        for name, value in sums.items():
            target[name] = target.get(name, 0.0) + value
            vec[FIELDS.index(name)] += value
        assert state["m"]["s"] == target
        assert list(state["m"]["s"]) == list(target)  # new keys in event-sum order
    assert {int(h): v for h, v in state["h"].items()} == hourly
    assert state["now_h"] == max(hourly) and state["first_h"] == min(hourly)


def test_event_facts_terms_are_the_event_sums_for_each_new_trace_and_outcome() -> None:
    for event in _events(300, seed=9):
        facts = EventFacts(event)
        for new_trace in (False, True):
            for new_outcome in (False, True):
                terms = facts.terms(new_trace, new_outcome)
                expected = event_sums(event, facts.ext, new_trace, new_outcome)
                assert [(name, value) for name, _, value in terms] == list(expected.items())
                assert list(facts.sums(new_trace, new_outcome).items()) == list(expected.items())
                assert all(FIELDS[idx] == name for name, idx, _ in terms)
                assert ("traces" in expected) is new_trace
                assert ("outcomes" in expected) is new_outcome
