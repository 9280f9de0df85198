"""The cost event contract: field names, validation errors that say what to fix, extras kept."""

from __future__ import annotations

import contextlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spendfuse.schemas import CostEvent, EventRejectedError, decode_cost_event, encode
from spendfuse.schemas.codec import REJECTION_REASONS, parse_cost_event_obj
from tests.support.events import make_event

DOMAIN_FIELDS = {
    "trace_id",
    "tenant_id",
    "business_unit",
    "cost_center",
    "use_case_id",
    "workflow_step",
    "risk_tier",
    "environment",
    "user_role",
    "route_policy_version",
    "cache_status",
    "business_outcome_id",
    "cost_event_id",
    "component",
    "provider",
    "model_or_service",
    "input_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "gpu_seconds",
    "api_calls",
    "unit_price",
    "allocated_cost_usd",
    "allocation_method",
    "pricing_version",
    "retention_class",
    "event_time",
    "schema_version",
    "step_number",
    "is_retry",
}


def test_every_domain_field_is_in_the_model() -> None:
    assert set(CostEvent.model_fields) >= DOMAIN_FIELDS


def test_round_trip_keeps_unknown_fields_and_rfc3339_utc() -> None:
    raw = make_event("u1", event_time="2026-11-23T10:00:00+02:00", shiny_new_field={"a": 1})
    event = decode_cost_event(orjson.dumps(raw))
    assert event.model_extra == {"shiny_new_field": {"a": 1}}
    out = orjson.loads(encode(event))
    assert out["event_time"] == "2026-11-23T08:00:00.000Z"
    assert out["shiny_new_field"] == {"a": 1}
    assert decode_cost_event(encode(event)) == event


@pytest.mark.parametrize(
    ("mutate", "reason", "field", "fragment"),
    [
        (lambda e: e.pop("tenant_id"), "validation", "tenant_id", "tenant_id: Field required"),
        (
            lambda e: e.update(input_tokens="many"),
            "validation",
            "input_tokens",
            "send a whole number",
        ),
        (lambda e: e.update(input_tokens=-3), "negative_value", "input_tokens", "non-negative"),
        (
            lambda e: e.update(risk_tier="extreme"),
            "validation",
            "risk_tier",
            "'low', 'medium', 'high' or 'critical'",
        ),
        (lambda e: e.update(event_time="2026-11-23 10:00"), "validation", "event_time", "RFC 3339"),
        (
            lambda e: e.update(schema_version=2),
            "unknown_schema_version",
            "schema_version",
            "not supported",
        ),
        (lambda e: e.pop("schema_version"), "validation", "schema_version", "Field required"),
    ],
)
def test_bad_events_name_the_field_and_the_fix(mutate, reason, field, fragment) -> None:
    raw = make_event("u1")
    mutate(raw)
    with pytest.raises(EventRejectedError) as info:
        decode_cost_event(orjson.dumps(raw))
    assert info.value.reason == reason
    assert info.value.field == field
    assert fragment in info.value.message


def test_non_json_and_oversized_payloads_are_refused() -> None:
    with pytest.raises(EventRejectedError) as info:
        decode_cost_event(b"\xff\xfe garbage")
    assert info.value.reason == "invalid_json"
    with pytest.raises(EventRejectedError) as info:
        decode_cost_event(orjson.dumps(make_event("u1", note="x" * 100)), max_bytes=200)
    assert info.value.reason == "oversized"
    with pytest.raises(EventRejectedError) as info:
        decode_cost_event(b"[1, 2]")
    assert "JSON object" in info.value.message


@given(st.binary(max_size=300))
def test_decoder_never_raises_anything_but_a_rejection(payload: bytes) -> None:
    with contextlib.suppress(EventRejectedError):
        decode_cost_event(payload)


@given(
    st.dictionaries(
        st.sampled_from(sorted(DOMAIN_FIELDS)),
        st.one_of(st.none(), st.integers(), st.text(max_size=5), st.floats(), st.booleans()),
    )
)
def test_any_json_object_is_accepted_or_rejected_cleanly(obj: dict) -> None:
    try:
        parse_cost_event_obj({**make_event("u1"), **obj})
    except EventRejectedError as exc:
        assert exc.reason in REJECTION_REASONS
