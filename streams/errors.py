"""Errors of the streaming layer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spendfuse.schemas.codec import make_dead_letter
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.errors import EventRejectedError, SpendfuseError

INTERNAL_ERROR = "internal_error"
"""Dead-letter reason: handling the record raised (the error says what); the agent went on."""


class StreamSetupError(SpendfuseError):
    """The worker could not set up its topics or connect to Kafka."""


def internal_error_letter(
    value: bytes, key: bytes | None, message: Any, now: datetime, exc: Exception
) -> DeadLetter:
    """The dead letter of a record whose handling raised, as every agent writes it: reason
    ``internal_error``, the exception named, and where the record came from."""
    error = EventRejectedError(
        INTERNAL_ERROR, f"handling it raised {type(exc).__name__}: {str(exc)[:500]}"
    )
    return make_dead_letter(
        value,
        error,
        now,
        key=key,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )
