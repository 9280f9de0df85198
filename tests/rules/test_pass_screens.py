"""Pass screens (``rules/screens.py``): a rule sleeps through a pass only when its condition
cannot hold at any event of it, and wakes for the pass that can make it hold.

The decisions themselves are held equal with and without screens by the properties in
``test_record_batching.py``; these tests show the screens do put rules to sleep (so those
properties are not vacuous) and wake them exactly where a pass could cross a threshold.
"""

from __future__ import annotations

from datetime import timedelta
from enum import Enum
from typing import Any

from spendfuse.rules.engine import Engine
from spendfuse.schemas import CostEvent
from tests.support.events import BASE_TIME, make_event
from tests.support.rules import with_rules

_RULES = """
version: 1
rules:
  - name: minute_spend
    condition: {type: threshold, metric: spend_usd, window: 1m, op: ">", value: 3.0}
    severity: high
  - name: hourly_calls_vs_week
    condition: {type: ratio_to_baseline, metric: calls, window: 1h, baseline: 7d, op: ">=",
                value: 3.0, min_history: 1d}
    severity: medium
  - name: cheap_minute
    condition: {type: threshold, metric: spend_usd, window: 1m, op: "<", value: 0.1}
    severity: low
"""


def _event(at_s: float, cost: float) -> CostEvent:
    raw = make_event("bot", cost=cost, at=BASE_TIME + timedelta(seconds=at_s))
    return CostEvent.model_validate(raw)


def _asleep(engine: Engine, state: dict[str, Any], events: list[CostEvent]) -> set[str]:
    plan = engine.compiled.plan("acme", "bot")
    stepped = [plan.steps_for(e) for e in events]
    tz = engine.compiled.ruleset.tz("acme")
    return engine._asleep(events, stepped, plan, state, plan.budget_lookup, tz)[0]


def _two_days(engine: Engine) -> dict[str, Any]:
    """Two days of one call a minute at $0.01, one event per record."""
    state: dict[str, Any] = {}
    for minute in range(2 * 24 * 60):
        engine.process(_event(minute * 60.0, 0.01), state)
    return state


def test_a_quiet_pass_puts_threshold_and_ratio_rules_to_sleep() -> None:
    engine = Engine(with_rules(_RULES, default_pack=False))
    state = _two_days(engine)
    start = 2 * 24 * 3600.0 - 59  # after the last call, in the same hour
    quiet = [_event(start + i, 0.01) for i in range(10)]
    asleep = _asleep(engine, state, quiet)
    assert {"minute_spend", "hourly_calls_vs_week"} <= asleep
    assert "cheap_minute" not in asleep  # a "<" comparison has no upper bound to screen


def test_a_pass_that_can_cross_the_threshold_wakes_the_rule() -> None:
    engine = Engine(with_rules(_RULES, default_pack=False))
    state = _two_days(engine)
    start = 2 * 24 * 3600.0 - 59
    assert "minute_spend" not in _asleep(engine, state, [_event(start + i, 1.0) for i in range(4)])
    # three times the hourly baseline of 60 calls is 180 calls: a pass of 200 can reach it
    busy = [_event(start + i * 0.1, 0.001) for i in range(200)]
    assert "hourly_calls_vs_week" not in _asleep(engine, state, busy)


def test_a_young_key_sleeps_through_ratio_rules_until_a_pass_spans_its_history() -> None:
    engine = Engine(with_rules(_RULES, default_pack=False))
    state: dict[str, Any] = {}
    engine.process(_event(0, 0.01), state)
    assert "hourly_calls_vs_week" in _asleep(engine, state, [_event(60, 0.01), _event(120, 0.01)])
    spans_a_day = [_event(60, 0.01), _event(24 * 3600 + 60, 0.01)]
    assert "hourly_calls_vs_week" not in _asleep(engine, state, spans_a_day)


def test_a_rule_with_something_pending_or_firing_never_sleeps() -> None:
    engine = Engine(with_rules(_RULES, default_pack=False))
    state: dict[str, Any] = {}
    fired = engine.process_batch([_event(i, 1.0) for i in range(4)], state)
    assert [a.rule for a in fired.alerts] == ["minute_spend"]
    assert "minute_spend" not in _asleep(engine, state, [_event(120, 0.0), _event(121, 0.0)])


