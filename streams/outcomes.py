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
from collections import OrderedDict
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
    """Each use case's outcome economics, for the dashboard and the worker-wide gauges.

    The gauges sum the retention windows of the use cases this worker holds. What the board
    keeps is bounded three ways, so it cannot grow with every use case ever seen:

    * by partition: a use case is dropped when its partition is revoked
      (:meth:`drop_partitions`, wired to the rebalance), since its new owner reports it;
    * by event time: a window that ended a whole retention before the newest window the board
      has seen covers none of the same hours, so it is dropped instead of adding stale spend;
    * by count: at most ``max_views`` use cases (the least recently updated goes first).

    Totals are kept as running sums (one update costs the same whatever the number of use
    cases), recomputed exactly whenever views are dropped, so rounding never accumulates.
    """

    def __init__(
        self,
        metrics: SpendfuseMetrics | None = None,
        dashboard: Any = None,
        *,
        max_views: int = 100_000,
    ) -> None:
        if max_views < 1:
            raise ValueError(f"max_views must be at least 1, got {max_views}")
        self.metrics = metrics
        self.dashboard = dashboard  # DashboardState, or None
        self.max_views = max_views
        self.views: OrderedDict[str, dict[str, Any]] = OrderedDict()  # use case -> window
        self._where: dict[str, tuple[int | None, datetime, datetime]] = {}  # partition, start, end
        self._newest_end: datetime | None = None
        self._totals = _Totals()

    def update(self, use_case: str, state: Any, partition: int | None = None) -> None:
        data = (state or {}).get(OUTCOMES_KEY)
        if data is None:
            return
        view = ledger_view(data)
        window = view["window"]
        start, end = _parse(window["start"]), _parse(window["end"])
        old = self.views.pop(use_case, None)
        if old is not None:
            self._totals.remove(old)
        self.views[use_case] = window
        self._where[use_case] = (partition, start, end)
        self._totals.add(window)
        if self.dashboard is not None:
            self.dashboard.set_outcomes(use_case, view)
        dropped = False
        if self._newest_end is None or end > self._newest_end:
            self._newest_end = end
            dropped = self._drop_stale()
        while len(self.views) > self.max_views:
            self._forget(next(iter(self.views)))
            dropped = True
        if dropped:
            self._recount()
        self._publish()

    def drop(self, use_cases: set[str]) -> None:
        for use_case in use_cases & self.views.keys():
            self._forget(use_case)
        self._recount()
        self._publish()

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget the use cases of partitions this worker no longer holds."""
        self.drop({uc for uc, (p, _s, _e) in self._where.items() if p in partitions})

    def _drop_stale(self) -> bool:
        assert self._newest_end is not None
        stale = [
            uc
            for uc, (_p, start, end) in self._where.items()
            if end <= self._newest_end - (end - start)
        ]
        for use_case in stale:
            self._forget(use_case)
        return bool(stale)

    def _forget(self, use_case: str) -> None:
        self.views.pop(use_case, None)
        self._where.pop(use_case, None)

    def _recount(self) -> None:
        self._totals = _Totals()
        for window in self.views.values():
            self._totals.add(window)

    def _publish(self) -> None:
        if self.metrics is not None:
            t = self._totals
            self.metrics.set_outcome_totals(t.spend, t.successes, t.valued_spend, t.value)


class _Totals:
    """Running sums of the fields the worker-wide outcome gauges read from each window."""

    __slots__ = ("spend", "successes", "value", "valued_spend")

    def __init__(self) -> None:
        self.spend = self.successes = self.valued_spend = self.value = 0.0

    def add(self, w: dict[str, Any], sign: float = 1.0) -> None:
        self.spend += sign * (w["spend_usd"] or 0.0)
        self.successes += sign * w["successes"]
        if w["value_usd"] is not None:
            self.valued_spend += sign * (w["spend_usd"] or 0.0)
            self.value += sign * w["value_usd"]

    def remove(self, w: dict[str, Any]) -> None:
        self.add(w, -1.0)


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


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
