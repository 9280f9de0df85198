"""The columnar decoder decides every input exactly as the pydantic model does.

``validate_events`` (columns, with pydantic only for the rows it cannot vouch for) must give, for
any list of parsed JSON values, what ``parse_cost_event_obj`` gives for each one: the same
accept or refuse, the same reason code, field and message, and an event equal field by field
(same values, same Python types, same fields set, same extras, the same JSON bytes). Records of
a few events take the row-by-row checks and larger ones the column checks, so both are drawn.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine
from spendfuse.schemas.codec import (
    DEFAULT_MAX_EVENT_BYTES,
    _json_rejection,
    decode_cost_event,
    encode_cost_events,
    parse_cost_event_obj,
)
from spendfuse.schemas.columnar import ROWS_BELOW, validate_events
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.envelope import encode_envelope
from spendfuse.schemas.errors import EventRejectedError
from tests.fuzz.test_decoder_fuzz import hostile_numbers, hostile_times, json_values, mutated_events

EQUIVALENCE = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def reference(obj: Any) -> CostEvent | EventRejectedError:
    """The pure-pydantic decision on one parsed event."""
    try:
        return parse_cost_event_obj(obj)
    except EventRejectedError as exc:
        return exc


def reference_decode(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> Any:
    """``decode_cost_event`` as it was before columns: size, JSON, then the model."""
    if len(raw) > max_bytes:
        return "oversized"
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return _json_rejection(raw, exc)
    return reference(obj)


def assert_same(got: Any, want: Any) -> None:
    if isinstance(want, EventRejectedError):
        assert isinstance(got, EventRejectedError), (got, want)
        assert (got.reason, got.field, got.message) == (want.reason, want.field, want.message)
        return
    assert isinstance(got, CostEvent), (got, want)
    assert got == want
    assert list(got.__dict__) == list(want.__dict__)
    assert [type(v) for v in got.__dict__.values()] == [type(v) for v in want.__dict__.values()]
    assert got.model_fields_set == want.model_fields_set
    assert got.model_extra == want.model_extra
    assert got.__pydantic_private__ == want.__pydantic_private__
    assert got.event_time.tzinfo is want.event_time.tzinfo
    assert got.model_dump_json() == want.model_dump_json()
    assert encode_cost_events([got]) == encode_cost_events([want])


def parsed(values: list[Any]) -> list[Any] | None:
    """The values as orjson reads them back from careless JSON (NaN, huge ints); None if orjson
    refuses the text (then no member reaches validation)."""
    try:
        return orjson.loads(json.dumps(values, allow_nan=True))
    except orjson.JSONDecodeError:
        return None


# -- strategies: mostly valid events, so that the accepting paths are exercised too -------------


@st.composite
def rfc3339ish(draw: st.DrawFn) -> str:
    """Times near and far from valid: zones, fractions, separators, impossible dates."""
    year = draw(st.integers(1999, 2101) | st.integers(1, 9999))
    month, day = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    hour, minute, second = (
        draw(st.integers(0, 25)),
        draw(st.integers(0, 60)),
        draw(st.integers(0, 61)),
    )
    frac = draw(
        st.sampled_from(["", ".1", ".12", ".123", ".123456", ".1234567", ".999999999", "."])
    )
    zone = draw(
        st.sampled_from(
            [
                "Z",
                "z",
                "+00:00",
                "-00:00",
                "+02:00",
                "-09:30",
                "+23:59",
                "-23:59",
                "+24:00",
                "+12:60",
                "+0200",
                "",
                "+02",
                "+02:00:00",
            ]
        )
    )
    sep = draw(st.sampled_from(["T", "T", "T", "t", " "]))
    return f"{year:04d}-{month:02d}-{day:02d}{sep}{hour:02d}:{minute:02d}:{second:02d}{frac}{zone}"


def _iso(when: datetime) -> str:
    return when.isoformat()


times = (
    rfc3339ish()
    | st.datetimes(
        min_value=datetime(1999, 12, 31), max_value=datetime(2100, 1, 2), timezones=st.timezones()
    ).map(_iso)
    | hostile_times
    | st.sampled_from(["٢٠٢٦-11-23T09:00:00Z", "2026-11-23T09:00:00Z\n", "2026-11-23T09:00:00.Z"])
)
counts = (
    st.integers(0, 10_000)
    | st.integers(-3, 2**53 + 3)
    | st.sampled_from([0, 2**53, 2**53 + 1, -1, 1.0, 2.5, True, False, None, "7", 10**20])
    | hostile_numbers
)
amounts = (
    st.floats(0, 1e9)
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_numbers
    | st.sampled_from(
        [0, 5, 10**9, 10**9 + 1, -0.0, 1e9, math.nextafter(1e9, 2e9), None, True, "0.5", 10**400]
    )
)
ids = (
    st.text(min_size=1, max_size=12)
    | st.text(max_size=260)
    | st.sampled_from(["", "x" * 256, "x" * 257, "é" * 256, "😀" * 257])
)
optional_strings = (
    st.none()
    | st.text(max_size=20)
    | st.sampled_from([1, ["a"], {"a": 1}, True, "x" * 128, "x" * 129, "é" * 256, "é" * 257])
    | st.sampled_from(["x" * 512, "x" * 513])
)

FIELDS: dict[str, Any] = {
    "schema_version": st.sampled_from([1, 1, 1, 1.0, 2, True, "1", None]),
    "cost_event_id": ids,
    "event_time": times,
    "tenant_id": ids,
    "use_case_id": ids,
    "risk_tier": st.sampled_from(["low", "medium", "high", "critical", "LOW", "", 1, None]),
    "environment": st.sampled_from(["prod", "staging", "dev", "sandbox", "qa", None]),
    "component": st.sampled_from(["model_call", "retrieval", "tool_call", "judge", "gpu", "x"]),
    "trace_id": optional_strings,
    "workflow_step": optional_strings,
    "cache_status": st.sampled_from(["hit", "miss", "partial", "bypass", "HIT", None, 1]),
    "step_number": st.none() | counts,
    "is_retry": st.sampled_from([True, False, 0, 1, "true", None]),
    "input_tokens": counts,
    "output_tokens": counts,
    "api_calls": counts,
    "gpu_seconds": amounts,
    "unit_price": amounts,
    "allocated_cost_usd": amounts,
    "allocation_method": st.sampled_from(["direct_metered", "proportional", "nope"]),
    "pricing_status": st.sampled_from(["provided", "catalog", "unpriced", "free"]),
    "provider": optional_strings,
}
VALID: dict[str, Any] = {
    "schema_version": 1,
    "cost_event_id": "e-1",
    "event_time": "2026-11-23T09:00:00Z",
    "tenant_id": "acme",
    "use_case_id": "bot",
    "risk_tier": "low",
    "environment": "prod",
    "component": "model_call",
    "input_tokens": 1200,
    "output_tokens": 300,
    "allocated_cost_usd": 0.0123,
}
EXTRAS = st.dictionaries(
    st.sampled_from(["note", "region", "x", "cost_usd", "model_config"]), json_values, max_size=2
)


_valid_amounts = st.floats(0, 1e9) | st.integers(0, 10**9)
GOOD: dict[str, Any] = {
    "trace_id": st.none() | st.text(max_size=20),
    "workflow_step": st.none() | st.text(max_size=20),
    "provider": st.none() | st.text(max_size=20),
    "cache_status": st.sampled_from(["hit", "miss", "partial", "bypass", None]),
    "step_number": st.none() | st.integers(0, 100),
    "is_retry": st.booleans(),
    "api_calls": st.integers(0, 2**53),
    "gpu_seconds": _valid_amounts,
    "unit_price": st.none() | _valid_amounts,
    "allocation_method": st.sampled_from(["direct_metered", "proportional", "shared_pool"]),
    "pricing_status": st.sampled_from(["provided", "catalog", "unpriced"]),
}
"""Valid values of the optional fields, drawn most of the time."""


@st.composite
def shapes(draw: st.DrawFn) -> tuple[str, ...]:
    """A key order producers share within a record: the valid keys, some optional ones."""
    optional = draw(st.lists(st.sampled_from(sorted(set(FIELDS) - set(VALID))), unique=True))
    keys = list(VALID) + optional
    if draw(st.booleans()):
        keys.remove(draw(st.sampled_from(keys)))
    return tuple(draw(st.permutations(keys)) if draw(st.booleans()) else keys)


@st.composite
def event_with(draw: st.DrawFn, shape: tuple[str, ...]) -> dict[str, Any]:
    """An event of the given shape, each value kept valid or redrawn (mostly kept)."""
    event: dict[str, Any] = {}
    for name in shape:
        good = draw(st.integers(0, 29)) > 1
        if name in VALID and good:
            event[name] = VALID[name]
        elif name in GOOD and good:
            event[name] = draw(GOOD[name])
        else:
            event[name] = draw(FIELDS[name])
    return event


@st.composite
def records(draw: st.DrawFn) -> list[Any]:
    """One record's members: one shape (sometimes two), sizes either side of ``ROWS_BELOW``."""
    size = draw(st.sampled_from([1, 2, ROWS_BELOW - 1, ROWS_BELOW, ROWS_BELOW + 3, 40]))
    first, second = draw(shapes()), draw(shapes())
    extras = draw(EXTRAS)
    members: list[Any] = []
    for i in range(size):
        shape = second if draw(st.integers(0, 9)) == 0 else first
        event = draw(event_with(shape))
        if extras and i % 2 == 0:
            event.update(extras)
        members.append(event)
    if draw(st.integers(0, 4)) == 0:
        members.insert(draw(st.integers(0, len(members))), draw(json_values | mutated_events()))
    return members


