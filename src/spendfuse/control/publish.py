"""Publish signed control commands from outside the worker (operators, tools).

Commands are keyed by target on the compacted control topic and carry the signature header, the
same as the worker's. Each is stamped at publish time (:mod:`spendfuse.control.stamp`: publisher
clock, TTL from now, per-key version) and a restore is followed by a tombstone on its key.
Delivery is waited for: an operator must know the command is on the topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from spendfuse.control.errors import CommandPublishError
from spendfuse.control.signing import Signer, Verifier
from spendfuse.control.stamp import CommandSigner
from spendfuse.schemas.codec import encode
from spendfuse.schemas.command import ControlCommand
from spendfuse.schemas.topics import CONTROL


def encode_signed(command: ControlCommand, signer: Signer) -> tuple[bytes, bytes, list]:
    """Key, value and headers of the control record for ``command`` exactly as given (no
    stamping: for tests and tools that re-send a record byte for byte)."""
    key = command.key().encode()
    value = encode(command)
    return key, value, signer.headers(key, value)


def publish_commands(
    bootstrap_servers: str,
    commands: list[ControlCommand],
    signer: Signer | CommandSigner,
    *,
    topic: str = CONTROL,
    timeout_s: float = 30.0,
    config: Mapping[str, Any] | None = None,
) -> list[ControlCommand]:
    """Stamp, sign, send and wait for each command; return them as published.

    Raise :class:`CommandPublishError` if any failed.
    """
    stamper = signer if isinstance(signer, CommandSigner) else CommandSigner(signer)
    producer = Producer(
        {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            **(config or {}),
        }
    )
    errors: list[str] = []

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            errors.append(f"{msg.key()!r}: {err}")

    published: list[ControlCommand] = []
    for command in commands:
        stamped, records = stamper.publish(command)
        for key, value, headers in records:
            producer.produce(topic, key=key, value=value, headers=headers, on_delivery=on_delivery)
        published.append(stamped)
    if producer.flush(timeout_s) or errors:
        raise CommandPublishError(
            f"command not delivered to {topic}: {'; '.join(errors) or 'timed out'}"
        )
    return published


def read_in_force(
    bootstrap_servers: str,
    verify_specs: list[str],
    *,
    topic: str = CONTROL,
    timeout_s: float = 30.0,
    config: Mapping[str, Any] | None = None,
) -> tuple[dict[str, int], dict[str, ControlCommand]]:
    """Read the control topic to its end as a gateway does: the newest version per key and the
    commands in force (so an operator's command is newer than all, and a restore lifts all).

    Only verified records count: an unsigned record claiming a huge version must not push the
    operator's version (and so every later command on the key) out of reach.
    """
    from spendfuse.gateway.client import ControlClient
    from spendfuse.gateway.errors import GatewayError

    client = ControlClient(bootstrap_servers, Verifier(verify_specs), topic=topic, config=config)
    try:
        client.start(timeout_s, require_ready=True)
    except GatewayError as exc:
        raise CommandPublishError(f"cannot read {topic} before publishing: {exc}") from None
    finally:
        client.close()
    return client.state.known_versions(), client.state.commands_in_force()
