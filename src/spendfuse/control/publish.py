"""Publish signed control commands from outside the worker (operators, tools).

Commands are keyed by target on the compacted control topic and carry the signature header, the
same as the worker's. Delivery is waited for: an operator must know the command is on the topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from spendfuse.control.errors import CommandPublishError
from spendfuse.control.signing import Signer
from spendfuse.schemas.codec import encode
from spendfuse.schemas.command import ControlCommand
from spendfuse.schemas.topics import CONTROL


def encode_signed(command: ControlCommand, signer: Signer) -> tuple[bytes, bytes, list]:
    """Key, value and headers of the control record for ``command``."""
    key = command.key().encode()
    value = encode(command)
    return key, value, signer.headers(key, value)


def publish_commands(
    bootstrap_servers: str,
    commands: list[ControlCommand],
    signer: Signer,
    *,
    topic: str = CONTROL,
    timeout_s: float = 30.0,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Sign, send and wait for each command; raise :class:`CommandPublishError` if any failed."""
    producer = Producer({
        "bootstrap.servers": bootstrap_servers,
        "enable.idempotence": True,
        "acks": "all",
        **(config or {}),
    })
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(f"{msg.key()!r}: {err}")

    for command in commands:
        key, value, headers = encode_signed(command, signer)
        producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
    if producer.flush(timeout_s) or errors:
        raise CommandPublishError(
            f"command not delivered to {topic}: {'; '.join(errors) or 'timed out'}"
        )
