"""No single record stalls the worker: the commit's order and guards, the outbox's dead letters,
re-keyed envelopes split to fit, per-record failures dead-lettered, state bounded per id.

Pure logic around fakes of the producer and topics; tests/integration/test_poison_records.py
runs the same on a real broker and worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from spendfuse.dedup import MemoryDedupStore
from spendfuse.rules.metrics.aggregates import MAX_ID_CHARS
from spendfuse.rules_runtime import build_pipeline
from spendfuse.schemas import topics
from spendfuse.schemas.codec import encode_cost_events
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.settings import Settings
from spendfuse.streams.ingest import IngestHandler, sized_values
from spendfuse.streams.metrics import SpendfuseMetrics
from spendfuse.streams.outbox import Outbox
from spendfuse.streams.state_cache import CommitSequence, DeferredChangelog
from tests.support.events import make_event, unique

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


class _Sink:
    """Records what the outbox hands over; refuses values containing ``poison`` at once and
    reports ``late-poison`` as refused by the broker at the next flush."""

    def __init__(self, log: list[str] | None = None) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.reports: list[tuple[Any, str]] = []
        self.log = log if log is not None else []

    def produce(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        *,
        headers: Any = None,
        on_delivery: Any = None,
    ) -> None:
        if b"late-poison" in value:
            self.reports.append((on_delivery, "Broker: Message size too large"))
        elif b"poison" in value:
            raise BufferError("Message size too large")
        self.sent.append((topic, key, value))
        self.log.append(f"produce {topic}")

    def flush(self) -> list[str]:
        self.log.append("sink.flush")
        reports, self.reports = self.reports, []
        for on_delivery, err in reports:
            on_delivery(err, None)
        return []


def test_outbox_flush_sends_every_record_after_one_that_fails() -> None:
    sink, metrics = _Sink(), SpendfuseMetrics()
    outbox = Outbox(sink, metrics=metrics, clock=lambda: NOW)
    outbox.origin = (topics.COST_EVENTS, 2, 41)
    for value in (b"one", b"poison", b"three", b"late-poison", b"five"):
        outbox.add(topics.ALERTS, b"k", value)
    assert outbox.flush() == 5
    sink.flush()
    assert outbox.settle() == 1
    sent = [(t, v) for t, _, v in sink.sent]
    assert [v for t, v in sent if t == topics.ALERTS] == [b"one", b"three", b"late-poison", b"five"]
    letters = [orjson.loads(v) for t, v in sent if t == topics.COST_EVENTS_DLQ]
    assert [x["reason"] for x in letters] == ["unpublishable", "unpublishable"]
    assert "Message size too large" in letters[0]["error"]
    assert letters[0]["source"]["partition"] == 2 and letters[0]["source"]["offset"] == 41
    assert outbox.dead_lettered == 2
    assert metrics.events_dead_lettered.labels(reason="unpublishable")._value.get() == 2


class _Cache:
    def __init__(self, name: str, log: list[str], fail: bool = False, sink: Any = None) -> None:
        self.name, self.log, self.fail, self.sink = name, log, fail, sink

    def flush(self) -> int:
        self.log.append(f"{self.name}.flush")
        if self.fail:
            raise RuntimeError("disk full")
        if self.sink is not None:
            self.sink.changelog(None, 0, self.name, 1)
        return 1

    def drop_partitions(self, partitions: set[int]) -> None:
        self.log.append(f"{self.name}.drop")


def test_commit_acknowledges_outputs_before_it_writes_ids_and_state() -> None:
    log: list[str] = []
    sink = _Sink(log)
    sink.changelog = lambda _t, _p, key, *_: log.append(f"changelog {key}")  # type: ignore[attr-defined]
    deferred = DeferredChangelog(sink)
    outbox = Outbox(sink)
    outbox.add(topics.CONTROL, b"k", b"command")
    caches = [_Cache("dedup", log, sink=deferred), _Cache("states", log, sink=deferred)]
    CommitSequence(outbox, caches, sink, changelog=deferred).run()
    assert log == [
        "produce spendfuse.control",
        "sink.flush",  # outputs acknowledged, then
        "dedup.flush",
        "states.flush",  # both local stores, back to back, then
        "changelog dedup",
        "changelog states",
        "sink.flush",
    ]


def test_an_ids_changelog_is_sent_only_once_the_states_changelog_is_acknowledged() -> None:
    """States and ids have changelogs on different topics, which a kill -9 can cut at different
    points: the producer is flushed between them, so no id's record can outlive the state that
    counted its event."""
    log: list[str] = []
    sink = _Sink(log)
    sink.changelog = lambda table, _p, key, *_: log.append(f"changelog {table} {key}")  # type: ignore[attr-defined]
    deferred = DeferredChangelog(sink)
    for table, key in (("states", "a"), ("states", "b"), ("ids", "x"), ("ids", "y")):
        deferred.changelog(table, 0, key, 1)
    assert deferred.send(sink.flush) == 4
    assert log == [
        "changelog states a",
        "changelog states b",
        "sink.flush",  # the states acknowledged before any id is sent
        "changelog ids x",
        "changelog ids y",
    ]


def test_a_failing_commit_step_is_counted_and_never_escapes() -> None:
    log: list[str] = []
    metrics = SpendfuseMetrics()
    sequence = CommitSequence(
        Outbox(_Sink(log)),
        [_Cache("dedup", log, fail=True), _Cache("states", log)],
        _Sink(log),
        metrics,
    )
    sequence.run()  # no exception
    assert "states.flush" in log  # the steps after the failing one still ran
    assert metrics.worker_errors.labels(stage="commit")._value.get() == 1


def _events(use_case: str, n: int, **fields: Any) -> list[CostEvent]:
    return [CostEvent.model_validate(make_event(use_case, **fields)) for _ in range(n)]


def test_a_re_keyed_envelope_is_split_into_records_that_fit() -> None:
    events = _events("split", 300)
    whole = len(encode_cost_events(events))
    parts = sized_values(events, limit=whole // 5)
    assert len(parts) > 5
    assert all(body is not None and len(body) <= whole // 5 for _, body in parts)
    assert [e for part, _ in parts for e in part] == events  # all of them, in order
    huge = _events("split", 1, note="x" * 5000)
    assert sized_values(huge, limit=1000) == [(huge, None)]


@dataclass
class _Msg:
    topic: str
    partition: int
    offset: int


@dataclass
class _Rec:
    key: bytes | None
    value: bytes
    message: _Msg


class _Topic:
    def __init__(self, name: str) -> None:
        self.name = name

    def get_topic_name(self) -> str:
        return self.name


class _States(dict):
    partition: int | None = None


class _Dedup(MemoryDedupStore):
    partition: int | None = None


def _handler(sink: _Sink) -> IngestHandler:
    topic_map = {
        name: _Topic(t)
        for name, t in (
            ("cost_events", topics.COST_EVENTS),
            ("dlq", topics.COST_EVENTS_DLQ),
            ("alerts", topics.ALERTS),
            ("control", topics.CONTROL),
        )
    }
    pipeline = build_pipeline(Settings(_env_file=None))
    return IngestHandler(
        pipeline,
        _Dedup(),
        _States(),
        topic_map,
        signer=None,  # type: ignore[arg-type]
        outbox=Outbox(sink, dead_letter_topic=topic_map["dlq"]),
    )


def test_a_record_whose_handling_raises_is_dead_lettered_and_the_rest_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sink = _Sink()
    handler = _handler(sink)
    real = handler.pipeline.handle_batch

    def explode_on_bad(events: Any, dedup: Any, states: Any) -> Any:
        if events[0].use_case_id == "bad-apple":
            raise KeyError("a bug")
        return real(events, dedup, states)

    monkeypatch.setattr(handler.pipeline, "handle_batch", explode_on_bad)
    records = [
        _Rec(uc.encode(), orjson.dumps(make_event(uc)), _Msg(topics.COST_EVENTS, 0, i))
        for i, uc in enumerate(["fine-1", "bad-apple", "fine-2"])
    ]
    handler.handle_batch(records)
    assert handler.outcomes["accepted"] == 2
    handler.outbox.flush()
    letters = [orjson.loads(v) for t, _, v in sink.sent if t == topics.COST_EVENTS_DLQ]
    assert [(x["reason"], x["source"]["offset"]) for x in letters] == [("internal_error", 1)]
    assert "KeyError" in letters[0]["error"]


def test_a_keyless_270_kb_envelope_is_re_keyed_in_records_under_the_size_limit() -> None:
    sink = _Sink()
    handler = _handler(sink)
    uc = unique("keyless")
    members = [make_event(uc, cost=None) for _ in range(1200)]
    value = orjson.dumps({"envelope_version": 1, "events": members})
    assert 200_000 < len(value) < 1_048_576
    handler.handle_batch([_Rec(None, value, _Msg(topics.COST_EVENTS, 0, 7))])
    handler.outbox.flush()
    rekeyed = [v for t, _, v in sink.sent if t == topics.COST_EVENTS]
    assert len(rekeyed) >= 2 and all(len(v) < 1_000_000 for v in rekeyed)
    got = [e["cost_event_id"] for v in rekeyed for e in orjson.loads(v)["events"]]
    assert got == [m["cost_event_id"] for m in members]


def test_long_trace_ids_cannot_grow_a_use_case_state() -> None:
    pipeline = build_pipeline(Settings(_env_file=None))
    states: dict[str, Any] = {}
    dedup = MemoryDedupStore()
    uc = unique("traces")
    events = _events(uc, 20, trace_id=None)
    for i, event in enumerate(events):
        event.trace_id = f"{i:03d}" + "t" * 60_000
    pipeline.handle_batch(events, dedup, states)
    size = len(orjson.dumps(states[uc]))
    assert size < 50_000, size  # the ids alone were 1.2 MB
    traces = states[uc]["__aggregates__"]["tr"]
    assert len(traces) == 20
    assert all(len(k) <= MAX_ID_CHARS for k in traces)


def test_a_big_keyed_envelope_reaches_the_tenant_stage_in_records_under_the_limit() -> None:
    sink = _Sink()
    handler = _handler(sink)
    handler.topics["tenant_spend"] = _Topic(topics.TENANT_SPEND)  # type: ignore[assignment]
    uc = unique("keyed")
    members = [make_event(uc, cost=None) for _ in range(2700)]  # just under 1 MiB as sent
    value = orjson.dumps({"envelope_version": 1, "events": members})
    handler.handle_record(uc.encode(), value, _Msg(topics.COST_EVENTS, 0, 9), NOW, True)
    handler.outbox.flush()
    tenant = [v for t, _, v in sink.sent if t == topics.TENANT_SPEND]
    assert len(tenant) >= 2 and all(len(v) < 1_000_000 for v in tenant)
    assert sum(len(orjson.loads(v)["events"]) for v in tenant) == 2700
