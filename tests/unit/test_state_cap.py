"""A use case's state stays under SPENDFUSE_STATE_MAX_BYTES: trimmed in event-time order by the
pure pipeline, so replay and the worker (whose states go through the store) trim the same."""

from __future__ import annotations

from typing import Any

import orjson

from spendfuse.dedup import MemoryDedupStore
from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import AGGREGATES_KEY, Engine
from spendfuse.rules.state_size import SIZE_KEY, StateCap, persisted, state_bytes
from spendfuse.schemas.envelope import encode_envelope
from tests.support.events import BASE_TIME as BASE
from tests.support.events import make_event

CAP = 160 * 1024  # trimmed to half: above the default pack's session tracker (about 53 KB)


def _records(use_case: str, traces: int, per_record: int = 20) -> list[bytes]:
    """One event per trace, a trace a second of event time, in envelopes of ``per_record``."""
    events = [
        make_event(
            use_case,
            cost=0.001,
            seconds=i,
            cost_event_id=f"e{i}",
            trace_id=f"trace-{i:06d}",
            business_outcome_id=f"case-{i:06d}",
        )
        for i in range(traces)
    ]
    return [
        encode_envelope(orjson.dumps(e) for e in events[i : i + per_record])
        for i in range(0, traces, per_record)
    ]


def _run(
    records: list[bytes], *, through_store: bool = False
) -> tuple[dict[str, Any], dict[str, int], list[Any]]:
    pipeline = Pipeline(Engine.default(), max_state_bytes=CAP)
    dedup, states = MemoryDedupStore(), {}
    trimmed: dict[str, int] = {}
    decided: list[Any] = []
    for offset, raw in enumerate(records):
        result = pipeline.run_record(raw, BASE, dedup, states, partition=0, offset=offset)
        for reason, n in result.trimmed.items():
            trimmed[reason] = trimmed.get(reason, 0) + n
        for size in result.state_bytes.values():
            assert size <= CAP
        decided.extend(a.fingerprint for a in result.decisions.alerts)
        if through_store:  # the worker: written as persisted at each commit, read back
            states = {k: orjson.loads(orjson.dumps(persisted(v))) for k, v in states.items()}
    return states, trimmed, decided


def test_thousands_of_concurrent_traces_stay_under_the_cap_oldest_trimmed_first() -> None:
    states, trimmed, _ = _run(_records("busy", 6_000))
    state = states["busy"]
    assert state_bytes(state) <= CAP
    assert trimmed.get("trace_ids", 0) > 1_000 and trimmed.get("outcome_ids", 0) > 1_000
    traces = state[AGGREGATES_KEY]["tr"]
    assert "trace-005999" in traces  # the newest is kept ...
    assert "trace-000000" not in traces  # ... the oldest went
    kept = sorted(traces)
    assert kept == [f"trace-{i:06d}" for i in range(int(kept[0][6:]), 6_000)]  # a suffix
    assert "over_cap" not in trimmed


def test_without_a_cap_the_same_traffic_grows_past_it() -> None:
    pipeline = Pipeline(Engine.default(), max_state_bytes=10**9)
    dedup, states = MemoryDedupStore(), {}
    for offset, raw in enumerate(_records("busy", 6_000)):
        pipeline.run_record(raw, BASE, dedup, states, partition=0, offset=offset)
    assert state_bytes(states["busy"]) > 2 * CAP


def test_the_worker_path_through_the_store_trims_and_decides_as_replay_does() -> None:
    records = _records("busy", 3_000, per_record=7)
    replayed, trimmed_r, decided_r = _run(records)
    streamed, trimmed_s, decided_s = _run(records, through_store=True)
    assert trimmed_r == trimmed_s and trimmed_r
    assert decided_r == decided_s
    assert orjson.dumps(persisted(replayed["busy"])) == orjson.dumps(streamed["busy"])


def test_derived_caches_are_never_persisted_and_the_live_state_keeps_them() -> None:
    states, _, _ = _run(_records("calm", 40))
    state = states["calm"]
    state[AGGREGATES_KEY]["bl"] = {"h": 1, "r": {"x": {"cost_usd": 1.0}}}
    stored = persisted(state)
    assert "bl" not in stored[AGGREGATES_KEY] and "bl" in state[AGGREGATES_KEY]
    assert stored[AGGREGATES_KEY]["tr"] is state[AGGREGATES_KEY]["tr"]  # no deep copy
    assert persisted(7) == 7


def test_a_small_state_is_measured_once_then_only_when_it_could_reach_the_cap() -> None:
    cap = StateCap(CAP)
    state: dict[str, Any] = {"a": "x" * 100}
    trimmed: dict[str, int] = {}
    before = state_bytes(state)
    assert cap.after_record(state, 1, trimmed) == before  # the first record: measured
    size = state[SIZE_KEY][0]
    due = (CAP - size) // 2_048 + 1
    for _ in range(due - 1):
        assert cap.after_record(state, 1, trimmed) is None
    assert cap.after_record(state, 1, trimmed) is not None
    assert trimmed == {}


def test_a_state_that_cannot_be_trimmed_under_the_cap_is_counted_and_kept() -> None:
    cap = StateCap(CAP)
    state: dict[str, Any] = {"rule": {"big": "x" * (CAP + 10)}, AGGREGATES_KEY: {"ev": ["a", "b"]}}
    trimmed: dict[str, int] = {}
    cap.after_record(state, 1, trimmed)
    assert trimmed == {"evidence": 1, "over_cap": 1}
    assert state["rule"]["big"] and state[AGGREGATES_KEY]["ev"] == ["b"]


def test_the_outcome_ledger_is_trimmed_with_the_aggregates_oldest_first() -> None:
    """With outcome ledgers on, the ledger's ids (one per outcome) are trimmed like the
    aggregates' own, so a use case with an outcome id per request still stays under the cap."""
    pipeline = Pipeline(Engine.default(), max_state_bytes=CAP, outcome_ledger=True)
    dedup, states = MemoryDedupStore(), {}
    trimmed: dict[str, int] = {}
    for offset, raw in enumerate(_records("outcomes", 4_000)):
        result = pipeline.run_record(raw, BASE, dedup, states, partition=0, offset=offset)
        for reason, n in result.trimmed.items():
            trimmed[reason] = trimmed.get(reason, 0) + n
        for size in result.state_bytes.values():
            assert size <= CAP
    ledger = states["outcomes"]["__outcomes__"]["entries"]
    assert 0 < len(ledger) < 4_000
    assert "case-003999" in ledger and "case-000000" not in ledger  # the oldest went first
    assert trimmed.get("outcome_ids", 0) > 0 and "over_cap" not in trimmed
