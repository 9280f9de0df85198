"""Envelopes on the wire and one decision pass per record: the same incidents, far less work."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from spendfuse.pipeline import Pipeline
from spendfuse.replay import replay_records
from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas import DeadLetter
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.envelope import encode_envelope, is_envelope
from tests.support.events import make_event
from tests.support.rules import spend_limit_rules

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def _pipeline(limit: float = 1.0) -> Pipeline:
    return Pipeline(Engine(spend_limit_rules(limit)), tenant_engine=TenantEngine(RuleSet()))


def _envelope(events: list[dict]) -> bytes:
    return encode_envelope(orjson.dumps(e) for e in events)


def test_envelope_members_are_validated_one_by_one() -> None:
    good = [make_event("u", seconds=i) for i in range(3)]
    bad = make_event("u", seconds=9, input_tokens=-5)
    raw = _envelope([good[0], bad, good[1], good[2]])
    assert is_envelope(orjson.loads(raw))
    items = _pipeline().decode_record(raw, NOW, topic="t", partition=2, offset=41)
    assert [type(i).__name__ for i in items] == [
        "CostEvent",
        "DeadLetter",
        "CostEvent",
        "CostEvent",
    ]
    dead = items[1]
    assert isinstance(dead, DeadLetter)
    assert dead.field == "input_tokens" and dead.reason == "negative_value"
    assert (dead.source.partition, dead.source.offset, dead.source.index) == (2, 41, 1)
    assert orjson.loads(dead.original) == bad  # the member alone, not the whole envelope


def test_a_broken_envelope_is_one_dead_letter_with_a_reason() -> None:
    pipeline = _pipeline()
    cases = {
        b'{"envelope_version": 7, "events": []}': ("unknown_envelope_version", "envelope_version"),
        b'{"envelope_version": [], "events": []}': ("unknown_envelope_version", "envelope_version"),
        b'{"envelope_version": 1, "events": {"a": 1}}': ("validation", "events"),
    }
    for raw, (reason, field) in cases.items():
        (dead,) = pipeline.decode_record(raw, NOW)
        assert isinstance(dead, DeadLetter), raw
        assert (dead.reason, dead.field) == (reason, field), raw
        assert dead.original == raw


def test_one_event_per_record_and_envelopes_reach_the_same_incidents() -> None:
    # $0.30 every 5 s: the $1/minute spend limit trips at the 4th event of each minute
    events = [make_event("u", cost=0.3, seconds=5 * i) for i in range(36)]
    single = replay_records([orjson.dumps(e) for e in events], _pipeline())
    enveloped = replay_records([_envelope(events[i : i + 9]) for i in range(0, 36, 9)], _pipeline())
    assert single.outcomes == enveloped.outcomes == {"accepted": 36}

    def incidents(alerts: list[bytes]) -> list[tuple[str, str, str]]:
        return [(a["rule"], a["status"], a["use_case_id"]) for a in map(orjson.loads, alerts)]

    assert incidents(single.alerts) == incidents(enveloped.alerts)
    assert incidents(single.alerts)[0] == ("spend_rate_limit", "firing", "u")
    ids = [orjson.loads(c)["kind"] for c in single.commands]
    assert ids == [orjson.loads(c)["kind"] for c in enveloped.commands]


def test_a_rule_on_one_event_still_sees_the_event_in_the_middle_of_an_envelope() -> None:
    # the default pack's runaway-loop rule: step_number > 10 on one event
    events = [
        make_event("loop", cost=0.001, seconds=i, step_number=s)
        for i, s in enumerate([1, 2, 14, 3])
    ]
    result = replay_records([_envelope(events)], _pipeline(limit=1000))
    fired = [orjson.loads(a) for a in result.alerts]
    assert any(
        a["evidence"]["metric"].startswith("step_number") and a["status"] == "firing" for a in fired
    ), fired


def test_duplicates_inside_and_across_envelopes_count_once() -> None:
    a, b = make_event("u", cost=0.1), make_event("u", cost=0.1, seconds=1)
    result = replay_records([_envelope([a, a, b]), _envelope([b])], _pipeline())
    assert result.outcomes == {"accepted": 2, "duplicate": 2}


def test_events_of_two_use_cases_in_one_record_are_decided_per_use_case() -> None:
    pipeline = _pipeline()
    events = [make_event(uc, cost=0.6, seconds=i) for i, uc in enumerate("xyxy")]
    decoded = pipeline.decode_record(_envelope(events), NOW)
    assert all(isinstance(e, CostEvent) for e in decoded)
    states: dict = {}
    from spendfuse.dedup import MemoryDedupStore

    handled = pipeline.handle_batch(decoded, MemoryDedupStore(), states)  # type: ignore[arg-type]
    assert set(states) == {"x", "y"}
    fired = [(h.event.use_case_id, a.rule) for h in handled if h.event for a in h.decisions.alerts]
    assert sorted(fired) == [("x", "spend_rate_limit"), ("y", "spend_rate_limit")]
