"""One memory budget for every RocksDB database a worker opens.

Faust opens one RocksDB database per table and partition, and each gets its own block cache
(2 GiB unless told otherwise), up to three 64 MiB memtables, and the index and filter blocks of
every file it has open, outside any cache. A worker's RocksDB memory so grows with the
partitions it is assigned (a takeover adds a dead worker's), with each table added, and with the
data on disk (filters and indexes of the dedup ids' files grow with the ids kept).

:class:`RocksDBMemory` bounds it for the whole worker instead:

* every database shares one LRU block cache, which also holds the index and filter blocks (so
  table readers' memory is in the cache, not beside it);
* each database keeps at most :data:`TABLE_OPTIONS` of memtables, and at every offset commit
  (:meth:`RocksDBMemory.flush`, one of the commit's write-behind caches) the largest memtables
  are flushed to disk in the background once all of them together pass the write-buffer budget.
  RocksDB's own write-buffer manager either lets them run past a budget while its flushes catch
  up (measured at 4 to 7 times it) or stalls every writer, and with many databases can stall
  one whose own memtables are empty for good; a check at the commit does neither.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
import rocksdict
from faust.stores.rocksdb import RocksDBOptions

log = logging.getLogger(__name__)

TABLE_OPTIONS = {"write_buffer_size": 8 * 1024 * 1024, "max_write_buffer_number": 2}
"""Each database's own memtables: at most 2 x 8 MiB (Faust's default is 3 x 64 MiB)."""

MEMTABLES = "rocksdb.cur-size-all-mem-tables"  # the mutable memtable and those being flushed
ACTIVE_MEMTABLE = "rocksdb.cur-size-active-mem-table"


class RocksDBMemory:
    """The block cache and memtable budget shared by the worker's RocksDB databases."""

    @classmethod
    def from_settings(cls, settings: Any, metrics: Any = None) -> RocksDBMemory:
        mib = 1024 * 1024
        return cls(
            settings.rocksdb_block_cache_mb * mib, settings.rocksdb_write_buffer_mb * mib, metrics
        )

    def __init__(
        self, block_cache_bytes: int, write_buffer_bytes: int, metrics: Any = None
    ) -> None:
        self.block_cache_bytes = block_cache_bytes
        self.write_buffer_bytes = write_buffer_bytes
        self.metrics = metrics  # SpendfuseMetrics: what is held, the budgets, the flushes
        self.cache = rocksdict.Cache(block_cache_bytes)
        if metrics is not None:
            metrics.rocksdb_memory_budget.labels("block_cache").set(block_cache_bytes)
            metrics.rocksdb_memory_budget.labels("memtables").set(write_buffer_bytes)
        self.flushes = 0  # memtables flushed by the budget (not by their own size)
        self._stores: list[Any] = []

    def bound(self, table: Any) -> bool:
        """Open ``table``'s partition databases within this budget; False for a memory store.

        Must run before the table's first partition database is opened (at assignment)."""
        store = table.data
        options = getattr(store, "rocksdb_options", None)
        if options is None:
            return False
        if store._dbs:
            raise RuntimeError(f"table {table.name}: bound its memory before partitions open")
        if not getattr(store, "use_rocksdict", False):
            log.warning("table %s: RocksDB memory is bounded with rocksdict only", table.name)
            return False
        store.rocksdb_options = BoundedRocksDBOptions.wrap(options, self)
        self._stores.append(store)
        return True

    def bound_all(self, app: faust.App) -> list[str]:
        """Bound every table of ``app``; the names of those on RocksDB."""
        return [name for name, table in app.tables.items() if self.bound(table)]

    def databases(self) -> list[Any]:
        """The partition databases open now (revoked partitions' are closed and gone)."""
        return [db for store in self._stores for db in list(store._dbs.values())]

    def memtable_bytes(self) -> int:
        return sum(db.property_int_value(MEMTABLES) or 0 for db in self.databases())

    def flush(self) -> int:
        """At each commit: once all memtables together pass the budget, flush the largest
        mutable ones (in the background; no writer waits) until half the budget would be left.
        Returns how many were flushed."""
        sizes = [
            (db.property_int_value(MEMTABLES) or 0, db.property_int_value(ACTIVE_MEMTABLE) or 0, db)
            for db in self.databases()
        ]
        total = sum(held for held, _active, _db in sizes)
        if self.metrics is not None:
            self.metrics.rocksdb_memory.labels("memtables").set(total)
            self.metrics.rocksdb_memory.labels("block_cache").set(self.cache.get_usage())
        if total <= self.write_buffer_bytes:
            return 0
        flushed = 0
        for _held, active, db in sorted(sizes, key=lambda s: -s[1]):
            if total <= self.write_buffer_bytes // 2 or not active:
                break
            db.flush(False)
            total -= active
            flushed += 1
        self.flushes += flushed
        if self.metrics is not None:
            self.metrics.rocksdb_memtable_flushes.inc(flushed)
        return flushed

    def drop_partitions(self, partitions: set[int]) -> None:
        """Nothing to write: Faust closes revoked partitions' databases itself."""

    def usage(self) -> dict[str, int]:
        """Bytes held now: the shared cache (blocks, indexes, filters) and all memtables."""
        return {"block_cache": self.cache.get_usage(), "memtables": self.memtable_bytes()}


class BoundedRocksDBOptions(RocksDBOptions):
    """Faust's rocksdict options, with the worker's shared cache and write-buffer manager."""

    memory: RocksDBMemory

    @classmethod
    def wrap(cls, options: RocksDBOptions, memory: RocksDBMemory) -> BoundedRocksDBOptions:
        """``options`` with the shared cache, and memtables of at most :data:`TABLE_OPTIONS`
        whatever the table asked for (Faust's defaults are 3 x 64 MiB)."""
        bounded = cls.__new__(cls)
        bounded.__dict__.update(options.__dict__)
        bounded.memory = memory
        bounded.write_buffer_size = min(
            options.write_buffer_size, TABLE_OPTIONS["write_buffer_size"]
        )
        bounded.max_write_buffer_number = min(
            options.max_write_buffer_number, TABLE_OPTIONS["max_write_buffer_number"]
        )
        return bounded

    def as_options(self) -> Any:
        db_options = rocksdict.Options(raw_mode=True)
        db_options.create_if_missing(True)
        db_options.set_max_open_files(self.max_open_files)
        db_options.set_write_buffer_size(self.write_buffer_size)
        db_options.set_target_file_size_base(self.target_file_size_base)
        db_options.set_max_write_buffer_number(self.max_write_buffer_number)
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, True)
        table.set_block_cache(self.memory.cache)
        table.set_cache_index_and_filter_blocks(True)  # table readers' memory in the cache
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)  # the newest files' stay hot
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        db_options.set_block_based_table_factory(table)
        return db_options
