"""Who may write spendfuse.control: a SASL broker with ACLs refuses everyone but workers and
operators, and an operator's `spendfuse kill`, logged in as its own principal, reaches a gateway
logged in as its own (read-only) principal.

This suite starts its own SCRAM broker (the session broker stays PLAINTEXT).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from pydantic import SecretStr

from spendfuse.cli import main
from spendfuse.control.signing import Verifier, generate_ed25519_spec, parse_signer
from spendfuse.gateway.client import ControlClient
from spendfuse.gateway.config import GatewaySettings
from spendfuse.localkafka import LocalKafka
from spendfuse.localkafka.security import KafkaPrincipals
from spendfuse.schemas import topics
from spendfuse.schemas.codec import encode
from spendfuse.settings import Settings
from spendfuse.streams.notify import NotifyOptions, NotifyTopics, build_notifier
from spendfuse.streams.notify.topics import ensure_topics as ensure_notify_topics
from spendfuse.streams.topics import ensure_topics
from tests.slack.fake_slack import FakeSlack
from tests.slack.test_notifier import ROUTING, make_alert
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess
from tests.support.rules import rules_env, spend_limit_yaml
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka

PRINCIPALS = KafkaPrincipals(
    workers={"worker": "worker-secret"},
    operators={"alice": "alice-secret"},
    gateways={"gateway": "gateway-secret"},
    producers={"app": "app-secret"},
    others={"mallory": "mallory-secret"},
)
SIGNING_SPEC = generate_ed25519_spec()


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    broker = LocalKafka(tmp_path_factory.mktemp("sasl-kafka"), partitions=1, sasl=PRINCIPALS)
    broker.start()
    try:  # the worker creates the topics (control topic compacted, LogAppendTime)
        ensure_topics(
            Settings(
                bootstrap_servers=broker.bootstrap_servers,
                kafka_security_protocol="SASL_PLAINTEXT",
                kafka_sasl_mechanism=PRINCIPALS.mechanism,
                kafka_sasl_username="worker",
                kafka_sasl_password=SecretStr("worker-secret"),
            )
        )
        yield broker
    finally:
        broker.stop()


def _produce(kafka: LocalKafka, user: str, value: bytes | None) -> KafkaError | None:
    """One record to the control topic as ``user``; the delivery error, if any."""
    errors: list[KafkaError | None] = []
    producer = Producer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            **kafka.client_config(user),
            "message.timeout.ms": 15_000,
        }
    )
    producer.produce(
        topics.CONTROL,
        key=b"model:gpt-4o",
        value=value,
        on_delivery=lambda err, _msg: errors.append(err),
    )
    assert producer.flush(30) == 0
    return errors[0]


def _end_offset(kafka: LocalKafka) -> int:
    """Records on the control topic (all partitions), read as the broker's super user."""
    consumer = Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            **kafka.client_config(PRINCIPALS.broker_user),
            "group.id": "spendfuse-test-admin",
        }
    )

    def total() -> int | None:
        try:
            parts = consumer.list_topics(topics.CONTROL, timeout=10).topics[topics.CONTROL]
            return sum(
                consumer.get_watermark_offsets(TopicPartition(topics.CONTROL, p), timeout=10)[1]
                for p in parts.partitions
            )
        except KafkaException:  # a topic just created has no leader yet for a moment
            return None

    try:
        return wait_for(lambda: (n := total()) is not None and (n,), "control end offsets")[0]
    finally:
        consumer.close()


@pytest.mark.parametrize("user", ["mallory", "gateway", "app"])
def test_principals_without_write_acl_are_refused_on_control(
    sasl_kafka: LocalKafka, user: str
) -> None:
    before = _end_offset(sasl_kafka)
    for value in (b'{"forged": true}', None):  # a record, and an unsigned tombstone
        err = _produce(sasl_kafka, user, value)
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert _end_offset(sasl_kafka) == before  # nothing reached the log


