"""Hourly rollups from the worker to ``spendfuse.cost-rollups``.

The pure pipeline keeps each use case's hourly sums in its state and returns the rows an event
closed or corrected (:class:`spendfuse.finops.rollups.RollupBook`); the ingest handler puts them
in the outbox, so they leave with the commit, acknowledged before the state that counted them is
written. Hours still open are published at each commit with their totals so far, for the use
cases whose state that commit writes (first, so they are acknowledged before the state is), so
reports and the dashboard see the current hour and a restarted worker never holds a state whose
rows were not published. Every record carries full totals under a stable key, so a later one
replaces it in the compacted topic and repeats after a restart change nothing.
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
    """Puts rollup rows in the outbox: the rows a record closed or corrected as it is handled,
    and at each commit the open hours of every use case whose state the commit writes."""

    def __init__(
        self,
        book: RollupBook,
        topic: Any,
        outbox: Outbox,
        states: Any,
        on_rows: Callable[[Iterable[CostRollup]], None] | None = None,
        on_state: Callable[[str, Any, int], None] | None = None,
    ) -> None:
        self.book = book
        self.topic = topic
        self.outbox = outbox
        self.states = states  # WriteBehindStates of the use-case stage
        self.on_rows = on_rows  # e.g. the dashboard's showback
        self.on_state = on_state  # e.g. the outcome board: reads a touched use case's state
        self._touched: dict[str, int] = {}  # use case -> partition, since the last refresh
        self.published = 0

    def publish(self, rows: Iterable[CostRollup]) -> None:
        rows = list(rows)
        for row in rows:
            self.outbox.add(self.topic, rollup_key(row), encode(row))
        self.published += len(rows)
        if rows and self.on_rows is not None:
            self.on_rows(rows)

    def publish_open(self) -> int:
        """The commit's first step: the open hours of every use case whose state it is about
        to write, so no state is written before the rows it holds are acknowledged."""
        before = self.published
        self.outbox.origin = (None, None, None)
        for use_case in self.states.dirty_keys():
            state = self.states.cached(use_case)
            if state:
                self.publish(self.book.open_rows(state))
        return self.published - before

    def touched(self, use_case: str, partition: int) -> None:
        if self.on_state is not None:
            self._touched[use_case] = partition

    def refresh(self) -> int:
        """Hand the state of every use case touched since the last call to ``on_state``."""
        touched, self._touched = self._touched, {}
        if self.on_state is None:
            return 0
        for use_case, partition in touched.items():
            try:
                state = self.states.cached(use_case)
                if state is None:
                    state = store_get(self.states.table.data, partition, use_case)
            except Exception:  # the partition went to another worker meanwhile: its job now
                log.debug("refresh skipped %s (partition %s)", use_case, partition)
                continue
            if state:
                self.on_state(use_case, state, partition)
        return len(touched)


def register_outcome_refresh(app: faust.App, publisher: RollupPublisher, interval_s: float) -> None:
    """Every ``interval_s``: recompute the touched use cases' outcome economics (dashboard and
    gauges); a view only, so nothing is sent."""

    @app.timer(interval_s, name="outcome_refresh")
    async def outcome_refresh() -> None:
        try:
            publisher.refresh()
        except Exception:  # never stops the timer; the next refresh shows the same
            log.exception("outcome refresh failed; the next one covers it")
