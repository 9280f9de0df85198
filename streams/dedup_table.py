"""Dedup ids in event-time day buckets on disk, dropped whole with a range delete.

The buckets are those of replay's :class:`~spendfuse.dedup.MemoryDedupStore`: an id is kept in
the UTC day of its *event time* (clamped, see :class:`~spendfuse.dedup.DayClock`), and a repeat
in the same day or the one before is a duplicate, so the stream and ``spendfuse replay`` agree on
what is a duplicate.

Each id is one key, ``<day: 4 bytes big-endian><id>``, in a plain Faust table on RocksDB: no
per-key timer or index lives in Python memory (Faust's windowed tables keep one per key, which
came to ~283 bytes of heap per accepted event, ~146 GB over four days at 1,500 events/s). Days
sort first, so when the newest event day moves on, each partition's database drops every
bucket older than :data:`~spendfuse.dedup.KEEP_DAYS` days before it with one ``delete_range``
(and compacts that range, so the disk space comes back the same day). The table's changelog is
``compact,delete`` with the same retention, so it does not grow either; a worker recovering a
partition gets at most those days of ids back, and the next sweep drops anything older.

Ids are not written to the table as each event is handled. They wait in memory and are written
(store + changelog) at the offset commit, after the outputs of their records are acknowledged
(:class:`~spendfuse.streams.state_cache.CommitSequence`), together with the use-case state that
counted them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust

from spendfuse.dedup import DAY_MS, KEEP_DAYS, DayClock, wall_clock_ms
from spendfuse.streams.state_cache import store_get, store_put_bytes

PRESENT = b"\x01"
ROCKSDB_OPTIONS = {"write_buffer_size": 8 * 1024 * 1024, "max_write_buffer_number": 2}
"""Memtables of at most 2 x 8 MiB per partition (Faust's default is 3 x 64 MiB): ids are
written once and rarely read back, so a large write buffer only holds memory."""


def dedup_key(day: int, cost_event_id: str) -> bytes:
    return day.to_bytes(4, "big") + cost_event_id.encode()


class FaustDedupStore:
    def __init__(
        self,
        app: faust.App,
        name: str = "dedup-ids-by-day",
        options: dict[str, Any] | None = None,
        sink: Any = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.sink = sink  # a CommitProducer; None: Faust's own producer
        retention_ms = (KEEP_DAYS + 1) * DAY_MS
        self.table: Any = app.Table(
            name,
            default=None,
            help="cost_event_id seen, by event-time day",
            key_type=bytes,
            value_type=bytes,  # raw bytes in the store and the changelog
            options=options,
            extra_topic_configs={
                "cleanup.policy": "compact,delete",
                "retention.ms": str(retention_ms),
                "segment.ms": str(DAY_MS),
            },
        )
        self.days = DayClock(clock_ms)
        self.partition: int | None = None  # of the record being handled; set by the agent
        self._pending: dict[bytes, int] = {}  # key -> partition
        self._swept: dict[int, int] = {}  # partition -> the first day kept at its last sweep
        self.swept_keys = 0  # keys dropped by sweeps (memory store) or sweeps run (RocksDB)

    def seen(self, cost_event_id: str, ts_ms: int) -> bool:
        day, _ = self.days.bucket(ts_ms)
        store = self.table.data
        # an id lives in the partition of its use case's records: store_get looks only there
        return any(
            key in self._pending or store_get(store, self.partition, key) is not None
            for key in (dedup_key(day, cost_event_id), dedup_key(day - 1, cost_event_id))
        )

    def remember(self, cost_event_id: str, ts_ms: int) -> None:
        if self.partition is None:
            raise RuntimeError("set the record's partition before remembering ids")
        day, kept = self.days.advance(ts_ms)
        if kept:  # else its bucket is already gone: keeping it would only be swept again
            self._pending[dedup_key(day, cost_event_id)] = self.partition

    def flush(self) -> int:
        """Write pending ids to the store and the changelog; drop buckets past retention."""
        pending, self._pending = self._pending, {}
        by_partition: dict[int, list[bytes]] = {}
        for key, partition in pending.items():
            by_partition.setdefault(partition, []).append(key)
        store = self.table.data
        rocks = hasattr(store, "_db_for_partition")
        for partition, keys in by_partition.items():
            store_put_bytes(store, partition, keys, PRESENT)  # one write batch per partition
        for key, partition in pending.items():  # then the changelog, in the order remembered
            if self.sink is not None:
                raw = (key, PRESENT) if rocks else None  # bytes: their own encoding
                self.sink.changelog(self.table, partition, key, PRESENT, raw)
            else:
                self.table.send_changelog(partition, key, PRESENT)
        first_kept = self.days.first_kept()
        if first_kept is not None:
            for partition in set(pending.values()):
                if self._swept.get(partition) != first_kept:
                    self.sweep(partition, first_kept)
        return len(pending)

    def sweep(self, partition: int, first_kept: int) -> None:
        """Drop every bucket older than ``first_kept`` from ``partition``'s store."""
        end = dedup_key(max(first_kept, 0), "")
        store = self.table.data
        if hasattr(store, "_db_for_partition"):
            db = store._db_for_partition(partition)
            db.delete_range(b"", end)
            db.compact_range(b"", end)  # once a day: give the disk space back now
            self.swept_keys += 1
        else:  # the memory store: one dict for every partition
            old = [k for k in store.data if k < end]
            for key in old:
                del store.data[key]
            self.swept_keys += len(old)
        self._swept[partition] = first_kept

    def drop_partitions(self, partitions: set[int]) -> None:
        """Before partitions are revoked: write everything pending (it is cheap and safe)."""
        if any(p in partitions for p in self._pending.values()):
            self.flush()
        for partition in partitions:
            self._swept.pop(partition, None)
