"""Worker memory over a simulated 4-day run at 1,500 events/s: RSS, heap and disk every 6 hours.

    python benchmarks/long_run_memory.py [--days 4] [--eps 1500] [--use-cases 1500] [--every 1920]
        [--hot-every 1] [--heap] [--top-growth N [--trace-frames 1]]

    # past the 7 days of the hourly rings, in about half an hour on a loaded 2-core machine:
    python benchmarks/long_run_memory.py --days 8 --eps 200 --use-cases 200 --every 3600 \
        --hot-every 8 --report-hours 12 --top-growth 8

Four days at 1,500 events/s is 518 million events; the pure core handles a few thousand a
second here, so this run processes a stated part of them through the real components and
says what it scales. Every figure printed is measured on the components the worker holds:

* the pipeline core (``build_pipeline``: decode, dedup, pricing, the default rule pack, the
  anomaly watches, the state cap), one record per use case and second (an envelope);
* the per-use-case states in the worker's :class:`~spendfuse.streams.state_cache.
  WriteBehindStates` over a RocksDB Faust table, with its key cap
  (``SPENDFUSE_STATE_CACHE_MAX_KEYS``), written behind at every commit;
* the worker's RocksDB day-bucket dedup store
  (:class:`~spendfuse.streams.dedup_table.FaustDedupStore`), swept as the event day moves on;
* the worker's RocksDB memory budget (:class:`~spendfuse.streams.rocksdb_memory.RocksDBMemory`:
  one block cache for both tables, memtables flushed at a commit over the budget), whose
  memtables, table readers (index and filter blocks outside the cache) and cache are printed;
* the worker's heap trim (:mod:`spendfuse.streams.heap_trim`): glibc's free pages handed back
  every ``SPENDFUSE_MALLOC_TRIM_S`` (60) seconds of wall time; ``SPENDFUSE_MALLOC_TRIM_S=0``
  runs without it.

What is simulated: the broker (changelog records are counted, not sent), the clock (event
time; the dedup store's "today" follows it), the traffic (``--use-cases`` use cases sharing
``--eps`` evenly, a trace every 10 events, an outcome id per trace) and the rate. **Sampling**:
one use case (``uc-00000``) is processed at its full rate through all four days (every event,
in records of ``--hot-batch-s`` seconds, so its traces, outcome ids and windows are those of the
real rate); the others are processed in every ``--every``-th second only (each of those seconds
in full); ``--every 3600`` or less touches each use case every hour, so its hourly ring fills
as at the real rate. ``--hot-every N`` processes only every N-th record of the full-rate use case
(each still its ``--hot-batch-s`` seconds in full), to run more days in the same time. A commit
(write-behind of states and ids, the memtable budget) follows every processed record time. So the
dedup store holds about 1/``--every`` of the other use cases' ids: its disk is printed as
measured and scaled to every id (it is linear in the ids kept: bytes per id measured here); its
Python heap holds nothing per id once committed.

RSS is measured without tracemalloc unless ``--heap`` asks for the Python heap: tracemalloc keeps
a record for every live block, in the same process (RSS 685 MB with it against 320 MB without,
for 1,500 use cases after a day and a half), which a worker does not carry.

``--top-growth N`` (implies ``--heap``) takes a tracemalloc snapshot at each sample and prints
the N allocation sites whose live bytes grew most since the one before (and, at the end, since
the first sample), by line, or by call path with ``--trace-frames`` above 1: what is still
growing, and where.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import faust
import orjson

from spendfuse.rules.state_size import state_bytes
from spendfuse.rules_runtime import build_pipeline
from spendfuse.settings import Settings
from spendfuse.streams.dedup_table import FaustDedupStore
from spendfuse.streams.heap_trim import HeapTrimmer
from spendfuse.streams.rocksdb_memory import RocksDBMemory
from spendfuse.streams.state_cache import WriteBehindStates

PARTITIONS = 4
START = datetime(2026, 11, 16, tzinfo=UTC)
EVENTS_PER_TRACE = 10


class CountingSink:
    """Stands in for the producer: changelog records are counted, not sent."""

    def __init__(self) -> None:
        self.records = 0

    def changelog(self, *_args: object) -> None:
        self.records += 1


ROCKSDB_MEMORY = (
    ("memtables", "rocksdb.cur-size-all-mem-tables"),
    ("table readers", "rocksdb.estimate-table-readers-mem"),
)
"""RocksDB's own accounting of the memory it holds outside the Python heap, per database."""


