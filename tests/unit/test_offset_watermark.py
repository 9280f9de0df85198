"""A use case's state remembers the last input record it counted: a record read again after a
kill between the state and dedup-id writes is not counted twice."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from spendfuse.dedup import MemoryDedupStore
from spendfuse.pipeline import OFFSET_KEY, Outcome, Pipeline
from spendfuse.rules.engine import Engine
from tests.support.events import make_event
from tests.support.rules import spend_limit_rules

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_a_record_at_or_below_the_states_offset_is_not_counted_again() -> None:
    pipeline, states = Pipeline(Engine(spend_limit_rules(100.0, default_pack=False))), {}
    raw = orjson.dumps(make_event("bot", cost=1.0))
    first = pipeline.run_record(raw, NOW, MemoryDedupStore(), states, partition=3, offset=41)
    assert [h.outcome for h in first.handled] == [Outcome.ACCEPTED]
    assert states["bot"][OFFSET_KEY] == [3, 41]
    spend = states["bot"]["__aggregates__"]["m"]["s"]["spend_usd"]
    # the ids were lost (a fresh dedup store), the state was not: the same record again
    again = pipeline.run_record(raw, NOW, MemoryDedupStore(), states, partition=3, offset=41)
    assert [h.outcome for h in again.handled] == [Outcome.DUPLICATE]
    assert states["bot"]["__aggregates__"]["m"]["s"]["spend_usd"] == spend
    # a later record of the partition counts; another partition's offsets are not compared
    later = orjson.dumps(make_event("bot", cost=1.0))
    got = pipeline.run_record(later, NOW, MemoryDedupStore(), states, partition=3, offset=42)
    assert [h.outcome for h in got.handled] == [Outcome.ACCEPTED]
    other = orjson.dumps(make_event("bot", cost=1.0))
    got = pipeline.run_record(other, NOW, MemoryDedupStore(), states, partition=1, offset=7)
    assert [h.outcome for h in got.handled] == [Outcome.ACCEPTED]