def test_producer_principal_may_write_cost_events_only(sasl_kafka: LocalKafka) -> None:
    errors: list[KafkaError | None] = []
    producer = Producer(
        {"bootstrap.servers": sasl_kafka.bootstrap_servers, **sasl_kafka.client_config("app")}
    )
    producer.produce(topics.COST_EVENTS, value=b"{}", on_delivery=lambda e, _m: errors.append(e))
    assert producer.flush(30) == 0
    assert errors == [None]


def test_operator_kill_is_accepted_and_reaches_a_read_only_gateway(
    sasl_kafka: LocalKafka, tmp_path: Path
) -> None:
    model = unique("gpt")
    before = _end_offset(sasl_kafka)
    result = CliRunner().invoke(
        main,
        ["kill", "model", model, "--reason", "provider incident", "--by", "alice"],
        env={
            "SPENDFUSE_BOOTSTRAP_SERVERS": sasl_kafka.bootstrap_servers,
            "SPENDFUSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "SPENDFUSE_KAFKA_SASL_MECHANISM": PRINCIPALS.mechanism,
            "SPENDFUSE_KAFKA_SASL_USERNAME": "alice",
            "SPENDFUSE_KAFKA_SASL_PASSWORD": "alice-secret",
            "SPENDFUSE_CONTROL_SIGNING_KEY": SIGNING_SPEC,
        },
    )
    assert result.exit_code == 0, result.output
    assert f"kill_switch model:{model} published" in result.output
    assert "alice-secret" not in result.output
    assert _end_offset(sasl_kafka) > before

    client = ControlClient.from_settings(
        GatewaySettings(
            bootstrap_servers=sasl_kafka.bootstrap_servers,
            verify_keys=SecretStr(parse_signer(SIGNING_SPEC).verify_key_spec()),
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism=PRINCIPALS.mechanism,
            kafka_sasl_username="gateway",
            kafka_sasl_password=SecretStr("gateway-secret"),
        )
    ).start(60, require_ready=True)
    try:
        denied = wait_for(
            lambda: (d := client.decide({"model": model})).action == "deny" and d,
            "the operator's kill switch at the gateway",
        )
        assert denied.issued_by == "operator:alice"
    finally:
        client.close()


def test_worker_principal_runs_the_worker_and_its_kill_reaches_the_gateway(
    sasl_kafka: LocalKafka, tmp_path: Path
) -> None:
    """The Faust worker (aiokafka) and its confluent-kafka producer log in as the worker."""
    worker = WorkerProcess(
        sasl_kafka.bootstrap_servers,
        tmp_path,
        kafka_config=sasl_kafka.client_config(PRINCIPALS.broker_user),
        **rules_env(tmp_path / "rules", spend_limit_yaml(1.0, "kill_switch")),
        SPENDFUSE_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        SPENDFUSE_KAFKA_SASL_MECHANISM=PRINCIPALS.mechanism,
        SPENDFUSE_KAFKA_SASL_USERNAME="worker",
        SPENDFUSE_KAFKA_SASL_PASSWORD="worker-secret",
        SPENDFUSE_CONTROL_SIGNING_KEY=SIGNING_SPEC,
    ).start(120)
    client = ControlClient(
        sasl_kafka.bootstrap_servers,
        Verifier([parse_signer(SIGNING_SPEC).verify_key_spec()]),
        config=sasl_kafka.client_config("gateway"),
        default_risk_tier="low",
    ).start(60, require_ready=True)
    try:
        use_case = unique("runaway-agent")
        request = {"tenant_id": "acme", "use_case_id": use_case}
        now = datetime.now(UTC)
        events = tmp_path / "events.jsonl"  # $1.20 over the $1.00 limit
        events.write_bytes(
            b"\n".join(
                orjson.dumps(make_event(use_case, cost=0.6, at=now, seconds=i * 0.01))
                for i in range(2)
            )
        )
        published = CliRunner().invoke(  # `spendfuse publish` as the producer principal
            main,
            ["publish", str(events), "--bootstrap-servers", sasl_kafka.bootstrap_servers],
            env={
                "SPENDFUSE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "SPENDFUSE_KAFKA_SASL_MECHANISM": PRINCIPALS.mechanism,
                "SPENDFUSE_KAFKA_SASL_USERNAME": "app",
                "SPENDFUSE_KAFKA_SASL_PASSWORD": "app-secret",
            },
        )
        assert published.exit_code == 0 and "published 2 events" in published.output, (
            published.output
        )
        denied = wait_for(
            lambda: (d := client.decide(request)).action == "deny" and d,
            "the worker's kill switch at the gateway",
            timeout_s=90,
        )
        assert denied.issued_by == "rule:spend_rate_limit"
        assert client.decide({"tenant_id": "acme", "use_case_id": unique("quiet")}).action == (
            "allow"
        )
    finally:
        client.close()
        worker.stop()
    assert "AUTHORIZATION_FAILED" not in worker.log_tail(200_000)


