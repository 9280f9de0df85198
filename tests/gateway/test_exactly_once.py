"""Exactly one command per decision when the worker is killed between decision and commit.

Two guarantees meet here. The worker holds what a record decided in its outbox until the offset
commit that covers the record (streams/outbox.py), so a worker killed between decision and commit
has sent nothing, and its successor decides again from the same committed state and sends once.
And a command's id is derived from the decision and its event time, so even a copy that did get
out (a crash inside the commit itself) carries the same id, which the gateway applies once.

The worker runs with a 600 s commit interval: it decides (its metrics count the command), the
decision may leave at once (a decision asks for a commit, which covers the batches before the
deciding one, not the deciding one itself), and it is then SIGKILLed and restarted on the same
group: the deciding events are handled again, and the control topic must still end up with
exactly one record of each command.
"""

from __future__ import annotations

import urllib.request
import uuid
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from spendfuse.control.signing import Signer, Verifier
from spendfuse.gateway.client import ControlClient
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess
from tests.support.rules import rules_env, spend_limit_yaml
from tests.support.waiting import wait_for


def _commands_decided(worker: WorkerProcess) -> float:
    url = f"http://127.0.0.1:{worker.env['SPENDFUSE_WEB_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    samples = [x for f in text_string_to_metric_families(text) for x in f.samples]
    return sum(x.value for x in samples if x.name == "spendfuse_commands_total")


def _denied(client: ControlClient, use_case: str) -> bool:
    return client.decide({"tenant_id": "acme", "use_case_id": use_case}).action == "deny"


def _control_records_for(bootstrap: str, use_case: str) -> list[dict]:
    """Every record on the control topic, up to its current end, targeting ``use_case``."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex, "enable.auto.commit": False}
    )
    try:
        parts = consumer.list_topics(topics.CONTROL, timeout=10).topics[topics.CONTROL]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topics.CONTROL, p), timeout=10)
            for p in parts.partitions
        }
        consumer.assign([TopicPartition(topics.CONTROL, p, lo) for p, (lo, _hi) in ends.items()])
        todo = {p for p, (lo, hi) in ends.items() if hi > lo}
        found = []
        while todo:
            for msg in consumer.consume(1000, 1.0):
                if msg.error():
                    continue
                if msg.offset() >= ends[msg.partition()][1] - 1:
                    todo.discard(msg.partition())
                if msg.value() is None:
                    continue  # a lift's tombstone
                record = orjson.loads(msg.value())
                if record.get("target", {}).get("id") == use_case:
                    found.append(record)
        return found
    finally:
        consumer.close()


def _committed_total(bootstrap: str, group: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = consumer.list_topics(topics.COST_EVENTS, timeout=10).topics[topics.COST_EVENTS]
        tps = [TopicPartition(topics.COST_EVENTS, p) for p in parts.partitions]
        return sum(max(tp.offset, 0) for tp in consumer.committed(tps, timeout=10))
    finally:
        consumer.close()


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
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    signing_spec: str,
    signer: Signer,
    control_topic: str,
) -> None:
    tmp = tmp_path_factory.mktemp("eos")
    app_id = f"spendfuse-eos-{uuid.uuid4().hex[:8]}"
    env = {
        "SPENDFUSE_APP_ID": app_id,
        **rules_env(tmp / "rules", spend_limit_yaml(1.0, "kill_switch")),
        "SPENDFUSE_CONTROL_SIGNING_KEY": signing_spec,
    }
    seen: list[tuple[str, bytes | None]] = []
    client = ControlClient(
        kafka_bootstrap,
        Verifier([signer.verify_key_spec()]),
        default_risk_tier="low",
        on_record=lambda outcome, key, _t: seen.append((outcome, key)),
    )
    client.start(60)
    uc, sentinel = unique("eos"), unique("eos-sentinel")
    key = f"use_case:{uc}|tenant=acme|use_case={uc}|risk=low".encode()  # the tripped scope
    # No commit by time (600 s) nor by count (a fresh group replays the shared topics' history).
    worker = WorkerProcess(
        kafka_bootstrap,
        tmp,
        SPENDFUSE_COMMIT_INTERVAL_S="600",
        SPENDFUSE_COMMIT_EVERY="100000000",
        **env,
    ).start()
    try:
        _trip(kafka_bootstrap, uc)
        wait_for(lambda: _commands_decided(worker) >= 1, "the decision, inside the worker")
        committed_before = _committed_total(kafka_bootstrap, app_id)
        # Nothing left yet, unless a rebalance (Faust's own, right after start) made the worker
        # write out what it held: then ids, state and command left together, and the successor
        # sees the events as duplicates. Either way no command is on the topic twice.
        early = Counter(r["command_id"] for r in _control_records_for(kafka_bootstrap, uc))
        assert set(early.values()) <= {1}, early
        worker.kill()  # SIGKILL: after the decision, before its input's commit
    finally:
        worker.stop()

    restarted = WorkerProcess(kafka_bootstrap, tmp, **env).start()
    try:
        wait_for(lambda: _denied(client, uc), "the decision")
        wait_for(
            lambda: _committed_total(kafka_bootstrap, app_id) > committed_before,
            "the restarted worker to re-handle the deciding events and commit them",
        )
        _trip(kafka_bootstrap, sentinel)  # its command lands after any re-issued one
        wait_for(lambda: _denied(client, sentinel), "sentinel")
    finally:
        restarted.stop()
        client.close()

    records = _control_records_for(kafka_bootstrap, uc)  # the whole topic, to its end
    ids = Counter(r["command_id"] for r in records)
    assert ids and set(ids.values()) == {1}, records  # each command once, not merely each id
    outcomes = [outcome for outcome, k in seen if k == key]
    assert outcomes.count("applied") == 1, outcomes
    assert set(outcomes) <= {"applied", "duplicate", "unknown_key"}, outcomes
