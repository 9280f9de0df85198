"""Where one worker's time per event goes: the in-process ceilings of each stage, no broker.

    python benchmarks/throughput_ceilings.py [--events 100000] [--use-cases 200]
        [--envelope 100] [--raw-eps 300000] [--profile]

Events are spread over ``--use-cases``; envelopes hold one use case's events, as the producer
API makes them. The worker's rate is bounded by what one CPython process can do per event,
whatever Kafka and Faust add on top. This prints events/s and microseconds per event for
cumulative stages over the same envelopes:

1. ``orjson`` decode of each record (what the raw consumers of ``worker_vs_raw.py`` do),
2. the pydantic cost-event model per event (the contract every event must pass),
3. the project's decoder (``Pipeline.decode_record``: limits, policies, the model),
4. the whole pure core (dedup, pricing, aggregates, the default rule pack, the anomaly watches,
   the tenant stage), first with one event per record, then with the envelopes (one decision
   pass per record and use case), then single-event records 1,000 per pass as ``spendfuse
   replay`` handles them (``Pipeline.run_records``).

With ``--raw-eps`` (the raw aiokafka rate measured by ``worker_vs_raw.py``) it also prints the
per-event budget a worker has at half that rate, and each stage's share of it. ``--profile``
runs the last stage under pyinstrument and prints where its time goes.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.worker_vs_raw import make_events
from spendfuse.dedup import MemoryDedupStore
from spendfuse.pipeline import Pipeline
from spendfuse.rules_runtime import build_pipeline
from spendfuse.schemas import CostEvent
from spendfuse.schemas.envelope import encode_envelope
from spendfuse.settings import Settings

_START = datetime(2026, 11, 23, 9, tzinfo=UTC)


def envelopes(n: int, use_cases: int, size: int) -> list[bytes]:
    """Records as the producer API makes them: each envelope holds up to ``size`` events of one
    use case (the record key), sent when full; ``size`` 1 is one event per record."""
    buffers: dict[str, list[bytes]] = {}
    records: list[bytes] = []
    for event in make_events(n, use_cases, "ceil", _START):
        buffer = buffers.setdefault(str(event["use_case_id"]), [])
        buffer.append(orjson.dumps(event))
        if len(buffer) >= size:
            records.append(encode_envelope(buffer) if size > 1 else buffer[0])
            buffer.clear()
    records.extend(encode_envelope(b) for b in buffers.values() if b)
    return records


def core_run(records: list[bytes]) -> Callable[[], None]:
    """The worker's per-record work, minus Kafka and Faust: decode, decide, tenant stage."""
    pipeline: Pipeline = build_pipeline(Settings(bootstrap_servers="localhost:9092"))
    dedup, states, tenant_states = MemoryDedupStore(), {}, {}  # type: ignore[var-annotated]
    now = datetime.now(UTC)

    def run() -> None:
        for raw in records:
            events = [e for e in pipeline.decode_record(raw, now) if isinstance(e, CostEvent)]
            handled = pipeline.handle_batch(events, dedup, states)
            accepted = [h.event for h in handled if h.outcome == "accepted"]
            pipeline.handle_tenant_batch(accepted, tenant_states)

    return run


def passes_run(records: list[bytes], per_pass: int = 1000) -> Callable[[], None]:
    """What ``spendfuse replay`` does: ``per_pass`` records at a time through
    ``Pipeline.run_records`` (the same decisions as record by record)."""
    pipeline: Pipeline = build_pipeline(Settings(bootstrap_servers="localhost:9092"))
    dedup, states, tenant_states = MemoryDedupStore(), {}, {}  # type: ignore[var-annotated]
    now = datetime.now(UTC)

    def run() -> None:
        for start in range(0, len(records), per_pass):
            chunk = records[start : start + per_pass]
            pipeline.run_records(chunk, now, dedup, states, tenant_states, first_offset=start)

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--use-cases", type=int, default=200)
    ap.add_argument("--envelope", type=int, default=100, help="events per record")
    ap.add_argument(
        "--raw-eps",
        type=float,
        default=None,
        help="raw aiokafka events/s from worker_vs_raw.py, to print the budget",
    )
    ap.add_argument("--profile", action="store_true", help="pyinstrument the last stage")
    args = ap.parse_args()
    n = args.events
    spread = envelopes(n, args.use_cases, args.envelope)
    single = envelopes(n, args.use_cases, 1)
    decoder = build_pipeline(Settings(bootstrap_servers="localhost:9092"))
    now = datetime.now(UTC)

    def decode_only() -> None:
        for raw in spread:
            orjson.loads(raw)

    def with_model() -> None:
        for raw in spread:
            obj = orjson.loads(raw)
            for event in obj.get("events", [obj]):
                CostEvent.model_validate(event)

    def with_decoder() -> None:
        for raw in spread:
            decoder.decode_record(raw, now)

    stages: list[tuple[str, Callable[[], None]]] = [
        ("orjson decode (the raw consumers' work)", decode_only),
        ("+ pydantic CostEvent per event", with_model),
        ("project decoder (limits, policies, model)", with_decoder),
        ("whole core, one event per record", core_run(single)),
        (f"whole core, envelopes of {args.envelope}", core_run(spread)),
        ("whole core, 1,000 single records per pass", passes_run(single)),
    ]
    budget_us = 1e6 / (args.raw_eps / 2) if args.raw_eps else None
    print(f"{n:,} events in envelopes of {args.envelope}; one process, no broker")
    if budget_us:
        print(
            f"budget per event at 50% of {args.raw_eps:,.0f} ev/s raw: {budget_us:.2f} us "
            f"(the raw consumer's own share of it: {1e6 / args.raw_eps:.2f} us)"
        )
    for label, fn in stages:
        started = time.perf_counter()
        fn()
        took = time.perf_counter() - started
        us = took * 1e6 / n
        share = f"  {us / budget_us:5.1f}x the budget" if budget_us else ""
        print(f"  {label:44s} {n / took:>11,.0f} ev/s {us:8.2f} us/event{share}")
    if args.profile:
        from pyinstrument import Profiler

        run = core_run(envelopes(n, args.use_cases, args.envelope))
        with Profiler(interval=0.0005) as profiler:
            run()
        print(profiler.output_text(unicode=False, color=False, short_mode=True))


if __name__ == "__main__":
    main()
