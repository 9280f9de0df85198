"""The control path on the real broker: a rule trips, a signed command reaches a gateway client.

The worker runs with kill_switch as the spend-limit action and a known Ed25519 key; gateway
clients trust only that key. Commands are valid from when they are published (publisher clock).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from confluent_kafka import Producer

from spendfuse.control.publish import encode_signed, publish_commands
from spendfuse.control.signing import Signer, generate_ed25519_spec, parse_signer
from spendfuse.control.stamp import CommandSigner
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess
from tests.support.waiting import wait_for


def _trip(publisher: CostEventPublisher, use_case: str) -> None:
    now = datetime.now(UTC)
    for i in range(2):  # $1.20 over the $1.00 limit
        publisher.publish(make_event(use_case, cost=0.6, at=now, seconds=i * 0.01))
    assert publisher.flush() == 0


def _command(
    use_case: str,
    kind: str = "kill_switch",
    *,
    ago_s: float = 0,
    ttl_s: float = 600,
    cid: str | None = None,
) -> ControlCommand:
    at = datetime.now(UTC) - timedelta(seconds=ago_s)
    return ControlCommand(
        command_id=cid or unique("cmd"),
        kind=CommandKind(kind),
        target=Target(type=TargetType.USE_CASE, id=use_case),
        issued_by="test:forger",
        reason="test",
        issued_at=at,
        expires_at=at + timedelta(seconds=ttl_s),
    )


def _rejected(client, use_case: str) -> list[str]:
    return [reason for reason, key, _ in client.state.rejections if key == f"use_case:{use_case}"]


def test_rule_trips_and_the_gateway_denies_the_matching_request(
    signing_worker: WorkerProcess, publisher: CostEventPublisher, make_client
) -> None:
    client = make_client()
    uc, other = unique("runaway-agent"), unique("quiet-agent")
    assert client.decide({"use_case_id": uc}).action == "allow"
    _trip(publisher, uc)

    decision = wait_for(
        lambda: (
            (d := client.decide({"tenant_id": "acme", "use_case_id": uc})).action != "allow" and d
        ),
        "the kill switch to reach the gateway",
    )
    assert decision.action == "deny"
    assert decision.issued_by == "rule:spend_rate_limit"
    assert "$1.20 in a minute, over $1.00" in decision.reason
    assert client.decide({"tenant_id": "acme", "use_case_id": other}).action == "allow"
    assert client.counts["applied"] >= 1


def test_forged_unsigned_expired_and_replayed_commands_are_rejected(
    kafka_bootstrap: str, signer: Signer, make_client
) -> None:
    client = make_client()
    uc = unique("target")
    attacker = parse_signer(generate_ed25519_spec())
    producer = Producer({"bootstrap.servers": kafka_bootstrap})

    key, value, headers = encode_signed(_command(uc), attacker)
    producer.produce(topics.CONTROL, key=key, value=value, headers=headers)  # wrong key
    key, value, _ = encode_signed(_command(uc), signer)
    producer.produce(topics.CONTROL, key=key, value=value)  # no signature
    forged_value = value.replace(b"test:forger", b"rule:spend_rate_limit")
    producer.produce(
        topics.CONTROL, key=key, value=forged_value, headers=signer.headers(key, value)
    )  # signature of another body
    producer.flush(30)
    # signed two minutes ago by a publisher, valid one minute: expired on arrival
    two_min_ago = CommandSigner(signer, clock=lambda: time.time() - 120)
    old_key, old_value, old_headers = two_min_ago.records(_command(uc, ttl_s=60))[0]
    producer.produce(topics.CONTROL, key=old_key, value=old_value, headers=old_headers)
    producer.flush(30)
    fresh = publish_commands(kafka_bootstrap, [_command(uc, "degrade")], signer)[0]
    wait_for(lambda: client.decide({"use_case_id": uc}).action == "degrade", "the degrade")
    # the old record sent again: older than the version in force
    producer.produce(topics.CONTROL, key=old_key, value=old_value, headers=old_headers)
    producer.flush(30)

    wait_for(lambda: len(_rejected(client, uc)) >= 5, "five rejections")
    assert sorted(_rejected(client, uc)) == sorted(
        ["unknown_key", "unsigned", "forged", "expired", "replayed"]
    )
    decision = client.decide({"use_case_id": uc})
    assert decision.action == "degrade" and decision.command_id == fresh.command_id


def test_restarted_gateway_rebuilds_state_from_the_compacted_topic(
    kafka_bootstrap: str, signer: Signer, make_client
) -> None:
    killed, degraded, lifted = unique("killed"), unique("degraded"), unique("lifted")
    publish_commands(
        kafka_bootstrap,
        [
            _command(killed),
            _command(degraded, "degrade"),
            _command(lifted),
            _command(lifted, "restore", cid=unique("restore")),
        ],
        signer,
    )
    first = make_client()
    wait_for(lambda: first.decide({"use_case_id": degraded}).action == "degrade", "first load")
    first.close()

    restarted = make_client()  # start() returns only once the topic is read to its end
    assert restarted.ready
    assert restarted.decide({"use_case_id": killed}).action == "deny"
    assert restarted.decide({"use_case_id": degraded}).action == "degrade"
    assert restarted.decide({"use_case_id": lifted}).action == "allow"
