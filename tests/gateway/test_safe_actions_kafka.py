"""Safe actions on the real broker: a worker, gateway clients, the operator CLI and an attacker
who can write to the control topic but holds no key.

* An event dated 2099 gives a kill that lasts its TTL from publication, and `spendfuse restore`
  lifts it; a kill decided on events 20 minutes old arrives in force.
* Old signed records sent again change nothing, on a running gateway or a restarted one.
* `spendfuse restore` lifts every scope in force on the target, even one published by a clock
  an hour ahead.
* A gateway declares its fail mode: Kafka unavailable at start, a dead consumer thread, stale state.
* The worker's dashboard shows only commands whose signature verifies.
"""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from prometheus_client import CollectorRegistry, generate_latest

from spendfuse.cli import main
from spendfuse.control.publish import encode_signed, publish_commands
from spendfuse.control.signing import Signer, Verifier
from spendfuse.control.stamp import CommandSigner
from spendfuse.gateway.client import ControlClient
from spendfuse.gateway.decision import ALLOW_UNAVAILABLE, DENY_UNAVAILABLE
from spendfuse.gateway.metrics import register
from spendfuse.localkafka.broker import free_port
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType, cost_scope
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess
from tests.support.rules import rules_env, spend_limit_yaml
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka
TTL_S = 600
LOW = {"tenant_id": "acme", "risk_tier": "low"}


@pytest.fixture(scope="module")
def ttl_worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, signing_spec: str
) -> Iterator[WorkerProcess]:
    """Spend limit $1/min, kill switch, commands valid 10 minutes."""
    proc = WorkerProcess(
        kafka_bootstrap,
        tmp_path_factory.mktemp("ttl-worker"),
        **rules_env(
            tmp_path_factory.mktemp("ttl-rules"),
            spend_limit_yaml(1.0, "kill_switch", expires_in=f"{TTL_S}s"),
        ),
        SPENDFUSE_CONTROL_SIGNING_KEY=signing_spec,
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def _trip(publisher: CostEventPublisher, use_case: str, at: datetime) -> None:
    for i in range(2):  # $1.20 over the $1.00 limit
        publisher.publish(make_event(use_case, cost=0.6, at=at, seconds=i * 0.01))
    assert publisher.flush() == 0


def _cli(args: list[str], kafka_bootstrap: str, signing_spec: str) -> str:
    result = CliRunner().invoke(
        main,
        [*args, "--reason", "test", "--by", "oncall"],
        env={
            "SPENDFUSE_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "SPENDFUSE_CONTROL_SIGNING_KEY": signing_spec,
        },
    )
    assert result.exit_code == 0, result.output
    return result.output


def _kill(use_case: str, **kw) -> ControlCommand:
    return ControlCommand(
        command_id=unique("cmd"),
        kind=CommandKind.KILL_SWITCH,
        target=Target(type=TargetType.USE_CASE, id=use_case),
        issued_by="rule:test",
        reason="test",
        issued_at=datetime.now(UTC),
        ttl_s=TTL_S,
        **kw,
    )


# -- time: publisher clock and versions --
def test_event_dated_2099_kills_for_the_ttl_only_and_operator_restore_lifts_it(
    ttl_worker: WorkerProcess,
    publisher: CostEventPublisher,
    make_client,
    kafka_bootstrap: str,
    signing_spec: str,
) -> None:
    client = make_client()
    uc = unique("future-agent")
    _trip(publisher, uc, datetime(2099, 1, 1, tzinfo=UTC))
    req = {**LOW, "use_case_id": uc}
    denied = wait_for(lambda: (d := client.decide(req)).action == "deny" and d, "the kill")
    assert denied.expires_at_s is not None
    assert denied.expires_at_s - time.time() <= TTL_S + 5  # not 2099
    _cli(["restore", "use_case", uc], kafka_bootstrap, signing_spec)
    wait_for(lambda: client.decide(req).action == "allow", "the operator's restore to lift it")
    refused = [r for r in client.state.rejections if r[1] == f"use_case:{uc}"]
    assert refused == []  # the restore was not taken for a replay


def test_kill_decided_on_20_minute_old_events_arrives_in_force(
    ttl_worker: WorkerProcess, publisher: CostEventPublisher, make_client
) -> None:
    client = make_client()
    uc = unique("late-agent")
    _trip(publisher, uc, datetime.now(UTC) - timedelta(minutes=20))
    req = {**LOW, "use_case_id": uc}
    denied = wait_for(lambda: (d := client.decide(req)).action == "deny" and d, "the kill")
    assert denied.expires_at_s > time.time() + TTL_S - 60
    assert client.counts.get("expired", 0) == 0 or all(
        r[1] != f"use_case:{uc}" for r in client.state.rejections
    )


# -- replayed records --
def test_control_topic_timestamps_are_the_brokers(
    kafka_bootstrap: str, signer: Signer, control_topic: str
) -> None:
    published = publish_commands(kafka_bootstrap, [_kill(unique("ts"))], signer)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": uuid.uuid4().hex})
    try:
        _lo, hi = consumer.get_watermark_offsets(TopicPartition(control_topic, 0), timeout=10)
        consumer.assign([TopicPartition(control_topic, 0, hi - 1)])
        msg = wait_for(lambda: consumer.poll(1.0), "the last control record")
        assert msg.key() == published[0].key().encode()
        assert msg.timestamp()[0] == TIMESTAMP_LOG_APPEND_TIME
    finally:
        consumer.close()


def test_old_signed_records_sent_again_change_nothing(
    kafka_bootstrap: str, signer: Signer, make_client
) -> None:
    client = make_client()
    uc = unique("replay-target")
    req = {**LOW, "use_case_id": uc}
    key, value, headers = CommandSigner(signer).records(_kill(uc))[0]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topics.CONTROL, key=key, value=value, headers=headers)
    producer.flush(30)
    wait_for(lambda: client.decide(req).action == "deny", "the kill")
    restore = _kill(uc).model_copy(update={"kind": CommandKind.RESTORE, "ttl_s": None})
    publish_commands(kafka_bootstrap, [restore], signer)
    wait_for(lambda: client.decide(req).action == "allow", "the restore")

    producer.produce(topics.CONTROL, key=key, value=value, headers=headers)  # the attacker
    producer.produce(topics.CONTROL, key=key, value=None)  # and a tombstone
    producer.flush(30)
    wait_for(
        lambda: any(r[:2] == ("replayed", f"use_case:{uc}") for r in client.state.rejections),
        "the replay refused",
    )
    assert client.decide(req).action == "allow"
    restarted = make_client()  # reads kill, restore, tombstone, kill again: versions decide
    assert restarted.decide(req).action == "allow"


