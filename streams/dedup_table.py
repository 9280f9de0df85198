"""Dedup ids in a Faust tumbling windowed table: the same day buckets as replay's store.

The table is relative to the *event time* of the event being handled (set just before each
lookup), not the Kafka timestamp or the wall clock, so the stream and ``spendfuse replay`` agree
on what is a duplicate. Faust expires old windows and their changelog entries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import faust

from spendfuse.dedup import DEDUP_WINDOW_S


class FaustDedupStore:
    def __init__(
        self,
        app: faust.App,
        name: str = "dedup-cost-event-ids",
        options: dict[str, Any] | None = None,
    ) -> None:
        self._ts_s = 0.0
        self.table: Any = (
            app.Table(name, default=int, help="cost_event_id seen in this event-time day",
                      options=options)
            .tumbling(timedelta(seconds=DEDUP_WINDOW_S), expires=timedelta(days=3))
            .relative_to(self._event_ts)
        )

    def _event_ts(self, _event: Any) -> float:
        return self._ts_s

    def seen(self, cost_event_id: str, ts_ms: int) -> bool:
        self._ts_s = ts_ms / 1000
        window = self.table[cost_event_id]
        return bool(window.current()) or bool(window.delta(DEDUP_WINDOW_S))

    def remember(self, cost_event_id: str, ts_ms: int) -> None:
        self._ts_s = ts_ms / 1000
        self.table[cost_event_id] = 1
