"""The orjson codec for every wire model, and the strict decoder for incoming cost events.

``decode_cost_event`` is the single gate events pass: anything it refuses raises
:class:`EventRejectedError` with a reason code, the offending field and a fix hint, which the
caller turns into a dead letter. It never raises anything else for bad input, whatever the bytes
(tests/fuzz holds it to that). The reason codes are listed in :data:`REJECTION_REASONS`; each is
its own label value of the ``spendfuse_events_dead_lettered`` metric.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, TypeAdapter, ValidationError

from spendfuse.schemas.columnar import validate_event, validate_events
from spendfuse.schemas.cost_event import STRING_KINDS, SUPPORTED_SCHEMA_VERSIONS, CostEvent
from spendfuse.schemas.dead_letter import DeadLetter, SourcePosition
from spendfuse.schemas.envelope import ENVELOPE_VERSION
from spendfuse.schemas.errors import EventRejectedError

DEFAULT_MAX_EVENT_BYTES = 64 * 1024
DEAD_LETTER_KEEPS_BYTES = 256 * 1024
"""The most of a refused record's value a dead letter keeps (base64 makes it 4/3 larger)."""
ModelT = TypeVar("ModelT", bound=BaseModel)

REJECTION_REASONS: dict[str, str] = {
    "oversized": "the event (a record, or one member of an envelope) is over max_event_bytes "
    "(checked before validating it)",
    "record_oversized": "the record is over max_record_bytes (checked before parsing it)",
    "invalid_json": "not UTF-8 JSON",
    "too_deeply_nested": "JSON nested deeper than the parser's limit (1024 levels)",
    "unknown_schema_version": "a schema_version this worker does not know",
    "non_finite_number": 'NaN or an infinity (1e999, "Infinity") where a number goes',
    "negative_value": "a negative count or amount",
    "number_out_of_range": "a count over 2**53 or an amount over 1e9",
    "event_time_out_of_range": "event_time before 2000-01-01 or from 2100-01-01 on",
    "string_too_long": "a string field over its maximum length (ids 256 characters, labels 128, "
    "names 512)",
    "validation": "any other field that does not match the contract",
}
"""Every reason a cost event is refused for, with what it means."""

_REASON_BY_ERROR_TYPE = {
    "finite_number": "non_finite_number",
    "greater_than_equal": "negative_value",
    "less_than_equal": "number_out_of_range",
    "int_parsing_size": "number_out_of_range",
    "datetime_out_of_range": "event_time_out_of_range",
    "event_time_out_of_range": "event_time_out_of_range",
    "string_too_long": "string_too_long",
}
_DEFAULT_HINT = "send what the cost event contract says (README: The cost event)"
_TIME_FIX = "send the time the spend happened, RFC 3339 UTC, e.g. 2026-11-23T16:20:00Z"

_FIX_HINTS = {
    "missing": "add the field",
    "int_parsing": "send a whole number",
    "int_from_float": "send a whole number",
    "int_type": "send a whole number",
    "float_parsing": "send a number",
    "float_type": "send a number",
    "greater_than_equal": "send a non-negative number",
    "less_than_equal": "send the amount in the contract's unit (USD, seconds, tokens)",
    "int_parsing_size": "send the amount in the contract's unit (USD, seconds, tokens)",
    "finite_number": "send a finite number (no NaN or infinity)",
    "number_type": "send a number",
    "string_type": "send a string",
    "string_too_short": "send a non-empty string",
    "enum": "use one of the listed values",
    "literal_error": "use one of the listed values",
    "datetime_parsing": "send RFC 3339 with a zone, e.g. 2026-11-23T16:20:00Z",
    "datetime_from_date_parsing": "send RFC 3339 with a zone, e.g. 2026-11-23T16:20:00Z",
    "datetime_type": "send RFC 3339 with a zone, e.g. 2026-11-23T16:20:00Z",
    "bool_parsing": "send true or false",
    "bool_type": "send true or false",
    "datetime_out_of_range": _TIME_FIX,
    "event_time_out_of_range": _TIME_FIX,
}


def encode(model: BaseModel) -> bytes:
    """Serialize any wire model to JSON bytes (extra fields included)."""
    return orjson.dumps(model.model_dump(mode="json", exclude_none=False))


_COST_EVENT_LIST: TypeAdapter[list[CostEvent]] = TypeAdapter(list[CostEvent])


