"""State per use case is bounded: bytes per use case over time, and the memory of 10,000.

    python benchmarks/state_memory.py [--days 7]

Replays simulated fleet traffic through the default pipeline (all rules, aggregates, baselines
and detectors) and prints each use case's state size (the JSON a Faust table stores) after day 1
and after the last day — equal sizes mean windows expire and nothing grows with traffic — then
loads 10,000 copies of the largest state into one process and prints the memory they take.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from spendfuse.dedup import MemoryDedupStore
from spendfuse.rules.state_size import persisted, state_bytes
from spendfuse.rules_runtime import build_pipeline
from spendfuse.schemas.codec import decode_cost_event
from spendfuse.settings import Settings
from spendfuse.simulate import default_fleet, simulate_fleet


def sizes(states: dict[str, Any]) -> dict[str, int]:
    """Each state as the table stores it (derivable caches left out)."""
    return {uc: state_bytes(s) for uc, s in sorted(states.items())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--use-cases", type=int, default=10_000)
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
    largest = max(states.values(), key=state_bytes)
    blob = orjson.dumps(persisted(largest))

    gc.collect()
    tracemalloc.start()
    copies = {f"uc-{i}": orjson.loads(blob) for i in range(args.use_cases)}
    current, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"largest state: {len(blob):,} bytes serialized")
    print(
        f"{len(copies):,} use cases at the largest state: {current / 2**20:,.1f} MiB in memory, "
        f"{len(blob) * len(copies) / 2**20:,.1f} MiB serialized"
    )


if __name__ == "__main__":
    main()
