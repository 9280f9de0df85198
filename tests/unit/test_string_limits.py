"""Every string field of the cost and outcome events has a maximum length, and a longer one is
refused as ``string_too_long`` with the field, its length, the limit and the fix, on the model
path and the columnar path alike."""

from __future__ import annotations

import orjson
import pytest

from spendfuse.dedup import MemoryDedupStore
from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine
from spendfuse.schemas.codec import REJECTION_REASONS, decode_cost_events, parse_cost_event_obj
from spendfuse.schemas.columnar import ROWS_BELOW
from spendfuse.schemas.cost_event import (
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_NAME_CHARS,
    CostEvent,
)
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.errors import EventRejectedError
from spendfuse.schemas.outcome import OutcomeEvent, decode_outcome_event
from tests.support.events import BASE_TIME, make_event

IDS = ("cost_event_id", "tenant_id", "use_case_id", "trace_id", "business_outcome_id")
LABELS = (
    "business_unit",
    "cost_center",
    "user_role",
    "route_policy_version",
    "prompt_version",
    "provider",
    "pricing_version",
    "retention_class",
)
NAMES = ("workflow_step", "model_or_service")


def _refusal(**fields: object) -> EventRejectedError:
    with pytest.raises(EventRejectedError) as info:
        parse_cost_event_obj(make_event("uc", **fields))
    return info.value


def test_every_string_field_of_the_cost_event_has_a_stated_limit() -> None:
    limits = {
        name: next(m.max_length for m in field.metadata if hasattr(m, "max_length"))
        for name, field in CostEvent.model_fields.items()
        if str in (field.annotation, *getattr(field.annotation, "__args__", ()))
    }
    assert limits == {
        **dict.fromkeys(IDS, MAX_ID_CHARS),
        **dict.fromkeys(LABELS, MAX_LABEL_CHARS),
        **dict.fromkeys(NAMES, MAX_NAME_CHARS),
    }
    assert "string_too_long" in REJECTION_REASONS


def test_an_id_over_its_limit_is_refused_with_its_length_the_limit_and_the_fix() -> None:
    exc = _refusal(trace_id="t" * 257)
    assert (exc.reason, exc.field) == ("string_too_long", "trace_id")
    assert exc.message == (
        "trace_id: 257 characters, over the limit of 256 for an id; send at most 256 "
        "characters (a hash of a longer id fits)"
    )


def test_a_label_over_its_limit_is_refused() -> None:
    exc = _refusal(cost_center="c" * 129)
    assert (exc.reason, exc.field) == ("string_too_long", "cost_center")
    assert exc.message == (
        "cost_center: 129 characters, over the limit of 128 for a label; send at most 128 "
        "characters (a code, not a description)"
    )


def test_a_name_over_its_limit_is_refused() -> None:
    exc = _refusal(model_or_service="m" * 600)
    assert (exc.reason, exc.field) == ("string_too_long", "model_or_service")
    assert exc.message == (
        "model_or_service: 600 characters, over the limit of 512 for a name; send at most 512 "
        "characters (shorten it or move detail to an extra field)"
    )


def test_lengths_are_counted_in_characters_and_the_limit_itself_passes() -> None:
    event = parse_cost_event_obj(
        make_event("uc", trace_id="é" * MAX_ID_CHARS, provider="😀" * MAX_LABEL_CHARS)
    )
    assert len(event.trace_id or "") == MAX_ID_CHARS
    assert _refusal(trace_id="é" * 257).message.startswith("trace_id: 257 characters")


def test_a_long_trace_id_within_the_limit_is_accepted() -> None:
    """Ids over 64 characters are legitimate: state keeps them as a digest."""
    event = parse_cost_event_obj(make_event("uc", trace_id="span-" + "a" * 200))
    assert event.trace_id is not None and len(event.trace_id) == 205


@pytest.mark.parametrize("rows", [1, ROWS_BELOW - 1, ROWS_BELOW, 40])
def test_the_columnar_path_refuses_exactly_as_the_model_does(rows: int) -> None:
    members = [make_event("uc", seconds=i) for i in range(rows)]
    members[rows // 2] = make_event("uc", seconds=rows // 2, workflow_step="w" * 513)
    results = decode_cost_events(members)
    refused = [r for r in results if isinstance(r, EventRejectedError)]
    assert len(refused) == 1 and results[rows // 2] is refused[0]
    expected = _refusal(workflow_step="w" * 513)
    assert (refused[0].reason, refused[0].field, refused[0].message) == (
        expected.reason,
        expected.field,
        expected.message,
    )
    assert sum(isinstance(r, CostEvent) for r in results) == rows - 1


def test_an_over_long_member_is_one_dead_letter_and_its_siblings_count() -> None:
    members = [
        make_event("uc", cost=1.0, seconds=0),
        make_event("uc", cost=1.0, seconds=1, business_outcome_id="o" * 1000),
        make_event("uc", cost=1.0, seconds=2),
    ]
    raw = orjson.dumps({"envelope_version": 1, "events": members})
    states: dict[str, object] = {}
    result = Pipeline(Engine()).run_record(
        raw, BASE_TIME, MemoryDedupStore(), states, partition=0, offset=7
    )
    (dead,) = result.dead_letters
    assert isinstance(dead, DeadLetter)
    assert (dead.reason, dead.field, dead.source.index) == (
        "string_too_long",
        "business_outcome_id",
        1,
    )
    assert dead.error.startswith("business_outcome_id: 1000 characters, over the limit of 256")
    assert orjson.loads(dead.original) == members[1]
    assert [e.cost_event_id for e in result.accepted] == [
        members[0]["cost_event_id"],
        members[2]["cost_event_id"],
    ]


def _outcome(**fields: object) -> bytes:
    return orjson.dumps(
        {
            "schema_version": 1,
            "outcome_event_id": "oe-1",
            "event_time": "2026-06-29T16:20:00Z",
            "tenant_id": "t",
            "use_case_id": "u",
            "business_outcome_id": "case_1",
            "status": "resolved",
            **fields,
        }
    )


def test_the_outcome_event_has_the_same_limits_and_reason() -> None:
    for name, field in OutcomeEvent.model_fields.items():
        if str in (field.annotation, *getattr(field.annotation, "__args__", ())):
            assert any(getattr(m, "max_length", None) for m in field.metadata), name
    assert decode_outcome_event(_outcome(business_outcome_id="c" * MAX_ID_CHARS))
    with pytest.raises(EventRejectedError) as info:
        decode_outcome_event(_outcome(business_outcome_id="c" * 300))
    assert (info.value.reason, info.value.field) == ("string_too_long", "business_outcome_id")
    assert info.value.message == (
        "business_outcome_id: 300 characters, over the limit of 256 for an id; send at most "
        "256 characters (a hash of a longer id fits)"
    )
    with pytest.raises(EventRejectedError) as info:
        decode_outcome_event(_outcome(outcome_type="x" * 129))
    assert (info.value.reason, info.value.field) == ("string_too_long", "outcome_type")
