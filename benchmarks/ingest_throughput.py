"""Ingest throughput: events/s through the Faust worker on a real broker, and through replay.

    python benchmarks/ingest_throughput.py [--events 50000] [--use-cases 200]
        [--bootstrap-servers HOST:PORT]   (default: start a local broker)

Pre-publishes the events, starts a worker with a fresh consumer group, and times how long it
takes for the group's committed offsets to reach the end of the input topic. Prints events/s,
the worker's peak RSS, the broker start time, and the pure pipeline's events/s (replay, same
events, no broker) as the ceiling the worker is measured against.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Consumer, TopicPartition

from spendfuse.localkafka import LocalKafka
from spendfuse.localkafka.broker import free_port
from spendfuse.pipeline import Pipeline
from spendfuse.producer import CostEventPublisher
from spendfuse.replay import replay_records
from spendfuse.rules import Engine
from spendfuse.schemas import topics


def make_events(n: int, use_cases: int, run: str) -> list[bytes]:
    rng = random.Random(1)
    t0 = datetime(2026, 11, 23, 9, tzinfo=UTC)
    out = []
    for i in range(n):
        uc = f"uc-{run}-{rng.randrange(use_cases)}"
        out.append(
            orjson.dumps(
                {
                    "schema_version": 1,
                    "cost_event_id": f"{run}-{i}",
                    "event_time": (t0 + timedelta(milliseconds=20 * i)).isoformat(),
                    "tenant_id": "acme",
                    "use_case_id": uc,
                    "risk_tier": "low",
                    "environment": "prod",
                    "component": "model_call",
                    "provider": "openai",
                    "model_or_service": "gpt-4o-mini",
                    "input_tokens": rng.randint(200, 4000),
                    "output_tokens": rng.randint(50, 800),
                    "allocated_cost_usd": round(rng.uniform(0.0005, 0.01), 6),
                }
            )
        )
    return out


def committed_total(bootstrap: str, group: str, partitions: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topics.COST_EVENTS, p) for p in range(partitions)]
        return sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
    finally:
        c.close()


def end_total(bootstrap: str, partitions: int) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        return sum(
            c.get_watermark_offsets(TopicPartition(topics.COST_EVENTS, p), timeout=10)[1]
            for p in range(partitions)
        )
    finally:
        c.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--use-cases", type=int, default=200)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--bootstrap-servers", default=None)
    args = ap.parse_args()

    run = uuid.uuid4().hex[:6]
    events = make_events(args.events, args.use_cases, run)

    started = time.perf_counter()
    replay_records(events, Pipeline(Engine.default()))
    replay_eps = len(events) / (time.perf_counter() - started)

    broker = None
    bootstrap = args.bootstrap_servers
    if not bootstrap:
        broker = LocalKafka(partitions=args.partitions)
        t = time.perf_counter()
        bootstrap = broker.start()
        print(f"broker start: {time.perf_counter() - t:.1f} s")
    tmp = Path(tempfile.mkdtemp(prefix="spendfuse-bench-"))
    try:
        from spendfuse.settings import Settings
        from spendfuse.streams.topics import ensure_topics

        ensure_topics(Settings(bootstrap_servers=bootstrap, partitions=args.partitions))
        base = end_total(bootstrap, args.partitions)
        with CostEventPublisher(bootstrap) as pub:
            for raw in events:
                uc = orjson.loads(raw)["use_case_id"]
                while not pub.publish_raw(raw, key=uc.encode()):
                    pub.flush(1)
        target = base + len(events)
        group = f"spendfuse-bench-{run}"
        env = {
            **os.environ,
            "SPENDFUSE_BOOTSTRAP_SERVERS": bootstrap,
            "SPENDFUSE_APP_ID": group,
            "SPENDFUSE_DATA_DIR": str(tmp),
            "SPENDFUSE_WEB_PORT": str(free_port()),
            "SPENDFUSE_PARTITIONS": str(args.partitions),
            "SPENDFUSE_CONSOLE_ALERTS": "false",
        }
        t_start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "spendfuse", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        first = None
        done = 0
        while time.perf_counter() - t_start < 600:
            done = committed_total(bootstrap, group, args.partitions)
            if first is None and done > 0:
                first = (time.perf_counter(), done)
            if done >= target:
                break
            time.sleep(0.5)
        t_end = time.perf_counter()
        rss = peak_rss_mb(proc.pid)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        if first is None or done < target:
            sys.exit(f"worker processed only {done}/{target} events")
        steady = (done - first[1]) / max(t_end - first[0], 1e-9)
        print(
            f"events: {len(events)} over {args.use_cases} use cases, {args.partitions} partitions"
        )
        print(f"worker start to first commit: {first[0] - t_start:.1f} s")
        print(f"worker ingest throughput: {steady:,.0f} events/s (steady state)")
        print(f"worker peak RSS: {rss:.0f} MB")
        print(f"pure pipeline (replay, no broker): {replay_eps:,.0f} events/s")
    finally:
        if broker:
            broker.stop()


if __name__ == "__main__":
    main()