# -- properties ---------------------------------------------------------------------------------


@EQUIVALENCE
@given(records())
def test_columns_decide_every_member_as_the_model_does(members: list[Any]) -> None:
    values = parsed(members)
    if values is None:
        return
    got = validate_events(values)
    assert len(got) == len(values)
    for result, value in zip(got, values, strict=True):
        assert_same(result, reference(value))


@EQUIVALENCE
@given(st.lists(mutated_events() | json_values, min_size=1, max_size=3 * ROWS_BELOW))
def test_the_fuzz_corpus_is_decided_as_the_model_does(members: list[Any]) -> None:
    values = parsed(members)
    if values is None:
        return
    for result, value in zip(validate_events(values), values, strict=True):
        assert_same(result, reference(value))


@EQUIVALENCE
@given(st.binary(max_size=512) | mutated_events().map(lambda e: json.dumps(e).encode()))
@example(b'{"schema_version": 1e999}')
def test_one_event_records_are_decoded_as_before(raw: bytes) -> None:
    want = reference_decode(raw)
    try:
        got: Any = decode_cost_event(raw)
    except EventRejectedError as exc:
        got = exc
    assert_same(got, want)


@EQUIVALENCE
@given(records())
def test_envelopes_give_the_dead_letters_and_events_of_the_model(members: list[Any]) -> None:
    raw = encode_envelope(json.dumps(m, allow_nan=True).encode() for m in members)
    values = parsed(members)
    out = Pipeline(Engine([]), max_event_bytes=1 << 20).decode_record(raw, NOW, offset=3)
    if values is None:  # orjson refuses the envelope: one dead letter for the whole record
        assert len(out) == 1 and isinstance(out[0], DeadLetter) and out[0].source.index is None
        return
    assert len(out) == len(values)
    for index, (item, value) in enumerate(zip(out, values, strict=True)):
        want = reference(value)
        if isinstance(want, EventRejectedError):
            assert isinstance(item, DeadLetter)
            assert (item.reason, item.field, item.error) == (want.reason, want.field, want.message)
            assert (item.source.offset, item.source.index) == (3, index)
            assert orjson.loads(item.original) == value
        else:
            assert_same(item, want)