def encode_cost_events(events: Sequence[CostEvent]) -> bytes:
    """An envelope of validated cost events, serialized in one pydantic call.

    Byte for byte what joining each event's ``model_dump_json()`` gives, in about two thirds of
    the time: the worker re-encodes every accepted event this way for its tenant stage.
    """
    return b'{"envelope_version":%d,"events":%s}' % (
        ENVELOPE_VERSION,
        _COST_EVENT_LIST.dump_json(list(events)),
    )


def decode(raw: bytes | str, model: type[ModelT]) -> ModelT:
    """Parse JSON bytes into a wire model (for trusted topics: alerts, commands, DLQ)."""
    return model.model_validate(orjson.loads(raw))


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """Return ``(field, message)`` for the first error, naming the field and the fix."""
    field, message, _reason = _describe(exc)
    return field, message


def describe_rejection(exc: ValidationError) -> EventRejectedError:
    """The refusal of a model's validation error: the first error's reason code and field,
    every error's text (what :func:`parse_cost_event_obj` raises; the outcome event too)."""
    field, message, reason = _describe(exc)
    return EventRejectedError(reason, message, field=field)


def _describe(exc: ValidationError) -> tuple[str, str, str]:
    """``(field, message, reason)``: the first error's field and reason, every error's text."""
    parts = []
    first_field = first_reason = ""
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "<event>"
        first_field = first_field or field
        first_reason = first_reason or _REASON_BY_ERROR_TYPE.get(err["type"], "validation")
        if err["type"] == "string_too_long":
            parts.append(_too_long(field, err))
            continue
        hint = _FIX_HINTS.get(err["type"], _DEFAULT_HINT)
        given = "" if err["type"] == "missing" else f" (got {_short(err.get('input'))})"
        parts.append(f"{field}: {err['msg']}{given}; {hint}")
    return first_field, "; ".join(parts), first_reason


def _too_long(field: str, err: Any) -> str:
    """A string over its field's limit: the field, its length, the limit and the fix (the
    value itself is left out: it is long by definition, and the dead letter keeps it)."""
    limit = err["ctx"]["max_length"]
    given = err.get("input")
    length = len(given) if isinstance(given, str) else "?"
    kind, hint = STRING_KINDS.get(limit, ("this field", "shorten it"))
    return (
        f"{field}: {length} characters, over the limit of {limit} for {kind}; send at most "
        f"{limit} characters ({hint})"
    )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_cost_event_obj(obj: Any) -> CostEvent:
    """Validate an already-parsed JSON object as a cost event with the pydantic model.

    This is the reference decision: :func:`decode_cost_events` reaches the same one faster, and
    calls this for every event it cannot vouch for, so that refusals are explained here.
    """
    if not isinstance(obj, Mapping):
        raise EventRejectedError(
            "validation",
            f"the payload must be a JSON object, got {type(obj).__name__}; send one cost event "
            "as a JSON object",
        )
    version = obj.get("schema_version")
    if version is None:
        raise EventRejectedError(
            "validation",
            'schema_version: Field required; add "schema_version": 1',
            field="schema_version",
        )
    if (
        isinstance(version, bool)
        or not isinstance(version, int | float)
        or version not in SUPPORTED_SCHEMA_VERSIONS
    ):
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_SCHEMA_VERSIONS))
        raise EventRejectedError(
            "unknown_schema_version",
            f"schema_version: {_short(version)} is not supported by this worker (supported: "
            f"{supported}); upgrade spendfuse or publish a supported version",
            field="schema_version",
        )
    try:
        return CostEvent.model_validate(obj)
    except ValidationError as exc:
        field, message, reason = _describe(exc)
        raise EventRejectedError(reason, message, field=field) from None


def decode_cost_events(objs: Sequence[Any]) -> list[CostEvent | EventRejectedError]:
    """Validate already-parsed events (an envelope's members) as columns: one result per
    member, the event or its refusal, each exactly what :func:`parse_cost_event_obj` decides."""
    return validate_events(objs)


