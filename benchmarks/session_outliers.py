"""Session outliers: events/s of ``SessionOutliers.observe``, flag rate on normal sessions, and
how fast a runaway session is flagged.

    python benchmarks/session_outliers.py [--events 400000] [--seed 1]

Normal sessions: 1-8 events each, lognormal cost per session (a heavy tail), sessions starting
every 2 s and interleaved. Then runaway sessions are injected (a fixed cost every 3 s) and the
time from their start to their flag is printed. CPU time of this process, one core.
"""

from __future__ import annotations

import argparse
import math
import random
import time
from datetime import UTC, datetime, timedelta

from spendfuse.detectors.session_outliers import SessionOutliers

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def normal_events(n: int, seed: int) -> list[tuple[str, datetime, float]]:
    rng = random.Random(seed)
    out: list[tuple[str, datetime, float]] = []
    k = 0
    while len(out) < n:
        steps = rng.randint(1, 8)
        total = rng.lognormvariate(math.log(0.03), 0.8)
        start = T0 + timedelta(seconds=2 * k)
        out.extend((f"s{k}", start + timedelta(seconds=5 * j), total / steps) for j in range(steps))
        k += 1
    out.sort(key=lambda e: e[1])
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=400_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    events = normal_events(args.events, args.seed)
    tracker = SessionOutliers()
    t0 = time.process_time()
    flags = [f for trace, t, cost in events if (f := tracker.observe(trace, t, cost))]
    cpu = time.process_time() - t0
    sessions = tracker.quantile.sessions
    print(f"observe(): {len(events) / cpu:,.0f} events/s (cpu), {len(events):,} events")
    print(
        f"normal sessions: {len(flags)} flagged of {sessions:,} finished "
        f"({100 * len(flags) / max(sessions, 1):.3f} %; P99.9 allows ~0.1 %), "
        f"threshold ${tracker.threshold():.4f}, {tracker.open_sessions} open"
    )
    end = events[-1][1]
    delays = []
    for r, per_step in enumerate((0.02, 0.05, 0.2)):
        start = end + timedelta(minutes=30 * (r + 1))
        for j in range(400):
            at = start + timedelta(seconds=3 * j)
            flag = tracker.observe(f"runaway-{r}", at, per_step)
            if flag:
                delays.append((per_step, (at - start).total_seconds(), flag.cost_usd))
                break
    for per_step, secs, cost in delays:
        print(f"runaway at ${per_step}/step every 3 s: flagged after {secs:.0f} s at ${cost:.2f}")


if __name__ == "__main__":
    main()
