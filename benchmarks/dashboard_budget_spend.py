"""The dashboard's budget spend from hourly rollups: cost of reading rows back and of a poll.

    python benchmarks/dashboard_budget_spend.py [--use-cases 200] [--days 30] [--budgets 40]

Builds a month of hourly rollup rows (one row per use case and hour, spread over 10 tenants and
50 cost centers), encodes them as the rollups topic carries them, and times: decoding and adding
them to a :class:`DashboardState` (what a restarted worker does while it reads the topic back),
and ``snapshot()`` (what every 2-second poll of the page runs) with ``--budgets`` budgets of
mixed scope and period. Prints rows, rows/s, the poll's milliseconds and the rows kept.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from spendfuse.dashboard_state import DashboardState
from spendfuse.rules.loader import load_rules
from spendfuse.schemas.codec import decode, encode
from spendfuse.schemas.rollup import CostRollup


def rows(use_cases: int, days: int) -> list[bytes]:
    start = datetime(2026, 10, 24, tzinfo=UTC)
    out = []
    for h in range(days * 24):
        hour = start + timedelta(hours=h)
        for i in range(use_cases):
            out.append(
                encode(
                    CostRollup(
                        hour_start=hour,
                        tenant_id=f"t{i % 10}",
                        cost_center=f"cc-{i % 50}",
                        business_unit=f"bu-{i % 20}",
                        use_case_id=f"uc-{i}",
                        environment="prod",
                        risk_tier="low",
                        component="model_call",
                        cost_usd=0.01 * (i % 7 + 1),
                        events=10,
                        input_tokens=1000,
                        output_tokens=200,
                    )
                )
            )
    return out


def budgets_yaml(n: int) -> str:
    lines = ["version: 1", "budgets:"]
    periods = ("day", "month", "quarter")
    for b in range(n):
        scope = f"use_case_id: uc-{b}" if b % 2 else f"cost_center: cc-{b % 50}"
        lines.append(
            f"  - {{name: b{b}, owner: o, tenant_id: t{b % 10}, {scope}, "
            f"period: {periods[b % 3]}, limit_usd: 100}}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--use-cases", type=int, default=200)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--budgets", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "b.yaml").write_text(budgets_yaml(args.budgets))
        rules = load_rules(Path(tmp), default_pack=False)
    raw = rows(args.use_cases, args.days)
    state = DashboardState(rules=lambda: rules)
    t0 = time.perf_counter()
    for value in raw:
        state.add_rollups([decode(value, CostRollup)])
    read_s = time.perf_counter() - t0
    now = datetime(2026, 11, 23, tzinfo=UTC)
    state.snapshot(now)
    polls = 10
    t0 = time.perf_counter()
    for _ in range(polls):
        snap = state.snapshot(now)
    poll_ms = (time.perf_counter() - t0) / polls * 1000
    spent = sum(1 for b in snap["budgets"] if b["spent"])
    print(
        f"rollup rows read back: {len(raw):,} in {read_s:.2f} s ({len(raw) / read_s:,.0f} rows/s)"
    )
    print(f"rows kept: {len(state.ledger):,}; budgets: {len(snap['budgets'])} ({spent} with spend)")
    print(f"snapshot (one page poll): {poll_ms:.1f} ms")


if __name__ == "__main__":
    main()
