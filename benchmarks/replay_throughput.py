"""``spendfuse replay`` throughput on a simulated fleet: events/s of the pure core, both stages.

    python benchmarks/replay_throughput.py [--days 7] [--events-file EVENTS.jsonl] [--seed 1]
        [--batch 1000]

Simulates ``--days`` of the default fleet with its incidents (what ``spendfuse simulate --days
N`` writes), or reads ``--events-file``, then times ``replay_records`` (decode, dedup, price, the
default pack, the anomaly watches and the tenant stage; the worker's decisions, ``--batch``
lines per pass) over it. Prints events, seconds, events/s (wall and CPU time) and the alerts
and commands it decided.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from spendfuse.replay import iter_records, replay_records
from spendfuse.rules_runtime import build_pipeline
from spendfuse.settings import Settings
from spendfuse.simulate import default_fleet, default_incidents, simulate_fleet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--events-file", type=Path, default=None)
    ap.add_argument("--batch", type=int, default=1000, help="lines per pass (1: line by line)")
    args = ap.parse_args()
    if args.events_file is not None:
        records = list(iter_records(args.events_file))
        source = str(args.events_file)
    else:
        start = datetime(2026, 11, 2, tzinfo=UTC)
        incidents = default_incidents(start, max(int(args.days), 1))
        events = simulate_fleet(
            default_fleet(), start, timedelta(days=args.days), incidents, args.seed
        )
        records = [orjson.dumps(e) for e in events]
        source = f"simulated default fleet, {args.days:g} days, seed {args.seed}"
    pipeline = build_pipeline(Settings())
    started, cpu_started = time.perf_counter(), time.process_time()
    result = replay_records(records, pipeline, batch=args.batch)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started  # steadier than wall time on a shared machine
    print(f"{source}: {len(records):,} records")
    rate = len(records) / elapsed
    print(f"  replay, {args.batch} lines per pass: {elapsed:.2f} s, {rate:,.0f} events/s")
    print(f"  CPU time: {cpu:.2f} s, {len(records) / cpu:,.0f} events/s")
    decided = f"{len(result.alerts)} alerts, {len(result.commands)} commands"
    print(f"  decided: {decided}, {dict(result.outcomes)}")


if __name__ == "__main__":
    main()
