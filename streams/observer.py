"""What the ingest agent tells the rest of the worker: metrics and the dashboard's state.

:class:`IngestObserver` is the one hook the ingest handler calls; it keeps the handler a thin
adapter (decode → pipeline → publish) and puts counting and charting in one place. The default
observer does nothing, so the handler works alone in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime

from spendfuse.dashboard_state import DashboardState
from spendfuse.pipeline import Handled, Outcome
from spendfuse.rules.decisions import Decisions
from spendfuse.schemas.cost_event import PricingStatus
from spendfuse.schemas.rollup import CostRollup
from spendfuse.streams.metrics import SpendfuseMetrics


class NullObserver:
    """Observes nothing (the handler's default)."""

    def record_in(self) -> None: ...

    def dead_lettered(self, reason: str) -> None: ...

    def rekeyed(self) -> None: ...

    def worker_error(self, stage: str) -> None: ...

    def state_sized(self, sizes: Iterable[int], trimmed: dict[str, int]) -> None: ...

    def handled(self, handled: Handled) -> None: ...

    def decided(self, decisions: Decisions) -> None: ...

    def rollups(self, rows: Iterable[CostRollup]) -> None: ...

    def processing(self) -> AbstractContextManager[None]:
        return nullcontext()

    def deciding(self) -> AbstractContextManager[None]:
        return nullcontext()


class IngestObserver(NullObserver):
    """Counts every record in :class:`SpendfuseMetrics` and feeds :class:`DashboardState`."""

    def __init__(
        self,
        metrics: SpendfuseMetrics,
        dashboard: DashboardState,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.metrics = metrics
        self.dashboard = dashboard
        self.clock = clock  # only for the late / ahead counters

    def record_in(self) -> None:
        self.metrics.record_in()

    def dead_lettered(self, reason: str) -> None:
        self.metrics.record_dead_letter(reason)

    def rekeyed(self) -> None:
        self.metrics.record_rekeyed()

    def worker_error(self, stage: str) -> None:
        self.metrics.record_worker_error(stage)

    def state_sized(self, sizes: Iterable[int], trimmed: dict[str, int]) -> None:
        for size in sizes:
            self.metrics.record_state_measured(size)
        if trimmed:
            self.metrics.record_state_trimmed(trimmed)

    def handled(self, handled: Handled) -> None:
        if handled.outcome is Outcome.DUPLICATE or handled.event is None:
            self.metrics.record_duplicate()
            return
        self.metrics.record_accepted(handled.event.cost_usd)
        if handled.event.pricing_status is PricingStatus.UNPRICED:
            self.metrics.record_unpriced(handled.event.component.value)
        self.metrics.record_event_time(handled.event.event_time, self.clock())
        self.dashboard.add_event(handled.event)
        self.decided(handled.decisions)

    def decided(self, decisions: Decisions) -> None:
        """Every alert and command, of either stage, is counted and charted here."""
        for alert in decisions.alerts:
            self.metrics.record_alert(alert)
            self.dashboard.add_alert(alert)
        for command in decisions.commands:
            self.metrics.record_command(command)
            self.dashboard.add_decided_command(command)  # in force once the feed sees it

    def rollups(self, rows: Iterable[CostRollup]) -> None:
        """Rollup rows the worker publishes: the dashboard's showback reads them."""
        self.dashboard.add_rollups(rows)

    @contextmanager
    def processing(self) -> Iterator[None]:
        with self.metrics.time_processing():
            yield

    def deciding(self) -> AbstractContextManager[None]:
        return self.metrics.time_detectors()


NULL_OBSERVER = NullObserver()