def rocksdb_mb(memory: RocksDBMemory) -> dict[str, float]:
    """Each :data:`ROCKSDB_MEMORY` figure summed over the worker's open partition databases,
    and the one block cache they share."""
    totals = dict.fromkeys((name for name, _ in ROCKSDB_MEMORY), 0.0)
    for db in memory.databases():
        for name, prop in ROCKSDB_MEMORY:
            totals[name] += (db.property_int_value(prop) or 0) / 1e6
    totals["block cache"] = memory.cache.get_usage() / 1e6
    return totals


def site(frame: tracemalloc.Frame) -> str:
    parts = frame.filename.rsplit("/", 2)
    return f"{'/'.join(parts[-2:])}:{frame.lineno}"


def top_growth(
    now: tracemalloc.Snapshot, before: tracemalloc.Snapshot, limit: int, key: str
) -> list[str]:
    """The allocation sites (``lineno``: the allocating line; ``traceback``: its callers too)
    whose live bytes grew most from ``before`` to ``now``."""
    stats = [s for s in now.compare_to(before, key) if s.size_diff > 0][:limit]
    return [
        f"    {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+10,} blocks  "
        + " <- ".join(site(frame) for frame in reversed(stat.traceback))
        for stat in stats
    ]


def snapshot() -> tracemalloc.Snapshot:
    return tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 1e6


def disk_bytes(root: Path, part: str = "") -> int:
    """Bytes of the files under ``root`` (those whose path holds ``part``)."""
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and part in str(p))


