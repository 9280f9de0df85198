"""Property-based tests of the event decoder: whatever the bytes, a valid event or a clean refusal.

A refusal is an :class:`EventRejectedError` with a known reason code, the field when the problem
is in one, and a message that says how to fix it; never any other exception. Valid events keep
the contract's invariants (finite, non-negative, bounded numbers; a UTC time in range) and
survive a round trip through the wire format.
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine
from spendfuse.schemas.codec import (
    DEAD_LETTER_KEEPS_BYTES,
    DEFAULT_MAX_EVENT_BYTES,
    REJECTION_REASONS,
    decode,
    decode_cost_event,
    encode,
)
from spendfuse.schemas.cost_event import (
    EARLIEST_EVENT_TIME,
    LATEST_EVENT_TIME,
    MAX_AMOUNT,
    MAX_COUNT,
    CostEvent,
)
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.errors import EventRejectedError
from tests.support.events import make_event

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
FIX = re.compile(r"\b(send|add|use|upgrade|publish|keep)\b")
FIELD_REASONS = {
    "negative_value",
    "number_out_of_range",
    "event_time_out_of_range",
    "unknown_schema_version",
    "string_too_long",
}
AMOUNTS = ("allocated_cost_usd", "unit_price", "gpu_seconds")
COUNTS = (
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "api_calls",
    "step_number",
)


def base_event() -> dict[str, Any]:
    return make_event("fuzz-bot", cost_event_id="fuzz-1", trace_id="trace-1")


def dumps(obj: Any) -> bytes:
    """JSON as a careless producer might write it: the stdlib writes NaN, Infinity and ints of
    any size, which orjson would refuse to write."""
    return json.dumps(obj, allow_nan=True).encode()


def decode_or_refusal(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> CostEvent | None:
    """Decode ``raw``; check the event's invariants or the refusal's shape; None if refused."""
    try:
        event = decode_cost_event(raw, max_bytes)
    except EventRejectedError as exc:
        assert exc.reason in REJECTION_REASONS, exc.reason
        assert FIX.search(exc.message), f"no fix in {exc.message!r}"
        if exc.reason in FIELD_REASONS:
            assert exc.field and exc.field.split(".")[0] in CostEvent.model_fields, exc
        return None
    assert EARLIEST_EVENT_TIME <= event.event_time < LATEST_EVENT_TIME
    assert event.event_time.utcoffset() == UTC.utcoffset(None)
    for name in AMOUNTS:
        value = getattr(event, name)
        assert value is None or (math.isfinite(value) and 0 <= value <= MAX_AMOUNT), name
    for name in COUNTS:
        value = getattr(event, name)
        assert value is None or (type(value) is int and 0 <= value <= MAX_COUNT), name
    wire = encode(event)  # what the tenant stage and the DLQ tooling read back
    assert encode(decode_cost_event(wire, 1 << 22)) == wire
    return event


def rejection(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> EventRejectedError:
    """The refusal of ``raw`` (checked by :func:`decode_or_refusal` too)."""
    assert decode_or_refusal(raw, max_bytes) is None
    with pytest.raises(EventRejectedError) as info:
        decode_cost_event(raw, max_bytes)
    return info.value


# -- strategies ---------------------------------------------------------------------------------

hostile_numbers = st.sampled_from(
    [
        -1,
        -0.5,
        -1e-300,
        0,
        2**53,
        2**53 + 1,
        2**63,
        2**64,
        2**64 + 1,
        10**30,
        1e308,
        1e10,
        MAX_AMOUNT,
        math.nan,
        math.inf,
        -math.inf,
        "NaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1e999",
        "12",
        " 7 ",
        "1_000",
        "0x10",
        True,
        False,
    ]
)
hostile_times = st.sampled_from(
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "1999-12-31T23:59:59.999Z",
        "2000-01-01T00:00:00Z",
        "2099-12-31T23:59:59.999Z",
        "2100-01-01T00:00:00Z",
        "2026-11-23T09:00:00",
        "2026-11-23T10:00:00+02:00",
        "2026-11-23T09:00:00+23:59",
        "2026-11-23",
        "2026-02-30T00:00:00Z",
        "2026-11-23T09:00:00.123456789Z",
        "",
        "now",
        0,
        -1,
        1_795_000_000,
        1e20,
        2**64,
    ]
)
long_strings = st.sampled_from(["x" * 128, "x" * 129, "x" * 256, "x" * 257, "é" * 513])
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=30),
    hostile_numbers,
    long_strings,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(sorted(set(CostEvent.model_fields) | set(base_event())))


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event with a few fields deleted, replaced, retyped or added."""
    event = base_event()
    for _ in range(draw(st.integers(1, 4))):
        name = draw(field_names | st.text(max_size=10))
        action = draw(st.sampled_from(["delete", "replace", "hostile", "retype", "time"]))
        if action == "delete":
            event.pop(name, None)
        elif action == "replace":
            event[name] = draw(json_values)
        elif action == "hostile":
            event[name] = draw(hostile_numbers)
        elif action == "time":
            event["event_time"] = draw(hostile_times)
        else:
            value = event.get(name)
            event[name] = draw(st.sampled_from([str(value), [value], {"value": value}, None]))
    return event