def test_worker_principal_runs_the_notifier(sasl_kafka: LocalKafka, tmp_path: Path) -> None:
    """The notifier's consumers, producer and topic setup log in as the worker too."""
    run = uuid.uuid4().hex[:8]
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "routing.yaml").write_text(ROUTING)
    topics_ = NotifyTopics.prefixed(f"spendfuse.test.notify.{run}")
    login = sasl_kafka.client_config("worker")
    ensure_notify_topics(  # as the notifier's tests do: topics exist before it subscribes
        sasl_kafka.bootstrap_servers,
        {topics_.alerts: (1, False), topics_.control: (1, True)},
        config=login,
    )
    producer = Producer({"bootstrap.servers": sasl_kafka.bootstrap_servers, **login})
    alert = make_alert(1, run=run)
    producer.produce(topics_.alerts, key=alert.fingerprint.encode(), value=encode(alert))
    assert producer.flush(30) == 0
    with FakeSlack() as slack:
        settings = Settings(
            bootstrap_servers=sasl_kafka.bootstrap_servers,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism=PRINCIPALS.mechanism,
            kafka_sasl_username="worker",
            kafka_sasl_password=SecretStr("worker-secret"),
            rules_dir=tmp_path / "rules",
            rules_default_pack=False,
            slack_bot_token=SecretStr(slack.token),
            slack_base_url=slack.base_url,
            console_alerts=False,
            data_dir=tmp_path / "data",
            notify_metrics_port=0,
        )
        options = NotifyOptions(group_id=f"spendfuse-notify-{run}", tick_s=0.05)
        notifier = build_notifier(settings, topics_, options)
        stop = threading.Event()
        thread = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
        thread.start()
        try:
            wait_for(lambda: notifier.counts["delivered"] >= 1, "the alert delivered")
        finally:
            stop.set()
            thread.join(30)
        assert not thread.is_alive()
    assert any(m["channel"] == "#ai-oncall" for m in slack.log.top_level())


def test_plain_mechanism_broker_refuses_and_accepts_the_same_way(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """SASL/PLAIN (the docker-compose variant's mechanism): logins in the broker's JAAS."""
    principals = KafkaPrincipals(
        workers={"worker": "w"},
        operators={"alice": "a"},
        others={"mallory": "m"},
        mechanism="PLAIN",
    )
    with LocalKafka(tmp_path_factory.mktemp("plain-kafka"), partitions=1, sasl=principals) as kafka:
        ensure_topics(
            Settings(
                bootstrap_servers=kafka.bootstrap_servers,
                kafka_security_protocol="SASL_PLAINTEXT",
                kafka_sasl_mechanism="PLAIN",
                kafka_sasl_username="worker",
                kafka_sasl_password=SecretStr("w"),
            )
        )
        err = _produce(kafka, "mallory", None)
        assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
        assert _produce(kafka, "alice", b"{}") is None
        wrong = Producer(
            {
                "bootstrap.servers": kafka.bootstrap_servers,
                **{**kafka.client_config("alice"), "sasl.password": "guess"},
                "message.timeout.ms": 5_000,
            }
        )
        failed: list[KafkaError | None] = []
        wrong.produce(topics.CONTROL, value=b"{}", on_delivery=lambda e, _m: failed.append(e))
        wrong.flush(15)
        assert failed and failed[0] is not None  # a wrong password never reaches the topic
