"""The tenant stage: a second agent keyed by tenant, for tenant budgets, quotas and rules.

Cost events are partitioned by use case, so no single partition sees a tenant's whole spend.
The ingest agent re-publishes each record's *accepted, priced* events to
``spendfuse.tenant-spend``, one record per tenant keyed by tenant; this agent runs the same pure
:meth:`Pipeline.handle_tenant_batch` that replay runs, with tenant state in a Faust table
(written behind at commit), and its alerts and (signed) commands leave through the outbox. A
record whose handling raises is dead-lettered (``internal_error``) and counted, and the agent
goes on.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import orjson

from spendfuse.pipeline import Pipeline
from spendfuse.schemas import topics
from spendfuse.schemas.codec import decode_cost_events, encode
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.envelope import is_envelope
from spendfuse.schemas.errors import EventRejectedError
from spendfuse.streams.errors import handle_each
from spendfuse.streams.metrics import default_metrics
from spendfuse.streams.observer import NULL_OBSERVER, NullObserver
from spendfuse.streams.outbox import Outbox
from spendfuse.streams.state_cache import WriteBehindStates, commit_now

log = logging.getLogger(__name__)
TENANT_SPEND = topics.TENANT_SPEND


def tenant_topic(app: faust.App, partitions: int) -> faust.TopicT:
    return app.topic(
        TENANT_SPEND,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=True,
    )


def decode_tenant_record(value: bytes) -> list[CostEvent]:
    """The priced events of one tenant-stage record (one event or an envelope)."""
    try:
        obj = orjson.loads(value)
        members = obj["events"] if is_envelope(obj) else [obj]
        # as columns, as the ingest decodes: the same verdict as parse_cost_event_obj per member
        events = decode_cost_events(members)
        for event in events:
            if isinstance(event, EventRejectedError):
                raise event
        return events  # type: ignore[return-value]
    except (orjson.JSONDecodeError, EventRejectedError, TypeError, KeyError) as exc:
        log.warning("tenant stage skipped a record: %s", exc)  # our own records: cannot happen
        return []


def register_tenant_agent(
    app: faust.App,
    pipeline: Pipeline,
    topics: dict[str, Any],
    signer: Any,
    partitions: int,
    outbox: Outbox,
    *,
    sink: Any = None,
    batch_max: int = 500,
    batch_within_s: float = 0.02,
    observer: NullObserver = NULL_OBSERVER,
    max_cached: int = 5_000,
) -> WriteBehindStates:
    """Register the agent; returns its tenant states, to be flushed at commit like the rest."""
    table = app.Table(
        "tenant-state",
        default=None,
        partitions=partitions,
        help="per-tenant rule state (plain data)",
    )
    states = WriteBehindStates(table, sink, max_cached)

    def handle(record: Any) -> None:
        states.partition = record.message.partition
        trimmed: dict[str, int] = {}
        decisions = pipeline.run_tenant(decode_tenant_record(record.value), states, trimmed)
        if trimmed:
            observer.state_sized((), trimmed)
        observer.decided(decisions)
        for alert in decisions.alerts:
            outbox.add(topics["alerts"], alert.fingerprint.encode(), encode(alert), urgent=True)
        for command in decisions.commands:  # stamped at publish time, then signed
            for key, body, headers in signer.records(command):
                outbox.add(topics["control"], key, body, headers, urgent=True)

    @app.agent(topics["tenant_spend"], name="decide_tenant_spend")
    async def decide_tenant_spend(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(batch_max, within=batch_within_s):
            handle_each(batch, handle, outbox, topics["dlq"], default_metrics(), "tenant")
            if outbox.urgent:
                await commit_now(app, default_metrics().record_worker_error)

    return states
