"""State per use case is bounded: bytes per use case over time, and the memory of 10,000.

    python benchmarks/state_memory.py [--days 7] [--use-cases 10000] [--max-rss-mb 5000]

Replays simulated fleet traffic through the default pipeline (all rules, aggregates, baselines
and detectors) and prints each use case's state size (the JSON a Faust table stores) after day 1
and after the last day — equal sizes mean windows expire and nothing grows with traffic — and
the Python heap each takes once loaded (tracemalloc, one copy at a time).

Then ``--use-cases`` use cases (10,000) go through the worker's real state path: each gets a
copy of one of the simulated states (in turn, so the fleet's mix of sizes), written to the
worker's write-behind cache (:class:`~spendfuse.streams.state_cache.WriteBehindStates`) over a
RocksDB Faust table of 4 partitions, within the worker's RocksDB budget, with a commit every
500 use cases; the cache keeps at most ``SPENDFUSE_STATE_CACHE_MAX_KEYS`` (5,000) in memory and
the rest are read back from RocksDB. A second pass touches every use case again in the same order
(so each evicted one is read back). RSS and the states held are printed as it goes, and a line
fit (heap = a + b x use cases) over 500, 1,000 and 2,000 use cases says what 10,000 would take
with no cap. The run stops if RSS passes ``--max-rss-mb``.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import tempfile
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
import numpy as np
import orjson

from spendfuse.dedup import MemoryDedupStore
from spendfuse.rules.state_size import persisted, state_bytes
from spendfuse.rules_runtime import build_pipeline
from spendfuse.schemas.codec import decode_cost_event
from spendfuse.settings import Settings
from spendfuse.simulate import default_fleet, simulate_fleet
from spendfuse.streams.rocksdb_memory import RocksDBMemory
from spendfuse.streams.state_cache import WriteBehindStates

PARTITIONS = 4
COMMIT_EVERY = 500  # use cases written between two commits
CHECKPOINTS = (500, 1_000, 2_000, 5_000, 7_500, 10_000)


class CountingSink:
    """Stands in for the producer: changelog records are counted, not sent."""

    def __init__(self) -> None:
        self.records = 0

    def changelog(self, *_args: object) -> None:
        self.records += 1


def rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2**20


def loaded_bytes(blob: bytes) -> int:
    """Python heap one state takes once loaded from its stored JSON (as a read-back makes it)."""
    gc.collect()
    tracemalloc.start()
    copy = orjson.loads(blob)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del copy
    return held


def sizes(states: dict[str, Any]) -> dict[str, int]:
    """Each state as the table stores it (derivable caches left out)."""
    return {uc: state_bytes(s) for uc, s in sorted(states.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--use-cases", type=int, default=10_000)
    ap.add_argument("--max-rss-mb", type=float, default=5_000, help="stop past this RSS")
    args = ap.parse_args()

    pipeline = build_pipeline(Settings())
    dedup, states = MemoryDedupStore(), {}
    start = datetime(2026, 11, 2, tzinfo=UTC)
    by_day: dict[int, dict[str, int]] = {}
    day = 0
    for event in simulate_fleet(default_fleet(), start, timedelta(days=args.days)):
        at = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00"))
        current = (at - start).days
        if current != day:
            by_day[day] = sizes(states)
            day = current
        pipeline.handle(decode_cost_event(orjson.dumps(event)), dedup, states)
    by_day[day] = sizes(states)

    print("state bytes per use case (JSON, as stored in the table; no cap: pipeline.handle):")
    print(f"  {'use case':<22}" + "".join(f"{'day ' + str(d + 1):>10}" for d in sorted(by_day)))
    for uc in sorted(states):
        row = "".join(f"{by_day[d].get(uc, 0):>10,}" for d in sorted(by_day))
        print(f"  {uc:<22}{row}")
    live = {uc: len(orjson.dumps(s)) for uc, s in states.items()}
    print(
        f"with the derivable caches (the baseline cache bl, never persisted): "
        f"{sum(live.values()):,} bytes in all, {sum(by_day[day].values()):,} stored"
    )
    names = sorted(uc for uc in states if uc in {p.use_case_id for p in default_fleet().use_cases})
    blobs = [orjson.dumps(persisted(states[uc])) for uc in names]
    heap = [loaded_bytes(b) for b in blobs]
    print("\nin memory once loaded (Python heap, tracemalloc):")
    for uc, blob, held in zip(names, blobs, heap, strict=True):
        print(
            f"  {uc:<22}{len(blob):>10,} B stored {held:>12,} B in memory ({held / len(blob):.1f}x)"
        )
    real_path(names, blobs, heap, args.use_cases, args.max_rss_mb)


def real_path(
    names: list[str], blobs: list[bytes], heap: list[int], use_cases: int, max_rss_mb: float
) -> None:
    """``use_cases`` use cases through the worker's state cache over RocksDB (module doc)."""
    settings = Settings()
    cap = settings.state_cache_max_keys
    tmp = Path(tempfile.mkdtemp(prefix="spendfuse-states-"))
    app = faust.App("state-memory", store="rocksdb://", datadir=str(tmp), broker="kafka://none:1")
    table = app.Table("use-case-state", default=None, partitions=PARTITIONS)
    memory = RocksDBMemory.from_settings(settings)
    memory.bound_all(app)
    sink = CountingSink()
    states = WriteBehindStates(table, sink, cap)
    template = [i % len(blobs) for i in range(use_cases)]  # the fleet's states, in turn
    gc.collect()
    base = rss_mb()
    print(
        f"\n{use_cases:,} use cases through the worker's state cache (at most {cap:,} in memory) "
        f"over RocksDB ({PARTITIONS} partitions; block cache {settings.rocksdb_block_cache_mb} "
        f"MiB, memtables {settings.rocksdb_write_buffer_mb} MiB), each one of the {len(blobs)} "
        f"simulated states in turn; RSS {base:,.0f} MiB before"
    )
    print(
        f"  {'pass':>4} {'use cases':>9} {'in memory':>9} {'their heap MiB':>14} "
        f"{'RSS MiB':>8} {'RSS - before':>12} {'memtables MiB':>13} {'cache MiB':>9}"
    )
    fit: list[tuple[int, float]] = []
    for rnd in (1, 2):
        for i in range(use_cases):
            key = f"uc-{i:05d}"
            states.partition = i % PARTITIONS
            state = states.get(key)  # pass 2: from memory, or read back from RocksDB
            states[key] = orjson.loads(blobs[template[i]]) if state is None else state
            done = i + 1
            if done % COMMIT_EVERY == 0 or done == use_cases:
                states.flush()
                memory.flush()
            if done in CHECKPOINTS or done == use_cases:
                gc.collect()
                rss = rss_mb()
                cached = states._cache
                held = sum(heap[template[int(k[3:])]] for k in cached) / 2**20
                usage = memory.usage()
                print(
                    f"  {rnd:>4} {done:>9,} {len(cached):>9,} {held:>14,.1f} {rss:>8,.0f} "
                    f"{rss - base:>12,.0f} {usage['memtables'] / 2**20:>13.1f} "
                    f"{usage['block_cache'] / 2**20:>9.1f}",
                    flush=True,
                )
                if rnd == 1 and done <= 2_000:
                    fit.append((done, rss - base))
                if rss > max_rss_mb:
                    raise SystemExit(f"RSS {rss:,.0f} MiB passed --max-rss-mb {max_rss_mb:,.0f}")
    per_state = sum(heap) / len(heap) / 2**20
    print(
        f"mean state: {sum(len(b) for b in blobs) / len(blobs):,.0f} B stored, "
        f"{per_state * 2**20:,.0f} B in memory; changelog records counted: {sink.records:,}"
    )
    if len(fit) >= 2:
        slope, intercept = np.polyfit([n for n, _ in fit], [r for _, r in fit], 1)
        print(
            f"fit over {', '.join(f'{n:,}' for n, _ in fit)} use cases: RSS - before = "
            f"{intercept:,.1f} + {slope:.4f} MiB x use cases; with no cap {use_cases:,} would take "
            f"{intercept + slope * use_cases:,.0f} MiB (heap alone {per_state * use_cases:,.0f} "
            f"MiB); at the largest simulated state {max(heap) / 2**20 * cap:,.0f} MiB for the "
            f"{cap:,} the cache holds"
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
