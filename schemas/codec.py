"""The orjson codec for every wire model, and the strict decoder for incoming cost events.

``decode_cost_event`` is the single gate events pass: anything it refuses raises
:class:`EventRejectedError` with a reason code, the offending field and a fix hint, which the
caller turns into a dead letter. It never raises anything else for bad input.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from spendfuse.schemas.cost_event import SUPPORTED_SCHEMA_VERSIONS, CostEvent
from spendfuse.schemas.dead_letter import DeadLetter, SourcePosition
from spendfuse.schemas.errors import EventRejectedError

DEFAULT_MAX_EVENT_BYTES = 64 * 1024
ModelT = TypeVar("ModelT", bound=BaseModel)

_FIX_HINTS = {
    "missing": "add the field",
    "int_parsing": "send a whole number",
    "int_type": "send a whole number",
    "float_parsing": "send a number",
    "float_type": "send a number",
    "greater_than_equal": "send a non-negative number",
    "string_type": "send a string",
    "string_too_short": "send a non-empty string",
    "enum": "use one of the listed values",
    "literal_error": "use one of the listed values",
    "datetime_parsing": "send RFC 3339 with a zone, e.g. 2026-11-23T16:20:00Z",
    "datetime_from_date_parsing": "send RFC 3339 with a zone, e.g. 2026-11-23T16:20:00Z",
    "datetime_type": "send RFC 3339 with a zone, e.g. 2026-11-23T16:20:00Z",
    "bool_parsing": "send true or false",
    "bool_type": "send true or false",
}


def encode(model: BaseModel) -> bytes:
    """Serialize any wire model to JSON bytes (extra fields included)."""
    return orjson.dumps(model.model_dump(mode="json", exclude_none=False))


def decode(raw: bytes | str, model: type[ModelT]) -> ModelT:
    """Parse JSON bytes into a wire model (for trusted topics: alerts, commands, DLQ)."""
    return model.model_validate(orjson.loads(raw))


def describe_validation_error(exc: ValidationError) -> tuple[str, str]:
    """Return ``(field, message)`` for the first error, naming the field and the fix."""
    parts = []
    first_field = ""
    for err in exc.errors(include_url=False):
        field = ".".join(str(p) for p in err["loc"]) or "<event>"
        first_field = first_field or field
        hint = _FIX_HINTS.get(err["type"])
        given = "" if err["type"] == "missing" else f" (got {err.get('input')!r:.60})"
        parts.append(f"{field}: {err['msg']}{given}" + (f"; {hint}" if hint else ""))
    return first_field, "; ".join(parts)


def parse_cost_event_obj(obj: Any) -> CostEvent:
    """Validate an already-parsed JSON object as a cost event."""
    if not isinstance(obj, Mapping):
        raise EventRejectedError(
            "validation", f"the payload must be a JSON object, got {type(obj).__name__}"
        )
    version = obj.get("schema_version")
    if version is None:
        raise EventRejectedError(
            "validation",
            "schema_version: Field required; add \"schema_version\": 1",
            field="schema_version",
        )
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_SCHEMA_VERSIONS))
        raise EventRejectedError(
            "unknown_schema_version",
            f"schema_version: {version!r} is not supported by this worker (supported: "
            f"{supported}); upgrade spendfuse or publish a supported version",
            field="schema_version",
        )
    try:
        return CostEvent.model_validate(obj)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise EventRejectedError("validation", message, field=field) from None


def decode_cost_event(raw: bytes, max_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> CostEvent:
    """Decode and validate one cost event from the wire; raise ``EventRejectedError`` if bad."""
    if len(raw) > max_bytes:
        raise EventRejectedError(
            "oversized",
            f"the payload is {len(raw)} bytes, over the {max_bytes}-byte limit; send one event "
            "per record and keep free text out of cost events",
        )
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EventRejectedError(
            "invalid_json", f"the payload is not valid UTF-8 JSON ({exc}); send a JSON object"
        ) from None
    return parse_cost_event_obj(obj)


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
    """Wrap a refused record, keeping its original bytes, for the dead-letter topic."""
    return DeadLetter(
        reason=error.reason,
        field=error.field,
        error=error.message,
        rejected_at=rejected_at,
        source=SourcePosition(topic=topic, partition=partition, offset=offset),
        key_b64=base64.b64encode(key).decode() if key is not None else None,
        original_b64=base64.b64encode(raw).decode(),
    )
