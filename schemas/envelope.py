"""The envelope: many cost events of one use case in one Kafka record.

A record's value is either one cost event (a JSON object with ``cost_event_id``) or an envelope::

    {"envelope_version": 1, "events": [{...cost event...}, {...}, ...]}

Producers batch per use case (the record key), so an envelope carries one use case's events in
order; a worker that finds events of other use cases in it re-keys them. Envelopes exist for
throughput: per-record costs (broker round trips, the stream processor's per-message work,
one decision pass per record) are paid once for many events. Every member is validated on its
own: a bad member is dead-lettered alone, with its index in the envelope, and its siblings go on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

ENVELOPE_VERSION = 1
SUPPORTED_ENVELOPE_VERSIONS = frozenset({ENVELOPE_VERSION})
DEFAULT_MAX_RECORD_BYTES = 1024 * 1024  # Kafka's default max.message.bytes is about 1 MiB


def encode_envelope(events: Iterable[bytes]) -> bytes:
    """Join already-encoded events (JSON object bytes) into one envelope record value."""
    return b'{"envelope_version":%d,"events":[%s]}' % (ENVELOPE_VERSION, b",".join(events))


def is_envelope(obj: Any) -> bool:
    """Whether a parsed record value is an envelope rather than a single cost event."""
    return isinstance(obj, dict) and "events" in obj and "cost_event_id" not in obj
