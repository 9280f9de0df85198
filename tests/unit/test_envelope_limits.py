"""Size limits on records and envelope members: a record over ``max_record_bytes`` is refused
before it is parsed, and every envelope member is held to ``max_event_bytes`` on its own."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

import spendfuse.pipeline as pipeline_module
from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine
from spendfuse.schemas.codec import DEAD_LETTER_KEEPS_BYTES, encode
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.envelope import DEFAULT_MAX_RECORD_BYTES, encode_envelope
from tests.support.events import make_event

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)


def envelope(events: list[dict[str, Any]]) -> bytes:
    return encode_envelope(orjson.dumps(e) for e in events)


def padded(size: int, **fields: Any) -> dict[str, Any]:
    """An event whose compact JSON is exactly ``size`` bytes."""
    event = make_event("u", note="", **fields)
    event["note"] = "x" * (size - len(orjson.dumps(event)))
    assert len(orjson.dumps(event)) == size
    return event


def test_an_oversized_member_is_its_own_dead_letter_and_its_siblings_go_on() -> None:
    pipeline = Pipeline(Engine([]), max_event_bytes=2_000)
    members = [make_event("u", seconds=1), padded(5_000), make_event("u", seconds=2)]
    items = pipeline.decode_record(envelope(members), NOW, topic="t", partition=1, offset=9)
    assert [type(i).__name__ for i in items] == ["CostEvent", "DeadLetter", "CostEvent"]
    dead = items[1]
    assert isinstance(dead, DeadLetter) and dead.reason == "oversized"
    assert (dead.source.partition, dead.source.offset, dead.source.index) == (1, 9, 1)
    assert "envelope member 1 is 5000 bytes" in dead.error
    assert (
        "max_event_bytes limit of 2000" in dead.error and "SPENDFUSE_MAX_EVENT_BYTES" in dead.error
    )
    assert orjson.loads(dead.original) == members[1]


def test_a_member_is_refused_from_one_byte_over_the_limit() -> None:
    pipeline = Pipeline(Engine([]), max_event_bytes=1_000)
    at, over = padded(1_000, cost_event_id="at"), padded(1_001, cost_event_id="over")
    fill = [make_event("u", seconds=i) for i in range(4)]  # the record is over the limit
    items = pipeline.decode_record(envelope([at, over, *fill]), NOW)
    assert isinstance(items[0], CostEvent) and items[0].cost_event_id == "at"
    assert isinstance(items[1], DeadLetter) and items[1].reason == "oversized"
    assert all(isinstance(i, CostEvent) for i in items[2:])


def test_an_oversized_member_is_refused_even_when_it_is_otherwise_invalid() -> None:
    pipeline = Pipeline(Engine([]), max_event_bytes=2_000)
    (dead, ok) = pipeline.decode_record(
        envelope([padded(3_000, input_tokens=-1), make_event("u")]), NOW
    )
    assert isinstance(dead, DeadLetter) and dead.reason == "oversized"  # size comes first
    assert isinstance(ok, CostEvent)


def test_a_record_over_max_record_bytes_is_refused_without_being_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_parsing(raw: bytes) -> Any:
        raise AssertionError("the record was parsed")

    monkeypatch.setattr(pipeline_module, "orjson", SimpleNamespace(loads=no_parsing))
    events = [padded(4_000, cost_event_id=f"e{i}") for i in range(300)]
    raw = envelope(events)  # 1.2 MB of valid events
    assert len(raw) > DEFAULT_MAX_RECORD_BYTES
    (dead,) = Pipeline(Engine([])).decode_record(raw, NOW, key=b"u", offset=4)
    assert isinstance(dead, DeadLetter) and dead.reason == "record_oversized"
    assert f"over the max_record_bytes limit of {DEFAULT_MAX_RECORD_BYTES}" in dead.error
    assert "SPENDFUSE_MAX_RECORD_BYTES" in dead.error and f"{len(raw)} bytes" in dead.error
    assert dead.source.index is None and dead.source.offset == 4
    assert dead.original == raw[:DEAD_LETTER_KEEPS_BYTES]
    assert len(encode(dead)) < 1024 * 1024  # the dead letter fits a Kafka record


def test_a_record_at_max_record_bytes_is_still_decoded() -> None:
    events = [padded(1_000, cost_event_id=f"e{i}") for i in range(10)]
    raw = envelope(events)
    pipeline = Pipeline(Engine([]), max_event_bytes=1_000, max_record_bytes=len(raw))
    items = pipeline.decode_record(raw, NOW)
    assert [i.cost_event_id for i in items if isinstance(i, CostEvent)] == [
        f"e{i}" for i in range(10)
    ]
    (dead,) = Pipeline(Engine([]), 1_000, max_record_bytes=len(raw) - 1).decode_record(raw, NOW)
    assert isinstance(dead, DeadLetter) and dead.reason == "record_oversized"


def test_a_one_event_record_over_max_record_bytes_is_refused_the_same_way() -> None:
    raw = b'{"note": "' + b"x" * 2_000_000 + b'"}'
    (dead,) = Pipeline(Engine([])).decode_record(raw, NOW)
    assert isinstance(dead, DeadLetter) and dead.reason == "record_oversized"


@pytest.mark.parametrize("depth", [300, 1_000])
def test_a_deeply_nested_member_is_decided_without_raising(depth: int) -> None:
    """orjson writes 254 levels at most but reads 1024: a refused member's bytes still come."""
    nested: Any = 1
    for _ in range(depth):
        nested = [nested]
    bad, good = make_event("u", input_tokens=-1, extra=nested), make_event("u", extra=nested)
    raw = b'{"envelope_version":1,"events":[%s,%s]}' % (
        orjson.dumps({**bad, "extra": 0})[:-1]
        + b',"extra":'
        + b"[" * depth
        + b"1"
        + b"]" * depth
        + b"}",
        orjson.dumps({**good, "extra": 0})[:-1]
        + b',"extra":'
        + b"[" * depth
        + b"1"
        + b"]" * depth
        + b"}",
    )
    items = Pipeline(Engine([]), max_event_bytes=1 << 20).decode_record(raw, NOW)
    assert isinstance(items[0], DeadLetter) and items[0].reason == "negative_value"
    assert items[0].source.index == 0 and items[0].original
    assert isinstance(items[1], CostEvent)