# -- properties ---------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\x00")
@example(b"\xff\xfe{}")
@example(b'{"schema_version": 1e999}')
@example(b"[" * 5000 + b"]" * 5000)
def test_arbitrary_bytes_are_decoded_or_refused_cleanly(raw: bytes) -> None:
    decode_or_refusal(raw)


@FUZZ
@given(json_values)
def test_arbitrary_json_values_are_decoded_or_refused_cleanly(value: Any) -> None:
    decode_or_refusal(dumps(value))


@FUZZ
@given(mutated_events())
def test_mutated_events_are_decoded_or_refused_cleanly(event: dict[str, Any]) -> None:
    decode_or_refusal(dumps(event))


@FUZZ
@given(st.binary(max_size=512) | mutated_events().map(dumps))
def test_the_pipeline_turns_every_refusal_into_a_dead_letter(raw: bytes) -> None:
    out = Pipeline(Engine()).decode(raw, NOW, key=b"k", topic="t", partition=0, offset=7)
    if isinstance(out, DeadLetter):
        assert out.reason in REJECTION_REASONS
        assert decode(encode(out), DeadLetter) == out  # the DLQ record reads back
        assert out.original == raw
    else:
        assert isinstance(out, CostEvent)


# -- the cases named in the event contract ------------------------------------------------------


def test_a_10_mb_record_is_refused_by_size_before_parsing() -> None:
    raw = b'{"note": "' + b"x" * 10_000_000  # not even JSON: parsing it would say so
    started = time.perf_counter()
    error = rejection(raw)
    assert time.perf_counter() - started < 0.5
    assert error.reason == "oversized"
    assert "max_event_bytes" in error.message and str(DEFAULT_MAX_EVENT_BYTES) in error.message
    assert "send one event per record" in error.message
    dead = Pipeline(Engine()).decode(raw, NOW)
    assert isinstance(dead, DeadLetter) and dead.reason == "oversized"
    assert len(encode(dead)) < 1024 * 1024  # fits a Kafka record (dead letters go to a topic)
    assert dead.original == raw[:DEAD_LETTER_KEEPS_BYTES] and "cut to its first" in dead.error


