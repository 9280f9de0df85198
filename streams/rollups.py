"""Hourly rollups from the worker to ``spendfuse.cost-rollups``.

The pure pipeline keeps each use case's hourly sums in its state and returns the rows an event
closed or corrected (:class:`spendfuse.finops.rollups.RollupBook`); the ingest handler puts them
in the outbox, so they leave with the commit, acknowledged before the state that counted them is
written. Hours still open are published every ``SPENDFUSE_ROLLUP_FLUSH_S`` with their totals so
far (only for use cases that had events since the last flush), so reports and the dashboard see
the current hour; every record carries full totals under a stable key, so a later one replaces
it in the compacted topic and repeats after a restart change nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

import faust

from spendfuse.finops.rollups import RollupBook
from spendfuse.schemas.codec import encode
from spendfuse.schemas.rollup import CostRollup, rollup_key
from spendfuse.streams.outbox import Outbox
from spendfuse.streams.state_cache import store_get

log = logging.getLogger(__name__)


class RollupPublisher:
    """Puts rollup rows in the outbox; remembers which use cases have open hours to refresh."""

    def __init__(
        self,
        book: RollupBook,
        topic: Any,
        outbox: Outbox,
        states: Any,
        on_rows: Callable[[Iterable[CostRollup]], None] | None = None,
        on_state: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.on_state = on_state  # e.g. the outcome board: reads the flushed use case's state
        self.book = book
        self.topic = topic
        self.outbox = outbox
        self.states = states  # WriteBehindStates of the use-case stage
        self.on_rows = on_rows  # e.g. the dashboard's showback
        self._touched: dict[str, int] = {}  # use case -> partition, since the last flush
        self.published = 0

    def publish(self, rows: Iterable[CostRollup]) -> None:
        rows = list(rows)
        for row in rows:
            self.outbox.add(self.topic, rollup_key(row), encode(row))
        self.published += len(rows)
        if rows and self.on_rows is not None:
            self.on_rows(rows)

    def touched(self, use_case: str, partition: int) -> None:
        self._touched[use_case] = partition

    def flush_open(self) -> int:
        """Publish the open hours of every use case that had events since the last call."""
        touched, self._touched = self._touched, {}
        before = self.published
        self.outbox.origin = (None, None, None)
        for use_case, partition in touched.items():
            try:
                state = self._state(use_case, partition)
            except Exception:  # the partition went to another worker meanwhile: its job now
                log.debug("rollup flush skipped %s (partition %s)", use_case, partition)
                continue
            if state:
                self.publish(self.book.open_rows(state))
                if self.on_state is not None:
                    self.on_state(use_case, state)
        return self.published - before

    def _state(self, use_case: str, partition: int) -> Any:
        cached = self.states.cached(use_case)
        if cached is not None:
            return cached
        return store_get(self.states.table.data, partition, use_case)

    def drop_partitions(self, partitions: set[int]) -> None:
        self._touched = {k: p for k, p in self._touched.items() if p not in partitions}


def register_rollup_flush(
    app: faust.App, publisher: RollupPublisher, interval_s: float, commit: Callable[[], None]
) -> None:
    """Every ``interval_s``: publish the open hours and send them (the commit sequence's
    output step; no offsets move)."""

    @app.timer(interval_s, name="rollup_flush")
    async def rollup_flush() -> None:
        try:
            if publisher.flush_open():
                commit()
        except Exception:  # never stops the timer; the next flush publishes the same rows
            log.exception("rollup flush failed; the next one covers it")