def test_sleeping_decides_what_waking_decides() -> None:
    """The same two days and a burst, one pass per hour against one event per record."""
    rs = with_rules(_RULES, default_pack=False)
    events = [_event(m * 60.0, 0.01) for m in range(2 * 24 * 60)]
    events += [_event(2 * 24 * 3600.0 + i * 0.5, 0.05) for i in range(400)]
    by_pass, one_each = Engine(rs), Engine(rs)
    s1: dict[str, Any] = {}
    s2: dict[str, Any] = {}
    hours: dict[int, list[CostEvent]] = {}
    for e in events:
        hours.setdefault(int(e.event_time.timestamp()) // 3600, []).append(e)
    got = [
        a.model_dump(mode="json")
        for h in hours.values()
        for a in by_pass.process_batch(h, s1).alerts
    ]
    want = [a.model_dump(mode="json") for e in events for a in one_each.process(e, s2).alerts]
    assert got == want
    assert {a["rule"] for a in got} >= {"hourly_calls_vs_week", "minute_spend"}


def test_every_label_an_event_carries_is_keyed_by_the_attributes_it_is_made_of() -> None:
    """The engine caches which rules apply to an event by ``LABEL_ATTRIBUTES``: a label left
    out there would make two events with different labels share one cache entry."""
    from spendfuse.rules.scope import LABEL_ATTRIBUTES, event_labels

    raw = make_event(
        "bot",
        component="tool_call",
        route_policy_version="r1",
        workflow_step="answer",
        business_unit="bu",
        cost_center="cc",
        user_role="agent",
        prompt_version="p3",
        cache_status="hit",
    )
    event = CostEvent.model_validate(raw)
    labels = event_labels(event)
    assert "tool" in labels and "cache_status" in labels
    assert set(labels) <= set(LABEL_ATTRIBUTES)
    for attr in CostEvent.model_fields:  # an attribute that changes a label must key it
        changed = event_labels(event.model_copy(update={attr: _other(getattr(event, attr))}))
        for name in set(labels) | set(changed):
            if changed.get(name) != labels.get(name):
                assert attr in LABEL_ATTRIBUTES[name], (name, attr)


def _other(value: Any) -> Any:
    """Another valid value of an event attribute."""
    if isinstance(value, Enum):
        return next(member for member in type(value) if member is not value)
    return f"{value}-other"


def test_a_session_rule_sleeps_until_a_pass_can_take_one_of_its_traces_over() -> None:
    rs = with_rules(
        """
version: 1
rules:
  - name: costly_session
    condition: {type: threshold, metric: trace_cost_usd, window: trace, op: ">", value: 1.0}
    severity: medium
""",
        default_pack=False,
    )
    engine = Engine(rs)
    state: dict[str, Any] = {}

    def traced(at_s: float, cost: float, trace: str) -> CostEvent:
        raw = make_event("bot", cost=cost, at=BASE_TIME + timedelta(seconds=at_s), trace_id=trace)
        return CostEvent.model_validate(raw)

    engine.process_batch([traced(i, 0.3, "t1") for i in range(3)], state)  # $0.90 so far
    assert "costly_session" in _asleep(engine, state, [traced(5, 0.01, "t2")] * 2)
    assert "costly_session" not in _asleep(engine, state, [traced(5, 0.06, "t1")] * 2)
    untraced = CostEvent.model_validate(make_event("bot", cost=5.0, trace_id=None))
    assert "costly_session" in _asleep(engine, state, [untraced, untraced])
    fired = engine.process_batch([traced(6, 0.06, "t1"), traced(7, 0.06, "t1")], state)
    assert [a.rule for a in fired.alerts] == ["costly_session"]


def test_a_queue_wait_p95_rule_sleeps_through_a_pass_that_adds_no_wait() -> None:
    rs = with_rules(
        """
version: 1
rules:
  - name: slow_queue
    condition: {type: threshold, metric: queue_wait_p95_ms, window: 1m, op: ">", value: 1000}
    severity: high
""",
        default_pack=False,
    )
    engine = Engine(rs)
    state: dict[str, Any] = {}

    def waited(at_s: float, wait_ms: float | None) -> CostEvent:
        extra = {} if wait_ms is None else {"queue_wait_ms": wait_ms}
        raw = make_event("bot", at=BASE_TIME + timedelta(seconds=at_s), **extra)
        return CostEvent.model_validate(raw)

    engine.process_batch([waited(i, 200.0) for i in range(5)], state)
    assert "slow_queue" in _asleep(engine, state, [waited(10, None), waited(11, None)])
    assert "slow_queue" not in _asleep(engine, state, [waited(10, 5000.0), waited(11, None)])
    fired = engine.process_batch([waited(12 + i, 5000.0) for i in range(3)], state)
    assert [a.rule for a in fired.alerts] == ["slow_queue"]
    # firing: it is evaluated at every event until it resolves, wait or no wait
    assert "slow_queue" not in _asleep(engine, state, [waited(20, None), waited(21, None)])
