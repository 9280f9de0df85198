"""One worker against the raw Python consumers, side by side on the same topic.

    python benchmarks/worker_vs_raw.py [--events 200000] [--use-cases 200] [--partitions 4]
        [--envelope 100] [--linger-ms 50] [--bootstrap-servers HOST:PORT]
        [--worker-python PYTHON ...] [--rounds 1]

Publishes ``--events`` cost events once (with the producer API: envelopes of up to
``--envelope`` events per Kafka record, ``--envelope 1`` for one event per record), then reads
that same topic three times, each with a fresh consumer group:

1. a raw confluent-kafka consumer that only decodes each record with orjson,
2. a raw aiokafka consumer that only decodes each record with orjson (the ceiling for Python),
3. one ``spendfuse worker`` process with the default engine (spend limit, the default rule
   pack, the anomaly watches, the tenant stage), timed by its committed offsets.

Prints records/s and events/s for each and the worker's share of the raw aiokafka rate in
events/s (the goal is at least 50%), plus the worker's peak RSS and the CPU time it spent per
event (user + system, all its threads: steadier than the rate on a busy machine). The rate is
timed by the input's committed offsets; the tenant stage (a second agent) can lag behind while
the input has a backlog, so the rate and CPU until it has consumed its records too ("drained":
all the work of the input) are printed as well.

``--worker-python`` (repeatable) runs the worker under each interpreter given, e.g. the
virtualenvs of two checkouts, on the same published records, alternating for ``--rounds``
rounds: a before/after comparison under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition

from spendfuse.localkafka import LocalKafka
from spendfuse.localkafka.broker import free_port
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics


def make_events(n: int, use_cases: int, run: str, start: datetime) -> list[dict[str, object]]:
    """Events spread over ``use_cases`` at a steady event-time pace (20 ms apart)."""
    rng = random.Random(1)
    return [
        {
            "schema_version": 1,
            "cost_event_id": f"{run}-{i}",
            "event_time": (start + timedelta(milliseconds=20 * i)).isoformat(),
            "tenant_id": "acme",
            "use_case_id": f"uc-{run}-{rng.randrange(use_cases)}",
            "risk_tier": "low",
            "environment": "prod",
            "component": "model_call",
            "provider": "openai",
            "model_or_service": "gpt-4o-mini",
            "input_tokens": rng.randint(200, 4000),
            "output_tokens": rng.randint(50, 800),
            "allocated_cost_usd": round(rng.uniform(0.0005, 0.01), 6),
        }
        for i in range(n)
    ]


def count_events(value: bytes) -> int:
    obj = orjson.loads(value)
    if isinstance(obj, dict) and isinstance(obj.get("events"), list):
        return len(obj["events"])
    return 1


def raw_confluent(bootstrap: str, total_records: int) -> tuple[float, int]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"raw-ck-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 << 20,
        }
    )
    consumer.subscribe([topics.COST_EVENTS])
    records = events = 0
    started = None
    while records < total_records:
        for msg in consumer.consume(10_000, 1.0):
            if msg.error():
                continue
            started = started or time.perf_counter()
            events += count_events(msg.value())
            records += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return elapsed, events


async def _raw_aiokafka(bootstrap: str, total_records: int) -> tuple[float, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topics.COST_EVENTS,
        bootstrap_servers=bootstrap,
        group_id=f"raw-aio-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 << 20,
        fetch_max_bytes=64 << 20,
    )
    await consumer.start()
    records = events = 0
    started = None
    try:
        while records < total_records:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for batch in batches.values():
                started = started or time.perf_counter()
                for msg in batch:
                    events += count_events(msg.value)
                    records += 1
    finally:
        await consumer.stop()
    return time.perf_counter() - (started or time.perf_counter()), events


def committed_total(
    bootstrap: str, group: str, partitions: int, topic: str = topics.COST_EVENTS
) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return sum(max(tp.offset, 0) for tp in c.committed(tps, timeout=10))
    finally:
        c.close()


def end_total(bootstrap: str, partitions: int, topic: str = topics.COST_EVENTS) -> int:
    """Sum of the topic's end offsets; retried while a new topic's leaders are being elected."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})
    try:
        for attempt in range(30):
            try:
                return sum(
                    c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                    for p in range(partitions)
                )
            except KafkaException:
                if attempt == 29:
                    raise
                time.sleep(1)
        raise AssertionError("unreachable")
    finally:
        c.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process, all its threads (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_at_end(bootstrap: str, group: str, partitions: int, topic: str) -> None:
    """Commit ``topic``'s end offsets for a new group: its worker reads only what is written
    after (the tenant-stage records of earlier runs on the same broker are not its work)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        ends = [
            TopicPartition(
                topic, p, c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            )
            for p in range(partitions)
        ]
        c.commit(offsets=ends, asynchronous=False)
    finally:
        c.close()


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_worker(
    bootstrap: str,
    partitions: int,
    target: int,
    tmp: Path,
    profile: Path | None = None,
    python: str = sys.executable,
) -> Run:
    """Start a worker on a fresh group and time it (see :class:`Run`).

    With ``profile``, py-spy samples the worker while it works (raw collapsed stacks)."""
    group = f"spendfuse-bench-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        "SPENDFUSE_BOOTSTRAP_SERVERS": bootstrap,
        "SPENDFUSE_APP_ID": group,
        "SPENDFUSE_DATA_DIR": str(tmp / group),
        "SPENDFUSE_WEB_PORT": str(free_port()),
        "SPENDFUSE_PARTITIONS": str(partitions),
        "SPENDFUSE_CONSOLE_ALERTS": "false",
        "SPENDFUSE_LOG_LEVEL": "warning",
    }
    start_at_end(bootstrap, group, partitions, topics.TENANT_SPEND)
    log = (tmp / f"{group}.log").open("wb")
    proc = subprocess.Popen(
        [python, "-m", "spendfuse", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    t_start = time.perf_counter()
    first: tuple[float, int] | None = None
    cpu_first = cpu_last = 0.0
    spy: subprocess.Popen[bytes] | None = None
    done = 0
    try:
        while time.perf_counter() - t_start < 900:
            done = committed_total(bootstrap, group, partitions)
            if first is None and done > 0:
                first = (time.perf_counter(), done)
                cpu_first = cpu_seconds(proc.pid)
                if profile is not None:
                    spy = subprocess.Popen(
                        [
                            _py_spy(),
                            "record",
                            "-p",
                            str(proc.pid),
                            "-f",
                            "raw",
                            "-o",
                            str(profile),
                            "-d",
                            "30",
                            "--nonblocking",
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
            if done >= target:
                break
            time.sleep(0.25)
        t_end = time.perf_counter()
        cpu_last = cpu_seconds(proc.pid)
        # the tenant stage may still be behind: wait until its topic is consumed too
        tenant_end = end_total(bootstrap, partitions, topics.TENANT_SPEND)
        while time.perf_counter() - t_start < 900:
            tenant_done = committed_total(bootstrap, group, partitions, topics.TENANT_SPEND)
            if tenant_done >= tenant_end:
                break
            time.sleep(0.25)
        t_drained = time.perf_counter()
        cpu_drained = cpu_seconds(proc.pid)
        rss = peak_rss_mb(proc.pid)
    finally:
        if spy is not None:
            spy.wait(60)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    if first is None or done < target:
        sys.exit(f"worker committed only {done}/{target} records; log: {log.name}")
    return Run(
        t_end - first[0],
        done - first[1],
        rss,
        cpu_last - cpu_first,
        t_drained - first[0],
        cpu_drained - cpu_first,
    )


@dataclass
class Run:
    """One worker run, timed from its first commit: until every input record was committed
    (``seconds``, ``cpu``), and until the tenant stage had consumed every record the ingest
    sent it too (``drained_s``, ``drained_cpu``: the whole work of the input)."""

    seconds: float
    records: int
    rss_mb: float
    cpu: float
    drained_s: float
    drained_cpu: float


def _py_spy() -> str:
    """py-spy from the dev extras, next to this interpreter, else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else (shutil.which("py-spy") or "py-spy")


def summarize_profile(path: Path, top: int = 25) -> list[tuple[str, float, float]]:
    """(function, inclusive share, own share) of the samples in py-spy's raw collapsed stacks.

    Each line is ``frame;frame;...;leaf COUNT``; a function counts once per sample however
    often it recurs in the stack. Faust's frames are included, so the shares say how much of
    the worker's time its own code takes; frames in over 90% of samples (the entry point and
    the event loop) are left out.
    """
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " " + f.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
            for f in stack.split(";")
        ]
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    if not total:
        return []
    # the entry frames nearly every sample shares (runpy, click, the event loop) say nothing
    ranked = [
        (name, n / total, own[name] / total)
        for name, n in inclusive.most_common()
        if n / total < 0.9
    ]
    return ranked[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--use-cases", type=int, default=200)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--envelope", type=int, default=100, help="max events per record")
    ap.add_argument("--linger-ms", type=float, default=50.0)
    ap.add_argument("--bootstrap-servers", default=None)
    ap.add_argument("--skip-worker", action="store_true")
    ap.add_argument(
        "--worker-python",
        action="append",
        default=None,
        help="run the worker under this interpreter (repeatable: compared on the same records)",
    )
    ap.add_argument("--rounds", type=int, default=1, help="times each worker is run, alternating")
    ap.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="write py-spy samples of the worker (collapsed stacks) here",
    )
    args = ap.parse_args()

    broker = None
    bootstrap = args.bootstrap_servers
    if not bootstrap:
        broker = LocalKafka(partitions=args.partitions)
        bootstrap = broker.start()
    tmp = Path(tempfile.mkdtemp(prefix="spendfuse-bench-"))
    try:
        from spendfuse.settings import Settings
        from spendfuse.streams.topics import ensure_topics

        ensure_topics(Settings(bootstrap_servers=bootstrap, partitions=args.partitions))
        if end_total(bootstrap, args.partitions):
            sys.exit("the cost-events topic is not empty: use a fresh broker")
        run = uuid.uuid4().hex[:6]
        events = make_events(
            args.events,
            args.use_cases,
            run,
            datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2),
        )
        t = time.perf_counter()
        with CostEventPublisher(
            bootstrap, envelope_max_events=args.envelope, envelope_linger_ms=args.linger_ms
        ) as pub:
            for ev in events:
                while not pub.publish(ev):
                    pub.flush(1)
        publish_s = time.perf_counter() - t
        records = end_total(bootstrap, args.partitions)
        print(
            f"published {args.events:,} events over {args.use_cases} use cases as "
            f"{records:,} records ({args.events / records:.1f} events/record, "
            f"{args.partitions} partitions) in {publish_s:.1f} s "
            f"({args.events / publish_s:,.0f} events/s)"
        )

        ck_s, ck_events = raw_confluent(bootstrap, records)
        aio_s, aio_events = asyncio.run(_raw_aiokafka(bootstrap, records))
        rows = [
            ("raw confluent-kafka + orjson", records / ck_s, ck_events / ck_s),
            ("raw aiokafka + orjson", records / aio_s, aio_events / aio_s),
        ]
        print(f"{'consumer':36} {'records/s':>12} {'events/s':>12}")
        for name, rps, eps in rows:
            print(f"{name:36} {rps:12,.0f} {eps:12,.0f}")
        if not args.skip_worker:
            pythons = args.worker_python or [sys.executable]
            per_record = args.events / records
            for round_ in range(args.rounds):
                for python in pythons:
                    run = run_worker(bootstrap, args.partitions, records, tmp, args.profile, python)
                    events = run.records * per_record
                    events_s = events / run.seconds
                    label = "spendfuse worker (default engine)"
                    if len(pythons) > 1 or args.rounds > 1:
                        print(f"round {round_ + 1}, worker {python}:")
                    print(f"{label:36} {run.records / run.seconds:12,.0f} {events_s:12,.0f}")
                    share = events_s / rows[1][2]
                    print(f"worker / raw aiokafka (events/s): {share:.1%}  (goal: >= 50%)")
                    print(
                        f"worker peak RSS: {run.rss_mb:.0f} MB; CPU per event: "
                        f"{run.cpu / events * 1e6:.1f} us"
                    )
                    print(
                        f"with the tenant stage drained: {events / run.drained_s:,.0f} events/s, "
                        f"CPU per event {run.drained_cpu / events * 1e6:.1f} us"
                    )
        if args.profile is not None and args.profile.exists():
            print(f"\nworker profile (py-spy, {args.profile}): share of samples, inclusive / own")
            for name, incl, self_share in summarize_profile(args.profile):
                print(f"  {incl:6.1%} {self_share:6.1%}  {name}")
    finally:
        if broker:
            broker.stop()


if __name__ == "__main__":
    main()
