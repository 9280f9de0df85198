"""Records the agents produce, held until the offsets of their inputs are committed.

Alerts, commands, dead letters, re-keyed records and tenant-stage records are not sent while a
record is handled: they wait here and go out at the next offset commit, *before* the dedup ids
and the state they came with are written (see :mod:`spendfuse.streams.state_cache`), and before
the offsets are committed. A worker killed before its outputs are acknowledged has written no
ids or state for them: its successor re-handles the same records from the same state and sends
them again (at least once; alerts and commands carry stable ids, so a repeat is recognised). A
worker killed after has sent them. Without this, a command sent just before a ``kill -9`` could
be lost (ids written first) or decided twice (sent before the commit).

The price would be latency (up to one commit interval), so a record that decided something
marks the outbox ``urgent`` and the agent asks for a commit right after its batch: alerts and
commands leave within milliseconds, while dead letters and tenant-stage records ride the regular
commits (``commit_interval_s``).

An output the producer refuses for good (over the producer's message size, an unknown topic) is
not dropped and does not stop the records after it: it goes to the dead-letter topic with reason
``unpublishable`` and the error (counted in ``spendfuse_events_dead_lettered``). Transient broker
errors are retried by librdkafka until the broker takes the record (the commit waits).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from spendfuse.schemas import topics
from spendfuse.schemas.codec import encode, make_dead_letter
from spendfuse.schemas.errors import EventRejectedError

log = logging.getLogger(__name__)

UNPUBLISHABLE = "unpublishable"
"""Dead-letter reason: an output (or re-keyed record) the producer refused for good."""


@dataclass(slots=True)
class Held:
    topic: Any  # a Faust topic (``get_topic_name``) or a topic name
    key: bytes | None
    value: bytes
    headers: Any = None
    origin: tuple[str | None, int | None, int | None] = (None, None, None)


def _name(topic: Any) -> str:
    return topic if isinstance(topic, str) else topic.get_topic_name()


class Outbox:
    def __init__(
        self,
        sink: Any = None,
        *,
        dead_letter_topic: Any = topics.COST_EVENTS_DLQ,
        metrics: Any = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sink = sink  # a CommitProducer; None: Faust's own producer
        self.dead_letter_topic = dead_letter_topic
        self.metrics = metrics  # SpendfuseMetrics, or None
        self.clock = clock
        self._pending: list[Held] = []
        self._refused: list[tuple[Held, str]] = []  # filled by delivery reports
        self.urgent = False  # holds an alert or command: commit now rather than on the timer
        #: the input record being handled (topic, partition, offset): a dead letter names it
        self.origin: tuple[str | None, int | None, int | None] = (None, None, None)
        self.dead_lettered = 0  # outputs dead-lettered as unpublishable
        self.lost = 0  # dead letters that could not be published either (logged)

    def add(
        self,
        topic: Any,
        key: bytes | None,
        value: bytes,
        headers: Any = None,
        *,
        urgent: bool = False,
    ) -> None:
        self._pending.append(Held(topic, key, value, headers, self.origin))
        self.urgent = self.urgent or urgent

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Hand every held record to the producer (non-blocking); the commit waits for them.

        A record the producer refuses at once is dead-lettered; the others still go."""
        pending, self._pending = self._pending, []
        self.urgent = False
        for held in pending:
            self._send(held)
        return len(pending)

    def settle(self) -> int:
        """After the producer's flush: dead-letter every output the broker refused.

        Returns how many were; the caller flushes the producer again to send them."""
        refused, self._refused = self._refused, []
        for held, why in refused:
            self._dead_letter(held, why)
        return len(refused)

    def _send(self, held: Held) -> None:
        name = _name(held.topic)
        try:
            if self.sink is not None:
                self.sink.produce(
                    name, held.value, held.key, headers=held.headers, on_delivery=self._report(held)
                )
            else:
                held.topic.send_soon(key=held.key, value=held.value, headers=held.headers)
        except Exception as exc:  # refused at once: too large, unknown topic, bad headers
            self._dead_letter(held, f"{type(exc).__name__}: {exc}")

    def _report(self, held: Held) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                self._refused.append((held, str(err)))

        return on_delivery

    def _dead_letter(self, held: Held, why: str) -> None:
        name = _name(held.topic)
        if name == _name(self.dead_letter_topic):
            self.lost += 1
            log.error(
                "a dead letter could not be published (%s); it is lost: %s", why, held.value[:200]
            )
            if self.metrics is not None:
                self.metrics.record_worker_error("publish")
            return
        error = EventRejectedError(
            UNPUBLISHABLE, f"could not publish {len(held.value)} bytes to {name}: {why}"
        )
        topic, partition, offset = held.origin
        dead = make_dead_letter(
            held.value,
            error,
            self.clock(),
            key=held.key,
            topic=topic,
            partition=partition,
            offset=offset,
        )
        log.warning("output to %s dead-lettered: %s", name, why)
        self.dead_lettered += 1
        if self.metrics is not None:
            self.metrics.record_dead_letter(UNPUBLISHABLE)
        self._send(Held(self.dead_letter_topic, held.key, encode(dead), None, held.origin))

    def drop_partitions(self, partitions: set[int]) -> None:
        self.flush()
