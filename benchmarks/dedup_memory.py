"""Dedup memory is bounded: bytes of heap and of disk per accepted event over a simulated run.

    python benchmarks/dedup_memory.py [--days 6] [--events-per-day 100000] [--store rocksdb://]

Drives the worker's own :class:`~spendfuse.streams.dedup_table.FaustDedupStore` (a Faust table
on RocksDB, no broker: changelog records are counted, not sent) through ``--days`` days of
simulated clock. Each day ``--events-per-day`` new ids are checked and remembered, 1 % of them
dated far in the future, with a commit every 10,000 events as the worker does. After each day
it prints the Python heap the store holds (tracemalloc), the RocksDB files on disk and the ids
alive, and at the end the heap and disk per accepted event, with what they come to over four
days at 1,500 events/s.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import tracemalloc
import uuid
from pathlib import Path

import faust

from spendfuse.dedup import DAY_MS, KEEP_DAYS
from spendfuse.streams.dedup_table import ROCKSDB_OPTIONS, FaustDedupStore

COMMIT_EVERY = 10_000
PARTITIONS = 4


class CountingSink:
    def __init__(self) -> None:
        self.records = 0

    def changelog(self, *_args: object) -> None:
        self.records += 1


def rss_mb() -> float:
    """Resident memory of this process now (Python heap, RocksDB memtables and caches)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=6)
    ap.add_argument("--events-per-day", type=int, default=100_000)
    ap.add_argument("--store", default="rocksdb://")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="spendfuse-dedup-"))
    app = faust.App("dedup-bench", store=args.store, datadir=str(tmp), broker="kafka://none:1")
    now = [1_795_000_000_000]  # the simulated clock (2026-11-18)
    options = (
        {"block_cache_size": 8 * 1024 * 1024, **ROCKSDB_OPTIONS}
        if args.store.startswith("rocksdb")
        else None
    )  # as the worker opens it
    store = FaustDedupStore(app, options=options, sink=CountingSink(), clock_ms=lambda: now[0])
    tracemalloc.start()
    gc.collect()
    base_heap = tracemalloc.get_traced_memory()[0]
    accepted = 0
    print(
        f"{'day':>3} {'accepted':>10} {'heap MB':>8} {'heap B/event alive':>18} "
        f"{'disk MB':>8} {'RSS MB':>7}"
    )
    for day in range(args.days):
        for i in range(args.events_per_day):
            ts = now[0] + i * (DAY_MS // args.events_per_day)
            if i % 100 == 0:
                ts = 4_000_000_000_000  # dated 2096: clamped to tomorrow, dropped with it
            eid = uuid.uuid4().hex
            store.partition = i % PARTITIONS
            if not store.seen(eid, ts):
                store.remember(eid, ts)
                accepted += 1
            if accepted % COMMIT_EVERY == 0:
                store.flush()
        store.flush()
        now[0] += DAY_MS
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0] - base_heap
        alive = min(accepted, (KEEP_DAYS + 2) * args.events_per_day)
        print(
            f"{day + 1:>3} {accepted:>10,} {heap / 1e6:>8.2f} {heap / alive:>18.2f} "
            f"{disk_bytes(tmp) / 1e6:>8.1f} {rss_mb():>7.0f}"
        )
    store.partition = 0
    store.remember("last", now[0])
    store.flush()  # today's sweep: buckets past retention are dropped on every partition
    first_kept = store.days.first_kept()
    assert first_kept is not None
    for partition in range(PARTITIONS):
        store.sweep(partition, first_kept)
    heap = tracemalloc.get_traced_memory()[0] - base_heap
    alive = (KEEP_DAYS + 2) * args.events_per_day
    disk = disk_bytes(tmp)
    per_event_disk = disk / alive
    four_days = 1_500 * 86_400 * 4
    print(
        f"\nheap after {args.days} days: {heap / 1e6:.2f} MB for {accepted:,} accepted ids "
        f"({heap / accepted:.3f} B per accepted event; flat: nothing is held per id after "
        "a commit)"
    )
    print(
        f"disk: {disk / 1e6:.1f} MB, {per_event_disk:.1f} B per id kept "
        f"(at most {KEEP_DAYS + 2} days of ids)"
    )
    print(
        f"at 1,500 events/s: {four_days:,} ids in 4 days -> heap flat, disk about "
        f"{per_event_disk * four_days / 1e9:.1f} GB (RocksDB, before compaction)"
    )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
