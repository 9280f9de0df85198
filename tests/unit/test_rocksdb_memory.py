"""A worker's RocksDB memory has one budget, however many tables and partitions it opens.

Real RocksDB databases under Faust tables (no broker): 3 tables x 4 partitions written in
rounds, as commits write them, and read back. Opened with each table's own options (Faust's
way: a cache and memtables per database) the same writes hold several times the budget.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import faust
import pytest

from spendfuse.streams.metrics import SpendfuseMetrics
from spendfuse.streams.rocksdb_memory import TABLE_OPTIONS, RocksDBMemory
from spendfuse.streams.state_cache import store_put_bytes

MiB = 1024 * 1024
PARTITIONS = 4
TABLES = ("use-case-state", "dedup-ids-by-day", "tenant-state")


def _app(tmp_path: Path, store: str = "rocksdb://") -> faust.App:
    return faust.App("rocksdb-memory", store=store, datadir=str(tmp_path), broker="kafka://x:1")


def _tables(app: faust.App) -> list[Any]:
    options = {**TABLE_OPTIONS, "block_cache_size": 8 * MiB}  # per database, Faust's way
    return [
        app.Table(name, default=None, partitions=PARTITIONS, options=dict(options))
        for name in TABLES
    ]


def _dbs(tables: list[Any]) -> list[Any]:
    return [db for table in tables for db in table.data._dbs.values()]


def _write_rounds(tables: list[Any], rounds: int, memory: RocksDBMemory | None = None) -> int:
    """Every database gets 400 KB of incompressible values per round, then a commit; the most
    memtable bytes held after any round."""
    most = 0
    for r in range(rounds):
        value = os.urandom(4096)
        keys = [f"r{r:03d}k{i:03d}".encode() for i in range(100)]
        for table in tables:
            for partition in range(PARTITIONS):
                store_put_bytes(table.data, partition, keys, value)
        if memory is not None:
            memory.flush()  # as each commit does
        most = max(most, _held(_dbs(tables), "rocksdb.cur-size-all-mem-tables"))
    return most


def _read_back(tables: list[Any]) -> list[Any]:
    """3 MB per database flushed to files, then read back through the block cache."""
    keys = [f"k{i:06d}".encode() for i in range(750)]
    for table in tables:
        for partition in range(PARTITIONS):
            store_put_bytes(table.data, partition, keys, os.urandom(4096))
            db = table.data._db_for_partition(partition)
            db.flush()
            for key in keys:
                assert db.get(key) is not None
    return _dbs(tables)


def _held(dbs: list[Any], prop: str) -> int:
    return sum(db.property_int_value(prop) or 0 for db in dbs)


def test_memtables_of_every_table_and_partition_stay_near_one_budget(tmp_path: Path) -> None:
    app = _app(tmp_path)
    tables = _tables(app)
    budget = 16 * MiB
    metrics = SpendfuseMetrics()
    memory = RocksDBMemory(4 * MiB, budget, metrics)
    assert sorted(memory.bound_all(app)) == sorted(TABLES)
    most = _write_rounds(tables, 30, memory)
    assert len(_dbs(tables)) == len(TABLES) * PARTITIONS
    assert memory.flushes > 0
    sample = metrics.registry.get_sample_value
    assert sample("spendfuse_rocksdb_memtable_flushes_total") == memory.flushes
    assert sample("spendfuse_rocksdb_memory_budget_bytes", {"part": "memtables"}) == budget
    assert 0 < sample("spendfuse_rocksdb_memory_bytes", {"part": "memtables"}) <= budget + 12 * MiB
    # within the budget plus one commit's writes (12 x 400 KB, in 1 MiB arena blocks), well
    # short of the 12 x 16 MiB the databases' own caps allow
    assert most <= budget + 12 * MiB


def test_without_the_budget_the_same_writes_hold_several_times_it(tmp_path: Path) -> None:
    """What the bound removes: each database's memtables fill towards its own cap."""
    assert _write_rounds(_tables(_app(tmp_path)), 30) > 4 * 16 * MiB


def test_one_block_cache_holds_every_databases_blocks(tmp_path: Path) -> None:
    app = _app(tmp_path)
    tables = _tables(app)
    memory = RocksDBMemory(4 * MiB, 16 * MiB)
    memory.bound_all(app)
    dbs = _read_back(tables)
    usage = {db.property_int_value("rocksdb.block-cache-usage") for db in dbs}
    assert len(usage) == 1  # one cache, seen from every database
    assert usage.pop() <= 4 * MiB
    assert memory.usage()["block_cache"] <= 4 * MiB


def test_without_the_budget_each_database_fills_a_cache_of_its_own(tmp_path: Path) -> None:
    dbs = _read_back(_tables(_app(tmp_path)))
    assert _held(dbs, "rocksdb.block-cache-usage") > 8 * 4 * MiB


def test_a_memory_store_has_no_rocksdb_to_bound(tmp_path: Path) -> None:
    app = _app(tmp_path, "memory://")
    _tables(app)
    assert RocksDBMemory(4 * MiB, 16 * MiB).bound_all(app) == []


def test_the_budget_is_set_before_partitions_open(tmp_path: Path) -> None:
    app = _app(tmp_path)
    table = _tables(app)[0]
    table.data._db_for_partition(0)
    with pytest.raises(RuntimeError, match="before partitions open"):
        RocksDBMemory(4 * MiB, 16 * MiB).bound(table)