@pytest.mark.parametrize("depth", [1025, 100_000])
def test_deep_nesting_is_refused_cleanly(depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    assert rejection(nested, 1 << 20).reason == "too_deeply_nested"
    in_event = dumps(base_event())[:-1] + b', "extra": ' + nested + b"}"
    assert rejection(in_event, 1 << 20).reason == "too_deeply_nested"
    expected = "oversized" if len(nested) > DEFAULT_MAX_EVENT_BYTES else "too_deeply_nested"
    assert rejection(nested).reason == expected  # the size is checked first


def test_nesting_under_the_parser_limit_is_kept_as_an_extra_field() -> None:
    event = decode_or_refusal(dumps({**base_event(), "extra": [[[[[[[[1]]]]]]]]}))
    assert event is not None and event.model_extra == {"extra": [[[[[[[[1]]]]]]]]}


@pytest.mark.parametrize("name", AMOUNTS)
@pytest.mark.parametrize(
    "literal",
    [
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"1e999",
        b"-1e999",
        b'"NaN"',
        b'"Infinity"',
        b'"-Infinity"',
        b'"inf"',
        b'"1e999"',
    ],
)
def test_non_finite_amounts_are_refused_naming_the_field(name: str, literal: bytes) -> None:
    raw = dumps({**base_event(), name: 1.5}).replace(b"1.5", literal)
    error = rejection(raw)
    assert (error.reason, error.field) == ("non_finite_number", name)
    assert "finite number" in error.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("input_tokens", -1),
        ("output_tokens", -3),
        ("cached_tokens", -1),
        ("api_calls", -2),
        ("step_number", -1),
        ("allocated_cost_usd", -0.01),
        ("unit_price", -1e-9),
        ("gpu_seconds", -5),
    ],
)
def test_negative_values_are_refused_naming_the_field(name: str, value: float) -> None:
    error = rejection(dumps({**base_event(), name: value}))
    assert (error.reason, error.field) == ("negative_value", name)
    assert "send a non-negative number" in error.message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("input_tokens", 2**64 + 1),
        ("output_tokens", 10**40),
        ("api_calls", 2**53 + 1),
        ("allocated_cost_usd", 2**65),
        ("allocated_cost_usd", 1e308),
        ("gpu_seconds", 1e10),
    ],
)
def test_huge_numbers_are_refused_naming_the_field(name: str, value: float) -> None:
    error = rejection(dumps({**base_event(), name: value}))
    assert (error.reason, error.field) == ("number_out_of_range", name)


def test_true_is_not_a_number() -> None:
    error = rejection(dumps({**base_event(), "allocated_cost_usd": True}))
    assert (error.reason, error.field) == ("validation", "allocated_cost_usd")


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59-01:00",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "1999-12-31T23:59:59.999Z",
        "2100-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",
        0,
    ],
)
def test_implausible_event_times_are_refused(when: str | int) -> None:
    error = rejection(dumps({**base_event(), "event_time": when}))
    assert (error.reason, error.field) == ("event_time_out_of_range", "event_time")
    assert "send the time the spend happened, RFC 3339 UTC" in error.message


@pytest.mark.parametrize(
    ("when", "utc"),
    [
        ("2000-01-01T00:00:00Z", "2000-01-01T00:00:00.000Z"),
        ("2099-12-31T23:59:59.999Z", "2099-12-31T23:59:59.999Z"),
        ("2026-11-23T10:00:00+02:00", "2026-11-23T08:00:00.000Z"),
        ("2026-11-23T09:00:00-09:30", "2026-11-23T18:30:00.000Z"),
    ],
)
def test_times_in_range_are_accepted_in_utc(when: str, utc: str) -> None:
    event = decode_or_refusal(dumps({**base_event(), "event_time": when}))
    assert event is not None and orjson.loads(encode(event))["event_time"] == utc


@pytest.mark.parametrize("when", ["2026-11-23T09:00:00", "2026-11-23", "2026-11-23 09:00"])
def test_times_without_a_zone_are_refused(when: str) -> None:
    error = rejection(dumps({**base_event(), "event_time": when}))
    assert (error.reason, error.field) == ("validation", "event_time")
    assert "RFC 3339" in error.message


@pytest.mark.parametrize("version", [[], {}, [1], "1", 2, True, 1e300])
def test_odd_schema_versions_are_refused(version: Any) -> None:
    error = rejection(dumps({**base_event(), "schema_version": version}))
    assert (error.reason, error.field) == ("unknown_schema_version", "schema_version")