def test_after_compaction_an_old_record_resent_is_refused_as_late(
    kafka_bootstrap: str, signer: Signer
) -> None:
    """Compaction keeps the last record per key: here the attacker's copy of a kill signed an
    hour ago is all that is left (a fresh topic configured like the control topic)."""
    topic = f"spendfuse.control.compacted-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    config = {"cleanup.policy": "compact", "message.timestamp.type": "LogAppendTime"}
    admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic].result(30)
    uc = unique("compacted")
    hour_ago = CommandSigner(signer, clock=lambda: time.time() - 3600)
    key, value, headers = hour_ago.records(_kill(uc))[0]
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topic, key=key, value=value, headers=headers)
    producer.flush(30)
    client = ControlClient(
        kafka_bootstrap, Verifier([signer.verify_key_spec()]), topic=topic, default_risk_tier="low"
    ).start(60, require_ready=True)
    try:
        assert client.decide({"use_case_id": uc}).action == "allow"
        assert client.counts["late"] == 1
        assert client.state.rejections[-1][:2] == ("late", f"use_case:{uc}")
    finally:
        client.close()


# -- operators --
def test_operator_restore_lifts_every_scope_even_from_a_clock_an_hour_ahead(
    kafka_bootstrap: str, signer: Signer, signing_spec: str, make_client
) -> None:
    client = make_client()
    uc = unique("scoped")
    ahead = CommandSigner(signer, clock=lambda: time.time() + 3600)
    publish_commands(kafka_bootstrap, [_kill(uc), _kill(uc, within=cost_scope("acme", uc))], ahead)
    req = {**LOW, "use_case_id": uc}
    wait_for(lambda: len([k for k in client.state.active() if uc in k]) == 2, "both kills")
    assert client.decide(req).action == "deny"
    out = _cli(["restore", "use_case", uc], kafka_bootstrap, signing_spec)
    assert out.count("restore use_case:") == 2
    wait_for(lambda: client.decide(req).action == "allow", "the restore of every scope")
    assert not [k for k in client.state.active() if uc in k]


