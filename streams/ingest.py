"""The ingest agent: a thin adapter from the input topic to the shared :class:`Pipeline`.

Per record: decode (bad → dead-letter topic, keep going), re-key if it arrived under another key
than its use case (the copy comes back on the right partition), else dedup + price + decide
through the pipeline, with dedup ids and per-use-case state in Faust tables, and publish the
resulting alerts and commands. Nothing raises out of the loop for bad input, so a poison record
never blocks its partition.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import faust

from spendfuse.control.signing import Signer
from spendfuse.pipeline import Outcome, Pipeline
from spendfuse.schemas.codec import encode
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.topics import cost_event_key
from spendfuse.streams.dedup_table import FaustDedupStore
from spendfuse.streams.observer import NULL_OBSERVER, NullObserver

log = logging.getLogger(__name__)


class IngestHandler:
    def __init__(
        self,
        pipeline: Pipeline,
        dedup: FaustDedupStore,
        states: Any,
        topics: dict[str, faust.TopicT],
        signer: Signer,
        observer: NullObserver = NULL_OBSERVER,
    ) -> None:
        self.pipeline = pipeline
        self.signer = signer
        self.observer = observer
        self.dedup = dedup
        self.states = states
        self.topics = topics
        self.outcomes: Counter[str] = Counter()

    async def handle_record(self, key: bytes | None, value: bytes, message: Any) -> None:
        self.observer.record_in()
        decoded = self.pipeline.decode(
            value, datetime.now(UTC), key=key,
            topic=message.topic, partition=message.partition, offset=message.offset,
        )  # fmt: skip
        if isinstance(decoded, DeadLetter):
            log.warning(
                "dead-lettered %s[%s]@%s: %s", message.topic, message.partition,
                message.offset, decoded.error,
            )  # fmt: skip
            await self.topics["dlq"].send(key=key, value=encode(decoded))
            self.outcomes[Outcome.DEAD_LETTERED.value] += 1
            self.observer.dead_lettered(decoded.reason)
            return
        wanted_key = cost_event_key(decoded.use_case_id)
        if key != wanted_key:
            await self.topics["cost_events"].send(
                key=wanted_key, value=value, timestamp=message.timestamp
            )
            self.outcomes["rekeyed"] += 1
            self.observer.rekeyed()
            return
        if hasattr(self.states, "partition"):
            self.states.partition = message.partition
        with self.observer.deciding():
            handled = self.pipeline.handle(decoded, self.dedup, self.states)
        self.outcomes[handled.outcome.value] += 1
        self.observer.handled(handled)
        if handled.outcome is Outcome.ACCEPTED and "tenant_spend" in self.topics:
            tenant_key = decoded.tenant_id.encode()  # the tenant stage (streams/tenant.py)
            await self.topics["tenant_spend"].send(key=tenant_key, value=encode(decoded))
        for alert in handled.decisions.alerts:
            await self.topics["alerts"].send(key=alert.fingerprint.encode(), value=encode(alert))
        for command in handled.decisions.commands:
            ckey, cvalue = command.key().encode(), encode(command)
            await self.topics["control"].send(
                key=ckey, value=cvalue, headers=self.signer.headers(ckey, cvalue)
            )


def register_ingest_agent(app: faust.App, handler: IngestHandler) -> None:
    @app.agent(handler.topics["cost_events"], name="ingest_cost_events")
    async def ingest_cost_events(stream: faust.StreamT) -> None:
        async for event in stream.events():
            with handler.observer.processing():
                await handler.handle_record(event.key, event.value, event.message)
