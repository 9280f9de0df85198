"""Errors of the streaming layer."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from spendfuse.schemas.codec import encode, make_dead_letter
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.errors import EventRejectedError, SpendfuseError

log = logging.getLogger(__name__)

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


def handle_each(
    records: Iterable[Any],
    handle: Callable[[Any], Any],
    outbox: Any,
    dlq_topic: Any,
    metrics: Any,
    stage: str,
) -> None:
    """Handle a batch of Faust events one record at a time, synchronously (a commit never sees
    half a record); a record whose handling raises is logged, counted
    (``spendfuse_worker_errors_total{stage}``) and dead-lettered, and the next one goes on."""
    for record in records:
        msg = record.message
        outbox.origin = (msg.topic, msg.partition, msg.offset)
        try:
            handle(record)
        except Exception as exc:  # one record's failure never stops the agent
            log.exception(
                "%s: %s[%s]@%s failed; dead-lettered", stage, msg.topic, msg.partition, msg.offset
            )
            metrics.record_worker_error(stage)
            dead = internal_error_letter(record.value, record.key, msg, datetime.now(UTC), exc)
            metrics.record_dead_letter(INTERNAL_ERROR)
            outbox.add(dlq_topic, record.key, encode(dead))
