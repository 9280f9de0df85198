"""Helpers for tests that talk to the real broker: consume a topic, wait for a worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from spendfuse.localkafka.broker import free_port
from spendfuse.schemas import topics


def consume_until(
    bootstrap: str,
    topic: str,
    done: Callable[[list[dict[str, Any]]], bool],
    *,
    match: Callable[[dict[str, Any]], bool] = lambda _r: True,
    timeout_s: float = 60.0,
) -> list[dict[str, Any]]:
    """Read ``topic`` from the start; return matching JSON records once ``done(records)``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                if done(records):
                    return records
                continue
            if msg.error() or msg.value() is None:
                continue  # errors, and tombstones (a lift's, on the control topic)
            try:
                rec = orjson.loads(msg.value())
            except orjson.JSONDecodeError:
                continue  # the shared topics hold other tests' deliberately broken records
            if not isinstance(rec, dict):
                continue
            rec["_key"] = msg.key().decode() if msg.key() else None
            if match(rec):
                records.append(rec)
            if done(records):
                # keep reading briefly so that a duplicate right behind would be seen too
                extra_deadline = time.monotonic() + 2.0
                while time.monotonic() < extra_deadline:
                    more = consumer.poll(0.3)
                    if more is not None and not more.error():
                        try:
                            r = orjson.loads(more.value())
                        except orjson.JSONDecodeError:
                            continue
                        if not isinstance(r, dict):
                            continue
                        r["_key"] = more.key().decode() if more.key() else None
                        if match(r):
                            records.append(r)
                return records
    finally:
        consumer.close()
    raise AssertionError(
        f"timed out after {timeout_s}s waiting on {topic}; got {len(records)} records: "
        f"{records[:5]}"
    )


HISTORY_TOPICS = (topics.COST_EVENTS, topics.TENANT_SPEND, topics.ALERTS)


def skip_history(bootstrap: str, group: str, config: dict[str, Any] | None = None) -> None:
    """Start a *new* consumer group at the end of the shared topics.

    Every test's worker reads the same topics; without this a fresh worker would first chew
    through every earlier test's events. A group that has committed offsets (a restarted
    worker) is left alone, so restart tests still re-process what was not committed.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            **(config or {}),
        }
    )
    try:
        metadata = consumer.list_topics(timeout=10).topics
        tps = [
            TopicPartition(t, p)
            for t in HISTORY_TOPICS
            if t in metadata
            for p in metadata[t].partitions
        ]
        if not tps or any(tp.offset >= 0 for tp in consumer.committed(tps, timeout=10)):
            return
        ends = [
            TopicPartition(
                tp.topic, tp.partition, consumer.get_watermark_offsets(tp, timeout=10)[1]
            )
            for tp in tps
        ]
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


class WorkerProcess:
    """A real ``spendfuse worker`` subprocess pointed at the test broker."""

    def __init__(
        self, bootstrap: str, tmp: Path, *, kafka_config: dict[str, Any] | None = None, **env: str
    ) -> None:
        self.bootstrap = bootstrap
        self.kafka_config = kafka_config or {}  # the test's own login (a SASL broker's admin)
        self.app_id = env.pop("SPENDFUSE_APP_ID", f"spendfuse-test-{uuid.uuid4().hex[:8]}")
        self.log_path = tmp / f"{self.app_id}.log"
        self.env = {
            **os.environ,
            "SPENDFUSE_BOOTSTRAP_SERVERS": bootstrap,
            "SPENDFUSE_APP_ID": self.app_id,
            "SPENDFUSE_DATA_DIR": str(tmp / self.app_id),
            "SPENDFUSE_WEB_PORT": str(free_port()),
            "SPENDFUSE_LOG_LEVEL": "info",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> WorkerProcess:
        skip_history(self.bootstrap, self.app_id, self.kafka_config)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spendfuse", "worker"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_assigned(timeout_s)
        return self

    def wait_assigned(self, timeout_s: float) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap, **self.kafka_config})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.log_tail()}")
            if "[^Worker]: Ready" in self.log_tail(200_000):
                try:
                    groups = admin.describe_consumer_groups([self.app_id])
                    desc = groups[self.app_id].result(5)
                    if str(desc.state).endswith("STABLE") and desc.members:
                        return
                except KafkaException:
                    pass
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout_s}s:\n{self.log_tail()}")

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)
