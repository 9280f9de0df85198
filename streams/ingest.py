"""The ingest agent: a thin adapter from the input topic to the shared :class:`Pipeline`.

The agent takes records in batches (``stream.take_events``) and hands each record (one event or
an envelope of many) to the pipeline: decode (bad → dead-letter topic, keep going), re-key events
that arrived under another key than their use case (the copy comes back on the right partition),
then dedup + price + decide the rest in one pass per use case. Dedup ids and per-use-case state
live in Faust tables, written behind at offset commit; everything the record produced waits in
the :class:`Outbox` and goes out at that same commit. Handling a record never awaits, so a commit
never sees half of one. Nothing raises out of the loop for bad input, so a poison record never
blocks its partition; and a record whose handling raises anyway (a bug, a rule that fails on
some input) is dead-lettered with reason ``internal_error`` and counted
(``spendfuse_worker_errors_total{stage="ingest"}``), and the agent goes on with the next one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import faust

from spendfuse.control.stamp import CommandSigner
from spendfuse.pipeline import Outcome, Pipeline
from spendfuse.schemas.codec import encode, encode_cost_events, make_dead_letter
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.errors import EventRejectedError
from spendfuse.schemas.topics import cost_event_key
from spendfuse.streams.commit_producer import MAX_MESSAGE_BYTES
from spendfuse.streams.dedup_table import FaustDedupStore
from spendfuse.streams.errors import internal_error_letter
from spendfuse.streams.observer import NULL_OBSERVER, NullObserver
from spendfuse.streams.outbox import Outbox
from spendfuse.streams.rollups import RollupPublisher
from spendfuse.streams.state_cache import commit_now

log = logging.getLogger(__name__)

REPUBLISH_MAX_BYTES = MAX_MESSAGE_BYTES - 64 * 1024
"""Largest re-keyed record value: under the producer's limit, with room for key and headers."""


def events_value(events: Sequence[CostEvent]) -> bytes:
    """One record value for events of one key: the event itself, or an envelope of them."""
    return encode(events[0]) if len(events) == 1 else encode_cost_events(events)


def sized_values(
    events: Sequence[CostEvent],
    limit: int = REPUBLISH_MAX_BYTES,
) -> list[tuple[Sequence[CostEvent], bytes | None]]:
    """``events`` as record values of at most ``limit`` bytes each (halving an envelope until
    its parts fit); a lone event that still does not fit comes back with ``None``.

    Re-encoding writes every field, defaults included, so a re-keyed envelope can be several
    times the size it arrived at, and over the producer's maximum message size."""
    body = events_value(events)
    if len(body) <= limit:
        return [(events, body)]
    if len(events) == 1:
        return [(events, None)]
    mid = len(events) // 2
    return sized_values(events[:mid], limit) + sized_values(events[mid:], limit)