def iso(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Traffic:
    """``per_second`` events per use case and second, as one envelope record each."""

    def __init__(self, use_cases: int, per_second: int) -> None:
        self.names = [f"uc-{i:05d}" for i in range(use_cases)]
        self.per_second = per_second
        self.sent = dict.fromkeys(self.names, 0)

    def record(self, name: str, second: int, seconds: int = 1) -> bytes:
        """The use case's events of ``seconds`` seconds from ``second``, as one envelope."""
        start = self.sent[name]
        self.sent[name] = start + self.per_second * seconds
        events = []
        for n in range(start, start + self.per_second * seconds):
            when = iso(second + (n - start) // self.per_second)
            trace = n // EVENTS_PER_TRACE
            events.append(
                {
                    "schema_version": 1,
                    "cost_event_id": f"{name}-{n}",
                    "event_time": when,
                    "tenant_id": f"tenant-{int(name[3:]) % 20}",
                    "use_case_id": name,
                    "risk_tier": "low",
                    "environment": "prod",
                    "component": "model_call",
                    "provider": "openai",
                    "model_or_service": "gpt-4o-mini",
                    "input_tokens": 900 + n % 300,
                    "output_tokens": 200 + n % 100,
                    "allocated_cost_usd": 0.0004 + (n % 7) * 0.0001,
                    "trace_id": f"{name}-t{trace}",
                    "business_outcome_id": f"{name}-case-{trace}",
                    "step_number": n % EVENTS_PER_TRACE,
                }
            )
        return orjson.dumps({"envelope_version": 1, "events": events})


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--days", type=float, default=4.0)
    ap.add_argument("--eps", type=int, default=1_500)
    ap.add_argument("--use-cases", type=int, default=1500)
    ap.add_argument("--every", type=int, default=1920, help="process every N-th second fully")
    ap.add_argument("--report-hours", type=float, default=6.0)
    ap.add_argument(
        "--hot-batch-s", type=int, default=30, help="seconds of the full-rate use case per record"
    )
    ap.add_argument(
        "--hot-every",
        type=int,
        default=1,
        help="process the full-rate use case in every N-th record of it only (1: all of them)",
    )
    ap.add_argument(
        "--top-growth",
        type=int,
        default=0,
        metavar="N",
        help="print the N allocation sites whose live heap grew most since the last sample",
    )
    ap.add_argument(
        "--heap",
        action="store_true",
        help="trace the Python heap with tracemalloc (its own bookkeeping, printed as 'tm MB', "
        "is in the RSS, and it slows the run about twofold); --top-growth implies it",
    )
    ap.add_argument(
        "--trace-frames",
        type=int,
        default=1,
        help="frames kept per allocation: 1 groups by line, more by call path (slower)",
    )
    args = ap.parse_args()

    per_uc = args.eps // args.use_cases
    batch = args.hot_batch_s
    settings = Settings()
    pipeline = build_pipeline(settings)
    tmp = Path(tempfile.mkdtemp(prefix="spendfuse-longrun-"))
    app = faust.App("longrun-bench", store="rocksdb://", datadir=str(tmp), broker="kafka://none:1")
    sink = CountingSink()
    now_ms = [int(START.timestamp() * 1000)]
    dedup = FaustDedupStore(app, sink=sink, clock_ms=lambda: now_ms[0])
    table = app.Table("use-case-state", default=None, partitions=PARTITIONS)
    states = WriteBehindStates(table, sink, settings.state_cache_max_keys)
    memory = RocksDBMemory.from_settings(settings)  # as the worker: one budget for all tables
    memory.bound_all(app)
    trimmer = HeapTrimmer()  # as the worker's timer: every SPENDFUSE_MALLOC_TRIM_S of wall time
    trim_s = settings.malloc_trim_s if trimmer.available else 0.0
    last_trim = time.perf_counter()
    traffic = Traffic(args.use_cases, per_uc)
    hot, rest = traffic.names[0], traffic.names[1:]
    partition_of = {name: i % PARTITIONS for i, name in enumerate(traffic.names)}

    traced = args.heap or args.top_growth > 0
    if traced:
        tracemalloc.start(args.trace_frames)
    gc.collect()
    base_heap = tracemalloc.get_traced_memory()[0]
    growth_key = "lineno" if args.trace_frames == 1 else "traceback"
    last = snapshot() if args.top_growth else None
    first = None  # the snapshot at the first sample
    start_s = int(START.timestamp())
    total_s = int(args.days * 86_400)
    report_every = int(args.report_hours * 3_600)
    processed = accepted = offset = 0
    trimmed: dict[str, int] = {}
    wall = time.perf_counter()
    print(
        f"{args.days:g} days at {args.eps:,} events/s over {args.use_cases} use cases "
        f"({per_uc} events/s each); {hot} at its full rate ({batch} s per record"
        f"{f', every {args.hot_every}th record' if args.hot_every > 1 else ''}), the other "
        f"{len(rest)} in every {args.every}th second; a commit after each\n"
    )
    print(
        f"{'hour':>5} {f'events at {args.eps:,}/s':>18} {'processed':>10} {'RSS MB':>7} "
        f"{'trims':>5} {'heap MB':>8} {'tm MB':>6} {'disk MB':>8} {'ids MB':>7} "
        f"{'states cached':>13} {'hot state B':>11} "
        f"{'largest B':>10} {'trimmed':>8} {'memtables MB':>12} {'readers MB':>10} "
        f"{'blk cache MB':>12} {'wall s':>7}"
    )

    def handle(name: str, second: int, seconds: int = 1) -> None:
        nonlocal processed, accepted, offset
        partition = partition_of[name]
        states.partition = dedup.partition = partition
        offset += 1
        result = pipeline.run_record(
            traffic.record(name, second, seconds),
            START,
            dedup,
            states,
            partition=partition,
            offset=offset,
        )
        processed += len(result.handled)
        accepted += len(result.accepted)
        for reason, n in result.trimmed.items():
            trimmed[reason] = trimmed.get(reason, 0) + n

    for elapsed in range(total_s):
        second = start_s + elapsed
        sampled = elapsed % args.every == 0
        if not sampled and elapsed % batch:
            continue
        now_ms[0] = second * 1000
        if elapsed % batch == 0 and (elapsed // batch) % args.hot_every == 0:
            handle(hot, second, batch)
        if sampled:
            for name in rest:
                handle(name, second)
        states.flush()  # a commit: states, ids, then memtables over the budget flushed
        dedup.flush()
        memory.flush()
        if trim_s and time.perf_counter() - last_trim >= trim_s:
            trimmer.trim()
            last_trim = time.perf_counter()
        if (elapsed + batch) % report_every < batch or elapsed + batch >= total_s:
            gc.collect()
            heap = f"{(tracemalloc.get_traced_memory()[0] - base_heap) / 1e6:>8.1f}"
            tm = f"{tracemalloc.get_tracemalloc_memory() / 1e6:>6.1f}"
            if not traced:
                heap, tm = f"{'-':>8}", f"{'-':>6}"
            cached = states._cache
            largest = max((state_bytes(s) for s in cached.values()), default=0)
            rocks = rocksdb_mb(memory)
            rss = rss_mb()
            print(
                f"{(elapsed + batch) / 3600:>5.1f} {args.eps * (elapsed + batch):>18,} "
                f"{processed:>10,} {rss:>7.0f} {trimmer.trims:>5} {heap} {tm} "
                f"{disk_bytes(tmp) / 1e6:>8.1f} {disk_bytes(tmp, 'dedup-ids') / 1e6:>7.1f} "
                f"{len(cached):>13,} "
                f"{state_bytes(states.get(hot)):>11,} {largest:>10,} "
                f"{sum(trimmed.values()):>8,} {rocks['memtables']:>12.1f} "
                f"{rocks['table readers']:>10.1f} {rocks['block cache']:>12.1f} "
                f"{time.perf_counter() - wall:>7.0f}",
                flush=True,
            )
            if last is not None:
                now = snapshot()
                print("\n".join(top_growth(now, last, args.top_growth, growth_key)), flush=True)
                first, last = first or now, now
    disk, dedup_disk = disk_bytes(tmp), disk_bytes(tmp, "dedup-ids")
    ids_per_day_rest = (86_400 // args.every) * per_uc * len(rest)
    ids_per_day_hot = 86_400 * per_uc
    print(
        f"\nprocessed {processed:,} events ({accepted:,} accepted) of the "
        f"{args.eps * total_s:,} the rate makes; trimmed: {trimmed or 'nothing'}; "
        f"changelog records counted: {sink.records:,}"
    )
    print(
        f"disk at the end: {disk / 1e6:.1f} MB (RocksDB), of which dedup ids "
        f"{dedup_disk / 1e6:.1f} MB"
    )
    kept_ids = (ids_per_day_rest + ids_per_day_hot) * 3  # today and the two days before
    full_ids = args.eps * 86_400 * 3
    print(
        f"dedup ids kept (3 event days): about {kept_ids:,} here, {full_ids:,} at the full "
        f"rate: disk scales by {full_ids / kept_ids:.0f}x -> about "
        f"{dedup_disk / kept_ids * full_ids / 1e9:.1f} GB of dedup ids"
    )
    if first is not None and last is not None:
        print(f"\nheap growth from the first sample to the last, top {args.top_growth} sites:")
        print("\n".join(top_growth(last, first, args.top_growth, growth_key)))
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
