"""Exactly one command per decision when the worker is killed between decision and commit.

spendfuse's choice is idempotent command ids, not Kafka transactions: a command's id is derived
from the decision and its event time, so a worker that re-processes uncommitted input re-issues
the *same* id, and the gateway applies a command id once (later copies count as ``duplicate``).

The worker runs with a 600 s commit interval, so once its command is on the topic its input
offsets are provably not yet committed; it is then SIGKILLed and restarted on the same group.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from spendfuse.control.signing import Signer, Verifier
from spendfuse.gateway.client import ControlClient
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess, consume_until
from tests.support.waiting import wait_for


def _event_positions(bootstrap: str, use_case: str, n: int) -> list[tuple[int, int]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})  # fmt: skip
    consumer.subscribe([topics.COST_EVENTS])
    found: list[tuple[int, int]] = []
    try:
        wait_for(lambda: _scan(consumer, use_case, found) >= n, f"{n} events of {use_case}")
    finally:
        consumer.close()
    return found


def _scan(consumer: Consumer, use_case: str, found: list[tuple[int, int]]) -> int:
    for msg in consumer.consume(1000, 0.2):  # the shared topic holds every earlier test's events
        if msg.error():
            continue
        try:
            record = orjson.loads(msg.value())
        except orjson.JSONDecodeError:
            continue  # another test's dead letter in the making
        if isinstance(record, dict) and record.get("use_case_id") == use_case:
            found.append((msg.partition(), msg.offset()))
    return len(found)


def _committed(bootstrap: str, group: str, partition: int) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topics.COST_EVENTS, partition)], timeout=10)
        return tp.offset  # negative when nothing was ever committed
    finally:
        consumer.close()


def _trip(bootstrap: str, use_case: str) -> None:
    with CostEventPublisher(bootstrap) as pub:
        now = datetime.now(UTC)
        for i in range(2):
            pub.publish(make_event(use_case, cost=0.6, at=now, seconds=i * 0.01))


@pytest.mark.timeout(240)
def test_worker_killed_between_decision_and_commit_yields_one_command(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, signing_spec: str,
    signer: Signer, control_topic: str,
) -> None:  # fmt: skip
    tmp = tmp_path_factory.mktemp("eos")
    app_id = f"spendfuse-eos-{uuid.uuid4().hex[:8]}"
    env = {"SPENDFUSE_APP_ID": app_id, "SPENDFUSE_SPEND_LIMIT__LIMIT_USD": "1.0",
           "SPENDFUSE_SPEND_LIMIT__ACTION": "kill_switch",
           "SPENDFUSE_CONTROL_SIGNING_KEY": signing_spec}  # fmt: skip
    seen: list[tuple[str, bytes | None]] = []
    client = ControlClient(kafka_bootstrap, Verifier([signer.verify_key_spec()]),
                           on_record=lambda outcome, key, _t: seen.append((outcome, key)))
    client.start(60)
    uc, sentinel = unique("eos"), unique("eos-sentinel")
    key = f"use_case:{uc}".encode()
    # No commit by time (600 s) nor by count (a fresh group replays the shared topics' history).
    worker = WorkerProcess(kafka_bootstrap, tmp, SPENDFUSE_COMMIT_INTERVAL_S="600",
                           SPENDFUSE_COMMIT_EVERY="100000000", **env).start()
    try:
        _trip(kafka_bootstrap, uc)
        wait_for(lambda: client.decide({"use_case_id": uc}).action == "deny", "the decision")
        partition, tripping_offset = _event_positions(kafka_bootstrap, uc, 2)[-1]
        assert _committed(kafka_bootstrap, app_id, partition) <= tripping_offset  # not committed
        worker.kill()  # SIGKILL: between the decision being published and its input's commit
    finally:
        worker.stop()

    restarted = WorkerProcess(kafka_bootstrap, tmp, **env).start()
    try:
        wait_for(lambda: _committed(kafka_bootstrap, app_id, partition) > tripping_offset,
                 "the restarted worker to re-process and commit past the tripping event")
        _trip(kafka_bootstrap, sentinel)  # its command lands after any re-issued one
        wait_for(lambda: client.decide({"use_case_id": sentinel}).action == "deny", "sentinel")
    finally:
        restarted.stop()
        client.close()

    records = consume_until(kafka_bootstrap, topics.CONTROL, lambda r: len(r) >= 1,
                            match=lambda r: r["target"]["id"] == uc)  # fmt: skip
    assert len({r["command_id"] for r in records}) == 1, records
    outcomes = [outcome for outcome, k in seen if k == key]
    assert outcomes.count("applied") == 1, outcomes
    assert set(outcomes) <= {"applied", "duplicate", "unknown_key"}, outcomes
