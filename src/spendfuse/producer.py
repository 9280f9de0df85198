"""The producer API: publish cost events from an application without blocking its requests.

    from spendfuse.producer import CostEventPublisher
    with CostEventPublisher("localhost:9092") as pub:
        pub.publish(event)          # a CostEvent or a dict; returns at once

Events are validated before they leave (a bad event raises here, in the caller's test suite, not
in the worker's dead-letter topic) and keyed by ``use_case_id``. The Kafka record keeps its
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
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from spendfuse.schemas.codec import encode, parse_cost_event_obj
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.topics import COST_EVENTS, cost_event_key

log = logging.getLogger(__name__)


class CostEventPublisher:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        topic: str = COST_EVENTS,
        config: Mapping[str, Any] | None = None,
    ) -> None:
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
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._stop = threading.Event()
        self._poller = threading.Thread(target=self._poll_loop, name="spendfuse-publisher",
                                        daemon=True)
        self._poller.start()

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            log.warning("cost event not delivered: %s", err)

    def publish(self, event: CostEvent | Mapping[str, Any]) -> bool:
        """Queue one event; return False if it had to be dropped (local queue full)."""
        model = event if isinstance(event, CostEvent) else parse_cost_event_obj(event)
        return self.publish_raw(encode(model), key=cost_event_key(model.use_case_id))

    def publish_raw(
        self, value: bytes, *, key: bytes | None = None, timestamp_ms: int = 0
    ) -> bool:
        """Queue a record as is (for tools that replay files, bad lines included)."""
        try:
            self._producer.produce(
                self.topic, value=value, key=key, timestamp=timestamp_ms,
                on_delivery=self._on_delivery,
            )  # fmt: skip
        except BufferError:
            self.dropped += 1
            return False
        return True

    def flush(self, timeout_s: float = 30.0) -> int:
        """Wait for queued events to be delivered; return how many are still queued."""
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
