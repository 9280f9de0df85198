"""The worker's commit path against Kafka transactions, on a real broker, same workload.

    python benchmarks/commit_modes.py [--records 100000] [--work-us 0] [--bootstrap-servers H:P]

The worker is at-least-once with stable ids (``streams/commit_producer.py``,
``streams/state_cache.py``): at every commit it hands its outputs to an idempotent librdkafka
producer and flushes, then writes states and dedup ids to their changelogs and flushes again,
then commits the input offsets. A crash between the flush and the offset commit re-handles
some records, and their outputs are re-sent with the same ids for readers to drop. Kafka
transactions (``init_transactions`` / ``begin_transaction`` / ``send_offsets_to_transaction``
/ ``commit_transaction``) would make outputs, changelogs and offsets one atomic write instead.

This runs both, one after the other, on a local broker (``spendfuse.localkafka``) with the
same input: ``--records`` input records over ``--use-cases`` keys and 4 partitions, already on
the topic. A consumer loop stands in for the worker: per input record it spends ``--work-us``
of CPU (the pure core's cost per record; 0 measures the commit path alone) and produces one
output record (the tenant stage's record or a decision) and one dedup-id changelog record; at
each commit (every ``--commit-interval-s`` or ``--commit-records``) it writes the state of
every use case it touched since the last commit (``--state-bytes`` each) to a compacted
changelog, then commits. A reader with ``isolation.level=read_committed`` follows the output
topic and measures, per output record, the time from the ``produce`` call to the moment it can
read it: what a downstream consumer (the notifier, a gateway) waits.

Printed per mode: records/s from first poll to last commit, commit latency p50/p99 (the
commit step: state writes, flush or ``commit_transaction``, offset commit) and end-to-end
output visibility p50/p99/max for a read_committed reader.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from spendfuse.localkafka import LocalKafka

PARTITIONS = 4


@dataclass
class Result:
    mode: str
    records: int = 0
    seconds: float = 0.0
    commits: list[float] = field(default_factory=list)
    visible: list[float] = field(default_factory=list)
    outputs: int = 0


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def create_topics(bootstrap: str, names: dict[str, dict[str, str]]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [
            NewTopic(n, num_partitions=PARTITIONS, replication_factor=1, config=c)
            for n, c in names.items()
        ]
    )
    for future in futures.values():
        future.result(30)


def load_input(bootstrap: str, topic: str, records: int, use_cases: int) -> None:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "lz4"}
    )
    body = b"x" * 250
    for i in range(records):
        key = f"uc-{i % use_cases}".encode()
        producer.produce(topic, b'{"n":%d,"p":"%s"}' % (i, body), key=key)
        if i % 10_000 == 0:
            producer.poll(0)
    producer.flush(60)


class Reader(threading.Thread):
    """A read_committed consumer of the output topic: when each output becomes readable."""

    def __init__(self, bootstrap: str, topic: str, expected: int) -> None:
        super().__init__(daemon=True)
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 10,
            }
        )
        self.consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(PARTITIONS)])
        self.expected = expected
        self.delays: list[float] = []
        self.ready = threading.Event()
        self.stop_at: float | None = None

    def run(self) -> None:
        self.ready.set()
        while len(self.delays) < self.expected:
            if self.stop_at is not None and time.time() > self.stop_at:
                break
            for msg in self.consumer.consume(1000, 0.2):
                if msg.error() is None:
                    now = time.time()
                    self.delays.append(now - orjson.loads(msg.value())["t"])
        self.consumer.close()


def run_mode(
    mode: str,
    bootstrap: str,
    topics: dict[str, str],
    args: argparse.Namespace,
) -> Result:
    transactional = mode == "transactions"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"commit-modes-{mode}-{uuid.uuid4().hex[:6]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        }
    )
    config: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1_000_000,
    }
    if transactional:
        config["transactional.id"] = f"commit-modes-{uuid.uuid4().hex[:8]}"
    producer = Producer(config)
    if transactional:
        producer.init_transactions(30)
    reader = Reader(bootstrap, topics["out"], args.records)
    reader.start()
    reader.ready.wait()
    time.sleep(2.0)  # the reader's assignment settles at the end of the topic
    consumer.subscribe([topics["in"]])
    result = Result(mode)
    state_value = b"s" * args.state_bytes
    work_s = args.work_us / 1e6
    dirty: set[bytes] = set()
    since = 0
    last_commit = time.perf_counter()
    started: float | None = None

    def commit() -> None:
        nonlocal since, last_commit
        t0 = time.perf_counter()
        for key in dirty:
            producer.produce(topics["state"], state_value, key=key)
        dirty.clear()
        if transactional:
            positions = consumer.position(consumer.assignment())
            producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), 30)
            producer.commit_transaction(30)
            producer.begin_transaction()
        else:
            producer.flush(30)
            consumer.commit(asynchronous=False)
        result.commits.append(time.perf_counter() - t0)
        since = 0
        last_commit = time.perf_counter()

    if transactional:
        producer.begin_transaction()
    while result.records < args.records:
        batch = consumer.consume(500, 0.5)
        if not batch:
            continue
        if started is None:
            started = time.perf_counter()
        for msg in batch:
            if msg.error() is not None:
                continue
            deadline = time.perf_counter() + work_s
            while work_s and time.perf_counter() < deadline:
                pass
            key = msg.key()
            producer.produce(topics["ids"], b"1", key=b"%d-%d" % (msg.partition(), msg.offset()))
            producer.produce(
                topics["out"],
                orjson.dumps({"t": time.time(), "o": msg.offset(), "p": msg.partition()}),
                key=key,
            )
            producer.poll(0)
            dirty.add(key)
            result.records += 1
            result.outputs += 1
            since += 1
        if (
            since >= args.commit_records
            or time.perf_counter() - last_commit >= args.commit_interval_s
        ):
            commit()
    if since:
        commit()
    assert started is not None
    result.seconds = time.perf_counter() - started
    if transactional:
        producer.abort_transaction(30)  # the empty one begun by the last commit
    reader.stop_at = time.time() + 30
    reader.join(40)
    result.visible = reader.delays
    consumer.close()
    return result


def report(results: list[Result]) -> None:
    print(
        f"{'mode':<16}{'records/s':>11}{'commits':>9}{'commit p50':>12}{'commit p99':>12}"
        f"{'visible p50':>13}{'visible p99':>13}{'visible max':>13}{'seen':>9}"
    )
    for r in results:
        ms: Callable[[float], str] = lambda s: f"{s * 1000:,.1f} ms"  # noqa: E731
        print(
            f"{r.mode:<16}{r.records / r.seconds:>11,.0f}{len(r.commits):>9}"
            f"{ms(_quantile(r.commits, 0.5)):>12}{ms(_quantile(r.commits, 0.99)):>12}"
            f"{ms(_quantile(r.visible, 0.5)):>13}{ms(_quantile(r.visible, 0.99)):>13}"
            f"{ms(max(r.visible, default=float('nan'))):>13}{len(r.visible):>9,}"
        )
    means = ", ".join(f"{r.mode} {statistics.mean(r.commits) * 1000:.1f} ms" for r in results)
    print(f"  (mean commit: {means})")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--use-cases", type=int, default=200)
    ap.add_argument("--work-us", type=float, default=0.0, help="CPU per input record")
    ap.add_argument("--state-bytes", type=int, default=20_000)
    ap.add_argument("--commit-interval-s", type=float, default=0.5)
    ap.add_argument("--commit-records", type=int, default=5_000)
    ap.add_argument("--modes", default="at_least_once,transactions")
    ap.add_argument("--bootstrap-servers", default=None)
    args = ap.parse_args()

    broker = None
    bootstrap = args.bootstrap_servers
    if bootstrap is None:
        broker = LocalKafka(Path(tempfile.mkdtemp(prefix="commit-modes-")), partitions=PARTITIONS)
        started = time.monotonic()
        bootstrap = broker.start()
        print(f"local broker at {bootstrap} in {time.monotonic() - started:.1f} s")
    try:
        results = []
        for mode in args.modes.split(","):
            run = uuid.uuid4().hex[:6]
            topics = {
                "in": f"cm-in-{run}",
                "out": f"cm-out-{run}",
                "ids": f"cm-ids-{run}",
                "state": f"cm-state-{run}",
            }
            create_topics(
                bootstrap,
                {
                    topics["in"]: {},
                    topics["out"]: {},
                    topics["ids"]: {"cleanup.policy": "compact"},
                    topics["state"]: {"cleanup.policy": "compact"},
                },
            )
            load_input(bootstrap, topics["in"], args.records, args.use_cases)
            print(f"{mode}: {args.records:,} records loaded; running", flush=True)
            results.append(run_mode(mode, bootstrap, topics, args))
        print(
            f"\n{args.records:,} input records over {args.use_cases} use cases, {PARTITIONS} "
            f"partitions; per record {args.work_us:g} µs of work, 1 output and 1 id record; per "
            f"commit each touched use case's state ({args.state_bytes:,} bytes); commit every "
            f"{args.commit_interval_s} s or {args.commit_records:,} records"
        )
        report(results)
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
