"""Machine instructions per event of the pure core, counted by valgrind: a load-independent figure.

    python benchmarks/instructions_per_event.py [--workload core|single|replay] [--events 10000]

Wall-clock rates on a shared machine swing by ±30% from one run to the next; the number of
instructions a run executes does not. This runs the workload twice under ``valgrind
--tool=callgrind`` (needs valgrind on the PATH): once building its inputs and the pipeline only,
once also handling the events, and prints the difference per event. Compare two revisions
with it (check each out, run this in each): fewer instructions per event is faster on any
machine, though not in exact proportion (memory stalls are not counted).

Workloads: ``core`` is ``throughput_ceilings.py``'s envelopes of 100 events over 200 use cases;
``single`` the same events one per record; ``replay`` ``spendfuse replay`` (1,000 lines per
pass) of one simulated day of the default fleet with its incidents (``--events`` is ignored).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def workload(name: str, events: int) -> tuple[Callable[[], object], int]:
    """The work to count and how many events it handles."""
    if name in ("core", "single"):
        from benchmarks.throughput_ceilings import core_run, envelopes

        return core_run(envelopes(events, 200, 100 if name == "core" else 1)), events
    from spendfuse.replay import replay_records
    from spendfuse.rules_runtime import build_pipeline
    from spendfuse.settings import Settings
    from spendfuse.simulate import default_fleet, default_incidents, simulate_fleet

    start = datetime(2026, 11, 2, tzinfo=UTC)
    fleet = simulate_fleet(
        default_fleet(), start, timedelta(days=1), default_incidents(start, 1), 1
    )
    records = [orjson.dumps(e) for e in fleet]
    pipeline = build_pipeline(Settings())
    return (lambda: replay_records(records, pipeline, batch=1000)), len(records)


def count(args: argparse.Namespace, mode: str) -> tuple[int, int]:
    """Instructions of one run under callgrind, and the events the workload holds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--workload",
            args.workload,
            "--events",
            str(args.events),
            "--child",
            mode,
        ]
        env = dict(os.environ, PYTHONHASHSEED="0")  # the same dict layouts in both runs
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        found = re.search(r"Collected : (\d+)", done.stderr)
        events = re.search(r"events=(\d+)", done.stdout)
        if found is None or events is None:
            raise SystemExit(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
        return int(found.group(1)), int(events.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--workload", choices=("core", "single", "replay"), default="core")
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--child", choices=("setup", "run"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run, events = workload(args.workload, args.events)
        if args.child == "run":
            run()
        print(f"events={events}")
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not on the PATH (apt-get install valgrind)")
    setup, events = count(args, "setup")
    total, _ = count(args, "run")
    per_event = (total - setup) / events
    print(f"{args.workload}: {events:,} events, {per_event:,.0f} instructions per event")
    print(f"  (run {total:,} - setup {setup:,} instructions, callgrind, PYTHONHASHSEED=0)")


if __name__ == "__main__":
    main()
