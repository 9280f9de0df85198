"""Decoding throughput: one record's events validated as columns against the pydantic model.

    python benchmarks/decode_throughput.py [--events 2000] [--reps 40] [--libraries]
        [--sweep-rows]

For records of 1, 10, 100 and 1000 events (one event per record, then envelopes), this prints
events/s of:

- ``old``: decoding as before columns (parse the record, then ``parse_cost_event_obj``, the
  pydantic model, for each member), written out here as it was;
- ``new``: ``Pipeline.decode_record`` (parse, size limits, the column checks, pydantic only for
  the rows that fail them), which still builds one ``CostEvent`` per event for the engine;
- ``columns, no objects``: the parse and the column checks alone, what decoding would cost if
  the engine read the checked columns instead of ``CostEvent`` objects.

Both include the JSON parse. The machine is shared, so each figure is the best of ``--reps``
interleaved runs, timed in this process's CPU time (``time.process_time``), which other load
disturbs less than wall time; the wall-time figure is printed too. Short runs (``--events``
 per run) and many repetitions make a quiet slice of the machine likelier to be caught.

``--libraries`` times the column checks of the numeric and time columns (counts, amounts,
``event_time``) written with builtins (what ``schemas/columnar.py`` uses), numpy, polars and
pyarrow (those two when installed), each including the trip into the library and back to the
Python values the model holds. ``--sweep-rows`` times the row-by-row checks against the
column checks per group size, which sets ``columnar.ROWS_BELOW``. ``--gc-off`` times with the
cyclic garbage collector off, to show its share (both paths build the same objects).
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine
from spendfuse.schemas import columnar
from spendfuse.schemas.codec import make_dead_letter, parse_cost_event_obj
from spendfuse.schemas.cost_event import EARLIEST_EVENT_TIME, LATEST_EVENT_TIME, MAX_COUNT
from spendfuse.schemas.dead_letter import SourcePosition
from spendfuse.schemas.envelope import encode_envelope, is_envelope
from spendfuse.schemas.errors import EventRejectedError

_START = datetime(2026, 11, 23, 9, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SIZES = (1, 10, 100, 1000)


def make_events(n: int) -> list[dict[str, Any]]:
    """Events as a gateway sends them (the fields of ``benchmarks/worker_vs_raw.py``, plus a
    trace id and a workflow step)."""
    return [
        {
            "schema_version": 1,
            "cost_event_id": f"dec-{i}",
            "event_time": (_START + timedelta(milliseconds=20 * i)).isoformat(),
            "tenant_id": "acme",
            "use_case_id": f"uc-{i % 50}",
            "risk_tier": "low",
            "environment": "prod",
            "component": "model_call",
            "provider": "openai",
            "model_or_service": "gpt-4o-mini",
            "trace_id": f"trace-{i // 4}",
            "workflow_step": "answer",
            "input_tokens": 200 + (i * 37) % 3800,
            "output_tokens": 50 + (i * 11) % 750,
            "allocated_cost_usd": round(0.0005 + (i % 97) * 1e-4, 6),
        }
        for i in range(n)
    ]


def records(events: list[dict[str, Any]], size: int) -> list[bytes]:
    dumped = [orjson.dumps(e) for e in events]
    if size == 1:
        return dumped
    return [encode_envelope(dumped[i : i + size]) for i in range(0, len(dumped), size)]


def old_decode_record(raw: bytes, now: datetime) -> list[Any]:
    """``Pipeline.decode_record`` as it was before columns (its default limits)."""
    if raw[:64].lstrip()[:1] == b"{" and b'"events"' in raw[:64]:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            obj = None
        if is_envelope(obj):
            out: list[Any] = []
            for index, member in enumerate(obj["events"]):
                try:
                    out.append(parse_cost_event_obj(member))
                except EventRejectedError as exc:
                    dead = make_dead_letter(orjson.dumps(member), exc, now)
                    dead.source = SourcePosition(index=index)
                    out.append(dead)
            return out
    return old_decode_single(raw, now)


def old_decode_single(raw: bytes, now: datetime) -> list[Any]:
    """``decode_cost_event`` as it was, for a valid event: parse, then the model."""
    try:
        return [parse_cost_event_obj(orjson.loads(raw))]
    except EventRejectedError as exc:
        return [make_dead_letter(raw, exc, now)]


def columns_only(raw: bytes) -> Any:
    """Parse and check a record's events as columns, building no CostEvent: what decoding
    would cost an engine that read the columns themselves."""
    obj = orjson.loads(raw)
    members = obj["events"] if is_envelope(obj) else [obj]
    return columnar.check_columns(tuple(members[0]), members)


def best_of(runs: dict[str, Callable[[], Any]], reps: int) -> dict[str, tuple[float, float]]:
    """Best (CPU, wall) seconds of each run over ``reps`` interleaved repetitions."""
    best = {name: (math.inf, math.inf) for name in runs}
    for _ in range(reps):
        for name, run in runs.items():
            cpu, wall = time.process_time(), time.perf_counter()
            run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            best[name] = (min(best[name][0], cpu), min(best[name][1], wall))
    return best


def throughput(n: int, reps: int) -> None:
    events = make_events(n)
    pipeline = Pipeline(Engine([]))
    print(f"{n} events; events/s (CPU time, best of {reps}; wall time in brackets)")
    print(
        f"{'events/record':>14} {'old':>22} {'new':>22} {'new/old':>8}"
        f" {'columns, no objects':>22} {'/old':>6}"
    )
    for size in SIZES:
        recs = records(events, size)
        check_old, check_new = old_decode_record(recs[0], NOW), pipeline.decode_record(recs[0], NOW)
        assert check_old == check_new, "the two paths disagree"
        best = best_of(
            {
                "old": lambda recs=recs: [old_decode_record(r, NOW) for r in recs],
                "new": lambda recs=recs: [pipeline.decode_record(r, NOW) for r in recs],
                "columns": lambda recs=recs: [columns_only(r) for r in recs],
            },
            reps,
        )
        (old_cpu, old_wall), (new_cpu, new_wall) = best["old"], best["new"]
        col_cpu, col_wall = best["columns"]
        print(
            f"{size:>14} {n / old_cpu:>10,.0f} [{n / old_wall:>9,.0f}]"
            f" {n / new_cpu:>10,.0f} [{n / new_wall:>9,.0f}] {old_cpu / new_cpu:>7.1f}x"
            f" {n / col_cpu:>10,.0f} [{n / col_wall:>9,.0f}] {old_cpu / col_cpu:>5.1f}x"
        )


# -- the column checks in each array library ----------------------------------------------------

NUMERIC = ("input_tokens", "output_tokens", "allocated_cost_usd", "event_time")


def builtins_checks(cols: dict[str, Sequence[Any]]) -> list[Any] | None:
    out = []
    for name in NUMERIC:
        check = columnar._CHECKS[name]
        assert check is not None
        values = check.column(cols[name])
        if values is None:
            return None
        out.append(values)
    return out


def numpy_checks(cols: dict[str, Sequence[Any]]) -> list[Any] | None:
    import numpy as np

    out: list[Any] = []
    for name in ("input_tokens", "output_tokens"):
        col = cols[name]
        if set(map(type, col)) != {int}:  # numpy would take true, 2.5 and "7" as numbers
            return None
        try:
            values = np.fromiter(col, dtype=np.int64, count=len(col))
        except OverflowError:
            return None
        if values.min() < 0 or values.max() > MAX_COUNT:
            return None
        out.append(col)  # the model holds Python ints: the input, as it was
    col = cols["allocated_cost_usd"]
    if not set(map(type, col)) <= {int, float}:
        return None
    amounts = np.asarray(col, dtype=np.float64)
    if not np.isfinite(amounts).all() or amounts.min() < 0 or amounts.max() > 1e9:
        return None
    out.append(amounts.tolist())
    check = columnar._CHECKS["event_time"]  # numpy's datetime64 parses no zone offsets
    assert check is not None
    times = check.column(cols["event_time"])
    if times is None:
        return None
    out.append(times)
    return out


def polars_checks(cols: dict[str, Sequence[Any]]) -> list[Any] | None:
    import polars as pl

    frame = pl.DataFrame({name: cols[name] for name in NUMERIC}, strict=False, nan_to_null=False)
    schema = frame.schema
    if schema["input_tokens"] != pl.Int64 or schema["output_tokens"] != pl.Int64:
        return None
    if schema["allocated_cost_usd"] != pl.Float64 or schema["event_time"] != pl.String:
        return None
    times = pl.col("event_time").str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%:z", time_zone="UTC", strict=False
    )
    checked = frame.with_columns(times.alias("event_time"))
    ok = checked.select(
        ((pl.col("input_tokens").min() >= 0) & (pl.col("input_tokens").max() <= MAX_COUNT)).alias(
            "a"
        ),
        ((pl.col("output_tokens").min() >= 0) & (pl.col("output_tokens").max() <= MAX_COUNT)).alias(
            "b"
        ),
        pl.col("allocated_cost_usd").is_finite().all().alias("c"),
        pl.col("event_time").is_not_null().all().alias("d"),
        (pl.col("event_time").min() >= EARLIEST_EVENT_TIME).alias("e"),
        (pl.col("event_time").max() < LATEST_EVENT_TIME).alias("f"),
    ).row(0)
    if not all(ok):
        return None
    back = [checked.get_column(name).to_list() for name in NUMERIC]
    back[3] = [t.astimezone(UTC) for t in back[3]]  # polars gives zoneinfo UTC; the model: UTC
    return back


def pyarrow_checks(cols: dict[str, Sequence[Any]]) -> list[Any] | None:
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[Any] = []
    try:
        for name in ("input_tokens", "output_tokens"):
            if set(map(type, cols[name])) != {int}:  # arrow casts true to 1
                return None
            array = pa.array(cols[name], type=pa.int64())
            bounds = pc.min_max(array)
            if bounds["min"].as_py() < 0 or bounds["max"].as_py() > MAX_COUNT:
                return None
            out.append(array.to_pylist())
        amounts = pa.array(cols["allocated_cost_usd"], type=pa.float64())
        if not pc.all(pc.is_finite(amounts)).as_py():
            return None
        out.append(amounts.to_pylist())
        times = pa.array(cols["event_time"]).cast(pa.timestamp("us", tz="UTC"))
        bounds = pc.min_max(times)
        if bounds["min"].as_py() < EARLIEST_EVENT_TIME:
            return None
        if bounds["max"].as_py() >= LATEST_EVENT_TIME:
            return None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None
    out.append([t.astimezone(UTC) for t in times.to_pylist()])  # zoneinfo UTC -> UTC
    return out


def libraries(reps: int) -> None:
    implementations: dict[str, Callable[[dict[str, Sequence[Any]]], Any]] = {
        "builtins": builtins_checks,
        "numpy": numpy_checks,
    }
    for name, check in (("polars", polars_checks), ("pyarrow", pyarrow_checks)):
        try:
            __import__(name)
        except ImportError:
            print(f"({name} is not installed: skipped)")
            continue
        implementations[name] = check
    print("\nThe column checks of 3 number columns and event_time, into the library and back;")
    print("µs per event (CPU time, best of reps); 'refuses' = cannot vouch for valid input")
    print(f"{'events':>8} " + " ".join(f"{name:>10}" for name in implementations))
    for size in (1, 10, 100, 1000):
        rows = orjson.loads(orjson.dumps(make_events(size)))
        cols = {name: [row[name] for row in rows] for name in NUMERIC}
        runs: dict[str, Callable[[], Any]] = {}
        cells: dict[str, str] = {}
        for name, check in implementations.items():
            if check(cols) is None:
                cells[name] = "refuses"
                continue
            runs[name] = lambda check=check, cols=cols: [check(cols) for _ in range(20)]
        for name, (cpu, _wall) in best_of(runs, reps).items():
            cells[name] = f"{cpu / 20 / size * 1e6:.2f}"
        print(f"{size:>8} " + " ".join(f"{cells[name]:>10}" for name in implementations))


def sweep_rows(reps: int) -> None:
    print("\nRow-by-row against column checks, µs per event (CPU time, validation only)")
    print(f"{'events':>8} {'rows':>8} {'columns':>8}")
    for size in (1, 2, 4, 6, 8, 12, 16, 32):
        rows = orjson.loads(orjson.dumps(make_events(size)))
        key, indexes = tuple(rows[0]), list(range(size))
        out: list[Any] = [None] * size

        def by_rows(rows: list[Any] = rows) -> None:
            for _ in range(200):
                [columnar._validate_row(row) for row in rows]

        def by_columns(
            rows: list[Any] = rows, key: Any = key, ix: Any = indexes, out: Any = out
        ) -> None:
            for _ in range(200):
                columnar._validate_group(rows, key, ix, out)

        best = best_of({"rows": by_rows, "columns": by_columns}, reps)
        row_us, col_us = (best[k][0] / 200 / size * 1e6 for k in ("rows", "columns"))
        print(f"{size:>8} {row_us:>8.2f} {col_us:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2_000)
    parser.add_argument("--reps", type=int, default=40)
    parser.add_argument("--libraries", action="store_true")
    parser.add_argument("--sweep-rows", action="store_true")
    parser.add_argument(
        "--gc-off", action="store_true", help="time without the cyclic garbage collector"
    )
    args = parser.parse_args()
    if args.gc_off:
        gc.disable()
        print("(cyclic garbage collector off)")
    throughput(args.events, args.reps)
    if args.libraries:
        libraries(args.reps)
    if args.sweep_rows:
        sweep_rows(args.reps)


if __name__ == "__main__":
    main()
