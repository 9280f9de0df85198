"""A worker killed with SIGKILL and restarted resumes with its baselines and windows intact.

The spike after the restart is only anomalous against the baseline learned *before* the kill: a
worker that lost its state would still be warming up a fresh baseline and stay quiet, which is
what the control use case (no history) shows.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from tests.support.events import BASE_TIME, make_event
from tests.support.kafka import WorkerProcess, consume_until
from tests.support.rules import fast_watches_yaml, spend_limit_yaml, temp_rules_env
from tests.support.waiting import wait_for

ANOMALY_ENV = {
    "SPENDFUSE_STORE": "rocksdb://",
    **temp_rules_env(spend_limit_yaml(100), fast_watches_yaml(), default_pack=False),
}


def _caught_up(bootstrap: str, group: str) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = consumer.list_topics(topics.COST_EVENTS, timeout=10).topics[topics.COST_EVENTS]
        tps = [TopicPartition(topics.COST_EVENTS, p) for p in parts.partitions]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        for tp in tps:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > 0 and committed.get(tp.partition, -1) < high:
                return False
        return True
    finally:
        consumer.close()


def _minute_of_spend(pub: CostEventPublisher, uc: str, minute: int, per_event: float) -> None:
    for k in range(5):
        at = BASE_TIME + timedelta(minutes=minute, seconds=k * 10)
        pub.publish(make_event(uc, cost=per_event * (0.9 + 0.05 * k), at=at))


def test_baselines_survive_a_sigkill(kafka_bootstrap: str, tmp_path: Path) -> None:
    app_id = f"spendfuse-recovery-{uuid.uuid4().hex[:6]}"
    uc, fresh = f"steady-{app_id}", f"fresh-{app_id}"
    worker = WorkerProcess(kafka_bootstrap, tmp_path, SPENDFUSE_APP_ID=app_id, **ANOMALY_ENV)
    worker.start()
    with CostEventPublisher(kafka_bootstrap) as pub:
        for minute in range(30):  # half an hour of ~$0.10/min teaches the baseline
            _minute_of_spend(pub, uc, minute, 0.02)
    wait_for(lambda: _caught_up(kafka_bootstrap, app_id), "the worker to commit everything", 90)
    worker.kill()

    restarted = WorkerProcess(kafka_bootstrap, tmp_path, SPENDFUSE_APP_ID=app_id, **ANOMALY_ENV)
    restarted.start()
    try:
        with CostEventPublisher(kafka_bootstrap) as pub:
            for minute in range(30, 36):  # 6x the learned spend
                _minute_of_spend(pub, uc, minute, 0.12)
                _minute_of_spend(pub, fresh, minute, 0.12)
        alerts = consume_until(
            kafka_bootstrap,
            topics.ALERTS,
            lambda r: len(r) >= 1,
            match=lambda r: r.get("use_case_id") == uc and r["rule"] == "spend_spike_anomaly",
            timeout_s=90,
        )
        assert alerts[0]["status"] == "firing"
        assert alerts[0]["evidence"]["baseline"] < 0.2  # learned before the kill
        assert alerts[0]["evidence"]["value"] > 0.5
        quiet = consume_until(
            kafka_bootstrap,
            topics.ALERTS,
            lambda _r: True,
            match=lambda r: r.get("use_case_id") == fresh,
            timeout_s=5,
        )
        assert quiet == []  # no history, no baseline yet: still warming up
        assert (tmp_path / app_id / "faust").exists()
    finally:
        restarted.stop()