# -- fail mode --
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("closed", DENY_UNAVAILABLE),
        ("open", ALLOW_UNAVAILABLE),
        ("last_known_good", ALLOW_UNAVAILABLE),
    ],
)
def test_kafka_unavailable_at_start_applies_the_declared_fail_mode(
    signer: Signer, mode: str, expected
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # no broker listens here
    client = ControlClient(
        nowhere, Verifier([signer.verify_key_spec()]), fail_mode=mode, config={"log_level": 0}
    ).start(1.0)  # returns, not ready, and keeps trying
    try:
        assert not client.ready
        assert client.decide({**LOW, "use_case_id": "bot"}) is expected
        stats = wait_for(lambda: (s := client.stats())["last_error"] and s, "the reason")
        assert stats["ready"] is False and stats["fail_mode"] == mode
        assert stats["consumer_alive"] and "cannot read" in stats["last_error"]
        registry = CollectorRegistry()
        register(client, registry)
        scraped = generate_latest(registry).decode()
        assert f'spendfuse_gateway_ready{{fail_mode="{mode}"}} 0.0' in scraped
        assert "spendfuse_gateway_state_age_seconds -1.0" in scraped
        assert 'spendfuse_gateway_health_events_total{event="load_retries"}' in scraped
    finally:
        client.close()


def test_dead_consumer_thread_turns_not_ready_applies_fail_mode_and_restarts(
    kafka_bootstrap: str, signer: Signer, control_topic: str
) -> None:
    uc = unique("poison-callback")
    raised: list[bytes] = []

    def on_record(_outcome: str, key: bytes | None, _t: float) -> None:
        if key == f"use_case:{uc}".encode() and not raised:
            raised.append(key)
            raise RuntimeError("a bug in the consumer loop")

    client = ControlClient(
        kafka_bootstrap,
        Verifier([signer.verify_key_spec()]),
        fail_mode="closed",
        default_risk_tier="low",
        on_record=on_record,
        restart_backoff_s=3.0,
    ).start(60, require_ready=True)
    try:
        assert client.ready
        publish_commands(kafka_bootstrap, [_kill(uc)], signer)
        wait_for(lambda: not client.ready, "not ready once the consumer loop died")
        assert client.decide({**LOW, "use_case_id": unique("other")}) is DENY_UNAVAILABLE
        wait_for(lambda: client.ready, "the supervisor to restart the consumer", timeout_s=60)
        assert client.stats()["health"]["consumer_restarts"] == 1
        assert client.decide({**LOW, "use_case_id": uc}).action == "deny"  # reloaded
        assert client.decide({**LOW, "use_case_id": unique("other")}).action == "allow"
    finally:
        client.close()


def test_stale_state_is_not_ready_and_last_known_good_has_a_limit(
    kafka_bootstrap: str, signer: Signer, make_client
) -> None:
    uc = unique("stale")
    publish_commands(kafka_bootstrap, [_kill(uc)], signer)
    client = make_client()
    req = {**LOW, "use_case_id": uc}
    assert client.ready and client.decide(req).action == "deny"
    client._fresh_at -= 60  # the broker has not answered for a minute
    assert not client.ready and client.state_age_s() >= 60
    assert client.decide(req).action == "deny"  # last known good, younger than 900 s
    client._fresh_at -= 1000
    assert client.decide(req) is ALLOW_UNAVAILABLE  # too stale to enforce
    assert client.stats()["health"]["last_known_good_decisions"] == 1
    wait_for(lambda: client.ready, "fresh again once the broker answers", timeout_s=30)


# -- the dashboard --
def test_dashboard_shows_only_signed_commands(
    ttl_worker: WorkerProcess, kafka_bootstrap: str, signer: Signer
) -> None:
    forged_uc, signed_uc = unique("forged"), unique("signed")
    key, value, _ = encode_signed(_kill(forged_uc), signer)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topics.CONTROL, key=key, value=value)  # unsigned
    producer.flush(30)
    publish_commands(kafka_bootstrap, [_kill(signed_uc)], signer)
    url = f"http://127.0.0.1:{ttl_worker.env['SPENDFUSE_WEB_PORT']}/api/dashboard"

    def in_force() -> list[str]:
        with urllib.request.urlopen(url, timeout=5) as resp:
            snap = orjson.loads(resp.read())
        return [c["key"] for c in snap["commands_in_force"]], snap["control_records_refused"]

    keys, refused = wait_for(
        lambda: (s := in_force()) and f"use_case:{signed_uc}" in s[0] and s,
        "the signed command on the dashboard",
    )
    assert f"use_case:{forged_uc}" not in keys
    assert refused.get("unsigned", 0) >= 1


def test_unsigned_record_with_a_huge_version_does_not_push_the_operators_version(
    kafka_bootstrap: str, signer: Signer, signing_spec: str, make_client
) -> None:
    client = make_client()
    uc = unique("inflated")
    inflated = _kill(uc).model_copy(update={"version": 2**62})
    key, value, _ = encode_signed(inflated, signer)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    producer.produce(topics.CONTROL, key=key, value=value)  # unsigned: the attacker's
    producer.flush(30)
    out = _cli(["restore", "use_case", uc], kafka_bootstrap, signing_spec)
    version = int(out.split("(version ")[1].split(")")[0])
    assert version < 2**62 and abs(version - time.time() * 1000) < 60_000
    publish_commands(kafka_bootstrap, [_kill(uc)], signer)  # a later kill still applies
    wait_for(lambda: client.decide({**LOW, "use_case_id": uc}).action == "deny", "the later kill")
