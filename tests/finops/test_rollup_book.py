"""Hourly rollups kept in a use case's state (``RollupBook``): closed by event time, corrected
by late events under the same key, exact across a restart from a committed state."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from spendfuse.dedup import MemoryDedupStore
from spendfuse.finops.rollups import ROLLUPS_KEY, RollupBook, RollupPolicy
from spendfuse.pipeline import Pipeline
from spendfuse.replay import replay_records
from spendfuse.rules.engine import Engine
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.pricing import price_event
from spendfuse.schemas.rollup import CostRollup, rollup_key
from tests.support.events import BASE_TIME, make_event

POLICY = RollupPolicy(lateness=timedelta(minutes=5), keep=timedelta(hours=2))


def _event(minutes: float, cost: float = 1.0, **kw):
    raw = make_event("bot", cost=cost, at=BASE_TIME + timedelta(minutes=minutes), **kw)
    return price_event(parse_cost_event_obj(raw))


def _latest(rows: list[CostRollup], into: dict[bytes, CostRollup]) -> None:
    for row in rows:
        into[rollup_key(row)] = row


def test_an_hour_closes_once_event_time_passes_its_end_plus_lateness() -> None:
    book, state = RollupBook(POLICY), {}
    assert book.add([_event(0), _event(30, 2.0)], state) == []
    assert book.add([_event(63)], state) == []  # 10:03: within the lateness allowance
    [closed] = book.add([_event(65)], state)
    assert closed.hour_start == BASE_TIME and closed.cost_usd == 3.0 and closed.events == 2
    assert [r.cost_usd for r in book.open_rows(state)] == [2.0]  # 10:00, two events


def test_a_late_event_republishes_its_hour_with_the_full_total_under_the_same_key() -> None:
    book, state = RollupBook(POLICY), {}
    [first] = book.add([_event(10), _event(70)], state)
    [again] = book.add([_event(20, 0.5)], state)  # late for 09:00, which is still kept
    assert rollup_key(again) == rollup_key(first)
    assert (first.cost_usd, again.cost_usd, again.events) == (1.0, 1.5, 2)


def test_an_event_later_than_kept_goes_to_a_revision_of_its_hour() -> None:
    book, state = RollupBook(POLICY), {}
    published: dict[bytes, CostRollup] = {}
    _latest(book.add([_event(10), _event(300)], state), published)  # 14:00: 09:00 forgotten
    assert all(r[0] != BASE_TIME.timestamp() * 1000 for r in state[ROLLUPS_KEY]["rows"].values())
    _latest(book.add([_event(20, 0.25)], state), published)  # 09:20 arrives at 14:00
    _latest(book.add([_event(420)], state), published)  # 16:00 closes 14:00's revision
    nine = [r for r in published.values() if r.hour_start == BASE_TIME]
    assert sorted((r.revision is None, r.cost_usd) for r in nine) == [(False, 0.25), (True, 1.0)]
    assert len({rollup_key(r) for r in nine}) == 2


def test_state_is_plain_data_and_bounded_by_keep() -> None:
    book, state = RollupBook(POLICY), {}
    for minute in range(0, 24 * 60, 7):
        book.add(
            [_event(minute), _event(minute, component="retrieval", model_or_service="vdb")], state
        )
    state = orjson.loads(orjson.dumps(state))  # what the table stores
    book.add([_event(24 * 60)], state)
    hours = {row[0] for row in state[ROLLUPS_KEY]["rows"].values()}
    assert len(hours) <= 4  # the open hour and the two kept behind it (plus one closing)


def _records(n_hours: int) -> list[bytes]:
    out = []
    for i in range(n_hours * 12):
        uc = ("bot", "claims")[i % 2]
        extra = {"cost_center": "cc-1"} if uc == "bot" else {"cost_center": "cc-2"}
        at = BASE_TIME + timedelta(minutes=5 * i)
        out.append(orjson.dumps(make_event(uc, cost=0.01 * (i % 7 + 1), at=at, **extra)))
    late = make_event("bot", cost=0.5, at=BASE_TIME + timedelta(minutes=3), cost_center="cc-1")
    out.insert(40, orjson.dumps(late))  # 09:03 arriving at about 12:20: a correction
    return out


def _pipeline() -> Pipeline:
    return Pipeline(Engine(RuleSet()), rollup_policy=POLICY)


def test_replay_rollups_sum_to_the_events_per_dimension() -> None:
    records = _records(6)
    result = replay_records(records, _pipeline())
    expected: dict[tuple[str, str], float] = defaultdict(float)
    for raw in records:
        event = orjson.loads(raw)
        expected[(event["cost_center"], event["event_time"][:13])] += event["allocated_cost_usd"]
    got: dict[tuple[str, str], float] = defaultdict(float)
    for row in result.rollups.values():
        got[(row.cost_center, row.hour_start.isoformat()[:13])] += row.cost_usd
    assert got.keys() == expected.keys()
    for key, usd in expected.items():
        assert got[key] == pytest.approx(usd)


def test_a_restart_from_a_committed_state_publishes_the_same_final_rows() -> None:
    """A worker killed after publishing but before writing its state re-handles the records
    from the older state: the rows it publishes again replace the earlier ones."""
    records = _records(5)
    whole = replay_records(records, _pipeline()).rollups
    pipeline = _pipeline()

    now = datetime.now(UTC)
    dedup, states = MemoryDedupStore(), {}
    published: dict[bytes, CostRollup] = {}
    for offset, raw in enumerate(records[:30]):
        _latest(pipeline.run_record(raw, now, dedup, states, offset=offset).rollups, published)
    committed = orjson.loads(orjson.dumps(states))
    for offset, raw in enumerate(records[30:45], start=30):  # published, then killed
        _latest(pipeline.run_record(raw, now, dedup, states, offset=offset).rollups, published)
    dedup, states = MemoryDedupStore(), committed  # the successor: ids and state as committed
    for offset, raw in enumerate(records[30:], start=30):
        _latest(pipeline.run_record(raw, now, dedup, states, offset=offset).rollups, published)
    for state in states.values():
        _latest(pipeline.rollups.open_rows(state), published)
    assert {k: v.cost_usd for k, v in published.items()} == {
        k: v.cost_usd for k, v in whole.items()
    }


class _AlwaysCloses(RollupBook):
    """The book as it was: closing (a scan of every row) after every call."""

    def _marks(self, wm: int) -> tuple[int, int]:
        return (wm, id(object()))


@settings(max_examples=150, deadline=None)
@example(steps=[(0, "a"), (130, "a"), (-70, "b")])  # a new row for an hour already past
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([0, 1, 4, 20, 61, 130, -70, -200]), st.sampled_from("abc")),
        min_size=1,
        max_size=40,
    )
)
def test_closing_only_when_the_watermark_passes_an_hour_mark_publishes_the_same_rows(
    steps: list[tuple[int, str]],
) -> None:
    """Late events (a closed hour corrected, a forgotten hour revised) included."""
    fast, slow = RollupBook(POLICY), _AlwaysCloses(POLICY)
    fast_state: dict = {}
    slow_state: dict = {}
    minutes = 0
    for gap, model in steps:
        minutes += gap
        event = _event(minutes, model_or_service=model)
        assert fast.add([event], fast_state) == slow.add([event], slow_state)
        assert fast_state == slow_state
