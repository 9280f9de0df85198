"""``spendfuse report`` over a month of hourly rollups for 1,000 use cases: seconds, rows/s, memory.

    python benchmarks/report_throughput.py [--use-cases 1000] [--days 30] [--period month]

Writes a JSONL file of hourly rollup records (what the worker publishes on the rollups topic):
every use case has model-call rows, half also retrieval, a third tool calls and a tenth GPU,
spread over 10 tenants, 20 business units and 50 cost centers, plus hourly shared-pool rows (a
GPU pool, a vector database, the platform baseline). Then it runs the real command, in a child
process, with the example allocation rules, for showback and chargeback, CSV and Parquet, and
prints the wall time, the rollup rows read per second and the child's peak resident memory.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

RULES = Path(__file__).parents[1] / "src" / "spendfuse" / "finops" / "example_allocation.yaml"


def write_rollups(path: Path, use_cases: int, days: int, seed: int) -> int:
    rng = random.Random(seed)
    start = datetime(2026, 6, 1, tzinfo=UTC)
    cases = []
    for i in range(use_cases):
        components = ["model_call"]
        components += ["retrieval"] if i % 2 == 0 else []
        components += ["tool_call"] if i % 3 == 0 else []
        components += ["gpu"] if i % 10 == 0 else []
        cost_center = i % 50  # 20 use cases per cost center, 5 per business unit, 2 per tenant
        attribution = {
            "tenant_id": f"tenant-{cost_center % 5}",
            "business_unit": f"bu-{cost_center % 10}",
            "cost_center": f"cc-{cost_center}",
            "use_case_id": f"use-case-{i:04d}",
            "environment": "prod" if i % 7 else "staging",
            "risk_tier": "medium",
        }
        cases.append((attribution, components))
    services = {
        "model_call": "gpt-4o-mini",
        "retrieval": "vector-db",
        "tool_call": "crm_lookup",
        "gpu": "a100-pool",
    }
    shared = [
        ("gpu", "a100-pool", 40.0),
        ("retrieval", "vector-db-cluster", 6.0),
        ("observability", "gateway", 12.0),
    ]
    rows = 0
    with path.open("wb") as fh:
        for hour in range(days * 24):
            at = (start + timedelta(hours=hour)).isoformat().replace("+00:00", "Z")
            lines = []
            for attribution, components in cases:
                for component in components:
                    record = {
                        "hour_start": at,
                        **attribution,
                        "component": component,
                        "provider": "openai",
                        "model_or_service": services[component],
                        "cost_usd": round(rng.uniform(0.01, 2.0), 6),
                        "events": rng.randint(1, 400),
                    }
                    if component == "model_call":
                        record |= {
                            "input_tokens": rng.randint(10_000, 900_000),
                            "output_tokens": rng.randint(1_000, 90_000),
                        }
                    elif component == "gpu":
                        record["gpu_seconds"] = round(rng.uniform(10, 3600), 3)
                    else:
                        record["api_calls"] = record["events"]
                    lines.append(orjson.dumps(record))
            for component, service, usd in shared:
                lines.append(
                    orjson.dumps(
                        {
                            "hour_start": at,
                            "tenant_id": "platform",
                            "business_unit": "ai_platform",
                            "cost_center": "cc-1000",
                            "use_case_id": f"shared-{service}",
                            "environment": "prod",
                            "risk_tier": "low",
                            "component": component,
                            "model_or_service": service,
                            "allocation_method": "shared_pool",
                            "cost_usd": usd,
                            "events": 1,
                        }
                    )
                )
            fh.write(b"\n".join(lines) + b"\n")
            rows += len(lines)
    return rows


def in_process(rollups: Path, period: str, out: Path) -> None:
    """The same work without the CLI's start-up, stage by stage, with Arrow's peak memory."""
    import pyarrow as pa

    from spendfuse.finops import focus, load_allocation_rules
    from spendfuse.finops.report import aggregate_periods, rows_for
    from spendfuse.finops.sources import read_rollups_file

    out.mkdir()
    rules = load_allocation_rules(RULES)
    w0, c0 = time.perf_counter(), time.process_time()
    periods = aggregate_periods(read_rollups_file(rollups), period)  # type: ignore[arg-type]
    stages = [f"read + aggregate {time.perf_counter() - w0:.2f}s"]
    for kind in ("showback", "chargeback"):
        t0 = time.perf_counter()
        rows = rows_for(periods, period, kind, rules)  # type: ignore[arg-type]
        result = focus.focus_table(rows, kind, period)
        focus.write_csv(result, out / f"{kind}.csv")
        focus.write_parquet(result, out / f"{kind}.parquet")
        stages.append(f"{kind} {time.perf_counter() - t0:.2f}s ({len(rows):,} rows)")
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    peak = pa.default_memory_pool().max_memory() / 1e6
    print(
        f"in process: {wall:.2f} s wall, {cpu:.2f} s CPU (" + "; ".join(stages) + "), "
        f"Arrow peak {peak:,.0f} MB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--use-cases", type=int, default=1000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--period", choices=["day", "month", "quarter"], default="month")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="spendfuse-report-bench-") as tmp:
        rollups = Path(tmp) / "rollups.jsonl"
        t0 = time.perf_counter()
        rows = write_rollups(rollups, args.use_cases, args.days, args.seed)
        size_mb = rollups.stat().st_size / 1e6
        print(
            f"input: {rows:,} hourly rollup rows ({args.use_cases:,} use cases x "
            f"{args.days * 24} hours), {size_mb:,.0f} MB JSONL, written in "
            f"{time.perf_counter() - t0:.1f}s"
        )
        cmd = [
            sys.executable,
            "-m",
            "spendfuse",
            "report",
            "--rollups",
            str(rollups),
            "--allocation",
            str(RULES),
            "--period",
            args.period,
            "--kind",
            "both",
            "--format",
            "both",
            "--out",
            str(Path(tmp) / "out"),
        ]
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"report failed ({done.returncode}): {done.stderr or done.stdout}")
        child = resource.getrusage(resource.RUSAGE_CHILDREN)
        peak_mb, cpu = child.ru_maxrss / 1024, child.ru_utime + child.ru_stime
        print(done.stdout.strip())
        outputs = sorted((Path(tmp) / "out").iterdir())
        print(
            "outputs: " + ", ".join(f"{p.name} {p.stat().st_size / 1e3:,.0f} KB" for p in outputs)
        )
        print(
            f"spendfuse report ({args.period}, showback + chargeback, CSV + Parquet): "
            f"{seconds:.2f} s wall ({cpu:.2f} s CPU), {rows / seconds:,.0f} rollup rows/s, "
            f"peak RSS {peak_mb:,.0f} MB (the CLI's start-up included)"
        )
        in_process(rollups, args.period, Path(tmp) / "in-process")


if __name__ == "__main__":
    main()
