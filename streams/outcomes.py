"""The outcome agent: outcome events into each use case's outcome ledger.

Outcome events (``spendfuse.outcomes``, keyed by use case and partitioned like the cost events,
so a use case's outcomes reach the worker and the state that hold its spend) go through the pure
:meth:`Pipeline.run_outcome`, which replay runs too: a bad record is dead-lettered with the same
reason codes as a cost event, one under another use case's key is re-published under its own,
and a valid one is applied to the ledger in the use case's state (written at commit with the
rest of it). Applying the same outcome twice changes nothing, so records re-read after a restart
are harmless.

Cost per successful outcome and ROI reach the dashboard (per use case) and ``/metrics`` (over
the use cases this worker holds) every two seconds, recomputed for the use cases that had spend
or outcomes since the last time.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import faust

from spendfuse.finops.outcomes import ledger_view
from spendfuse.pipeline import OUTCOMES_KEY, Pipeline
from spendfuse.schemas.codec import encode
from spendfuse.schemas.topics import outcome_key
from spendfuse.streams.errors import handle_each
from spendfuse.streams.metrics import SpendfuseMetrics
from spendfuse.streams.outbox import Outbox

log = logging.getLogger(__name__)


class OutcomeBoard:
    """Each use case's outcome economics, for the dashboard and the worker-wide gauges."""

    def __init__(self, metrics: SpendfuseMetrics | None = None, dashboard: Any = None) -> None:
        self.metrics = metrics
        self.dashboard = dashboard  # DashboardState, or None
        self.views: dict[str, dict[str, Any]] = {}  # use case -> ledger_view(...)

    def update(self, use_case: str, state: Any) -> None:
        data = (state or {}).get(OUTCOMES_KEY)
        if data is None:
            return
        view = ledger_view(data)
        self.views[use_case] = view
        if self.dashboard is not None:
            self.dashboard.set_outcomes(use_case, view)
        if self.metrics is not None:
            self.metrics.set_outcome_totals(v["window"] for v in self.views.values())

    def drop(self, use_cases: set[str]) -> None:
        for use_case in use_cases:
            self.views.pop(use_case, None)


def register_outcome_agent(
    app: faust.App,
    pipeline: Pipeline,
    topics: dict[str, Any],
    states: Any,
    outbox: Outbox,
    metrics: SpendfuseMetrics,
    *,
    touched: Any = None,
    batch_max: int = 500,
    batch_within_s: float = 0.02,
) -> None:
    """``touched(use_case, partition)``: have this use case's outcome view recomputed
    (:meth:`~spendfuse.streams.rollups.RollupPublisher.refresh`)."""

    def handle(record: Any) -> None:
        msg = record.message
        states.partition = msg.partition
        result = pipeline.run_outcome(
            record.value,
            datetime.now(UTC),
            states,
            key=record.key,
            topic=msg.topic,
            partition=msg.partition,
            offset=msg.offset,
            owns=lambda o: outcome_key(o.use_case_id) == record.key,
        )
        if result.dead_letter is not None:
            dead = result.dead_letter
            log.warning(
                "outcome %s[%s]@%s dead-lettered: %s",
                msg.topic,
                msg.partition,
                msg.offset,
                dead.error,
            )
            outbox.add(topics["dlq"], record.key, encode(dead))
            metrics.record_dead_letter(dead.reason)
            return
        outcome = result.outcome
        assert outcome is not None
        if result.foreign:  # under another key: to the use case's own partition
            outbox.add(topics["outcomes"], outcome_key(outcome.use_case_id), record.value)
            metrics.record_outcome("rekeyed")
            return
        if not pipeline.outcome_ledger:
            metrics.record_outcome("off")  # SPENDFUSE_OUTCOME_LEDGER is false
            return
        metrics.record_outcome(outcome.status.value if result.applied else "ignored")
        if touched is not None:
            touched(outcome.use_case_id, msg.partition)

    @app.agent(topics["outcomes"], name="ledger_outcomes")
    async def ledger_outcomes(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(batch_max, within=batch_within_s):
            handle_each(batch, handle, outbox, topics["dlq"], metrics, "outcomes")
