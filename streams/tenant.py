"""The tenant stage: a second agent keyed by tenant, for tenant budgets, quotas and rules.

Cost events are partitioned by use case, so no single partition sees a tenant's whole spend.
The ingest agent re-publishes each *accepted, priced* event to ``spendfuse.tenant-spend`` keyed
by tenant; this agent runs the same pure :meth:`Pipeline.handle_tenant` that replay runs, with
tenant state in a Faust table, and publishes its alerts and (signed) commands.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from spendfuse.pipeline import Pipeline
from spendfuse.schemas import topics
from spendfuse.schemas.codec import decode_cost_event, encode
from spendfuse.schemas.errors import EventRejectedError

log = logging.getLogger(__name__)
TENANT_SPEND = topics.TENANT_SPEND


def tenant_topic(app: faust.App, partitions: int) -> faust.TopicT:
    return app.topic(TENANT_SPEND, key_serializer="raw", value_serializer="raw",
                     partitions=partitions, internal=True)  # fmt: skip


def register_tenant_agent(app: faust.App, pipeline: Pipeline, topics: dict[str, Any],
                          signer: Any, partitions: int) -> None:  # fmt: skip
    states = app.Table("tenant-state", default=None, partitions=partitions,
                       help="per-tenant rule state (plain data)")  # fmt: skip

    @app.agent(topics["tenant_spend"], name="decide_tenant_spend")
    async def decide_tenant_spend(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                event = decode_cost_event(value, 1 << 20)
            except EventRejectedError as exc:  # cannot happen for our own records; never block
                log.warning("tenant stage skipped a record: %s", exc)
                continue
            decisions = pipeline.handle_tenant(event, states)
            for alert in decisions.alerts:
                await topics["alerts"].send(key=alert.fingerprint.encode(), value=encode(alert))
            for command in decisions.commands:
                key, body = command.key().encode(), encode(command)
                await topics["control"].send(key=key, value=body,
                                             headers=signer.headers(key, body))  # fmt: skip