@pytest.mark.parametrize("size", [1, ROWS_BELOW, 500])
def test_a_valid_batch_never_reaches_the_model(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of the columns: well-formed events are not validated by pydantic at all."""
    from spendfuse.schemas import columnar

    def refuse(obj: Any) -> Any:
        raise AssertionError(f"sent to the model: {obj}")

    monkeypatch.setattr(columnar, "explain", refuse)
    members = [
        {
            **VALID,
            "cost_event_id": f"e-{i}",
            "event_time": f"2026-11-23T09:{i % 60:02d}:00+02:00",
            "step_number": i,
            "gpu_seconds": i,
            "cache_status": "hit",
            "note": [i],
        }
        for i in range(size)
    ]
    events = validate_events(orjson.loads(orjson.dumps(members)))
    assert all(isinstance(e, CostEvent) for e in events)
    assert events[-1].gpu_seconds == float(size - 1) and events[-1].model_extra == {
        "note": [size - 1]
    }


@pytest.mark.parametrize("zone", ["+12:59", "+12:60", "-00:60", "+23:59"])
def test_a_zone_offset_with_60_minutes_is_refused_as_the_model_refuses_it(zone: str) -> None:
    """``datetime.fromisoformat`` reads ``+12:60`` as 13:00; the model refuses it."""
    event = {**VALID, "event_time": "2024-04-12T18:23:41" + zone}
    for rows in (1, ROWS_BELOW):
        for result in validate_events([dict(event) for _ in range(rows)]):
            assert_same(result, reference(event))
