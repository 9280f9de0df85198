"""Create spendfuse's topics before the worker starts, with the right partitions and policies.

Faust creates its own internal topics (table changelogs); these are the public ones, created
explicitly so that the control topic is log-compacted from its first record.
"""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from spendfuse.schemas import topics
from spendfuse.settings import Settings
from spendfuse.streams.errors import StreamSetupError


def topic_specs(settings: Settings) -> list[NewTopic]:
    specs = []
    for name in topics.ALL_TOPICS:
        config = {"cleanup.policy": "compact"} if name in topics.COMPACTED_TOPICS else {}
        config |= topics.TOPIC_CONFIGS.get(name, {})
        partitions = settings.partitions if name in topics.PARTITIONED_TOPICS else 1
        if name == topics.CONTROL:
            # The broker stamps append time: gateways refuse signed records appended long after
            # they were signed (re-sent old records), the same on running and restarted ones.
            config |= {
                "min.cleanable.dirty.ratio": "0.1",
                "segment.ms": "600000",
                "message.timestamp.type": "LogAppendTime",
            }
        specs.append(
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=settings.replication_factor,
                config=config,
            )
        )
    return specs


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> None:
    """Create missing topics; existing ones are left as they are."""
    admin = AdminClient(
        {"bootstrap.servers": settings.require_bootstrap(), **settings.kafka_client_config()}
    )
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except Exception as exc:
        raise StreamSetupError(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {exc}; "
            "check SPENDFUSE_BOOTSTRAP_SERVERS"
        ) from exc
    missing = [spec for spec in topic_specs(settings) if spec.topic not in existing]
    if not missing:
        return
    for name, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
        try:
            future.result(timeout_s)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise StreamSetupError(f"cannot create topic {name}: {exc}") from exc
