"""The producer API: publish cost events from an application without blocking its requests.

    from spendfuse.producer import CostEventPublisher
    with CostEventPublisher("localhost:9092") as pub:
        pub.publish(event)          # a CostEvent or a dict; returns at once

Events are validated before they leave (a bad event raises here, in the caller's test suite, not
in the worker's dead-letter topic) and keyed by ``use_case_id``. They are batched per use case
into envelopes (:mod:`spendfuse.schemas.envelope`) of up to ``envelope_max_events`` events,
sent when full or ``envelope_linger_ms`` after their first event: one Kafka record, and one
decision pass in the worker, for many events. ``envelope_max_events=1`` sends one event per
record. The Kafka record keeps its
publish time as timestamp: decisions use ``event_time`` from the payload, and Kafka 4 brokers
refuse records stamped more than an hour ahead of their clock, which a replayed or skewed
``event_time`` could be.
The producer is idempotent (no duplicates from its own retries) and sends from librdkafka's
background thread; when its local queue is full the event is counted as dropped and the call
still returns at once, because a cost signal must never slow the request it measures.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from spendfuse.schemas.codec import encode, parse_cost_event_obj
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.envelope import DEFAULT_MAX_RECORD_BYTES, encode_envelope
from spendfuse.schemas.outcome import OutcomeEvent
from spendfuse.schemas.topics import COST_EVENTS, OUTCOMES, cost_event_key, outcome_key

log = logging.getLogger(__name__)


class CostEventPublisher:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic: str = COST_EVENTS,
        config: Mapping[str, Any] | None = None,
        envelope_max_events: int = 100,
        envelope_linger_ms: float = 20.0,
        envelope_max_bytes: int = DEFAULT_MAX_RECORD_BYTES // 2,
    ) -> None:
        if envelope_max_events < 1:
            raise ValueError("envelope_max_events must be at least 1")
        conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 200_000,
        }
        conf.update(config or {})
        self.topic = topic
        self._producer = Producer(conf)
        self._queue_limit = int(conf["queue.buffering.max.messages"])
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self.envelope_max_events = envelope_max_events
        self.envelope_linger_s = envelope_linger_ms / 1000
        self.envelope_max_bytes = envelope_max_bytes
        self._lock = threading.Lock()
        # use case key -> (monotonic time of its first event, encoded events, their bytes)
        self._open: dict[bytes, tuple[float, list[bytes], int]] = {}
        self._stop = threading.Event()
        self._poller = threading.Thread(
            target=self._poll_loop, name="spendfuse-publisher", daemon=True
        )
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(min(0.1, self.envelope_linger_s / 2 or 0.1))
            if self._open:
                self._send_envelopes(older_than=self.envelope_linger_s)

    def _send_envelopes(self, older_than: float | None = None) -> None:
        """Send open envelopes (all, or those whose first event is ``older_than`` seconds)."""
        now = time.monotonic()
        with self._lock:
            due = [
                k
                for k, (t0, _e, _n) in self._open.items()
                if older_than is None or now - t0 >= older_than
            ]
            batches = [(k, self._open.pop(k)[1]) for k in due]
        for key, events in batches:
            self._produce(
                encode_envelope(events) if len(events) > 1 else events[0], key, len(events)
            )

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            log.warning("cost event not delivered: %s", err)

    def publish(self, event: CostEvent | Mapping[str, Any]) -> bool:
        """Queue one event; return False if it had to be dropped (local queue full)."""
        model = event if isinstance(event, CostEvent) else parse_cost_event_obj(event)
        value, key = encode(model), cost_event_key(model.use_case_id)
        if self.envelope_max_events == 1:
            return self.publish_raw(value, key=key)
        if len(self._producer) >= self._queue_limit:
            self.dropped += 1
            return False
        full = None
        with self._lock:
            started, events, size = self._open.get(key) or (time.monotonic(), [], 0)
            events.append(value)
            size += len(value) + 1
            if len(events) >= self.envelope_max_events or size >= self.envelope_max_bytes:
                self._open.pop(key, None)
                full = events
            else:
                self._open[key] = (started, events, size)
        if full is not None:
            self._produce(encode_envelope(full) if len(full) > 1 else full[0], key, len(full))
        return True

    def _produce(self, value: bytes, key: bytes, events: int) -> None:
        try:
            self._producer.produce(
                self.topic, value=value, key=key, on_delivery=self._delivery_of(events)
            )
        except BufferError:
            self.dropped += events

    def _delivery_of(self, events: int) -> Any:
        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                self.delivered += events
            else:
                self.failed += events
                log.warning("%d cost events not delivered: %s", events, err)

        return on_delivery

    def publish_raw(self, value: bytes, *, key: bytes | None = None, timestamp_ms: int = 0) -> bool:
        """Queue a record as is (for tools that replay files, bad lines included)."""
        try:
            self._producer.produce(
                self.topic,
                value=value,
                key=key,
                timestamp=timestamp_ms,
                on_delivery=self._on_delivery,
            )
        except BufferError:
            self.dropped += 1
            return False
        return True

    def publish_outcome(self, outcome: OutcomeEvent | Mapping[str, Any]) -> bool:
        """Queue one outcome event on ``spendfuse.outcomes``, keyed by its use case with this
        producer's partitioner, so it reaches the partition that holds the use case's spend."""
        model = (
            outcome if isinstance(outcome, OutcomeEvent) else OutcomeEvent.model_validate(outcome)
        )
        try:
            self._producer.produce(
                OUTCOMES,
                value=encode(model),
                key=outcome_key(model.use_case_id),
                on_delivery=self._on_delivery,
            )
        except BufferError:
            self.dropped += 1
            return False
        return True

    def flush(self, timeout_s: float = 30.0) -> int:
        """Send open envelopes, wait for delivery; return how many records are still queued."""
        self._send_envelopes()
        return int(self._producer.flush(timeout_s))

    def close(self, timeout_s: float = 30.0) -> None:
        self.flush(timeout_s)
        self._stop.set()
        self._poller.join()

    def __enter__(self) -> CostEventPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
