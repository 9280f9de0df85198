"""One librdkafka producer for everything the worker writes at an offset commit.

At each commit the worker writes, in order: the dedup ids and the per-use-case/tenant state it
holds behind (to the tables' changelogs), then what the handled records decided (alerts,
commands, dead letters, re-keyed and tenant-stage records, from the :class:`Outbox`). Those are
many small records (one per id, per changed key, per decision), and Faust's own producer path
costs tens of microseconds of Python per record, which made it the worker's bottleneck. This
producer hands them to librdkafka (C, batched, compressed, idempotent) and :meth:`flush` blocks
until the broker has acknowledged all of them, *before* the offsets are committed, so a commit
never covers input whose effects are not durable.

Changelog records are serialized with the table's own codecs, so Faust's recovery reads them as
its own.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, Message, Producer
from faust.types import TP

log = logging.getLogger(__name__)


class CommitProducerError(RuntimeError):
    """A record could not be delivered: the commit must not go ahead."""


class CommitProducer:
    def __init__(self, bootstrap_servers: str, *, client_id: str = "spendfuse-worker") -> None:
        self._producer = Producer({
            "bootstrap.servers": bootstrap_servers,
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
            "message.timeout.ms": 0,  # never give up: the commit waits for the broker instead
        })  # fmt: skip
        self._failed: list[str] = []
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failed.append(str(err))

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                partition: int | None = None, headers: Any = None,
                on_delivery: Any = None) -> None:  # fmt: skip
        kwargs: dict[str, Any] = {"value": value, "key": key,
                                  "on_delivery": on_delivery or self._on_delivery}  # fmt: skip
        if partition is not None:
            kwargs["partition"] = partition
        if headers:
            kwargs["headers"] = headers
        while True:
            try:
                self._producer.produce(topic, **kwargs)
                break
            except BufferError:  # a million records queued: let librdkafka drain some
                self._producer.poll(0.05)
        self.sent += 1

    def changelog(self, table: Any, partition: int, key: Any, value: Any) -> None:
        """Write one table entry to its changelog partition, in the table's own encoding."""
        topic = table.changelog_topic
        raw_key, _ = topic.prepare_key(key, table.key_serializer)
        raw_value, _ = topic.prepare_value(value, table.value_serializer)
        self.produce(topic.get_topic_name(), raw_value, raw_key, partition,
                     on_delivery=self._persisted_offset_keeper(table))  # fmt: skip

    def _persisted_offset_keeper(self, table: Any) -> Any:
        """As Faust does for its own changelog writes: remember in the local store the changelog
        offset it holds, so that a restart replays only the changelog's tail."""
        store = table.data

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self._failed.append(str(err))
            elif hasattr(store, "set_persisted_offset"):
                store.set_persisted_offset(TP(msg.topic(), msg.partition()), msg.offset())

        return on_delivery

    def flush(self) -> None:
        """Block until every record is acknowledged; raise if any was refused."""
        waited = 0
        while (queued := self._producer.flush(1.0)) > 0:
            waited += 1
            log.warning("commit waits for the broker to take %d records (%d s)", queued, waited)
        if self._failed:
            failed, self._failed = self._failed, []
            raise CommitProducerError(f"{len(failed)} records not delivered: {failed[:3]}")
