"""The notifier's topics: the re-keyed groups topic and the compacted shared state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from spendfuse.schemas.topics import ALERTS, CONTROL


@dataclass(frozen=True, slots=True)
class NotifyTopics:
    alerts: str = ALERTS
    control: str = CONTROL
    groups: str = "spendfuse.notify.groups"  # alerts re-keyed by group: one owner per group
    ledger: str = "spendfuse.notify.log"  # compacted: group key -> group state (the nflog)
    silences: str = "spendfuse.silences"  # compacted: silence id -> silence

    @classmethod
    def prefixed(cls, prefix: str) -> NotifyTopics:
        """Every topic under one prefix (tests, several deployments on one cluster)."""
        return cls(
            *(f"{prefix}.{name}" for name in ("alerts", "control", "groups", "ledger", "silences"))
        )


def ensure_topics(
    bootstrap: str,
    specs: dict[str, tuple[int, bool]],
    timeout_s: float = 30.0,
    config: dict[str, Any] | None = None,
) -> None:
    """Create missing topics: name -> (partitions, compacted); ``config``: the Kafka login."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **(config or {})})
    existing = admin.list_topics(timeout=timeout_s).topics
    new = [
        NewTopic(
            name,
            num_partitions=parts,
            replication_factor=1,
            config={"cleanup.policy": "compact"} if compact else {},
        )
        for name, (parts, compact) in specs.items()
        if name not in existing
    ]
    if not new:
        return
    for future in admin.create_topics(new, operation_timeout=timeout_s).values():
        try:
            future.result(timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