class IngestHandler:
    def __init__(
        self,
        pipeline: Pipeline,
        dedup: FaustDedupStore,
        states: Any,
        topics: dict[str, faust.TopicT],
        signer: CommandSigner,
        observer: NullObserver = NULL_OBSERVER,
        outbox: Outbox | None = None,
        rollups: RollupPublisher | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.rollups = rollups  # hourly rollups to spendfuse.cost-rollups
        self.signer = signer
        self.observer = observer
        self.dedup = dedup
        self.states = states
        self.topics = topics
        self.outbox = outbox if outbox is not None else Outbox()
        self.outcomes: Counter[str] = Counter()

    def handle_batch(self, records: Sequence[Any]) -> None:
        """Handle Faust events (key, value, message) in order; synchronous by design."""
        now = datetime.now(UTC)
        tenant_stage = "tenant_spend" in self.topics and (
            self.pipeline.tenant_engine is not None and self.pipeline.tenant_engine.active
        )
        for record in records:
            message = record.message
            self.outbox.origin = (message.topic, message.partition, message.offset)
            try:
                self.handle_record(record.key, record.value, message, now, tenant_stage)
            except Exception as exc:  # one record's failure never stops the agent
                self.failed(record.key, record.value, message, now, exc)

    def failed(
        self, key: bytes | None, value: bytes, message: Any, now: datetime, exc: Exception
    ) -> None:
        """Count and dead-letter a record whose handling raised."""
        log.exception(
            "handling %s[%s]@%s failed; dead-lettered",
            message.topic,
            message.partition,
            message.offset,
        )
        self.observer.worker_error("ingest")
        self._dead_letter(key, internal_error_letter(value, key, message, now, exc))

    def handle_record(
        self,
        key: bytes | None,
        value: bytes,
        message: Any,
        now: datetime,
        tenant_stage: bool = True,
    ) -> None:
        self.states.partition = self.dedup.partition = message.partition
        with self.observer.deciding():
            record = self.pipeline.run_record(
                value,
                now,
                self.dedup,
                self.states,
                key=key,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                owns=lambda event: cost_event_key(event.use_case_id) == key,
            )
        if record.state_bytes or record.trimmed:
            self.observer.state_sized(record.state_bytes.values(), record.trimmed)
        for dead in record.dead_letters:
            self.observer.record_in()
            self._dead_letter(key, dead)
        lone = (
            len(record.dead_letters)
            + len(record.handled)
            + sum(len(v) for v in record.foreign.values())
            == 1
        )
        for use_case, events in record.foreign.items():
            wanted = cost_event_key(use_case)
            if lone and len(value) <= REPUBLISH_MAX_BYTES:
                parts: list[tuple[Sequence[CostEvent], bytes | None]] = [(events, value)]
            else:  # a lone event as sent; envelopes re-encoded in parts that fit
                parts = sized_values(events)
            for part, body in parts:
                for _ in part:
                    self.observer.record_in()
                if body is None:
                    self._unpublishable(key, part[0], message, now)
                    continue
                self.outbox.add(self.topics["cost_events"], wanted, body)
                self.outcomes["rekeyed"] += len(part)
                for _ in part:
                    self.observer.rekeyed()
        for result in record.handled:
            self.observer.record_in()
            self.outcomes[result.outcome.value] += 1
            self.observer.handled(result)
            for alert in result.decisions.alerts:
                self.outbox.add(
                    self.topics["alerts"], alert.fingerprint.encode(), encode(alert), urgent=True
                )
            for command in result.decisions.commands:  # stamped at publish time, then signed
                for ckey, cvalue, cheaders in self.signer.records(command):
                    self.outbox.add(self.topics["control"], ckey, cvalue, cheaders, urgent=True)
            if self.rollups is not None:
                if result.rollups:
                    self.rollups.publish(result.rollups)
                if result.outcome is Outcome.ACCEPTED and result.event is not None:
                    self.rollups.touched(result.event.use_case_id, message.partition)
        if tenant_stage:  # the tenant stage (streams/tenant.py), one record per tenant
            for tenant, events in record.accepted_by_tenant().items():
                body = encode_cost_events(events)
                if len(body) <= REPUBLISH_MAX_BYTES:
                    self.outbox.add(self.topics["tenant_spend"], tenant.encode(), body)
                    continue
                for part, sized in sized_values(events):  # a big envelope: in parts that fit
                    if sized is None:
                        self._unpublishable(key, part[0], message, now)
                    else:
                        self.outbox.add(self.topics["tenant_spend"], tenant.encode(), sized)

    def _unpublishable(
        self, key: bytes | None, event: CostEvent, message: Any, now: datetime
    ) -> None:
        raw = encode(event)
        error = EventRejectedError(
            "unpublishable",
            f"re-keyed under its use case it is {len(raw)} bytes, over the "
            f"{REPUBLISH_MAX_BYTES} a record may be; publish it under its use_case_id key",
        )
        self._dead_letter(
            key,
            make_dead_letter(
                raw,
                error,
                now,
                key=key,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
            ),
        )

    def _dead_letter(self, key: bytes | None, dead: DeadLetter) -> None:
        src = dead.source
        log.warning(
            "dead-lettered %s[%s]@%s#%s: %s",
            src.topic,
            src.partition,
            src.offset,
            src.index,
            dead.error,
        )
        self.outbox.add(self.topics["dlq"], key, encode(dead))
        self.outcomes[Outcome.DEAD_LETTERED.value] += 1
        self.observer.dead_lettered(dead.reason)


def register_ingest_agent(
    app: faust.App, handler: IngestHandler, *, batch_max: int = 500, batch_within_s: float = 0.02
) -> None:
    @app.agent(handler.topics["cost_events"], name="ingest_cost_events")
    async def ingest_cost_events(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(batch_max, within=batch_within_s):
            with handler.observer.processing():
                handler.handle_batch(batch)
            if handler.outbox.urgent:  # a decision: send it now, not at the next timed commit
                await commit_now(app, handler.observer.worker_error)
