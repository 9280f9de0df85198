"""One librdkafka producer for everything the worker writes at an offset commit.

At each commit the worker writes, in order: the dedup ids and the per-use-case/tenant state it
holds behind (to the tables' changelogs), then what the handled records decided (alerts,
commands, dead letters, re-keyed and tenant-stage records, from the :class:`Outbox`). Those are
many small records (one per id, per changed key, per decision), and Faust's own producer path
costs tens of microseconds of Python per record, which made it the worker's bottleneck. This
producer hands them to librdkafka (C, batched, compressed, idempotent) and :meth:`flush` blocks
until the broker has acknowledged all of them, *before* the offsets are committed, so a commit
never covers input whose effects are not durable.

It never raises out of a commit: a record librdkafka refuses for good (over
:data:`MAX_MESSAGE_BYTES`, an unknown topic) is reported to whoever produced it (the outbox
dead-letters an output; a changelog record is counted and logged, its value stays in the local
store), because an exception here would escape Faust's commit and stop the worker, and the same
record would fail again after every restart.

Changelog records are serialized with the table's own codecs, so Faust's recovery reads them as
its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from faust.types import TP

log = logging.getLogger(__name__)


MAX_MESSAGE_BYTES = 1_000_000
"""The largest record this producer sends (librdkafka's ``message.max.bytes`` default, under
the broker's 1 MiB ``max.message.bytes``): callers split or dead-letter anything larger."""


class CommitProducer:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        client_id: str = "spendfuse-worker",
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
                "message.timeout.ms": 0,  # never give up: the commit waits for the broker instead
                "message.max.bytes": MAX_MESSAGE_BYTES,
                **(config or {}),  # the worker's Kafka login (SPENDFUSE_KAFKA_*)
            }
        )
        self._failed: list[str] = []
        self.failed_total = 0  # changelog records refused for good (counted, logged)
        self._keepers: dict[int, Any] = {}
        self._newest: list[tuple[Any, dict[TP, int]]] = []
        self.sent = 0

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self._failed.append(str(err))

    def produce(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None = None,
        partition: int | None = None,
        headers: Any = None,
        on_delivery: Any = None,
    ) -> None:
        kwargs: dict[str, Any] = {
            "value": value,
            "key": key,
            "on_delivery": on_delivery or self._on_delivery,
        }
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

    def changelog(
        self,
        table: Any,
        partition: int,
        key: Any,
        value: Any,
        raw: tuple[bytes, bytes] | None = None,
    ) -> bool:
        """Write one table entry to its changelog partition, in the table's own encoding
        (``raw``: the key and value already encoded by the store). False (logged, counted) if
        librdkafka refused it at once, e.g. over :data:`MAX_MESSAGE_BYTES`."""
        topic = table.changelog_topic
        if raw is None:
            raw = (
                topic.prepare_key(key, table.key_serializer)[0],
                topic.prepare_value(value, table.value_serializer)[0],
            )
        try:
            self.produce(
                topic.get_topic_name(),
                raw[1],
                raw[0],
                partition,
                on_delivery=self._offset_keeper(table.data),
            )
        except KafkaException as exc:
            self._failed.append(f"{topic.get_topic_name()}[{partition}] key {key!r}: {exc}")
            return False
        return True

    def _offset_keeper(self, store: Any) -> Any:
        """As Faust does for its own changelog writes, the local store will remember the newest
        changelog offset it holds (set once per partition per flush), so that a restart
        replays only the changelog's tail."""
        keeper = self._keepers.get(id(store))
        if keeper is not None:
            return keeper
        newest: dict[TP, int] = {}
        self._newest.append((store, newest))

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                self._failed.append(str(err))
                return
            tp = TP(msg.topic(), msg.partition())
            if msg.offset() > newest.get(tp, -1):
                newest[tp] = msg.offset()

        keeper = self._keepers[id(store)] = on_delivery
        return keeper

    def flush(self) -> list[str]:
        """Block until every record is acknowledged. Returns (and logs) the changelog records
        refused for good since the last flush; outputs report theirs to their ``on_delivery``."""
        waited = 0
        while (queued := self._producer.flush(1.0)) > 0:
            waited += 1
            log.warning("commit waits for the broker to take %d records (%d s)", queued, waited)
        failed, self._failed = self._failed, []
        if failed:
            self.failed_total += len(failed)
            log.error(
                "%d changelog records not written (their values stay in the local store): %s",
                len(failed),
                failed[:3],
            )
        for store, newest in self._newest:
            if hasattr(store, "set_persisted_offset"):
                for tp, offset in newest.items():
                    store.set_persisted_offset(tp, offset)
            newest.clear()
        return failed