def decode_cost_event(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> CostEvent:
    """Decode and validate one cost event from the wire; raise ``EventRejectedError`` if bad.

    The size is checked before anything is parsed, so a huge record costs nothing to refuse.
    """
    if len(raw) > max_bytes:
        raise EventRejectedError(
            "oversized",
            f"the payload is {len(raw)} bytes, over the max_event_bytes limit of {max_bytes}; "
            "send one event per record and keep free text out of cost events",
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _json_rejection(raw, exc) from None
    result = validate_event(obj)
    if isinstance(result, EventRejectedError):
        raise result
    return result


def _json_rejection(raw: bytes, exc: orjson.JSONDecodeError) -> EventRejectedError:
    problem = str(exc)
    if "depth limit" in problem or "recursion" in problem:
        return EventRejectedError(
            "too_deeply_nested",
            f"the payload nests arrays or objects too deeply ({problem}); send a flat JSON "
            "object of the contract's fields",
        )
    non_finite, field = _find_non_finite(raw, problem)
    if non_finite:
        return EventRejectedError(
            "non_finite_number",
            f"the payload has a number JSON cannot hold, such as NaN, Infinity or 1e999 "
            f"({problem}); send a finite number",
            field=field,
        )
    return EventRejectedError(
        "invalid_json", f"the payload is not valid UTF-8 JSON ({problem}); send a JSON object"
    )


def _find_non_finite(raw: bytes, problem: str) -> tuple[bool, str | None]:
    """Whether orjson refused a NaN, Infinity or overflowing number, and the top-level field
    holding it, found with the stdlib parser (which reads those as floats)."""
    constants: list[str] = []

    def constant(name: str) -> float:
        constants.append(name)
        return float(name)

    overflow = "infinity" in problem
    try:
        obj = json.loads(raw, parse_constant=constant)
    except (ValueError, RecursionError):
        return overflow, None
    if not (constants or overflow):
        return False, None
    if isinstance(obj, dict):
        for name, value in obj.items():
            if isinstance(value, float) and not math.isfinite(value):
                return True, name
    return True, None


def record_oversized(size: int, max_record_bytes: int) -> EventRejectedError:
    """The refusal of a record over ``max_record_bytes``, decided before it is parsed."""
    return EventRejectedError(
        "record_oversized",
        f"the record is {size} bytes, over the max_record_bytes limit of {max_record_bytes} "
        "(checked before parsing); send smaller envelopes, or raise SPENDFUSE_MAX_RECORD_BYTES "
        "(and the topic's max.message.bytes) if records this large are intended",
    )


def member_oversized(index: int, size: int, max_event_bytes: int) -> EventRejectedError:
    """The refusal of an envelope member whose JSON is over ``max_event_bytes``."""
    return EventRejectedError(
        "oversized",
        f"envelope member {index} is {size} bytes as JSON, over the max_event_bytes limit of "
        f"{max_event_bytes}; keep free text out of cost events, or raise "
        "SPENDFUSE_MAX_EVENT_BYTES if events this large are intended",
    )


def member_bytes(member: Any) -> bytes:
    """An envelope member as compact JSON: what its size is measured on and its dead letter
    keeps. orjson writes at most 254 levels of nesting (it reads 1024), so deeper members are
    written by the stdlib; past the interpreter's recursion limit, a placeholder says so."""
    try:
        return orjson.dumps(member)
    except orjson.JSONEncodeError:
        pass
    try:
        return json.dumps(member, ensure_ascii=False, separators=(",", ":")).encode()
    except (RecursionError, ValueError):
        return b'"<an envelope member nested too deeply to write back>"'


def make_dead_letter(
    raw: bytes,
    error: EventRejectedError,
    rejected_at: datetime,
    *,
    key: bytes | None = None,
    topic: str | None = None,
    partition: int | None = None,
    offset: int | None = None,
) -> DeadLetter:
    """Wrap a refused record, keeping its original bytes, for the dead-letter topic.

    At most :data:`DEAD_LETTER_KEEPS_BYTES` of the value (and 1 KiB of the key) are kept, so a
    dead letter always fits in a Kafka record (1 MiB by default) whatever was refused; the error
    says when the original was cut.
    """
    message = error.message
    if len(raw) > DEAD_LETTER_KEEPS_BYTES:
        message += f" [original cut to its first {DEAD_LETTER_KEEPS_BYTES} of {len(raw)} bytes]"
    return DeadLetter(
        reason=error.reason,
        field=error.field,
        error=message,
        rejected_at=rejected_at,
        source=SourcePosition(topic=topic, partition=partition, offset=offset),
        key_b64=base64.b64encode(key[:1024]).decode() if key is not None else None,
        original_b64=base64.b64encode(raw[:DEAD_LETTER_KEEPS_BYTES]).decode(),
    )
