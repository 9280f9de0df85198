"""Dedup ids in a Faust tumbling windowed table, written behind: once per offset commit.

The buckets are those of replay's :class:`~spendfuse.dedup.MemoryDedupStore`: an id is kept in
the tumbling window (one day wide) of its *event time*, not the Kafka timestamp or the wall
clock, and a repeat in the same window or the one before is a duplicate, so the stream and
``spendfuse replay`` agree on what is a duplicate.

Ids are not written to the table as each event is handled. They wait in memory and are written
(store + changelog) when offsets are committed, together with the use-case state that counted
them (:mod:`spendfuse.streams.state_cache` calls :meth:`flush`). That costs one changelog record
per id per commit instead of a table write per event, and keeps the two consistent across a
crash: an id reaches the changelog only with the state that includes its event, so an event
replayed after a ``kill -9`` is neither lost (id remembered, spend not) nor double counted.
Faust still expires old windows and their changelog entries.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import faust

from spendfuse.dedup import DEDUP_WINDOW_S
from spendfuse.streams.state_cache import store_get, store_put


class FaustDedupStore:
    def __init__(
        self,
        app: faust.App,
        name: str = "dedup-cost-event-ids",
        options: dict[str, Any] | None = None,
        sink: Any = None,
    ) -> None:
        self.sink = sink  # a CommitProducer; None: Faust's own producer
        wrapper: Any = app.Table(
            name, default=int, help="cost_event_id seen in this event-time day", options=options
        ).tumbling(timedelta(seconds=DEDUP_WINDOW_S), expires=timedelta(days=3))
        self.table: Any = wrapper.table
        self.window: Any = self.table.window
        self.partition: int | None = None  # of the record being handled; set by the agent
        self._pending: dict[tuple[str, Any], int] = {}  # (id, window range) -> partition

    def _keys(self, cost_event_id: str, ts_ms: int) -> tuple[tuple[str, Any], tuple[str, Any]]:
        ts_s = ts_ms / 1000
        return (
            (cost_event_id, self.window.current(ts_s)),
            (cost_event_id, self.window.current(ts_s - DEDUP_WINDOW_S)),
        )

    def seen(self, cost_event_id: str, ts_ms: int) -> bool:
        store = self.table.data
        # an id lives in the partition of its use case's records: store_get looks only there
        return any(key in self._pending or store_get(store, self.partition, key)
                   for key in self._keys(cost_event_id, ts_ms))  # fmt: skip

    def remember(self, cost_event_id: str, ts_ms: int) -> None:
        if self.partition is None:
            raise RuntimeError("set the record's partition before remembering ids")
        for window_range in self.window.ranges(ts_ms / 1000):
            self._pending[(cost_event_id, window_range)] = self.partition

    def flush(self) -> int:
        """Write pending ids to the store and the changelog, with their expiry."""
        pending, self._pending = self._pending, {}
        for key, partition in pending.items():
            raw = store_put(self.table.data, partition, key, 1)
            if self.sink is not None:
                self.sink.changelog(self.table, partition, key, 1, raw)
            else:
                self.table.send_changelog(partition, key, 1)
            self.table._maybe_set_key_ttl(key, partition)
        return len(pending)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Before partitions are revoked: write everything pending (it is cheap and safe)."""
        if any(p in partitions for p in self._pending.values()):
            self.flush()
