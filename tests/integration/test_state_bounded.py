"""State per use case is bounded on the real broker: more days of traffic, not more bytes.

One event every 15 minutes of event time over nine days exercises every window (minute, hour,
day, month, the 7-day hourly ring, traces, baselines). The use case's state as the worker writes
it to its changelog after day 9 must be no bigger than after day 8: windows expire. The worker
runs with a 1 MiB memtable budget: its commits flush RocksDB memtables over it, and its metrics
show the budgets and what was held, and it hands freed heap pages back every second.
"""

from __future__ import annotations

import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from spendfuse.producer import CostEventPublisher
from tests.integration.test_state_recovery import _caught_up
from tests.support.events import BASE_TIME, make_event
from tests.support.kafka import WorkerProcess
from tests.support.waiting import wait_for

STEP = timedelta(minutes=15)


def _latest_state(bootstrap: str, topic: str, key_part: str) -> tuple[int, int]:
    """(size, offset) of the newest changelog value written for the use case."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or not meta.partitions:
            return 0, -1
        consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
        newest, newest_offset = 0, -1
        while (msg := consumer.poll(1.0)) is not None:
            if msg.error() or key_part.encode() not in (msg.key() or b""):
                continue
            if msg.value() and msg.offset() > newest_offset:
                newest, newest_offset = len(msg.value()), msg.offset()
        return newest, newest_offset
    finally:
        consumer.close()


def _publish_days(bootstrap: str, uc: str, first_day: int, days: int) -> None:
    with CostEventPublisher(bootstrap) as pub:
        t = BASE_TIME + timedelta(days=first_day)
        while t < BASE_TIME + timedelta(days=first_day + days):
            pub.publish(make_event(uc, cost=0.01, at=t, business_outcome_id=f"case-{t:%j%H%M}"))
            t += STEP


def test_state_per_use_case_stays_bounded(kafka_bootstrap: str, tmp_path: Path) -> None:
    app_id = f"spendfuse-bounded-{uuid.uuid4().hex[:6]}"
    uc = f"bounded-{app_id}"
    changelog = f"{app_id}-use-case-state-changelog"
    worker = WorkerProcess(
        kafka_bootstrap,
        tmp_path,
        SPENDFUSE_APP_ID=app_id,
        SPENDFUSE_COMMIT_INTERVAL_S="0.5",
        SPENDFUSE_ROCKSDB_WRITE_BUFFER_MB="1",
        SPENDFUSE_ROCKSDB_BLOCK_CACHE_MB="2",
        SPENDFUSE_MALLOC_TRIM_S="1",
    ).start()
    try:
        _publish_days(kafka_bootstrap, uc, 0, 8)
        wait_for(lambda: _caught_up(kafka_bootstrap, app_id), "days 1-8 committed", 180)
        day8, offset8 = _latest_state(kafka_bootstrap, changelog, uc)
        _publish_days(kafka_bootstrap, uc, 8, 1)
        wait_for(lambda: _caught_up(kafka_bootstrap, app_id), "day 9 committed", 120)
        day9, offset9 = _latest_state(kafka_bootstrap, changelog, uc)
        port = int(worker.env["SPENDFUSE_WEB_PORT"])
        wait_for(  # the trim timer runs every second, however fast the days went
            lambda: _metrics(port).get("spendfuse_malloc_trims_total", 0) >= 2, "two heap trims", 60
        )
        metrics = _metrics(port)
    finally:
        worker.stop()
    assert offset9 > offset8  # day 9 was written
    assert 1_000 < day8 < 200_000
    assert day9 <= day8 * 1.05, (day8, day9)
    mib = 1024 * 1024
    assert metrics['spendfuse_rocksdb_memory_budget_bytes{part="memtables"}'] == mib
    assert metrics['spendfuse_rocksdb_memory_budget_bytes{part="block_cache"}'] == 2 * mib
    assert metrics['spendfuse_rocksdb_memory_bytes{part="block_cache"}'] <= 2 * mib
    # nine days of one use case's states and ids pass 1 MiB: commits flushed memtables
    assert metrics["spendfuse_rocksdb_memtable_flushes_total"] >= 1
    assert metrics["spendfuse_malloc_trims_total"] >= 2


def _metrics(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {
        name: float(value)
        for line in text.splitlines()
        if line.startswith(("spendfuse_rocksdb_", "spendfuse_malloc_"))
        for name, value in [line.rsplit(" ", 1)]
    }
